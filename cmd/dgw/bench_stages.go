package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/audit"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/policy"
	"github.com/dgwproject/dgw/policies"
)

// The in-process stages: what one (event, recipient) pair costs in each
// step of the gateway, with the real parts (Avro codec, OPA policy,
// redactor) on the bench's workload and no broker. They are the issue's
// per-pair targets, which a drain through Kafka cannot isolate; the Go
// benchmarks (BenchmarkStage, BenchmarkPipeline) measure the same
// operations with `go test -bench`.

// benchStages are the stage figures of one run: wall time per operation,
// as `go test -bench` reports ns/op, and process CPU per event for the
// whole in-process path.
type benchStages struct {
	Events     int `json:"events"`     // distinct events the stages cycle over
	Recipients int `json:"recipients"` // the registry's
	// DecodeMicros is one source record decoded and its context extracted.
	DecodeMicros float64 `json:"decode_us"`
	// DecideHitMicros is one pair decided from the cache, as the pipeline
	// asks (one snapshot per event).
	DecideHitMicros float64 `json:"decide_hit_us"`
	// DecideMissMicros is one pair that misses a one-entry cache: the
	// policy evaluated, the event's facts once for its recipients.
	DecideMissMicros float64 `json:"decide_miss_us"`
	// RedactEncodeMicros is one allowed pair's record redacted and encoded.
	RedactEncodeMicros float64 `json:"redact_encode_us"`
	// PipelineK10CPUMicros is the whole in-process path with the audit
	// trail, 10 recipients, decisions cached: process CPU per event.
	PipelineK10CPUMicros float64 `json:"pipeline_k10_cpu_us_per_event"`
}

// stageFixture is n events of the workload, decoded by the parts.
type stageFixture struct {
	parts *parts
	// evaluator evaluates the misses of missOp (zero: the default).
	evaluator policy.Evaluator
	msgs      []gateway.Message
	events    []*gateway.Event
	// values are the events' values in the normalised form (the decoder
	// gives a layout): what codec.Context and the source encoder take.
	values []map[string]any
}

func newStageFixture(p *parts, n int) (*stageFixture, error) {
	wl := newWorkload(p.set, 1, true)
	f := &stageFixture{parts: p}
	for i := range n {
		d, err := wl.next(sourceTopic)
		if err != nil {
			return nil, err
		}
		msg := gateway.Message{Topic: d.Topic, Partition: i % 3, Offset: int64(i), Key: d.Key, Value: d.Value}
		ev, err := p.decoder.Decode(msg)
		if err != nil {
			return nil, fmt.Errorf("decode event %d: %w", i, err)
		}
		_, v, err := codec.Decode(p.set, msg.Value)
		if err != nil {
			return nil, fmt.Errorf("decode event %d: %w", i, err)
		}
		f.msgs = append(f.msgs, msg)
		f.events = append(f.events, ev)
		f.values = append(f.values, v)
	}
	return f, nil
}

// stageOp is the i-th operation of a stage; stages cycle over their
// events and recipients by i.
type stageOp func(ctx context.Context, i int) error

// decodeOp decodes the i-th record (the context is extracted with it).
func (f *stageFixture) decodeOp() stageOp {
	return func(_ context.Context, i int) error {
		_, err := f.parts.decoder.Decode(f.msgs[i%len(f.msgs)])
		return err
	}
}

// pair is the i-th (event, recipient) pair, recipients varying fastest.
func (f *stageFixture) pair(rs []*gateway.Recipient, i int) (*gateway.Event, *gateway.Recipient) {
	return f.events[(i/len(rs))%len(f.events)], rs[i%len(rs)]
}

// snapshotDecider decides for one event at a time (policy.Decider, Live).
type snapshotDecider interface {
	gateway.Decider
	gateway.DeciderSnapshot
}

// hitOp decides pairs from d's cache, which it fills first, as the
// pipeline decides: one snapshot per event, which computes the event's key
// and facts once for its recipients.
func (f *stageFixture) hitOp(ctx context.Context, d snapshotDecider, rs []*gateway.Recipient) (stageOp, error) {
	if err := f.warm(ctx, d, rs); err != nil {
		return nil, err
	}
	var s gateway.Decider
	return func(ctx context.Context, i int) error {
		ev, r := f.pair(rs, i)
		if i%len(rs) == 0 {
			s = d.Snapshot()
		}
		_, err := s.Decide(ctx, &ev.Context, r)
		return err
	}, nil
}

// missOp decides pairs with a new decider of cacheSize entries: with one,
// the production miss (the next recipient's lookup never finds the entry,
// the event's facts are evaluated once for its recipients as for a new
// event); with none, the whole policy, facts included, per pair.
func (f *stageFixture) missOp(ctx context.Context, rs []*gateway.Recipient, cacheSize int) (stageOp, *policy.Decider, error) {
	d, err := policy.New(ctx, policies.FS, policy.WithCatalogue(f.parts.set.Catalogue()), policy.WithCacheSize(cacheSize),
		policy.WithEvaluator(f.evaluator))
	if err != nil {
		return nil, nil, err
	}
	return func(ctx context.Context, i int) error {
		ev, r := f.pair(rs, i)
		_, err := d.Decide(ctx, &ev.Context, r)
		return err
	}, d, nil
}

// redactOp redacts and encodes the allowed pairs with their decisions.
func (f *stageFixture) redactOp(ctx context.Context, rs []*gateway.Recipient) (stageOp, error) {
	type allowed struct {
		ev *gateway.Event
		r  *gateway.Recipient
		d  gateway.Decision
	}
	var pairs []allowed
	for _, ev := range f.events {
		for _, r := range rs {
			d, err := f.parts.decider.Decide(ctx, &ev.Context, r)
			if err != nil {
				return nil, err
			}
			if d.Allow && d.CheckScope(r, ev.Schema.EventType) == nil && len(d.Released()) > 0 {
				pairs = append(pairs, allowed{ev, r, d})
			}
		}
	}
	if len(pairs) == 0 {
		return nil, errors.New("no pair of the workload is allowed")
	}
	return func(_ context.Context, i int) error {
		x := &pairs[i%len(pairs)]
		_, _, err := f.parts.redactor.Redact(x.ev, x.r, &x.d)
		return err
	}, nil
}

// timeStage runs op for at least d (and at least once) and returns the
// wall time per operation.
func timeStage(ctx context.Context, d time.Duration, op stageOp) (time.Duration, error) {
	start := time.Now()
	n := 0
	for ; n == 0 || time.Since(start) < d; n++ {
		if err := op(ctx, n); err != nil {
			return 0, err
		}
		if n%64 == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
	}
	return time.Since(start) / time.Duration(n), nil
}

// warm decides every pair of f's events and rs with d: its cache holds
// them all afterwards.
func (f *stageFixture) warm(ctx context.Context, d gateway.Decider, rs []*gateway.Recipient) error {
	for _, ev := range f.events {
		for _, r := range rs {
			if _, err := d.Decide(ctx, &ev.Context, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// pipeline is the in-process gateway of p's parts for rs over n of f's
// records, round robin, writing to a sink that acknowledges at once.
func (f *stageFixture) pipeline(p *parts, rs []*gateway.Recipient, n int, opts ...gateway.Option) (*gateway.Pipeline, *countSink, error) {
	sink := &countSink{}
	pl, err := gateway.New(&loopSource{msgs: f.msgs, n: int64(n)}, p.decoder, p.decider, p.redactor, sink, rs,
		append(opts, gateway.WithWorkers(4), gateway.WithQueue(16))...)
	return pl, sink, err
}

// pipelineCPU runs the in-process gateway over n events of f, for rs,
// decisions cached first: process CPU per event.
func (f *stageFixture) pipelineCPU(ctx context.Context, rs []*gateway.Recipient, n int, opts ...gateway.Option) (time.Duration, error) {
	if err := f.warm(ctx, f.parts.decider, rs); err != nil {
		return 0, err
	}
	pl, _, err := f.pipeline(f.parts, rs, n, opts...)
	if err != nil {
		return 0, err
	}
	cpu0 := cpuTime()
	if err := pl.Run(ctx); err != nil {
		return 0, err
	}
	return (cpuTime() - cpu0) / time.Duration(n), nil
}

// benchAuditor is dgw run's auditor with a development key.
func benchAuditor() (*audit.Auditor, error) {
	c, err := auditCodec()
	if err != nil {
		return nil, err
	}
	return audit.New(c, audit.DevKey("bench"), defaultAuditTopic, audit.WithChainPrefix("bench"))
}

// runStages measures the stages on n events, each for about d.
func runStages(ctx context.Context, p *parts, ev policy.Evaluator, n int, d time.Duration) (*benchStages, error) {
	f, err := newStageFixture(p, n)
	if err != nil {
		return nil, err
	}
	f.evaluator = ev
	rs := p.recipients
	st := &benchStages{Events: n, Recipients: len(rs)}
	micros := func(t time.Duration) float64 { return float64(t.Nanoseconds()) / 1e3 }
	step := func(name string, op stageOp, opErr error, into *float64) error {
		if opErr != nil {
			return fmt.Errorf("stage %s: %w", name, opErr)
		}
		t, err := timeStage(ctx, d, op)
		if err != nil {
			return fmt.Errorf("stage %s: %w", name, err)
		}
		*into = micros(t)
		return nil
	}
	if err := step("decode", f.decodeOp(), nil, &st.DecodeMicros); err != nil {
		return nil, err
	}
	hit, err := f.hitOp(ctx, p.decider, rs)
	if err := step("decide-hit", hit, err, &st.DecideHitMicros); err != nil {
		return nil, err
	}
	miss, _, err := f.missOp(ctx, rs, 1)
	if err := step("decide-miss", miss, err, &st.DecideMissMicros); err != nil {
		return nil, err
	}
	red, err := f.redactOp(ctx, rs)
	if err := step("redact-encode", red, err, &st.RedactEncodeMicros); err != nil {
		return nil, err
	}
	aud, err := benchAuditor()
	if err != nil {
		return nil, fmt.Errorf("stage pipeline: %w", err)
	}
	k := min(10, len(rs))
	// As many events as the other stages had time for, at ~40 µs each.
	cpu, err := f.pipelineCPU(ctx, rs[:k], max(n, int(d/(40*time.Microsecond))), gateway.WithAuditor(aud))
	if err != nil {
		return nil, fmt.Errorf("stage pipeline: %w", err)
	}
	st.PipelineK10CPUMicros = micros(cpu)
	return st, nil
}

// loopSource hands out msgs round robin until n are read.
type loopSource struct {
	msgs []gateway.Message
	n    int64
	read atomic.Int64
}

func (s *loopSource) Read(context.Context) (gateway.Message, gateway.AckFunc, error) {
	i := s.read.Add(1) - 1
	if i >= s.n {
		return gateway.Message{}, nil, gateway.ErrClosed
	}
	m := s.msgs[i%int64(len(s.msgs))]
	m.Offset = i
	return m, func(context.Context) error { return nil }, nil
}

func (s *loopSource) Close(context.Context) error { return nil }

// countSink acknowledges everything at once.
type countSink struct{ records atomic.Int64 }

func (s *countSink) Write(_ context.Context, ds ...gateway.Disclosure) error {
	s.records.Add(int64(len(ds)))
	return nil
}

func (s *countSink) Close(context.Context) error { return nil }
