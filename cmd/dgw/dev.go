package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/dgwproject/dgw/adapters/broker"
	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/adapters/telemetry"
	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/audit"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/policy"
	"github.com/dgwproject/dgw/gateway/redact"
	"github.com/dgwproject/dgw/gateway/subjects"
	"github.com/dgwproject/dgw/gateway/synth"
)

type devOptions struct {
	addr         string
	events       int
	rate         int
	seed         int64
	json         bool
	corruptEvery int
	interval     time.Duration
	policyDir    string
	logLevel     string
	workers      int
	trace        bool
	adminAddr    string
	requests     bool
}

func (a *app) devCmd() *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the gateway on an embedded broker with synthetic traffic and a live summary",
		Long: `dev starts an embedded Kafka-protocol broker (no Docker, no Kafka install),
creates the source, recipient, dead-letter and held topics, loads the built-in
schemas and policies, publishes a realistic synthetic stream (with an occasional
corrupt record to show the dead-letter path) and runs the gateway, printing a
per-recipient summary. Any Kafka client can watch the broker meanwhile, e.g.
  kcat -b 127.0.0.1:9092 -C -t dgw.out.kz-border-api -f '%k %h\n'
With --events N it stops once N records are fully processed and prints the
final summary (--json for machines). Hash keys and the audit key are
development keys. Every decision goes to the audit trail dgw.audit.

The synthetic passengers also make subject requests, published to the
compacted subject.requests topic as dgw subject request does: most consent to
cross-border transfer when they book (Law 94-V Art 16 lists no country as
ensuring protection, so every recipient abroad needs that consent), some to
marketing or research; after some trips one withdraws, objects or asks for
erasure. Requests published with dgw subject request apply at once too:
  dgw audit verify --dev-key
  dgw audit subject PASSENGER_ID --dev-key
With --subject-requests=false the stream carries none, and the recipients
abroad receive nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.events < 0 || o.rate < 0 || o.corruptEvery < 0 {
				return failWith(2, errors.New("--events, --rate and --corrupt-every must not be negative"))
			}
			return a.dev(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:9092", "address of the embedded broker")
	f.IntVar(&o.events, "events", 0, "stop after this many records are fully processed (0: run until interrupted)")
	f.IntVar(&o.rate, "rate", 200, "records published per second (0: as fast as possible)")
	f.Int64Var(&o.seed, "seed", 1, "seed of the synthetic stream")
	f.BoolVar(&o.json, "json", false, "print the final summary as JSON")
	f.IntVar(&o.corruptEvery, "corrupt-every", 500, "publish a corrupt record every N records (0: never)")
	f.DurationVar(&o.interval, "interval", 2*time.Second, "how often to print the live summary")
	f.StringVar(&o.policyDir, "policies", "", "policy directory, watched: a change is loaded once it passes its checks (default: the built-in policies)")
	f.StringVar(&o.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	f.IntVar(&o.workers, "workers", gateway.DefaultWorkers, "gateway workers, as dgw run's workers")
	f.BoolVar(&o.trace, "trace", false, "print every span as a JSON line on stdout")
	f.StringVar(&o.adminAddr, "admin-addr", telemetry.DefaultAdminAddr, "address of the admin server (/metrics, /healthz, /readyz); empty for none")
	f.BoolVar(&o.requests, "subject-requests", true, "the synthetic passengers also publish subject requests (consents, withdrawals, objections, erasures)")
	return cmd
}

func (a *app) dev(ctx context.Context, o devOptions) error {
	log, err := newLogger("text", o.logLevel, a.stderr)
	if err != nil {
		return failWith(2, err)
	}
	tcfg := observabilityConfig{adminAddr: o.adminAddr, environ: a.environ, log: log}
	if o.trace {
		tcfg.traces = a.stdout
	}
	obs, err := startObservability(ctx, tcfg)
	if err != nil {
		return failWith(2, fmt.Errorf("telemetry: %w", err))
	}
	defer closeObservability(ctx, obs, log)
	policyLoaded := obs.startupChecks()
	p, err := buildParts(ctx, o.policyDir, "", redact.DevKeyring("dgw-dev"), 1<<20, log)
	if err != nil {
		return err
	}
	policyLoaded.Set(true)
	sources := defaultSourceTopics(p.set)
	const deadLetter, held = "dgw.deadletter", "dgw.held"
	topics := append(append([]string{deadLetter, held}, sources...), recipientTopics(p.recipients)...)
	b, err := broker.Start(broker.Config{Addr: o.addr, Partitions: 3, Topics: topics})
	if err != nil {
		return fmt.Errorf("start embedded broker on %s: %w", o.addr, err)
	}
	defer b.Close()
	brokers := b.Addrs()
	acct, err := newAccountability(p.set, defaultAuditTopic, defaultSubjectTopic, audit.DevKey(devAuditSeed), defaultAuditRetention)
	if err != nil {
		return err
	}
	if err := acct.ensureTopics(ctx, kafka.AdminConfig{Brokers: brokers}, 3, 1); err != nil {
		return fmt.Errorf("create the audit and subject topics: %w", err)
	}
	fmt.Fprintf(a.stderr, "dgw dev: embedded broker on %s; %d source topics, %d recipients, policy revision %s\n",
		brokers[0], len(sources), len(p.recipients), p.decider.Revision())
	fmt.Fprintf(a.stderr, "dgw dev: audit trail on %s (development audit key: dgw audit verify --dev-key), subject requests on %s\n",
		acct.auditTopic, acct.subjectTopic)
	if obs.adminAddr != "" {
		fmt.Fprintf(a.stderr, "dgw dev: metrics on http://%s/metrics, health on /healthz and /readyz\n", obs.adminAddr)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stats := gateway.NewStats()
	var once sync.Once
	done := make(chan struct{})
	observers := []gateway.Observer{stats}
	if o.events > 0 {
		observers = append(observers, gateway.ObserverFunc(func(*gateway.EventResult) {
			if stats.Events() >= int64(o.events) {
				once.Do(func() { close(done) })
			}
		}))
	}
	// The publisher holds a passenger's withdrawals, objections and
	// erasures back until the gateway has handled the passenger's earlier
	// events (see produce).
	track := newUnhandled()
	observers = append(observers, gateway.ObserverFunc(track.handled))
	prodErr := make(chan error, 1)
	var requests atomic.Int64
	go func() {
		prodErr <- a.produce(ctx, brokers, p, o, publishedRequests{acct: acct, count: &requests, track: track})
	}()
	gwErr := make(chan error, 1)
	go func() {
		gwErr <- runGateway(ctx, gatewayOptions{brokers: brokers, clientID: "dgw-dev", group: "dgw-dev", topics: sources,
			deadLetter: deadLetter, held: held, workers: o.workers, queue: gateway.DefaultQueue, parts: p, log: log, observers: observers,
			ready: obs.ready, extra: obs.gatewayOptions(), acct: acct})
	}()

	// With --policies, a changed policy directory is loaded while dev
	// runs, once the new revision passes every check; the loop prints why
	// one was rejected.
	reloads := make(chan policy.Reload, 8)
	if o.policyDir != "" {
		defer followPolicy(ctx, p.decider, []policy.WatchOption{policy.WatchDir(o.policyDir)}, obs.providers.Meter,
			func(r policy.Reload) {
				select {
				case reloads <- r:
				default: // the loop has stopped or is behind: the log has it
				}
			}, log)()
	}
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	var runErr error
	var lastEvents int64
loop:
	for {
		select {
		case r := <-reloads:
			printReload(a.stderr, r)
		case <-tick.C:
			if !o.json {
				s := stats.Snapshot()
				fmt.Fprintf(a.stderr, "%s %s\n", time.Now().Format("15:04:05"), liveLine(s, lastEvents, o.interval))
				lastEvents = s.Events
			}
		case <-done:
			cancel()
			runErr = <-gwErr
			break loop
		case err := <-prodErr:
			if err != nil && ctx.Err() == nil {
				cancel()
				<-gwErr
				return fmt.Errorf("publish synthetic events: %w", err)
			}
			prodErr = nil
		case runErr = <-gwErr:
			break loop
		}
	}
	cancel()
	if o.requests {
		fmt.Fprintf(a.stderr, "dgw dev: %d synthetic subject requests published to %s\n", requests.Load(), acct.subjectTopic)
	}
	sum := summary{PolicyRevision: p.decider.Revision(), PolicyEvaluator: string(p.decider.Evaluator()), StatsSnapshot: stats.Snapshot()}
	if h, m := p.decider.Stats(); h+m > 0 {
		sum.DecisionCache = &cacheStats{Hits: h, Misses: m, Ratio: float64(h) / float64(h+m)}
	}
	if o.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			return err
		}
	} else {
		printSummary(a.stdout, sum)
	}
	return runErr
}

// liveLine is one line of the live summary: throughput and how many
// recipients are receiving.
func liveLine(s gateway.StatsSnapshot, lastEvents int64, interval time.Duration) string {
	var delivered, refused, held, dead int64
	flowing := 0
	for _, r := range s.Recipients {
		delivered += r.Delivered
		refused += r.Refused
		held += r.Held
		if r.Delivered > 0 {
			flowing++
		}
	}
	for _, n := range s.DeadLetter {
		dead += n
	}
	rate := float64(s.Events-lastEvents) / interval.Seconds()
	return fmt.Sprintf("events %d (%.0f/s)  deliveries %d to %d/%d recipients  refused %d  held %d  dead-lettered %d",
		s.Events, rate, delivered, flowing, len(s.Recipients), refused, held, dead)
}

// publishedRequests is what produce needs to publish subject requests.
type publishedRequests struct {
	acct  *accountability
	count *atomic.Int64 // requests published
	track *unhandled
}

// unhandled tracks the published events the gateway has not handled yet,
// by event id and passenger. It holds only the backlog, so a long dev run
// does not grow it.
type unhandled struct {
	mu    sync.Mutex
	pax   map[string]string              // event id → passenger
	byPax map[string]map[string]struct{} // passenger → event ids
	wake  chan struct{}                  // receives after an event was handled
}

func newUnhandled() *unhandled {
	return &unhandled{pax: map[string]string{}, byPax: map[string]map[string]struct{}{}, wake: make(chan struct{}, 1)}
}

// published notes an event before it is written.
func (u *unhandled) published(eventID, passenger string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.pax[eventID] = passenger
	if u.byPax[passenger] == nil {
		u.byPax[passenger] = map[string]struct{}{}
	}
	u.byPax[passenger][eventID] = struct{}{}
}

// handled is the gateway observer: the event is no longer waiting.
func (u *unhandled) handled(r *gateway.EventResult) {
	u.mu.Lock()
	if p, ok := u.pax[r.EventID]; ok {
		delete(u.pax, r.EventID)
		if delete(u.byPax[p], r.EventID); len(u.byPax[p]) == 0 {
			delete(u.byPax, p)
		}
	}
	u.mu.Unlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// waiting returns the passenger's published events not handled yet.
func (u *unhandled) waiting(passenger string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	ids := make([]string, 0, len(u.byPax[passenger]))
	for id := range u.byPax[passenger] {
		ids = append(ids, id)
	}
	return ids
}

// done reports whether none of the events is waiting any more.
func (u *unhandled) done(ids []string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, id := range ids {
		if _, ok := u.pax[id]; ok {
			return false
		}
	}
	return true
}

// produce publishes the synthetic stream, as a booking system would: Avro
// single-object encoding, keyed by passenger id, one topic per event type.
// --events counts events only.
//
// With o.requests the passengers' subject requests go to the subject topic
// through subjectRecords, as `dgw subject request` publishes them. The
// gateway applies a request to the events it handles after reading it, and
// follows the subject topic apart from the event topics, so the order in
// which the two are published is not the order in which they meet:
//   - a consent is published, and acknowledged, before the events of its
//     batch (synth.RequestLead puts it well ahead of its passenger's events
//     in the stream), so the gateway usually has it before those events;
//   - a withdrawal, objection or erasure waits until the gateway has handled
//     the passenger's events published before it: published at once, it
//     would also reach those still waiting in the topics (a backlog, or the
//     rest of its own batch), which a real passenger's later request cannot.
func (a *app) produce(ctx context.Context, brokers []string, p *parts, o devOptions, r publishedRequests) error {
	sink, err := kafka.NewSink(kafka.SinkConfig{Brokers: brokers, ClientID: "dgw-dev-publisher"})
	if err != nil {
		return err
	}
	defer sink.Close(context.WithoutCancel(ctx))
	g := synth.New(synth.Options{Seed: o.seed, SubjectRequests: o.requests})
	const batch = 50
	var ticker *time.Ticker
	if o.rate > 0 {
		every := time.Second * batch / time.Duration(o.rate)
		ticker = time.NewTicker(max(every, time.Millisecond))
		defer ticker.Stop()
	}
	sent := 0
	type held struct {
		passenger string
		after     []string // the passenger's earlier events not handled when it was made
		ds        []gateway.Disclosure
	}
	var later []held // in stream order
	// release publishes the held requests whose passenger's earlier events
	// the gateway has handled; a passenger's requests keep their order.
	release := func() error {
		var ds []gateway.Disclosure
		blocked := map[string]bool{}
		kept := later[:0]
		for _, h := range later {
			if blocked[h.passenger] || !r.track.done(h.after) {
				blocked[h.passenger] = true
				kept = append(kept, h)
				continue
			}
			ds = append(ds, h.ds...)
			r.count.Add(1)
		}
		later = kept
		if len(ds) == 0 {
			return nil
		}
		return sink.Write(ctx, ds...)
	}
	for o.events == 0 || sent < o.events {
		n := batch
		if o.events > 0 {
			n = min(n, o.events-sent)
		}
		ds := make([]gateway.Disclosure, 0, n)
		var reqs []gateway.Disclosure
		for range n {
			ev := g.Next()
			for ev.Type == synth.RequestType {
				req := synthRequest(ev)
				rs, _, err := subjectRecords(r.acct.subjects, r.acct.subjectTopic, req, false)
				if err != nil {
					return fmt.Errorf("synthetic subject request: %w", err)
				}
				if req.Kind == gateway.ConsentGiven {
					reqs = append(reqs, rs...)
					r.count.Add(1)
				} else {
					later = append(later, held{passenger: ev.Key, after: r.track.waiting(ev.Key), ds: rs})
				}
				ev = g.Next()
			}
			sent++
			s, _ := p.set.ByEventType(ev.Type)
			val, err := codec.Encode(s, ev.Value)
			if err != nil {
				return fmt.Errorf("encode synthetic %s event: %w", ev.Type, err)
			}
			if o.corruptEvery > 0 && sent%o.corruptEvery == 0 {
				val = corrupt(val, sent/o.corruptEvery)
			} else if o.requests {
				r.track.published(ev.Value["event_id"].(string), ev.Key) // a corrupt record has no event id to report
			}
			ds = append(ds, gateway.Disclosure{Topic: sourceTopic(ev.Type), Key: []byte(ev.Key), Value: val})
		}
		for _, w := range [][]gateway.Disclosure{reqs, ds} {
			if len(w) == 0 {
				continue
			}
			if err := sink.Write(ctx, w...); err != nil {
				return unlessStopped(ctx, err)
			}
		}
		if err := release(); err != nil {
			return unlessStopped(ctx, err)
		}
		// Between batches, requests are released as soon as the gateway
		// has handled what they wait for.
		for wait := ticker != nil; wait; {
			select {
			case <-ticker.C:
				wait = false
			case <-r.track.wake:
				if err := release(); err != nil {
					return unlessStopped(ctx, err)
				}
			case <-ctx.Done():
				return nil
			}
		}
	}
	// The stream is out; the last requests wait for the gateway.
	for len(later) > 0 {
		select {
		case <-r.track.wake:
			if err := release(); err != nil {
				return unlessStopped(ctx, err)
			}
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// synthRequest reads a synthetic subject request (synth.RequestType).
func synthRequest(ev synth.Event) subjects.Request {
	str := func(k string) string { s, _ := ev.Value[k].(string); return s }
	at, _ := ev.Value["occurred_at"].(time.Time)
	verified, _ := ev.Value["verified_identity"].(bool)
	return subjects.Request{
		SubjectRequest: gateway.SubjectRequest{SubjectID: ev.Key, Kind: gateway.SubjectRequestKind(str("kind")), Purpose: str("purpose")},
		EventID:        str("event_id"), OccurredAt: at, SourceSystem: str("source_system"), Channel: str("channel"),
		VerifiedIdentity: verified,
	}
}

// corrupt damages a record the way real producers do: a truncated body, a
// producer that forgot the single-object header, an unknown fingerprint.
func corrupt(val []byte, n int) []byte {
	switch n % 3 {
	case 0:
		return val[:len(val)/2]
	case 1:
		return val[10:]
	default:
		out := append([]byte(nil), val...)
		out[2] ^= 0xff
		return out
	}
}

// unlessStopped is err, or nil once ctx has ended: an error of a write or
// a release cut short by the end of the run is not a failure.
func unlessStopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
