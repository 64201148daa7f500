package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dgwproject/dgw/adapters/broker"
	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/policy"
	"github.com/dgwproject/dgw/gateway/redact"
	"github.com/dgwproject/dgw/policies"
)

// The stage benchmarks run the real parts (Avro codec, OPA policy,
// redactor) on the workload `dgw bench` publishes: synthetic events grown
// to 1-3 KB. Per-(event, recipient) stages cycle over every pair of a set
// of events and every registry recipient.

var benchFixtures sync.Map // event count → *stageFixture

func fixture(b *testing.B, n int) *stageFixture {
	b.Helper()
	if f, ok := benchFixtures.Load(n); ok {
		return f.(*stageFixture)
	}
	p, err := buildParts(context.Background(), "", "", redact.DevKeyring("bench"), 1<<20, discardLogger())
	require.NoError(b, err)
	f, err := newStageFixture(p, n)
	require.NoError(b, err)
	benchFixtures.Store(n, f)
	return f
}

func TestBenchWorkloadSizes(t *testing.T) {
	p, err := buildParts(t.Context(), "", "", redact.DevKeyring("bench"), 1<<20, discardLogger())
	require.NoError(t, err)
	wl := newWorkload(p.set, 1, true)
	var total, big int
	const n = 300
	for range n {
		d, err := wl.next(sourceTopic)
		require.NoError(t, err)
		_, err = p.decoder.Decode(gateway.Message{Topic: d.Topic, Value: d.Value})
		require.NoError(t, err, "a grown event still decodes")
		require.LessOrEqual(t, len(d.Value), benchMaxBytes+1024, "grown records stay near the range")
		total += len(d.Value)
		if len(d.Value) >= benchMinBytes {
			big++
		}
	}
	require.Greater(t, total/n, 1200, "the workload's mean record is over 1.2 KB")
	require.Greater(t, big, n/2, "most records are 1 KB or more")

	// Growing keeps the decision context: the policy sees the event as
	// generated.
	plain, grown := newWorkload(p.set, 7, false), newWorkload(p.set, 7, true)
	for range 100 {
		a, err := plain.next(sourceTopic)
		require.NoError(t, err)
		b, err := grown.next(sourceTopic)
		require.NoError(t, err)
		ea, err := p.decoder.Decode(gateway.Message{Value: a.Value})
		require.NoError(t, err)
		eb, err := p.decoder.Decode(gateway.Message{Value: b.Value})
		require.NoError(t, err)
		require.Equal(t, ea.Context, eb.Context)
		require.Equal(t, ea.ID, eb.ID)
	}
}

// TestPregenerate: the latency phase's records are the workload's next
// ones, generated before the phase; a phase too long for the memory budget
// fails at once, saying what to change.
func TestPregenerate(t *testing.T) {
	p, err := buildParts(t.Context(), "", "", redact.DevKeyring("bench"), 1<<20, discardLogger())
	require.NoError(t, err)
	want := newWorkload(p.set, 3, true)
	for range 5 { // the backlog
		_, err := want.next(sourceTopic)
		require.NoError(t, err)
	}
	wl := newWorkload(p.set, 3, true)
	for range 5 {
		_, err := wl.next(sourceTopic)
		require.NoError(t, err)
	}
	var file bytes.Buffer
	require.NoError(t, pregenerate(&file, wl, sourceTopic, 40, 0))
	recs, err := readBenchRecords(&file)
	require.NoError(t, err, "the publisher reads what the parent wrote")
	require.Len(t, recs, 40)
	for i, r := range recs {
		w, err := want.next(sourceTopic)
		require.NoError(t, err)
		assert.Equal(t, w, r, "record %d continues the stream after the backlog", i)
	}

	err = pregenerate(io.Discard, newWorkload(p.set, 3, true), sourceTopic, 1000, 1<<20)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "its 1000 records would need more than 1 MiB")
	assert.Contains(t, err.Error(), "shorten --latency or lower --latency-rate")
}

func BenchmarkStage(b *testing.B) {
	f := fixture(b, 200)
	p := f.parts
	rs := p.recipients
	ctx := context.Background()
	b.Run("decode", func(b *testing.B) {
		var bytes int
		for _, m := range f.msgs {
			bytes += len(m.Value)
		}
		b.SetBytes(int64(bytes / len(f.msgs)))
		loopOp(b, ctx, f.decodeOp())
	})
	b.Run("context", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		cpu := cpuClock(b)
		for b.Loop() {
			ev := f.events[i%len(f.events)]
			s, _ := p.set.ByFingerprint(ev.Schema.Fingerprint)
			if _, err := codec.Context(s, f.values[i%len(f.values)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		cpu()
	})
	b.Run("context-key", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		cpu := cpuClock(b)
		for b.Loop() {
			_ = f.events[i%len(f.events)].Context.Key()
			i++
		}
		cpu()
	})
	b.Run("decide-hit", func(b *testing.B) {
		op, err := f.hitOp(ctx, p.decider, rs)
		require.NoError(b, err)
		h0, m0 := p.decider.Stats()
		loopOp(b, ctx, op)
		h1, m1 := p.decider.Stats()
		b.ReportMetric(100*float64(h1-h0)/float64(h1-h0+m1-m0), "%hits")
	})
	b.Run("decide-miss", func(b *testing.B) {
		// The production miss: a one-entry cache that the next recipient's
		// lookup never finds, the event's facts evaluated once for its
		// recipients (a facts cache miss too, as for a new event).
		d := decideEach(b, ctx, f, rs, 1)
		if hits, _ := d.Stats(); hits != 0 {
			b.Fatalf("decide-miss: %d lookups hit", hits)
		}
		require.Equal(b, policy.EvaluatorPlan, d.Evaluator())
	})
	b.Run("decide-miss-interpreter", func(b *testing.B) {
		// decide-miss with OPA's interpreter instead of the policy's plan
		// (policy_evaluator: interpreter).
		f.evaluator = policy.EvaluatorInterpreter
		defer func() { f.evaluator = "" }()
		d := decideEach(b, ctx, f, rs, 1)
		require.Equal(b, policy.EvaluatorInterpreter, d.Evaluator())
	})
	b.Run("decide-uncached", func(b *testing.B) {
		// Without a cache: the whole policy, facts included, per pair.
		decideEach(b, ctx, f, rs, 0)
	})
	b.Run("redact-encode", func(b *testing.B) {
		// Every allowed (event, recipient) pair with its decision.
		op, err := f.redactOp(ctx, rs)
		require.NoError(b, err)
		loopOp(b, ctx, op)
	})
	b.Run("encode-source", func(b *testing.B) {
		buf := make([]byte, 0, 4096)
		b.ReportAllocs()
		i := 0
		cpu := cpuClock(b)
		for b.Loop() {
			ev := f.events[i%len(f.events)]
			s, _ := p.set.ByFingerprint(ev.Schema.Fingerprint)
			var err error
			if buf, err = codec.AppendEncode(buf[:0], s, f.values[i%len(f.values)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		cpu()
	})
}

// cpuClock starts measuring process CPU time; the func it returns reports
// it per op. Unlike ns/op it does not count waiting for a CPU, which on a
// shared machine is most of the noise.
func cpuClock(b *testing.B) func() {
	c0 := cpuTime()
	return func() {
		b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkPipeline is the whole in-process path per source event: decode,
// context, decide for every recipient, redact and encode, build the
// records, write them to a sink that acknowledges at once, ack. "warm"
// cycles 200 events whose decisions are cached, "warm-audit" the same with
// dgw run's audit trail written before the deliveries (its records count
// in records/event); "stream" starts with an
// empty cache of the production size and takes the first b.N events of the
// generated stream (up to 5,000; -benchtime=5000x for all of them), so its
// hit ratio is that of a fresh gateway on that stream. "warm-audit-k10" is
// warm-audit with the registry's first 10 recipients, the K of the CPU
// target (40 µs per event); the others consider all 16.
func BenchmarkPipeline(b *testing.B) {
	for _, bc := range []struct {
		name       string
		events     int
		recipients int // 0: all
	}{{"warm", 200, 0}, {"warm-audit", 200, 0}, {"warm-audit-k10", 200, 10}, {"stream", 5000, 0}} {
		b.Run(bc.name, func(b *testing.B) {
			f := fixture(b, bc.events)
			p := f.parts
			if bc.recipients > 0 {
				fewer := *p
				fewer.recipients = p.recipients[:bc.recipients]
				p = &fewer
			}
			if bc.name == "stream" {
				d, err := policy.NewLive(context.Background(), policies.FS, policy.WithCatalogue(p.set.Catalogue()))
				require.NoError(b, err)
				fresh := *p
				fresh.decider = d
				p = &fresh
			}
			var opts []gateway.Option
			if strings.HasPrefix(bc.name, "warm-audit") {
				// dgw run's audit trail: one sealed entry per event,
				// written before the deliveries.
				aud, err := benchAuditor()
				require.NoError(b, err)
				opts = append(opts, gateway.WithAuditor(aud))
			}
			if bc.name != "stream" {
				require.NoError(b, f.warm(context.Background(), p.decider, p.recipients))
			}
			pl, sink, err := f.pipeline(p, p.recipients, b.N, opts...)
			require.NoError(b, err)
			h0, m0 := p.decider.Stats()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			require.NoError(b, pl.Run(context.Background()))
			cpu := cpuTime() - cpu0
			b.StopTimer()
			h1, m1 := p.decider.Stats()
			// Process CPU time, unlike ns/op, does not count waiting for a
			// CPU on a shared machine.
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(p.recipients)), "ns/pair")
			b.ReportMetric(100*float64(h1-h0)/float64(max(1, h1-h0+m1-m0)), "%hits")
			b.ReportMetric(float64(sink.records.Load())/float64(b.N), "records/event")
		})
	}
}

// decideEach decides every (event, recipient) pair of f in turn with a
// fresh decider of cacheSize entries, timing the loop.
func decideEach(b *testing.B, ctx context.Context, f *stageFixture, rs []*gateway.Recipient, cacheSize int) *policy.Decider {
	op, d, err := f.missOp(ctx, rs, cacheSize)
	require.NoError(b, err)
	loopOp(b, ctx, op)
	return d
}

// loopOp runs a stage's operation b.N times, reporting allocations and
// process CPU per op.
func loopOp(b *testing.B, ctx context.Context, op stageOp) {
	b.ReportAllocs()
	i := 0
	cpu := cpuClock(b)
	for b.Loop() {
		if err := op(ctx, i); err != nil {
			b.Fatal(err)
		}
		i++
	}
	cpu()
}

// TestBenchCommand runs `dgw bench` end to end on a small backlog: every
// phase reports, and every (event, recipient) pair of the backlog is
// accounted for exactly once.
func TestBenchCommand(t *testing.T) {
	const events = 120
	out, stderr, code := runCLI(t, nil, "bench", "--events", strconv.Itoa(events), "--latency", "1s", "--warm",
		"--embedded", "in-process", "--partitions", "1", "--recipients", "6", "--json")
	require.Equal(t, 0, code, stderr)
	var r benchResult
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	require.Equal(t, events, r.Config.Events)
	require.Equal(t, 6, r.Config.Recipients)
	require.True(t, r.Config.Audit, "the gateway writes the audit trail by default, as dgw run does")
	require.Equal(t, defaultConfig().Workers, r.Config.Workers, "the gateway runs with dgw run's workers by default")
	require.Equal(t, defaultConfig().Queue, r.Config.Queue, "and with its queue")
	require.Equal(t, "plan", r.Config.Evaluator, "decision misses are evaluated from the policy's plan by default, as dgw run does")
	require.Greater(t, r.Config.RecordBytes, float64(benchMinBytes), "the backlog's records are grown to 1-3 KB")
	require.NotNil(t, r.Mirror)
	require.Greater(t, r.Mirror.SourcePerSec, 0.0)
	require.InDelta(t, 6*r.Mirror.SourcePerSec, r.Mirror.RecipientPerSec, 1e-6*r.Mirror.RecipientPerSec, "the mirror copies each record to every recipient topic")
	for _, g := range []benchPhase{r.Gateway, *r.Warm} {
		require.Greater(t, g.SourcePerSec, 0.0)
		require.Greater(t, g.CPUMicrosPerEv, 0.0)
		require.Greater(t, g.PeakRSSMiB, 0.0)
		require.Equal(t, int64(events*6), g.Delivered+g.Refused+g.Held, "every pair has one outcome")
		require.Positive(t, g.Delivered)
		require.Positive(t, g.AllocKBPerEvent)
		require.Positive(t, g.AllocsPerEvent)
	}
	require.Greater(t, r.Gateway.AllocsPerEvent, r.Warm.AllocsPerEvent, "decision misses allocate: the cold drain more per event than the warm one")
	require.Equal(t, r.Gateway.Delivered, r.Warm.Delivered, "the warm drain decides as the first")
	require.Equal(t, 1.0, r.Warm.CacheHitRatio, "the second drain is answered from the cache")
	require.Equal(t, 1.0, r.Warm.CacheHitRatioTail, "and so is its last fifth")
	require.Positive(t, r.Gateway.CacheHitRatioTail, "the first drain's last fifth is measured")
	require.LessOrEqual(t, r.Gateway.CacheHitRatioTail, 1.0)
	require.NotNil(t, r.Ratio)
	require.InDelta(t, r.Gateway.SourcePerSec/r.Mirror.SourcePerSec, r.Ratio.SourceRecords, 1e-9)
	require.NotNil(t, r.Latency)
	require.Positive(t, r.Latency.Events)
	require.Equal(t, r.Latency.ReadExpected, int64(r.Latency.ReadRecords), "every recipient record of the latency phase is read back")
	require.LessOrEqual(t, r.Latency.AckP50Ms, r.Latency.AckP99Ms)
	require.LessOrEqual(t, r.Latency.ReadP50Ms, r.Latency.ReadP99Ms)
	require.Positive(t, r.Latency.AllocsPerEvent, "the latency phase reports its allocations")

	// The stages, in process on the whole registry.
	st := r.Stages
	require.NotNil(t, st, "the stages run by default")
	require.Equal(t, benchStageEvents, st.Events)
	require.Greater(t, st.Recipients, r.Config.Recipients, "the stages decide for the whole registry")
	for name, v := range map[string]float64{"decode": st.DecodeMicros, "hit": st.DecideHitMicros, "miss": st.DecideMissMicros,
		"redact": st.RedactEncodeMicros, "pipeline": st.PipelineK10CPUMicros} {
		require.Positive(t, v, name)
	}
	require.Less(t, st.DecideHitMicros, st.DecideMissMicros, "a cached decision costs less than an evaluated one")
}

// heapSink keeps TestHeapOver's allocation from being optimised away.
var heapSink []byte

// TestHeapOver: a phase's collector figures are the differences of the
// process's counters, per event.
func TestHeapOver(t *testing.T) {
	a := processCounters{gcs: 3, bytes: 1 << 20, objects: 1000}
	b := processCounters{gcs: 7, bytes: 3 << 20, objects: 5000}
	assert.Equal(t, heapFigures{GCCycles: 4, AllocKBPerEvent: 2048.0 / 100, AllocsPerEvent: 40}, heapOver(a, b, 100))
	assert.Equal(t, heapFigures{}, heapOver(a, b, 0), "no events, no figures")
	c := readCounters()
	heapSink = make([]byte, 1<<20)
	d := readCounters()
	assert.GreaterOrEqual(t, d.bytes-c.bytes, uint64(1<<20), "the process's allocations are counted")
	assert.Positive(t, d.objects-c.objects)
}

// TestBenchRuns: --runs makes independent runs (each decides from an empty
// cache) and summarises every figure as median, min and max; bad
// combinations are refused before anything runs.
func TestBenchRuns(t *testing.T) {
	out, stderr, code := runCLI(t, nil, "bench", "--runs", "2", "--events", "60", "--latency", "0", "--warm=false", "--stages=false",
		"--embedded", "in-process", "--partitions", "1", "--recipients", "4", "--json")
	require.Equal(t, 0, code, stderr)
	var rs benchRuns
	require.NoError(t, json.Unmarshal([]byte(out), &rs), out)
	require.Len(t, rs.Runs, 2)
	for i, r := range rs.Runs {
		assert.Positive(t, r.Gateway.CacheMisses, "run %d decides from an empty cache", i+1)
		assert.Equal(t, rs.Runs[0].Gateway.Delivered, r.Gateway.Delivered, "every run drains the same events")
	}
	got := rs.Summary["gateway.source_records_per_sec"]
	a, b := rs.Runs[0].Gateway.SourcePerSec, rs.Runs[1].Gateway.SourcePerSec
	assert.InDelta(t, (a+b)/2, got.Median, 1e-6*got.Median)
	assert.Equal(t, min(a, b), got.Min)
	assert.Equal(t, max(a, b), got.Max)
	assert.Equal(t, benchStat{Median: 60, Min: 60, Max: 60}, rs.Summary["config.events"])

	text, stderr, code := runCLI(t, nil, "bench", "--runs", "2", "--events", "30", "--latency", "0", "--warm=false", "--mirror=false", "--stages=false",
		"--embedded", "in-process", "--partitions", "1", "--recipients", "2")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, text, "dgw bench: 2 runs of 30 events")
	assert.Contains(t, text, "gateway: source records/s")
	assert.Contains(t, stderr, "run 2 of 2: publishing 30 events")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--runs", "0"}, "--runs: expected 1 or more, got 0"},
		{[]string{"--runs", "3", "--cpuprofile", filepath.Join(t.TempDir(), "cpu.out")}, "--cpuprofile, --memprofile and --trace profile one run: drop them or --runs"},
	} {
		_, stderr, code := runCLI(t, nil, append([]string{"bench"}, c.args...)...)
		assert.Equal(t, 2, code, c.args)
		assert.Contains(t, stderr, c.want)
	}
}

// TestBenchExternalBroker: with --broker, bench measures against a Kafka it
// did not start (here a broker process of the test's own): each run makes
// its own source topics there, so no run drains another's backlog, and the
// phases complete as they do on the embedded broker.
func TestBenchExternalBroker(t *testing.T) {
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", Partitions: 1})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	addr := strings.Join(b.Addrs(), ",")
	const events, k = 40, 3
	out, stderr, code := runCLI(t, nil, "bench", "--broker", addr, "--runs", "2", "--events", strconv.Itoa(events), "--stages=false",
		"--recipients", strconv.Itoa(k), "--partitions", "1", "--latency", "1s", "--json")
	require.Equal(t, 0, code, stderr)
	var rs benchRuns
	require.NoError(t, json.Unmarshal([]byte(out), &rs), out)
	require.Len(t, rs.Runs, 2)
	for i, r := range rs.Runs {
		assert.Equal(t, "external Kafka", r.Config.Broker)
		assert.Equal(t, int64(events*k), r.Gateway.Delivered+r.Gateway.Refused+r.Gateway.Held, "run %d: every pair of its backlog has one outcome", i+1)
		require.NotNil(t, r.Latency)
		assert.Equal(t, r.Latency.ReadExpected, int64(r.Latency.ReadRecords), "run %d: its latency phase's records are read back", i+1)
	}
	assert.Equal(t, rs.Runs[0].Gateway.Delivered, rs.Runs[1].Gateway.Delivered, "the same events, decided alike")

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
	require.NoError(t, err)
	defer cl.Close()
	topics, err := kadm.NewClient(cl).ListTopics(t.Context())
	require.NoError(t, err)
	prefixes := map[string]bool{}
	for _, name := range topics.Names() {
		if rest, ok := strings.CutPrefix(name, "dgw.bench."); ok && strings.HasSuffix(name, ".pax.booking") {
			prefixes[strings.TrimSuffix(rest, ".pax.booking")] = true
		}
	}
	assert.Len(t, prefixes, 2, "each run published its backlog to source topics of its own: %v", topics.Names())
}

func TestSummarise(t *testing.T) {
	run := func(gw, warm float64) benchResult {
		r := benchResult{Gateway: benchPhase{SourcePerSec: gw, Delivered: 5}}
		if warm > 0 {
			r.Warm = &benchPhase{SourcePerSec: warm}
		}
		return r
	}
	sum, err := summarise([]benchResult{run(30, 1), run(10, 0), run(20, 3)})
	require.NoError(t, err)
	assert.Equal(t, benchStat{Median: 20, Min: 10, Max: 30}, sum["gateway.source_records_per_sec"])
	assert.Equal(t, benchStat{Median: 5, Min: 5, Max: 5}, sum["gateway.delivered"])
	_, ok := sum["gateway_warm.source_records_per_sec"]
	assert.False(t, ok, "a figure missing from a run has no summary")
	sum, err = summarise([]benchResult{run(10, 0), run(40, 0)})
	require.NoError(t, err)
	assert.Equal(t, benchStat{Median: 25, Min: 10, Max: 40}, sum["gateway.source_records_per_sec"], "an even count takes the mean of the middle two")
}

func TestPickRecipients(t *testing.T) {
	all := []*gateway.Recipient{{ID: "a"}, {ID: "b"}, {ID: "c"}}
	for _, c := range []struct {
		spec string
		want []string
		err  bool
	}{
		{"all", []string{"a", "b", "c"}, false},
		{"", []string{"a", "b", "c"}, false},
		{"2", []string{"a", "b"}, false},
		{"c,a", []string{"c", "a"}, false},
		{"0", nil, true},
		{"4", nil, true},
		{"a,x", nil, true},
	} {
		got, err := pickRecipients(all, c.spec)
		if c.err {
			require.Error(t, err, c.spec)
			continue
		}
		require.NoError(t, err, c.spec)
		var ids []string
		for _, r := range got {
			ids = append(ids, r.ID)
		}
		require.Equal(t, c.want, ids, c.spec)
	}
}

func TestQuantile(t *testing.T) {
	ds := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	require.Equal(t, time.Duration(1), quantile(ds, 0))
	require.Equal(t, time.Duration(6), quantile(ds, 0.5))
	require.Equal(t, time.Duration(10), quantile(ds, 0.99))
	require.Equal(t, time.Duration(10), quantile(ds, 1))
	require.Zero(t, quantile(nil, 0.5))
}

// TestServeBenchBroker drives the embedded broker child's protocol: its
// addresses first, then one answer per collection asked for (and with
// the collector paused); an unknown request is an error; the end of its
// input stops it.
func TestServeBenchBroker(t *testing.T) {
	for _, c := range []struct {
		name    string
		input   []string
		wantErr string
	}{
		{"collections", []string{benchCollect, benchHold, benchCollect}, ""},
		{"unknown request", []string{benchCollect, "compact"}, `unknown request "compact"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			inR, inW := io.Pipe()
			outR, outW := net.Pipe() // with a deadline, so that a missing answer fails
			require.NoError(t, outR.SetReadDeadline(time.Now().Add(time.Minute)))
			a := &app{stdin: inR, stdout: outW, stderr: io.Discard, environ: []string{}}
			done := make(chan error, 1)
			var held atomic.Int32
			go func() {
				err := a.serveBenchBroker(benchOptions{partitions: 1, topics: "dgw.bench.t"}, func() { held.Add(1) })
				outW.Close()
				done <- err
			}()
			out := bufio.NewReader(outR)
			addrs, err := out.ReadString('\n')
			require.NoError(t, err)
			require.NotEmpty(t, strings.TrimSpace(addrs), "the broker's addresses come first")
			conn, err := net.Dial("tcp", strings.Split(strings.TrimSpace(addrs), ",")[0])
			require.NoError(t, err, "the broker listens there")
			conn.Close()
			for _, req := range c.input {
				_, err := io.WriteString(inW, req+"\n")
				require.NoError(t, err)
				if req != benchCollect && req != benchHold {
					break
				}
				ack, err := out.ReadString('\n')
				require.NoError(t, err)
				assert.Equal(t, benchCollected+"\n", ack)
			}
			inW.Close()
			err = <-done
			if c.wantErr == "" {
				assert.NoError(t, err, "the end of its input stops the broker")
				assert.Equal(t, int32(1), held.Load(), "the collector is paused when asked, once")
				return
			}
			assert.ErrorContains(t, err, c.wantErr)
		})
	}
}

func TestParseMemTotal(t *testing.T) {
	for _, c := range []struct {
		meminfo string
		want    int64
	}{
		{"MemTotal:       30000000 kB\nMemFree:  100 kB\n", 30000000 << 10},
		{"MemFree:  100 kB\nMemTotal:        3145728 kB\n", 3 << 30},
		{"MemTotal: 12 MB\n", 0},
		{"MemTotal: lots kB\n", 0},
		{"MemFree: 100 kB\n", 0},
		{"", 0},
	} {
		assert.Equal(t, c.want, parseMemTotal(c.meminfo), "%q", c.meminfo)
	}
}

// askBrokerChild: the child's answer ends the wait; a wrong answer, an
// ended output or none within the timeout is an error.
func TestAskBrokerChild(t *testing.T) {
	for _, c := range []struct {
		name    string
		answer  string // written by the child; "" writes nothing
		close   bool   // the child's output ends
		wantErr string
	}{
		{"answered", benchCollected + "\n", false, ""},
		{"wrong answer", "compacted\n", false, `answered "compacted\n"`},
		{"output ended", "", true, "EOF"},
		{"no answer", "", false, "no answer within"},
	} {
		t.Run(c.name, func(t *testing.T) {
			childOut, parentIn := io.Pipe()
			var sent bytes.Buffer
			go func() {
				if c.answer != "" {
					_, _ = io.WriteString(parentIn, c.answer)
				}
				if c.close {
					parentIn.Close()
				}
			}()
			t.Cleanup(func() { parentIn.Close() })
			// Only the case without an answer waits for the timeout; the
			// others end as soon as the child's output says.
			timeout := time.Minute
			if c.answer == "" && !c.close {
				timeout = 20 * time.Millisecond
			}
			err := askBrokerChild(t.Context(), &sent, bufio.NewReader(childOut), benchCollect, timeout)
			assert.Equal(t, benchCollect+"\n", sent.String(), "the request is one line")
			if c.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, c.wantErr)
		})
	}
}
