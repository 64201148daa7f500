package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dgwproject/dgw/adapters/broker"
	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/audit"
	"github.com/dgwproject/dgw/gateway/policy"
	"github.com/dgwproject/dgw/gateway/redact"
)

type benchOptions struct {
	events     int
	seed       int64
	broker     string
	embedded   string
	recipients string
	partitions int
	workers    int
	queue      int
	latency    time.Duration
	mirror     bool
	stages     bool
	warm       bool
	cacheSize  int
	evaluator  string
	pad        bool
	json       bool
	cpuProfile string
	memProfile string
	trace      string
	logLevel   string
	timeout    time.Duration
	// runs is how many independent runs to make (median, min and max of
	// each figure when more than one).
	runs      int
	audit     bool
	rate      float64
	gcPercent int
	memLimit  string

	// acct is the audit trail and subject state of the gateway runs, set
	// by bench when audit is on.
	acct *accountability
	// settle has the embedded broker collect its garbage before a phase
	// (benchCollect), or collect and pause its collector (benchHold).
	settle func(request string) error

	// serveBroker runs only the embedded broker, for a parent bench
	// process (hidden).
	serveBroker bool
	topics      string
	// servePublisher publishes the latency phase's records from this
	// file, for a parent bench process (hidden; bench_publish.go).
	servePublisher string
}

func (a *app) benchCmd() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the gateway against a plain Kafka fan-out copy on the same broker and events",
		Long: `bench measures, in one run on one broker with the same generated events (1-3 KB
records) and the same K recipients:
  - the mirror: a kafka-go consumer group copying every source record unchanged
    to K topics (no decoding, no policy): the practical limit, since the bytes
    must move anyway;
  - the gateway: the full path of dgw run (decode, context, decide, redact,
    encode, audit, produce, commit) draining the same backlog; with
    --audit=false without the audit trail and the subject state;
  - the gateway's end-to-end latency at a fixed offered load of half the
    maximum it just reached: from the source record's timestamp to the
    acknowledgement of all its recipient records, and to each recipient
    record's timestamp read back from the broker.
It prints records per second, the gateway/mirror ratio, CPU time per source
event, the peak resident memory of the gateway phase and the decision cache
hit ratio. The embedded broker runs in a child process, and the latency
phase's publisher in another, so that the CPU and memory figures are the
gateway's own; --broker measures against any Kafka (plaintext; the run
creates its own source topics there).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.serveBroker {
				return a.serveBenchBroker(o, pauseCollector)
			}
			if o.servePublisher != "" {
				return a.serveBenchPublisher(cmd.Context(), o)
			}
			if o.events <= 0 || o.partitions <= 0 || o.workers <= 0 || o.queue < 0 || o.latency < 0 || o.cacheSize < 0 || o.rate < 0 {
				return failWith(2, errors.New("--events, --partitions and --workers must be positive; --queue, --latency, --latency-rate and --decision-cache not negative"))
			}
			if o.runs < 1 {
				return failWith(2, fmt.Errorf("--runs: expected 1 or more, got %d", o.runs))
			}
			if ev := policy.Evaluator(o.evaluator); ev != policy.EvaluatorPlan && ev != policy.EvaluatorInterpreter {
				return failWith(2, fmt.Errorf("--evaluator: expected %s or %s, got %q", policy.EvaluatorPlan, policy.EvaluatorInterpreter, o.evaluator))
			}
			if o.runs > 1 && (o.cpuProfile != "" || o.memProfile != "" || o.trace != "") {
				return failWith(2, errors.New("--cpuprofile, --memprofile and --trace profile one run: drop them or --runs"))
			}
			if o.trace != "" && o.latency == 0 {
				return failWith(2, errors.New("--trace traces the latency phase: --latency must be more than 0"))
			}
			if o.embedded != "child" && o.embedded != "in-process" {
				return failWith(2, fmt.Errorf("--embedded: expected child or in-process, got %q", o.embedded))
			}
			return a.bench(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.events, "events", 5000, "source events in the backlog the mirror and the gateway drain")
	f.Int64Var(&o.seed, "seed", 1, "seed of the synthetic stream")
	f.StringVar(&o.broker, "broker", "", "bootstrap address of an external Kafka (default: an embedded broker)")
	f.StringVar(&o.embedded, "embedded", "child", "where the embedded broker runs: child (a child process, so CPU and memory are the gateway's) or in-process")
	f.StringVar(&o.recipients, "recipients", "all", "recipients: all, a number K (the first K of the registry) or a comma-separated list of ids")
	f.IntVar(&o.partitions, "partitions", 3, "partitions of every topic the run creates")
	f.IntVar(&o.workers, "workers", gateway.DefaultWorkers, "gateway workers, as dgw run's workers (events in flight: workers × (queue+1))")
	f.IntVar(&o.queue, "queue", gateway.DefaultQueue, "gateway events in flight per worker beyond the one it handles (window workers × (queue+1)), as dgw run's queue")
	f.DurationVar(&o.latency, "latency", 10*time.Second, "duration of the latency phase at half the maximum load (0: skip it)")
	f.BoolVar(&o.mirror, "mirror", true, "measure the mirror (false: gateway only, e.g. for a long backlog)")
	f.BoolVar(&o.stages, "stages", true, "measure each stage in process at the end (decode, decision hit and miss, redact and encode, the whole path at 10 recipients), no broker")
	f.BoolVar(&o.warm, "warm", true, "drain the backlog a second time with the decision cache the first drain filled (the hit ratio of a long-running gateway)")
	f.IntVar(&o.cacheSize, "decision-cache", policy.DefaultCacheSize, "decision cache entries (as dgw run; larger keeps more of a diverse stream)")
	f.StringVar(&o.evaluator, "evaluator", string(policy.EvaluatorPlan), "how decision misses are evaluated, as dgw run's policy_evaluator: plan or interpreter")
	f.BoolVar(&o.audit, "audit", true, "write the audit trail before every delivery and read the subject topic, as dgw run always does (false: measure the gateway without them)")
	f.Float64Var(&o.rate, "latency-rate", 0, "events/s offered in the latency phase (0: half the maximum the cold drain reached)")
	f.IntVar(&o.gcPercent, "gc-percent", defaultGCPercent, "garbage collector target, as dgw run's gc_percent (GOGC wins when set)")
	f.StringVar(&o.memLimit, "memory-limit", defaultMemoryLimit, "soft memory limit, as dgw run's memory_limit (GOMEMLIMIT wins when set; off for none)")
	f.BoolVar(&o.pad, "pad", true, "grow the synthetic events to 1-3 KB (false: their natural 0.2-0.6 KB)")
	f.BoolVar(&o.json, "json", false, "print the results as JSON")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the gateway's drain (the warm one with --warm) to this file")
	f.StringVar(&o.memProfile, "memprofile", "", "write a heap profile at the end of the gateway's drain to this file")
	f.StringVar(&o.trace, "trace", "", "write a Go execution trace of the gateway's process during the latency phase to this file (go tool trace)")
	f.StringVar(&o.logLevel, "log-level", "error", "log level: debug, info, warn, error")
	f.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up on a run after this long")
	f.IntVar(&o.runs, "runs", 1, "independent runs, each with its own broker, backlog and cache; with more than one, the median, min and max of every figure are printed after the runs")
	f.BoolVar(&o.serveBroker, "serve-broker", false, "run only the embedded broker for a parent bench process")
	f.StringVar(&o.topics, "topics", "", "topics the served broker creates")
	f.StringVar(&o.servePublisher, "serve-publisher", "", "publish the records of this file for a parent bench process's latency phase")
	_ = f.MarkHidden("serve-broker")
	_ = f.MarkHidden("serve-publisher")
	_ = f.MarkHidden("topics")
	return cmd
}

// benchResult is what bench prints; --json gives it as is.
type benchResult struct {
	Machine benchMachine `json:"machine"`
	Config  benchConfig  `json:"config"`
	Mirror  *benchPhase  `json:"mirror,omitempty"`
	Gateway benchPhase   `json:"gateway"`
	Warm    *benchPhase  `json:"gateway_warm,omitempty"`
	Ratio   *benchRatio  `json:"ratio,omitempty"`
	// WarmRatio compares the warm drain with the mirror.
	WarmRatio *benchRatio   `json:"ratio_warm,omitempty"`
	Latency   *benchLatency `json:"latency,omitempty"`
	// Stages are the per-(event, recipient) costs in process, no broker.
	Stages *benchStages `json:"stages,omitempty"`
}

type benchMachine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
}

type benchConfig struct {
	Events      int     `json:"events"`
	Recipients  int     `json:"recipients"`
	Partitions  int     `json:"partitions"`
	Workers     int     `json:"workers"`
	Queue       int     `json:"queue"`
	Broker      string  `json:"broker"`
	RecordBytes float64 `json:"record_bytes_mean"`
	Seed        int64   `json:"seed"`
	PublishPerS float64 `json:"publish_records_per_sec"`
	PolicyRev   string  `json:"policy_revision"`
	// Evaluator is how the gateway evaluated decision misses (plan or
	// interpreter; policy_evaluator).
	Evaluator    string `json:"policy_evaluator"`
	DecisionSize int    `json:"decision_cache_size"`
	// Audit is whether the gateway wrote the audit trail (and read the
	// subject state), as dgw run always does.
	Audit bool   `json:"audit"`
	GOGC  string `json:"gogc,omitempty"`
	// GC is the collector setting of the whole run (mirror included), as
	// dgw run applies it.
	GC string `json:"gc"`
}

// benchPhase is one drain of the backlog.
type benchPhase struct {
	Seconds         float64 `json:"seconds"`
	SourcePerSec    float64 `json:"source_records_per_sec"`
	RecipientPerSec float64 `json:"recipient_records_per_sec"`
	PairsPerSec     float64 `json:"event_recipient_pairs_per_sec"`
	CPUMicrosPerEv  float64 `json:"cpu_us_per_event"`
	PeakRSSMiB      float64 `json:"peak_rss_mib,omitempty"`
	Delivered       int64   `json:"delivered,omitempty"`
	Refused         int64   `json:"refused,omitempty"`
	Held            int64   `json:"held,omitempty"`
	DeadLettered    int64   `json:"dead_lettered,omitempty"`
	CacheHitRatio   float64 `json:"decision_cache_hit_ratio,omitempty"`
	// CacheHitRatioTail is the hit ratio over the drain's last fifth of
	// events: the cache past its cold start, on a long enough backlog.
	CacheHitRatioTail float64 `json:"decision_cache_hit_ratio_last_fifth,omitempty"`
	CacheMisses       int64   `json:"decision_cache_misses,omitempty"`
	ProcessPeakRSSMB  float64 `json:"process_peak_rss_mib,omitempty"`
	heapFigures
}

// heapFigures are what the process's collector did over a phase: the
// collections it ran, and what was allocated per source event (the
// process's: the gateway's, and with --embedded in-process the broker's;
// the latency phase's publisher has a process of its own).
// Collections lengthen the latency tail; fewer allocations, fewer of them.
type heapFigures struct {
	GCCycles        uint64  `json:"gc_cycles"`
	AllocKBPerEvent float64 `json:"alloc_kb_per_event"`
	AllocsPerEvent  float64 `json:"allocs_per_event"`
}

// processCounters are the process's CPU time, collections and heap
// allocations so far; a phase's figures are the difference of two.
type processCounters struct {
	cpu                 time.Duration
	gcs, bytes, objects uint64
}

func readCounters() processCounters {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/allocs:objects"}}
	metrics.Read(s)
	u := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0 // not provided by this Go: reported as 0
		}
		return s[i].Value.Uint64()
	}
	return processCounters{cpu: cpuTime(), gcs: u(0), bytes: u(1), objects: u(2)}
}

// heapOver is the heap figures from a to b over n events.
func heapOver(a, b processCounters, n float64) heapFigures {
	if n <= 0 {
		return heapFigures{}
	}
	return heapFigures{GCCycles: b.gcs - a.gcs, AllocKBPerEvent: float64(b.bytes-a.bytes) / 1024 / n,
		AllocsPerEvent: float64(b.objects-a.objects) / n}
}

type benchRatio struct {
	// SourceRecords compares source records (and so event × recipient
	// pairs, K being the same) handled per second.
	SourceRecords float64 `json:"source_records"`
	// RecipientRecords compares records written per second; the gateway
	// writes only what the policy allows.
	RecipientRecords float64 `json:"recipient_records"`
}

type benchLatency struct {
	OfferedPerSec float64 `json:"offered_events_per_sec"`
	Seconds       float64 `json:"seconds"`
	Events        int64   `json:"events"`
	AckP50Ms      float64 `json:"ack_p50_ms"`
	AckP99Ms      float64 `json:"ack_p99_ms"`
	AckMaxMs      float64 `json:"ack_max_ms"`
	// ReadExpected is how many recipient records the gateway wrote for
	// the latency phase; ReadRecords how many of them were read back.
	ReadExpected int64   `json:"readback_expected"`
	ReadRecords  int     `json:"readback_records"`
	ReadP50Ms    float64 `json:"readback_p50_ms"`
	ReadP99Ms    float64 `json:"readback_p99_ms"`
	ReadMaxMs    float64 `json:"readback_max_ms"`
	// The acknowledgement latency split: from the source timestamp to the
	// gateway's Read returning the record (broker and fetch), from there
	// to the acknowledgement (queueing, decisions, redaction, writes), and
	// how long each of the gateway's sink writes took.
	FetchP50Ms  float64 `json:"fetch_p50_ms"`
	FetchP99Ms  float64 `json:"fetch_p99_ms"`
	HandleP50Ms float64 `json:"handle_p50_ms"`
	HandleP99Ms float64 `json:"handle_p99_ms"`
	WriteP50Ms  float64 `json:"write_p50_ms"`
	WriteP99Ms  float64 `json:"write_p99_ms"`
	heapFigures
}

func (a *app) bench(ctx context.Context, o benchOptions) error {
	log, err := newLogger("text", o.logLevel, a.stderr)
	if err != nil {
		return failWith(2, err)
	}
	gc, err := parseGC(o.gcPercent, o.memLimit)
	if err != nil {
		return failWith(2, err)
	}
	if a.tuneGC != nil {
		// The whole run, mirror included, under dgw run's settings.
		a.tuneGC(gc, a.environ, log)
	}
	var runs []benchResult
	for i := range o.runs {
		progress := func(format string, args ...any) {
			if !o.json {
				if o.runs > 1 {
					format = fmt.Sprintf("run %d of %d: ", i+1, o.runs) + format
				}
				fmt.Fprintf(a.stderr, "dgw bench: "+format+"\n", args...)
			}
		}
		res, err := a.benchOnce(ctx, o, gc, log, progress)
		if err != nil {
			if o.runs > 1 {
				return fmt.Errorf("run %d of %d: %w", i+1, o.runs, err)
			}
			return err
		}
		runs = append(runs, res)
	}
	encode := func(v any) error {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	if len(runs) == 1 {
		if o.json {
			return encode(runs[0])
		}
		printBench(a.stdout, &runs[0])
		return nil
	}
	sum, err := summarise(runs)
	if err != nil {
		return err
	}
	if o.json {
		return encode(benchRuns{Runs: runs, Summary: sum})
	}
	printRuns(a.stdout, runs, sum)
	return nil
}

// benchOnce is one run: its own broker (or topics on --broker), backlog,
// decision cache, audit trail, mirror and gateway phases, within
// --timeout.
func (a *app) benchOnce(ctx context.Context, o benchOptions, gc gcSettings, log *slog.Logger, progress func(string, ...any)) (benchResult, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	p, err := buildParts(ctx, "", "", redact.DevKeyring("dgw-bench"), 1<<20, log, policy.WithCacheSize(o.cacheSize),
		policy.WithEvaluator(policy.Evaluator(o.evaluator)))
	if err != nil {
		return benchResult{}, err
	}
	recipients, err := pickRecipients(p.recipients, o.recipients)
	if err != nil {
		return benchResult{}, failWith(2, err)
	}
	run := *p
	run.recipients = recipients

	// Topics: the run's own source topics on an external broker, so an
	// earlier run's records are not part of the backlog.
	prefix := ""
	if o.broker != "" {
		prefix = fmt.Sprintf("dgw.bench.%d.", time.Now().UnixNano())
	}
	sourceOf := func(eventType string) string { return prefix + sourceTopic(eventType) }
	var sources []string
	for _, t := range defaultSourceTopics(p.set) {
		sources = append(sources, prefix+t)
	}
	var mirrorTopics []string
	for _, r := range recipients {
		mirrorTopics = append(mirrorTopics, "dgw.bench.mirror."+r.ID)
	}
	const deadLetter, held = "dgw.deadletter", "dgw.held"
	topics := slices.Concat([]string{deadLetter, held}, sources, recipientTopics(recipients), mirrorTopics)

	bb, err := a.benchBrokerFor(ctx, o, topics)
	if err != nil {
		return benchResult{}, err
	}
	defer bb.stop()
	brokers, where := bb.addrs, bb.where
	o.settle = bb.collect
	res := benchResult{
		Machine: benchMachine{CPUs: runtime.NumCPU(), CPUModel: cpuModel(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH},
		Config: benchConfig{Events: o.events, Recipients: len(recipients), Partitions: o.partitions, Workers: o.workers,
			Queue: o.queue, Broker: where, Seed: o.seed, PolicyRev: p.decider.Revision(), Evaluator: string(p.decider.Evaluator()), DecisionSize: o.cacheSize,
			GOGC: os.Getenv("GOGC"), GC: gc.String(), Audit: o.audit},
	}
	if o.audit {
		// dgw run's audit trail and subject state, on topics created as
		// dgw dev creates them.
		acct, err := newAccountability(p.set, prefix+defaultAuditTopic, prefix+defaultSubjectTopic, audit.DevKey("dgw-bench"), defaultAuditRetention)
		if err != nil {
			return benchResult{}, err
		}
		if err := acct.ensureTopics(ctx, kafka.AdminConfig{Brokers: brokers}, o.partitions, 1); err != nil {
			return benchResult{}, fmt.Errorf("create the audit and subject topics: %w", err)
		}
		o.acct = acct
	}

	// The backlog.
	progress("publishing %d events to %s (%s)", o.events, where, strings.Join(brokers, ","))
	wl := newWorkload(p.set, o.seed, o.pad)
	start := time.Now()
	bytes, err := publishBacklog(ctx, brokers, wl, sourceOf, o.events)
	if err != nil {
		return benchResult{}, fmt.Errorf("publish the backlog: %w", err)
	}
	res.Config.PublishPerS = float64(o.events) / time.Since(start).Seconds()
	res.Config.RecordBytes = float64(bytes) / float64(o.events)

	if o.mirror {
		if err := o.settle(benchCollect); err != nil {
			return benchResult{}, err
		}
		progress("mirror: copying %d records to %d topics", o.events, len(mirrorTopics))
		m, err := runMirror(ctx, brokers, sources, mirrorTopics, fmt.Sprintf("dgw-bench-mirror-%d", time.Now().UnixNano()), int64(o.events))
		if err != nil {
			return benchResult{}, fmt.Errorf("mirror: %w", err)
		}
		res.Mirror = &m
	}

	progress("gateway: draining %d events for %d recipients", o.events, len(recipients))
	gw, warm, lat, err := a.benchGateway(ctx, o, brokers, sources, sourceOf, &run, wl, log, progress)
	if err != nil {
		return benchResult{}, err
	}
	res.Gateway, res.Warm, res.Latency = gw, warm, lat
	if o.stages {
		progress("stages: each in process on %d events × %d recipients", benchStageEvents, len(p.recipients))
		if res.Stages, err = runStages(ctx, p, policy.Evaluator(o.evaluator), benchStageEvents, benchStageTime); err != nil {
			return benchResult{}, err
		}
	}
	if m := res.Mirror; m != nil && m.SourcePerSec > 0 {
		res.Ratio = &benchRatio{SourceRecords: gw.SourcePerSec / m.SourcePerSec, RecipientRecords: gw.RecipientPerSec / m.RecipientPerSec}
		if warm != nil {
			res.WarmRatio = &benchRatio{SourceRecords: warm.SourcePerSec / m.SourcePerSec, RecipientRecords: warm.RecipientPerSec / m.RecipientPerSec}
		}
	}
	return res, nil
}

// The in-process stages cycle over benchStageEvents events (as the Go
// stage benchmarks do) and run each for about benchStageTime.
const (
	benchStageEvents = 200
	benchStageTime   = 300 * time.Millisecond
)

// benchRuns is what bench prints for --runs over 1.
type benchRuns struct {
	Runs []benchResult `json:"runs"`
	// Summary has the median, min and max of every number of the runs'
	// results, by its JSON path (e.g. "ratio_warm.source_records"), the
	// same in every run (the configuration's figures included).
	Summary map[string]benchStat `json:"summary"`
}

type benchStat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// summarise takes the median, min and max of each number that every run's
// result has: one machine's speed moves between runs, so the medians are
// the figures to report, with their range.
func summarise(runs []benchResult) (map[string]benchStat, error) {
	values := map[string][]float64{}
	for _, r := range runs {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, err
		}
		flattenNumbers("", doc, values)
	}
	out := make(map[string]benchStat, len(values))
	for k, v := range values {
		if len(v) != len(runs) {
			continue // absent from some runs (omitted when zero)
		}
		slices.Sort(v)
		m := v[len(v)/2]
		if len(v)%2 == 0 {
			m = (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
		out[k] = benchStat{Median: m, Min: v[0], Max: v[len(v)-1]}
	}
	return out, nil
}

func flattenNumbers(prefix string, v any, into map[string][]float64) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if prefix != "" {
				k = prefix + "." + k
			}
			flattenNumbers(k, e, into)
		}
	case float64:
		into[prefix] = append(into[prefix], x)
	}
}

// printRuns prints one line per run and the medians of the figures the
// README's table reports.
func printRuns(w io.Writer, runs []benchResult, sum map[string]benchStat) {
	c := &runs[0].Config
	fmt.Fprintf(w, "dgw bench: %d runs of %d events, %d recipients, %d partitions, %d workers × (queue %d + 1), %s\n",
		len(runs), c.Events, c.Recipients, c.Partitions, c.Workers, c.Queue, c.Broker)
	fmt.Fprintf(w, "%4s %10s %10s %10s %8s %10s %10s %9s\n", "run", "mirror/s", "gateway/s", "warm/s", "ratio", "warm ratio", "p99 ms", "RSS MiB")
	for i, r := range runs {
		get := func(p *benchPhase) float64 {
			if p == nil {
				return 0
			}
			return p.SourcePerSec
		}
		ratio, warmRatio, p99 := 0.0, 0.0, 0.0
		if r.Ratio != nil {
			ratio = r.Ratio.SourceRecords
		}
		if r.WarmRatio != nil {
			warmRatio = r.WarmRatio.SourceRecords
		}
		if r.Latency != nil {
			p99 = r.Latency.AckP99Ms
		}
		fmt.Fprintf(w, "%4d %10.0f %10.0f %10.0f %8.2f %10.2f %10.1f %9.0f\n", i+1, get(r.Mirror), get(&r.Gateway), get(r.Warm),
			ratio, warmRatio, p99, r.Gateway.PeakRSSMiB)
	}
	fmt.Fprintf(w, "\n%-52s %12s %12s %12s\n", "figure, over the runs", "median", "min", "max")
	for _, f := range []struct{ label, key string }{
		{"mirror: source records/s", "mirror.source_records_per_sec"},
		{"gateway: source records/s", "gateway.source_records_per_sec"},
		{"gateway: CPU µs per event", "gateway.cpu_us_per_event"},
		{"gateway, warm cache: source records/s", "gateway_warm.source_records_per_sec"},
		{"gateway, warm cache: CPU µs per event", "gateway_warm.cpu_us_per_event"},
		{"ratio gateway/mirror (source records/s)", "ratio.source_records"},
		{"ratio gateway, warm cache/mirror", "ratio_warm.source_records"},
		{"decision cache hit ratio", "gateway.decision_cache_hit_ratio"},
		{"peak RSS while draining, MiB", "gateway.peak_rss_mib"},
		{"gateway, warm cache: KB allocated per event", "gateway_warm.alloc_kb_per_event"},
		{"latency phase: collections", "latency.gc_cycles"},
		{"stages: decision hit µs per pair", "stages.decide_hit_us"},
		{"stages: decision miss µs per pair", "stages.decide_miss_us"},
		{"stages: redact + encode µs per allowed pair", "stages.redact_encode_us"},
		{"stages: whole path at 10 recipients, CPU µs per event", "stages.pipeline_k10_cpu_us_per_event"},
		{"latency: offered events/s", "latency.offered_events_per_sec"},
		{"latency: ack p50 ms", "latency.ack_p50_ms"},
		{"latency: ack p99 ms", "latency.ack_p99_ms"},
	} {
		if st, ok := sum[f.key]; ok {
			fmt.Fprintf(w, "%-52s %12.4g %12.4g %12.4g\n", f.label, st.Median, st.Min, st.Max)
		}
	}
}

func pickRecipients(all []*gateway.Recipient, spec string) ([]*gateway.Recipient, error) {
	switch {
	case spec == "" || spec == "all":
		return all, nil
	case strings.Trim(spec, "0123456789") == "":
		k, err := strconv.Atoi(spec)
		if err != nil || k < 1 || k > len(all) {
			return nil, fmt.Errorf("--recipients: expected 1..%d, got %s", len(all), spec)
		}
		return all[:k], nil
	}
	var out []*gateway.Recipient
	for _, id := range strings.Split(spec, ",") {
		i := slices.IndexFunc(all, func(r *gateway.Recipient) bool { return r.ID == strings.TrimSpace(id) })
		if i < 0 {
			return nil, fmt.Errorf("--recipients: %q is not in the registry", id)
		}
		out = append(out, all[i])
	}
	return out, nil
}

// benchBroker is the broker a bench run uses.
type benchBroker struct {
	addrs []string
	where string
	stop  func()
	// collect has the embedded broker carry out a collection request
	// (benchCollect, benchHold) and returns once it has; a no-op for an
	// external Kafka. The in-process broker shares the gateway's
	// collector, which it never pauses.
	collect func(request string) error
}

// benchBrokerFor starts the embedded broker, or checks the external one
// and creates the topics there.
func (a *app) benchBrokerFor(ctx context.Context, o benchOptions, topics []string) (*benchBroker, error) {
	if o.broker != "" {
		brokers := strings.Split(o.broker, ",")
		if err := kafka.EnsureTopics(ctx, brokers, o.partitions, 1, topics...); err != nil {
			return nil, fmt.Errorf("create topics: %w", err)
		}
		return &benchBroker{addrs: brokers, where: "external Kafka", stop: func() {}, collect: func(string) error { return nil }}, nil
	}
	if o.embedded == "in-process" {
		b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", Partitions: o.partitions, Topics: topics})
		if err != nil {
			return nil, fmt.Errorf("start embedded broker: %w", err)
		}
		return &benchBroker{addrs: b.Addrs(), where: "embedded broker (in-process)", stop: b.Close,
			collect: func(string) error { runtime.GC(); return nil }}, nil
	}
	cmd, stdin, out, err := a.startBenchChild(context.WithoutCancel(ctx), "--serve-broker", "--partitions", strconv.Itoa(o.partitions),
		"--topics", strings.Join(topics, ","))
	if err != nil {
		return nil, fmt.Errorf("start embedded broker process: %w", err)
	}
	stop := func() {
		stdin.Close() // the child stops when its stdin ends
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	line, err := out.ReadString('\n')
	if err != nil {
		stop()
		return nil, fmt.Errorf("embedded broker process: no address: %w", err)
	}
	collect := func(request string) error {
		if err := askBrokerChild(ctx, stdin, out, request, benchCollectTimeout); err != nil {
			return fmt.Errorf("embedded broker process: %w", err)
		}
		return nil
	}
	return &benchBroker{addrs: strings.Split(strings.TrimSpace(line), ","), where: "embedded broker (child process)",
		stop: stop, collect: collect}, nil
}

// askBrokerChild writes request to the broker child and waits up to
// timeout (or until ctx ends) for its answer, benchCollected. A collection
// takes well under a second; a child that does not answer must not hold
// the run until --timeout.
func askBrokerChild(ctx context.Context, w io.Writer, r *bufio.Reader, request string, timeout time.Duration) error {
	if _, err := io.WriteString(w, request+"\n"); err != nil {
		return err
	}
	type answer struct {
		line string
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		line, err := r.ReadString('\n')
		got <- answer{line, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case a := <-got:
		if a.err != nil || strings.TrimSpace(a.line) != benchCollected {
			return fmt.Errorf("asked to %s, answered %q: %v", request, a.line, a.err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("asked to %s, no answer within %s", request, timeout)
	case <-ctx.Done():
		return fmt.Errorf("asked to %s: %w", request, ctx.Err())
	}
}

// memTotal is the machine's memory in bytes from /proc/meminfo, 0 when
// unknown.
func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	return parseMemTotal(string(b))
}

// parseMemTotal reads MemTotal from the text of /proc/meminfo; 0 when it
// is missing or not in kB.
func parseMemTotal(meminfo string) int64 {
	for line := range strings.Lines(meminfo) {
		rest, ok := strings.CutPrefix(line, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb <= 0 {
			return 0
		}
		return kb * 1024
	}
	return 0
}

// The embedded broker child's protocol on stdin and stdout, after it
// printed its addresses: the parent writes a request, the child carries it
// out and answers benchCollected.
//
// The embedded broker keeps every record in memory and allocates about
// 50 KB per gateway event besides, so its heap doubles within a phase;
// collected then, a 0.5-1 GB heap takes 80-320 ms to mark, and the broker
// answers no fetch until it is done (measured: every stall of the latency
// phase's fetches over 70 ms began and ended with such a collection). That
// is the test broker's pause, not the gateway's latency. So the broker
// collects before each phase (benchCollect), which lets every phase start
// from the same state; the throughput phases then run with its collector
// as it is, a cost of moving the bytes that the mirror pays too, and the
// latency phase with its collector paused (benchHold) until the run ends,
// or until its heap reaches half the machine's memory.
const (
	benchCollect   = "collect"
	benchHold      = "hold"
	benchCollected = "collected"
	// benchCollectTimeout bounds the wait for the child's answer.
	benchCollectTimeout = time.Minute
)

// pauseCollector stops the process's garbage collector until its heap
// reaches half the machine's memory.
func pauseCollector() {
	if mem := memTotal(); mem > 0 {
		debug.SetMemoryLimit(mem / 2)
		debug.SetGCPercent(-1)
		prefault(min(mem/8, 2<<30))
	}
}

// prefault has the runtime take n bytes of memory from the system and
// touch every page of it, then lets it go to the heap's free pages (the
// collection that follows frees it; with the collector paused the
// runtime keeps those pages rather than return them). The paused broker's
// heap grows by some 50 KB per gateway event, and taking each new page
// from the system (a page fault, the kernel zeroing it) was a fifth of its
// CPU in the latency phase, taken from the two CPUs it shares with the
// gateway.
func prefault(n int64) {
	const chunk = 1 << 20
	held := make([][]byte, 0, n/chunk)
	for range n / chunk {
		b := make([]byte, chunk)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1 // fresh memory is not zeroed by the runtime, so touch it
		}
		held = append(held, b)
	}
	runtime.KeepAlive(held)
}

// serveBenchBroker runs the embedded broker until stdin ends, printing its
// addresses first, and collects its garbage whenever the parent asks;
// hold pauses the collector (pauseCollector in the child).
func (a *app) serveBenchBroker(o benchOptions, hold func()) error {
	var topics []string
	if o.topics != "" {
		topics = strings.Split(o.topics, ",")
	}
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", Partitions: o.partitions, Topics: topics})
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintln(a.stdout, strings.Join(b.Addrs(), ","))
	in := bufio.NewScanner(a.stdin)
	for in.Scan() {
		switch in.Text() {
		case benchCollect:
		case benchHold:
			hold()
		default:
			return fmt.Errorf("bench broker: unknown request %q", in.Text())
		}
		runtime.GC()
		fmt.Fprintln(a.stdout, benchCollected)
	}
	return nil
}

func publishBacklog(ctx context.Context, brokers []string, wl *workload, topic func(string) string, n int) (int64, error) {
	sink, err := kafka.NewSink(kafka.SinkConfig{Brokers: brokers, ClientID: "dgw-bench-publisher", BatchSize: 1000})
	if err != nil {
		return 0, err
	}
	defer sink.Close(context.WithoutCancel(ctx))
	var bytes int64
	const chunk = 1000
	ds := make([]gateway.Disclosure, 0, chunk)
	for sent := 0; sent < n; {
		ds = ds[:0]
		for range min(chunk, n-sent) {
			d, err := wl.next(topic)
			if err != nil {
				return 0, err
			}
			bytes += int64(len(d.Value))
			ds = append(ds, d)
		}
		if err := sink.Write(ctx, ds...); err != nil {
			return 0, err
		}
		sent += len(ds)
	}
	return bytes, nil
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS reads the process's peak resident set size (VmHWM) in MiB.
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
				if err == nil {
					return kb / 1024
				}
			}
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}

// resetPeakRSS returns unused heap to the system and resets VmHWM (Linux
// 4.0+), so the next peakRSS covers only what follows.
func resetPeakRSS() {
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// runMirror is the practical limit: a kafka-go consumer group that copies
// every source record unchanged to every target topic, acks=all, with
// batched writes and ordered commits after the writes are acknowledged.
func runMirror(ctx context.Context, brokers, sources, targets []string, group string, n int64) (benchPhase, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: brokers, GroupID: group, GroupTopics: sources, StartOffset: kafkago.FirstOffset,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond, QueueCapacity: 4096,
	})
	defer r.Close()
	w := &kafkago.Writer{
		Addr: kafkago.TCP(brokers...), Balancer: &kafkago.Murmur2Balancer{}, RequiredAcks: kafkago.RequireAll,
		// BatchBytes stays under the broker's default message.max.bytes.
		BatchSize: 4096, BatchBytes: 1_000_000, BatchTimeout: time.Millisecond, MaxAttempts: 5,
	}
	defer w.Close()

	fetched := make(chan kafkago.Message, 8192)
	errc := make(chan error, 8)
	go func() {
		defer close(fetched)
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				if ctx.Err() == nil {
					errc <- fmt.Errorf("fetch: %w", err)
				}
				return
			}
			select {
			case fetched <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	type batch struct {
		msgs []kafkago.Message
		done chan error
	}
	const writers, maxBatch = 4, 512
	toWrite := make(chan *batch, writers)
	toCommit := make(chan *batch, 4*writers)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			var copies []kafkago.Message
			for b := range toWrite {
				copies = copies[:0]
				for _, m := range b.msgs {
					for _, t := range targets {
						copies = append(copies, kafkago.Message{Topic: t, Key: m.Key, Value: m.Value, Headers: m.Headers})
					}
				}
				b.done <- firstWriteError(w.WriteMessages(ctx, copies...))
			}
		})
	}
	var done atomic.Int64
	var first, last time.Time
	var c0, c1 processCounters
	finished := make(chan struct{})
	go func() {
		// Commits in fetch order, each once its writes are acknowledged.
		defer close(finished)
		for b := range toCommit {
			var err error
			select {
			case err = <-b.done:
			case <-ctx.Done():
				return
			}
			if err != nil {
				errc <- fmt.Errorf("write: %w", err)
				return
			}
			lastOf := map[string]kafkago.Message{}
			for _, m := range b.msgs {
				lastOf[m.Topic+"/"+strconv.Itoa(m.Partition)] = m
			}
			commit := make([]kafkago.Message, 0, len(lastOf))
			for _, m := range lastOf {
				commit = append(commit, m)
			}
			if err := r.CommitMessages(ctx, commit...); err != nil {
				errc <- fmt.Errorf("commit: %w", err)
				return
			}
			if done.Add(int64(len(b.msgs))) >= n {
				last, c1 = time.Now(), readCounters()
				return
			}
		}
	}()
	go func() {
		defer close(toWrite)
		defer close(toCommit)
		for m := range fetched {
			if first.IsZero() {
				first, c0 = time.Now(), readCounters()
			}
			b := &batch{msgs: []kafkago.Message{m}, done: make(chan error, 1)}
		fill:
			for len(b.msgs) < maxBatch {
				select {
				case m, ok := <-fetched:
					if !ok {
						break fill
					}
					b.msgs = append(b.msgs, m)
				default:
					break fill
				}
			}
			select {
			case toCommit <- b:
			case <-ctx.Done():
				return
			}
			select {
			case toWrite <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	select {
	case <-finished:
	case err := <-errc:
		cancel()
		wg.Wait()
		return benchPhase{}, err
	case <-ctx.Done():
		return benchPhase{}, fmt.Errorf("%d of %d records copied: %w", done.Load(), n, ctx.Err())
	}
	select {
	case err := <-errc:
		cancel()
		wg.Wait()
		return benchPhase{}, err
	default:
	}
	cancel()
	wg.Wait()
	secs := last.Sub(first).Seconds()
	k := float64(len(targets))
	return benchPhase{
		Seconds: secs, SourcePerSec: float64(n) / secs, RecipientPerSec: float64(n) * k / secs,
		PairsPerSec: float64(n) * k / secs, CPUMicrosPerEv: float64((c1.cpu - c0.cpu).Microseconds()) / float64(n),
		heapFigures: heapOver(c0, c1, float64(n)),
	}, nil
}

// firstWriteError shortens kafka-go's per-record errors to the first.
func firstWriteError(err error) error {
	var we kafkago.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil {
				return fmt.Errorf("%d of %d records failed, first: %w", we.Count(), len(we), e)
			}
		}
	}
	return err
}

// benchObserver counts the gateway's handled events and, in the latency
// phase, how long after its source timestamp each was acknowledged.
type benchObserver struct {
	backlog int64
	events  atomic.Int64
	// stats reads the decision cache's hits and misses; tail holds them
	// when the drain's last fifth starts.
	stats func() (hits, misses int64)
	tail  [2]int64

	delivered, refused, held, dead atomic.Int64

	mu         sync.Mutex
	first      time.Time
	c0         processCounters
	drained    chan struct{}
	last       time.Time
	c1         processCounters
	latencies  []time.Duration
	sourceTime map[string]time.Time // "topic/partition/offset" → source timestamp, latency phase
	// live is set for the latency phase: the source and sink wrappers
	// then time reads and writes.
	live     atomic.Bool
	readAt   map[string]time.Time // "topic/partition/offset" → when Read returned it
	fetches  []time.Duration      // source timestamp → Read
	handles  []time.Duration      // Read → acknowledged
	writes   []time.Duration      // one sink write
	latDone  chan struct{}
	latWant  int64 // events to see in the latency phase; 0 while publishing
	latSeen  int64
	latDeliv int64
}

func (b *benchObserver) Observe(r *gateway.EventResult) {
	now := time.Now()
	n := b.events.Add(1)
	if n <= b.backlog {
		if n == 1 {
			b.mu.Lock()
			b.first, b.c0 = now, readCounters()
			b.mu.Unlock()
		}
		if n == b.backlog-b.backlog/5 && b.stats != nil {
			h, m := b.stats()
			b.mu.Lock()
			b.tail = [2]int64{h, m}
			b.mu.Unlock()
		}
		var d int64
		for i := range r.Recipients {
			switch r.Recipients[i].Outcome {
			case gateway.OutcomeDelivered:
				d++
			case gateway.OutcomeRefused:
				b.refused.Add(1)
			case gateway.OutcomeHeld:
				b.held.Add(1)
			}
		}
		b.delivered.Add(d)
		if r.DeadLetter != "" {
			b.dead.Add(1)
		}
		if n == b.backlog {
			b.mu.Lock()
			b.last, b.c1 = now, readCounters()
			b.mu.Unlock()
			close(b.drained)
		}
		return
	}
	var d int64
	for i := range r.Recipients {
		if r.Recipients[i].Outcome == gateway.OutcomeDelivered {
			d++
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.latencies = append(b.latencies, now.Sub(r.SourceTime))
	key := offsetKey(r.Topic, r.Partition, r.Offset)
	b.sourceTime[key] = r.SourceTime
	if at, ok := b.readAt[key]; ok {
		b.fetches = append(b.fetches, at.Sub(r.SourceTime))
		b.handles = append(b.handles, now.Sub(at))
	}
	b.latSeen++
	b.latDeliv += d
	if b.latWant > 0 && b.latSeen == b.latWant {
		close(b.latDone)
	}
}

func offsetKey(topic string, partition int, offset int64) string {
	return topic + "/" + strconv.Itoa(partition) + "/" + strconv.FormatInt(offset, 10)
}

// timingSource notes when each latency-phase record is read.
type timingSource struct {
	gateway.Source
	obs *benchObserver
}

func (s *timingSource) Read(ctx context.Context) (gateway.Message, gateway.AckFunc, error) {
	m, ack, err := s.Source.Read(ctx)
	if err == nil && s.obs.live.Load() {
		now := time.Now()
		s.obs.mu.Lock()
		s.obs.readAt[offsetKey(m.Topic, m.Partition, m.Offset)] = now
		s.obs.mu.Unlock()
	}
	return m, ack, err
}

// timingSink times the gateway's writes in the latency phase.
type timingSink struct {
	gateway.Sink
	obs *benchObserver
}

func (s *timingSink) Write(ctx context.Context, ds ...gateway.Disclosure) error {
	if !s.obs.live.Load() {
		return s.Sink.Write(ctx, ds...)
	}
	start := time.Now()
	err := s.Sink.Write(ctx, ds...)
	d := time.Since(start)
	s.obs.mu.Lock()
	s.obs.writes = append(s.obs.writes, d)
	s.obs.mu.Unlock()
	return err
}

// latencyTarget sets how many latency-phase events to wait for.
func (b *benchObserver) latencyTarget(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.latWant = n
	if b.latSeen >= n {
		close(b.latDone)
	}
}

// benchGateway drains the backlog with the gateway (dgw run's path); with
// --warm drains it again as a new consumer group with the decision cache
// the first drain filled; then measures the latency at half the rate the
// first drain reached, with the gateway that ran last.
func (a *app) benchGateway(ctx context.Context, o benchOptions, brokers, sources []string, sourceOf func(string) string,
	p *parts, wl *workload, log *slog.Logger, progress func(string, ...any)) (benchPhase, *benchPhase, *benchLatency, error) {
	profile := o.cpuProfile
	if o.warm {
		profile = ""
	}
	gw, obs, stop, err := a.drain(ctx, o, brokers, sources, p, log, profile)
	if err != nil {
		return benchPhase{}, nil, nil, err
	}
	var warm *benchPhase
	if o.warm {
		if err := stop(); err != nil {
			return benchPhase{}, nil, nil, err
		}
		progress("gateway: draining the backlog again with the warm decision cache")
		w, wobs, wstop, err := a.drain(ctx, o, brokers, sources, p, log, o.cpuProfile)
		if err != nil {
			return benchPhase{}, nil, nil, err
		}
		warm, obs, stop = &w, wobs, wstop
	}
	var lat *benchLatency
	if o.latency > 0 {
		rate := max(gw.SourcePerSec/2, 2)
		if o.rate > 0 {
			rate = o.rate
		}
		if err := o.settle(benchHold); err != nil {
			_ = stop()
			return benchPhase{}, nil, nil, err
		}
		progress("latency: %.0f events/s for %s", rate, o.latency)
		lat, err = a.benchLatency(ctx, brokers, p, wl, sourceOf, obs, rate, o.latency, o.trace)
	}
	if serr := stop(); err == nil {
		err = serr
	}
	if err != nil {
		return benchPhase{}, nil, nil, err
	}
	gw.ProcessPeakRSSMB = peakRSS()
	return gw, warm, lat, nil
}

// drain runs the gateway as a new consumer group until it has handled the
// backlog, and returns the measurements and how to stop it.
func (a *app) drain(ctx context.Context, o benchOptions, brokers, sources []string, p *parts, log *slog.Logger,
	cpuProfile string) (benchPhase, *benchObserver, func() error, error) {
	if err := o.settle(benchCollect); err != nil {
		return benchPhase{}, nil, nil, err
	}
	obs := &benchObserver{backlog: int64(o.events), drained: make(chan struct{}), latDone: make(chan struct{}),
		sourceTime: map[string]time.Time{}, readAt: map[string]time.Time{}, stats: p.decider.Stats}
	h0, m0 := p.decider.Stats()
	resetPeakRSS()
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return benchPhase{}, nil, nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return benchPhase{}, nil, nil, err
		}
		defer pprof.StopCPUProfile()
	}
	// dgw run's sink, wrapped to time the latency phase's writes.
	sink, err := kafka.NewSink(kafka.SinkConfig{Brokers: brokers, ClientID: "dgw-bench"})
	if err != nil {
		return benchPhase{}, nil, nil, err
	}
	gctx, cancel := context.WithCancel(ctx)
	gwErr := make(chan error, 1)
	group := fmt.Sprintf("dgw-bench-gateway-%d", time.Now().UnixNano())
	go func() {
		// The client id names the audit chains: each drain writes its own.
		gwErr <- runGateway(gctx, gatewayOptions{brokers: brokers, clientID: group, group: group, topics: sources, acct: o.acct,
			deadLetter: "dgw.deadletter", held: "dgw.held", workers: o.workers, queue: o.queue, parts: p, log: log,
			observers: []gateway.Observer{obs}, sink: &timingSink{sink, obs},
			wrapSource: func(s gateway.Source) gateway.Source { return &timingSource{s, obs} }})
	}()
	stop := func() error {
		cancel()
		return <-gwErr
	}
	select {
	case <-obs.drained:
	case err := <-gwErr:
		cancel()
		return benchPhase{}, nil, nil, fmt.Errorf("gateway stopped after %d of %d events: %v", obs.events.Load(), o.events, err)
	case <-ctx.Done():
		_ = stop()
		return benchPhase{}, nil, nil, fmt.Errorf("gateway: %d of %d events: %w", obs.events.Load(), o.events, ctx.Err())
	}
	obs.mu.Lock()
	secs := obs.last.Sub(obs.first).Seconds()
	c0, c1 := obs.c0, obs.c1
	tail := obs.tail
	obs.mu.Unlock()
	h1, m1 := p.decider.Stats()
	n := float64(o.events)
	ph := benchPhase{
		Seconds: secs, SourcePerSec: n / secs, RecipientPerSec: float64(obs.delivered.Load()) / secs,
		PairsPerSec: n * float64(len(p.recipients)) / secs, CPUMicrosPerEv: float64((c1.cpu - c0.cpu).Microseconds()) / n,
		PeakRSSMiB: peakRSS(), Delivered: obs.delivered.Load(), Refused: obs.refused.Load(), Held: obs.held.Load(),
		DeadLettered: obs.dead.Load(), CacheMisses: m1 - m0, heapFigures: heapOver(c0, c1, n),
	}
	if h, m := h1-h0, m1-m0; h+m > 0 {
		ph.CacheHitRatio = float64(h) / float64(h+m)
	}
	if h, m := h1-tail[0], m1-tail[1]; h+m > 0 && tail != [2]int64{} {
		ph.CacheHitRatioTail = float64(h) / float64(h+m)
	}
	if o.memProfile != "" {
		f, err := os.Create(o.memProfile)
		if err != nil {
			_ = stop()
			return benchPhase{}, nil, nil, err
		}
		runtime.GC()
		err = pprof.WriteHeapProfile(f)
		f.Close()
		if err != nil {
			_ = stop()
			return benchPhase{}, nil, nil, err
		}
	}
	return ph, obs, stop, nil
}

// benchLatency has a publisher process publish at rate for d, waits until
// the gateway handled every event (tracing this process meanwhile when
// tracePath is set), and reads the recipient records back.
func (a *app) benchLatency(ctx context.Context, brokers []string, p *parts, wl *workload, sourceOf func(string) string,
	obs *benchObserver, rate float64, d time.Duration, tracePath string) (*benchLatency, error) {
	pub, err := a.benchPublisherFor(ctx, brokers, wl, sourceOf, rate, d)
	if err != nil {
		return nil, fmt.Errorf("latency phase at %.0f events/s for %s: %w", rate, d, err)
	}
	stopTrace := func() error { return nil }
	if tracePath != "" {
		if stopTrace, err = startTrace(tracePath); err != nil {
			pub.kill()
			return nil, err
		}
	}
	defer stopTrace()
	runtime.GC()
	c0 := readCounters()
	obs.live.Store(true)
	start := time.Now()
	sent, took, err := pub.run()
	if err != nil {
		return nil, fmt.Errorf("latency phase: %w", err)
	}
	offered := float64(sent) / took.Seconds()
	obs.latencyTarget(sent)
	select {
	case <-obs.latDone:
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("latency phase: the gateway handled %d of %d events within a minute", obs.latSeen, sent)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := stopTrace(); err != nil {
		return nil, err
	}
	c1 := readCounters()
	obs.mu.Lock()
	lats := slices.Clone(obs.latencies)
	srcTimes := obs.sourceTime
	wantRecords := obs.latDeliv
	fetches, handles, writes := slices.Clone(obs.fetches), slices.Clone(obs.handles), slices.Clone(obs.writes)
	obs.mu.Unlock()
	for _, l := range [][]time.Duration{lats, fetches, handles, writes} {
		slices.Sort(l)
	}
	out := &benchLatency{OfferedPerSec: offered, Seconds: d.Seconds(), Events: int64(len(lats)),
		AckP50Ms: ms(quantile(lats, 0.50)), AckP99Ms: ms(quantile(lats, 0.99)), AckMaxMs: ms(quantile(lats, 1)),
		FetchP50Ms: ms(quantile(fetches, 0.5)), FetchP99Ms: ms(quantile(fetches, 0.99)),
		HandleP50Ms: ms(quantile(handles, 0.5)), HandleP99Ms: ms(quantile(handles, 0.99)),
		WriteP50Ms: ms(quantile(writes, 0.5)), WriteP99Ms: ms(quantile(writes, 0.99)),
		heapFigures: heapOver(c0, c1, float64(len(lats)))}

	read, err := readBack(ctx, brokers, recipientTopics(p.recipients), start.Add(-time.Second), srcTimes, wantRecords)
	if err != nil {
		return nil, err
	}
	slices.Sort(read)
	out.ReadExpected, out.ReadRecords = wantRecords, len(read)
	out.ReadP50Ms, out.ReadP99Ms, out.ReadMaxMs = ms(quantile(read, 0.5)), ms(quantile(read, 0.99)), ms(quantile(read, 1))
	return out, nil
}

// startTrace writes an execution trace of this process to path until the
// returned function is called (once or more; the first call ends it).
func startTrace(path string) (func() error, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--trace: %w", err)
	}
	if err := trace.Start(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--trace: %w", err)
	}
	var once sync.Once
	var cerr error
	return func() error {
		once.Do(func() {
			trace.Stop()
			if cerr = f.Close(); cerr != nil {
				cerr = fmt.Errorf("--trace: %w", cerr)
			}
		})
		return cerr
	}, nil
}

// benchPublisherFor generates and encodes the latency phase's records into
// a file for a publisher process (see bench_publish.go) and starts it. The
// records are generated before the phase: the generic encoder makes ~60 KB
// of garbage per record and costs CPU, which is the producers' in
// production. The child holds them in memory, so a phase whose records
// would take more than a quarter of the machine's memory fails at once.
func (a *app) benchPublisherFor(ctx context.Context, brokers []string, wl *workload, sourceOf func(string) string,
	rate float64, d time.Duration) (*benchPublisher, error) {
	f, err := os.CreateTemp("", "dgw-bench-latency-*.records")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	err = pregenerate(f, wl, sourceOf, int64(math.Ceil(rate*d.Seconds())), memTotal()/4)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return a.startBenchPublisher(ctx, brokers, f.Name(), rate, d)
}

// pregenerate writes the next n records of wl to w; budget bounds their
// bytes (0: no bound).
func pregenerate(w io.Writer, wl *workload, sourceOf func(string) string, n, budget int64) error {
	bw := &benchRecordWriter{w: bufio.NewWriter(w)}
	var bytes int64
	for range n {
		r, err := wl.next(sourceOf)
		if err != nil {
			return err
		}
		bytes += int64(len(r.Key) + len(r.Value))
		if budget > 0 && bytes > budget {
			return fmt.Errorf("its %d records would need more than %d MiB, a quarter of this machine's memory: shorten --latency or lower --latency-rate",
				n, budget>>20)
		}
		if err := bw.write(r); err != nil {
			return err
		}
	}
	return bw.w.Flush()
}

// readBack reads the recipient records written since `since` and returns,
// for each that came from a latency-phase source record, its timestamp
// minus the source record's (millisecond resolution: Kafka's).
func readBack(ctx context.Context, brokers, topics []string, since time.Time, srcTimes map[string]time.Time, want int64) ([]time.Duration, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(since.UnixMilli())))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []time.Duration
	deadline := time.Now().Add(30 * time.Second)
	for int64(len(out)) < want && time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		fs.EachRecord(func(r *kgo.Record) {
			var topic, part, off string
			for _, h := range r.Headers {
				switch h.Key {
				case gateway.HeaderSourceTopic:
					topic = string(h.Value)
				case gateway.HeaderSourcePartition:
					part = string(h.Value)
				case gateway.HeaderSourceOffset:
					off = string(h.Value)
				}
			}
			if st, ok := srcTimes[topic+"/"+part+"/"+off]; ok {
				out = append(out, r.Timestamp.Sub(st))
			}
		})
	}
	return out, nil
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)-1) + 0.5)
	return sorted[min(i, len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func printBench(w io.Writer, r *benchResult) {
	c := &r.Config
	fmt.Fprintf(w, "dgw bench: %d events (mean %.0f B), %d recipients, %d partitions, %d workers × (queue %d + 1), %s\n",
		c.Events, c.RecordBytes, c.Recipients, c.Partitions, c.Workers, c.Queue, c.Broker)
	audited := "with the audit trail"
	if !c.Audit {
		audited = "without the audit trail"
	}
	fmt.Fprintf(w, "gateway %s\n", audited)
	fmt.Fprintf(w, "machine: %d CPUs, %s, %s, %s; policy revision %s, decision misses evaluated by the %s\n\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.GoVersion, r.Machine.OS, c.PolicyRev, c.Evaluator)
	fmt.Fprintf(w, "%-26s %14s %18s %14s\n", "", "source rec/s", "recipient rec/s", "CPU µs/event")
	if m := r.Mirror; m != nil {
		fmt.Fprintf(w, "%-26s %14.0f %18.0f %14.1f\n", "mirror (kafka-go copy)", m.SourcePerSec, m.RecipientPerSec, m.CPUMicrosPerEv)
	}
	g := &r.Gateway
	fmt.Fprintf(w, "%-26s %14.0f %18.0f %14.1f\n", "gateway (full path)", g.SourcePerSec, g.RecipientPerSec, g.CPUMicrosPerEv)
	if wm := r.Warm; wm != nil {
		fmt.Fprintf(w, "%-26s %14.0f %18.0f %14.1f\n", "gateway, warm cache", wm.SourcePerSec, wm.RecipientPerSec, wm.CPUMicrosPerEv)
	}
	fmt.Fprintf(w, "(each gateway source record is decided for %d recipients: %.0f (event, recipient) pairs/s)\n",
		c.Recipients, g.PairsPerSec)
	if r.Ratio != nil {
		fmt.Fprintf(w, "\nratio gateway/mirror: %.2f (source records/s, i.e. pairs/s), %.2f (recipient records written/s)\n",
			r.Ratio.SourceRecords, r.Ratio.RecipientRecords)
	}
	if r.WarmRatio != nil {
		fmt.Fprintf(w, "ratio gateway (warm cache)/mirror: %.2f (source records/s), %.2f (recipient records written/s)\n",
			r.WarmRatio.SourceRecords, r.WarmRatio.RecipientRecords)
	}
	fmt.Fprintf(w, "gateway: delivered %d, refused %d, held %d, dead-lettered %d; decision cache (%d entries) %.2f%% hits (%d misses), %.2f%% over the last fifth of the drain\n",
		g.Delivered, g.Refused, g.Held, g.DeadLettered, c.DecisionSize, 100*g.CacheHitRatio, g.CacheMisses, 100*g.CacheHitRatioTail)
	if wm := r.Warm; wm != nil {
		fmt.Fprintf(w, "gateway, warm cache: decision cache %.2f%% hits (%d misses)\n", 100*wm.CacheHitRatio, wm.CacheMisses)
	}
	fmt.Fprintf(w, "peak RSS while draining: %.0f MiB\n", g.PeakRSSMiB)
	heap := func(name string, h heapFigures) {
		fmt.Fprintf(w, "  %-24s %4d collections, %6.1f KB and %5.0f allocations per event\n", name, h.GCCycles, h.AllocKBPerEvent, h.AllocsPerEvent)
	}
	fmt.Fprintf(w, "the process's collector:\n")
	if m := r.Mirror; m != nil {
		heap("mirror", m.heapFigures)
	}
	heap("gateway", g.heapFigures)
	if wm := r.Warm; wm != nil {
		heap("gateway, warm cache", wm.heapFigures)
	}
	if l := r.Latency; l != nil {
		heap("latency phase", l.heapFigures)
	}
	if st := r.Stages; st != nil {
		fmt.Fprintf(w, "in process, no broker (%d events × %d recipients): decode + context %.1f µs per event; decision hit %.2f µs, miss %.0f µs per pair; redact + encode %.2f µs per allowed pair; the whole path with the audit trail at 10 recipients %.1f µs CPU per event\n",
			st.Events, st.Recipients, st.DecodeMicros, st.DecideHitMicros, st.DecideMissMicros, st.RedactEncodeMicros, st.PipelineK10CPUMicros)
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "latency at %.0f events/s for %.0fs, %d events:\n", l.OfferedPerSec, l.Seconds, l.Events)
		fmt.Fprintf(w, "  source timestamp → all recipient records acknowledged: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", l.AckP50Ms, l.AckP99Ms, l.AckMaxMs)
		fmt.Fprintf(w, "  of which source timestamp → read by the gateway: p50 %.1f ms, p99 %.1f ms; read → acknowledged: p50 %.1f ms, p99 %.1f ms\n",
			l.FetchP50Ms, l.FetchP99Ms, l.HandleP50Ms, l.HandleP99Ms)
		fmt.Fprintf(w, "  one sink write (deliveries, audit or parked records): p50 %.1f ms, p99 %.1f ms\n", l.WriteP50Ms, l.WriteP99Ms)
		fmt.Fprintf(w, "  source timestamp → recipient record timestamp, read back (%d records): p50 %.0f ms, p99 %.0f ms, max %.0f ms\n",
			l.ReadRecords, l.ReadP50Ms, l.ReadP99Ms, l.ReadMaxMs)
	}
}
