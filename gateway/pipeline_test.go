package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/gatewaytest"
)

// The fakes encode an event as "id|key"; "bad" values fail to decode.
func decoder() gateway.Decoder {
	return gatewaytest.DecoderFunc(func(m gateway.Message) (*gateway.Event, error) {
		if string(m.Value) == "bad" {
			return nil, gateway.Park(gateway.ReasonBadMagic, errors.New("not single-object encoding"))
		}
		return &gateway.Event{Msg: m, ID: string(m.Value), Schema: gateway.SchemaRef{Name: "t.T", EventType: "booking", Fingerprint: 7},
			Context: gateway.DecisionContext{Event: gateway.EventContext{Type: "booking"}}}, nil
	})
}

func redactor() gateway.Redactor {
	return gatewaytest.RedactorFunc(func(e *gateway.Event, r *gateway.Recipient, d *gateway.Decision) ([]byte, uint64, error) {
		if r.ID == "broken-redact" {
			return nil, 0, errors.New("mask: unsupported kind")
		}
		return []byte(r.ID + ":" + e.ID), 99, nil
	})
}

func recipient(id string) *gateway.Recipient {
	return &gateway.Recipient{ID: id, Type: "t", Country: "KZ", Topic: "out." + id,
		Scope: gateway.Scope{"booking": {"record_locator": {gateway.OpKeep}}}}
}

func allowAll(_ context.Context, _ *gateway.DecisionContext, r *gateway.Recipient) (gateway.Decision, error) {
	return gateway.Decision{Allow: true, Fields: map[string]gateway.Operator{"record_locator": gateway.OpKeep}, Revision: "rev1"}, nil
}

func msgs(vals ...string) []gateway.Message {
	out := make([]gateway.Message, len(vals))
	for i, v := range vals {
		out[i] = gateway.Message{Topic: "src", Partition: 0, Offset: int64(i + 1), Key: []byte("k" + v), Value: []byte(v)}
	}
	return out
}

func run(t *testing.T, src gateway.Source, d gateway.Decider, red gateway.Redactor, sink gateway.Sink, rs []*gateway.Recipient, opts ...gateway.Option) []*gateway.EventResult {
	t.Helper()
	var mu sync.Mutex
	var results []*gateway.EventResult
	opts = append([]gateway.Option{
		gateway.WithRetryBackoff(time.Millisecond, 2*time.Millisecond),
		gateway.WithObserver(gateway.ObserverFunc(func(r *gateway.EventResult) {
			mu.Lock()
			defer mu.Unlock()
			results = append(results, r.Clone())
		})),
	}, opts...)
	p, err := gateway.New(src, decoder(), d, red, sink, rs, opts...)
	require.NoError(t, err)
	require.NoError(t, p.Run(t.Context()))
	return results
}

func TestPipelineDeliversAllowedAndRefusesOthers(t *testing.T) {
	src := gatewaytest.NewMemSource(true, msgs("e1", "e2")...)
	sink := &gatewaytest.MemSink{}
	dec := gatewaytest.DeciderFunc(func(ctx context.Context, dc *gateway.DecisionContext, r *gateway.Recipient) (gateway.Decision, error) {
		if r.ID == "refused" {
			return gateway.Decision{Allow: false, Reasons: []string{"not mapped"}, Revision: "rev1"}, nil
		}
		return allowAll(ctx, dc, r)
	})
	res := run(t, src, dec, redactor(), sink, []*gateway.Recipient{recipient("ok"), recipient("refused")})

	got := sink.Topic("out.ok")
	require.Len(t, got, 2)
	assert.Empty(t, sink.Topic("out.refused"), "a refused recipient gets nothing")
	d := got[0]
	if gatewaytest.Header(d, gateway.HeaderEventID) != "e1" {
		d = got[1] // different keys may be handled by different workers
	}
	assert.Equal(t, "ok:e1", string(d.Value))
	assert.Equal(t, "ke1", string(d.Key), "the source key is kept")
	assert.Equal(t, "e1", gatewaytest.Header(d, gateway.HeaderEventID))
	assert.Equal(t, "rev1", gatewaytest.Header(d, gateway.HeaderPolicyRevision))
	assert.Equal(t, "0000000000000063", gatewaytest.Header(d, gateway.HeaderSchema))
	assert.Equal(t, "src", gatewaytest.Header(d, gateway.HeaderSourceTopic))
	assert.Equal(t, "1", gatewaytest.Header(d, gateway.HeaderSourceOffset))
	assert.Equal(t, map[int64]int{1: 1, 2: 1}, src.Acked())
	require.Len(t, res, 2)
	for _, r := range res {
		assert.Equal(t, gateway.OutcomeDelivered, r.Recipients[0].Outcome)
		assert.Equal(t, gateway.OutcomeRefused, r.Recipients[1].Outcome)
	}
}

func TestPipelineParksWhatItCannotHandle(t *testing.T) {
	tests := []struct {
		name       string
		value      string
		decider    gatewaytest.DeciderFunc
		recipient  string
		wantTopic  string
		wantReason gateway.Reason
	}{
		{name: "undecodable", value: "bad", decider: allowAll, recipient: "ok",
			wantTopic: "dgw.deadletter", wantReason: gateway.ReasonBadMagic},
		{name: "policy error", value: "e1", recipient: "ok", wantTopic: "dgw.held", wantReason: gateway.ReasonPolicy,
			decider: func(context.Context, *gateway.DecisionContext, *gateway.Recipient) (gateway.Decision, error) {
				return gateway.Decision{}, errors.New("eval: conflicting rules")
			}},
		{name: "scope violation", value: "e1", recipient: "ok", wantTopic: "dgw.held", wantReason: gateway.ReasonScope,
			decider: func(context.Context, *gateway.DecisionContext, *gateway.Recipient) (gateway.Decision, error) {
				return gateway.Decision{Allow: true, Fields: map[string]gateway.Operator{"passenger.given_name": gateway.OpKeep}}, nil
			}},
		{name: "operator outside scope", value: "e1", recipient: "ok", wantTopic: "dgw.held", wantReason: gateway.ReasonScope,
			decider: func(context.Context, *gateway.DecisionContext, *gateway.Recipient) (gateway.Decision, error) {
				return gateway.Decision{Allow: true, Fields: map[string]gateway.Operator{"record_locator": gateway.OpHash}}, nil
			}},
		{name: "redact error", value: "e1", decider: allowAll, recipient: "broken-redact",
			wantTopic: "dgw.held", wantReason: gateway.ReasonRedact},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := gatewaytest.NewMemSource(true, msgs(tt.value)...)
			sink := &gatewaytest.MemSink{}
			res := run(t, src, tt.decider, redactor(), sink, []*gateway.Recipient{recipient(tt.recipient)})

			assert.Empty(t, sink.Topic("out."+tt.recipient), "nothing reaches the recipient")
			parked := sink.Topic(tt.wantTopic)
			require.Len(t, parked, 1)
			assert.Equal(t, string(tt.wantReason), gatewaytest.Header(parked[0], gateway.HeaderReason))
			assert.NotEmpty(t, gatewaytest.Header(parked[0], gateway.HeaderReasonDetail))
			assert.Equal(t, tt.value, string(parked[0].Value), "the source bytes are kept so nothing is lost")
			if tt.wantTopic == "dgw.held" {
				assert.Equal(t, tt.recipient, gatewaytest.Header(parked[0], gateway.HeaderRecipient))
			}
			assert.Equal(t, map[int64]int{1: 1}, src.Acked(), "parked records are acked once parked")
			require.Len(t, res, 1)
		})
	}
}

func TestPipelineRetriesThenHoldsFailedDeliveries(t *testing.T) {
	src := gatewaytest.NewMemSource(true, msgs("e1")...)
	sink := &gatewaytest.MemSink{Fail: func(d gateway.Disclosure, attempt int) error {
		switch {
		case d.Topic == "out.flaky" && attempt == 1:
			return gatewaytest.ErrInjected
		case d.Topic == "out.down":
			return gatewaytest.ErrInjected
		}
		return nil
	}}
	res := run(t, src, gatewaytest.DeciderFunc(allowAll), redactor(), sink,
		[]*gateway.Recipient{recipient("flaky"), recipient("down"), recipient("fine")}, gateway.WithSinkAttempts(3))

	assert.Len(t, sink.Topic("out.flaky"), 1, "a transient failure is retried")
	assert.Len(t, sink.Topic("out.fine"), 1)
	assert.Empty(t, sink.Topic("out.down"))
	held := sink.Topic("dgw.held")
	require.Len(t, held, 1, "only the failed recipient's copy is held, so redrive does not duplicate the others")
	assert.Equal(t, "down", gatewaytest.Header(held[0], gateway.HeaderRecipient))
	assert.Equal(t, string(gateway.ReasonSink), gatewaytest.Header(held[0], gateway.HeaderReason))
	require.Len(t, res, 1)
	assert.Equal(t, gateway.OutcomeHeld, res[0].Recipients[1].Outcome)
	assert.Equal(t, map[int64]int{1: 1}, src.Acked())
}

func TestPipelineDoesNotAckWhenParkingFails(t *testing.T) {
	src := gatewaytest.NewMemSource(false, msgs("bad", "e2")...)
	sink := &gatewaytest.MemSink{Fail: func(d gateway.Disclosure, _ int) error {
		if d.Topic == "dgw.deadletter" {
			return gatewaytest.ErrInjected
		}
		return nil
	}}
	ctx, cancel := context.WithCancel(t.Context())
	p, err := gateway.New(src, decoder(), gatewaytest.DeciderFunc(allowAll), redactor(), sink,
		[]*gateway.Recipient{recipient("ok")}, gateway.WithRetryBackoff(time.Millisecond, time.Millisecond),
		gateway.WithDrainTimeout(20*time.Millisecond), gateway.WithWorkers(1),
		gateway.WithObserver(gateway.ObserverFunc(func(*gateway.EventResult) {})))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	// e2 sits behind the failing record on the single worker; cancelling
	// starts the drain, which ends with the parking still failing.
	cancel()
	require.NoError(t, <-done)
	assert.Zero(t, src.Acked()[1], "a record that could not be parked must not be acked")
	assert.Empty(t, sink.Topic("dgw.deadletter"))
}

func TestPipelineKeepsOrderPerKey(t *testing.T) {
	var ms []gateway.Message
	for i := range 400 {
		key := "p" + strconv.Itoa(i%5)
		ms = append(ms, gateway.Message{Topic: "src", Partition: i % 3, Offset: int64(i + 1), Key: []byte(key),
			Value: []byte(fmt.Sprintf("%s-%04d", key, i))})
	}
	src := gatewaytest.NewMemSource(true, ms...)
	sink := &gatewaytest.MemSink{}
	run(t, src, gatewaytest.DeciderFunc(allowAll), redactor(), sink, []*gateway.Recipient{recipient("ok")}, gateway.WithWorkers(4))

	got := sink.Topic("out.ok")
	require.Len(t, got, 400)
	last := map[string]string{}
	for _, d := range got {
		k := string(d.Key)
		v := string(d.Value)
		assert.Greater(t, v, last[k], "records of key %s out of order", k)
		last[k] = v
	}
}

type failingAuditor struct{}

func (failingAuditor) Records(*gateway.AuditInput) ([]gateway.Disclosure, error) {
	return nil, errors.New("audit key missing")
}

type auditor struct{}

func (auditor) Records(in *gateway.AuditInput) ([]gateway.Disclosure, error) {
	out := make([]gateway.Disclosure, len(in.Results))
	for i, r := range in.Results {
		v := in.Event.ID + ":" + r.Recipient.ID + ":" + string(r.Outcome)
		if in.Correction {
			v += ":correction"
		}
		out[i] = gateway.Disclosure{Topic: "audit", Value: []byte(v)}
	}
	return out, nil
}

func TestPipelineAuditsEveryDecisionOrHoldsDeliveries(t *testing.T) {
	t.Run("every decision is audited", func(t *testing.T) {
		sink := &gatewaytest.MemSink{}
		dec := gatewaytest.DeciderFunc(func(ctx context.Context, dc *gateway.DecisionContext, r *gateway.Recipient) (gateway.Decision, error) {
			if r.ID == "no" {
				return gateway.Decision{Reasons: []string{"not mapped"}}, nil
			}
			return allowAll(ctx, dc, r)
		})
		run(t, gatewaytest.NewMemSource(true, msgs("e1")...), dec, redactor(), sink,
			[]*gateway.Recipient{recipient("ok"), recipient("no")}, gateway.WithAuditor(auditor{}))
		audit := sink.Topic("audit")
		require.Len(t, audit, 2, "refusals are audited too")
		assert.Equal(t, "e1:ok:delivered", string(audit[0].Value))
		assert.Equal(t, "e1:no:refused", string(audit[1].Value))
	})
	t.Run("no audit, no disclosure", func(t *testing.T) {
		sink := &gatewaytest.MemSink{}
		run(t, gatewaytest.NewMemSource(true, msgs("e1")...), gatewaytest.DeciderFunc(allowAll), redactor(), sink,
			[]*gateway.Recipient{recipient("ok")}, gateway.WithAuditor(failingAuditor{}))
		assert.Empty(t, sink.Topic("out.ok"))
		require.Len(t, sink.Topic("dgw.held"), 1)
	})
}

func TestNewRejectsBadRegistry(t *testing.T) {
	src := gatewaytest.NewMemSource(true)
	sink := &gatewaytest.MemSink{}
	a, b := recipient("a"), recipient("b")
	b.Topic = a.Topic
	_, err := gateway.New(src, decoder(), gatewaytest.DeciderFunc(allowAll), redactor(), sink, []*gateway.Recipient{a, b})
	assert.ErrorContains(t, err, "topic out.a is used twice")
	_, err = gateway.New(src, decoder(), gatewaytest.DeciderFunc(allowAll), redactor(), sink, []*gateway.Recipient{a, a})
	assert.ErrorContains(t, err, "registered twice")
	_, err = gateway.New(src, decoder(), gatewaytest.DeciderFunc(allowAll), redactor(), sink, nil, gateway.WithWorkers(0))
	assert.ErrorContains(t, err, "workers must be positive")
	_, err = gateway.New(src, decoder(), gatewaytest.DeciderFunc(allowAll), redactor(), sink, nil, gateway.WithMaxInFlightBytes(0))
	assert.ErrorContains(t, err, "max in-flight bytes must be positive, got 0")
}

func TestPipelineRefusalForNothingReleasedLeavesSharedDecisionAlone(t *testing.T) {
	// A decider's cache hands every worker the same Reasons slice. Turning
	// an allow that releases nothing into a refusal must not append into
	// that slice's spare capacity, which every worker would write.
	shared := make([]string, 1, 8)
	shared[0] = "allowed under contract"
	dec := gatewaytest.DeciderFunc(func(context.Context, *gateway.DecisionContext, *gateway.Recipient) (gateway.Decision, error) {
		return gateway.Decision{Allow: true, Fields: map[string]gateway.Operator{"record_locator": gateway.OpDrop},
			Reasons: shared, Revision: "rev1", Cached: true}, nil
	})
	vals := make([]string, 64)
	for i := range vals {
		vals[i] = "e" + strconv.Itoa(i)
	}
	src := gatewaytest.NewMemSource(true, msgs(vals...)...)
	sink := &gatewaytest.MemSink{}
	res := run(t, src, dec, redactor(), sink, []*gateway.Recipient{recipient("a"), recipient("b")}, gateway.WithWorkers(8))

	require.Len(t, res, len(vals))
	for _, r := range res {
		for _, rr := range r.Recipients {
			assert.Equal(t, gateway.OutcomeRefused, rr.Outcome)
			assert.Equal(t, []string{"allowed under contract", "no field released"}, rr.Decision.Reasons)
		}
	}
	assert.Empty(t, sink.Topic("out.a"))
	assert.Equal(t, []string{"allowed under contract", "", ""}, shared[:3], "the shared slice's spare capacity is untouched")
}

// auditorFunc adapts a function to gateway.Auditor.
type auditorFunc func(in *gateway.AuditInput) ([]gateway.Disclosure, error)

func (f auditorFunc) Records(in *gateway.AuditInput) ([]gateway.Disclosure, error) { return f(in) }

func TestPipelineUntracedContinuesTheSourceTrace(t *testing.T) {
	// Without a tracer provider no span is started, yet the outputs and
	// the audit input carry the publisher's trace.
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	m := msgs("e1")
	m[0].Headers = []gateway.Header{{Key: "traceparent", Value: []byte("00-" + traceID + "-b7ad6b7169203331-01")}}
	src := gatewaytest.NewMemSource(true, m...)
	sink := &gatewaytest.MemSink{}
	var audited []string
	var mu sync.Mutex
	aud := auditorFunc(func(in *gateway.AuditInput) ([]gateway.Disclosure, error) {
		mu.Lock()
		defer mu.Unlock()
		audited = append(audited, in.TraceID)
		return []gateway.Disclosure{{Topic: "audit", Value: []byte("entry")}}, nil
	})
	run(t, src, gatewaytest.DeciderFunc(allowAll), redactor(), sink, []*gateway.Recipient{recipient("a")}, gateway.WithAuditor(aud))

	got := sink.Topic("out.a")
	require.Len(t, got, 1)
	assert.Contains(t, gatewaytest.Header(got[0], "traceparent"), "-"+traceID+"-", "the delivery continues the source's trace")
	assert.Equal(t, []string{traceID}, audited)
}

// TestPipelineChecksScopeOfEveryCachedDecision: a decider's cache shares
// one decision between recipients and events; the scope check still holds
// every copy a recipient's scope does not allow, for every event.
func TestPipelineChecksScopeOfEveryCachedDecision(t *testing.T) {
	shared := map[string]gateway.Operator{"record_locator": gateway.OpKeep}
	dec := gatewaytest.DeciderFunc(func(context.Context, *gateway.DecisionContext, *gateway.Recipient) (gateway.Decision, error) {
		return gateway.Decision{Allow: true, Fields: shared, Revision: "rev1", Cached: true}, nil
	})
	narrow := recipient("narrow")
	narrow.Scope = gateway.Scope{"booking": {"record_locator": {gateway.OpHash}}}
	src := gatewaytest.NewMemSource(true, msgs("e1", "e2", "e3", "e4")...)
	sink := &gatewaytest.MemSink{}
	res := run(t, src, dec, redactor(), sink, []*gateway.Recipient{recipient("ok"), narrow, recipient("ok2")}, gateway.WithWorkers(1))
	assert.Len(t, sink.Topic("out.ok"), 4)
	assert.Len(t, sink.Topic("out.ok2"), 4)
	assert.Empty(t, sink.Topic("out.narrow"))
	held := sink.Topic("dgw.held")
	require.Len(t, held, 4, "held for every event")
	for _, h := range held {
		assert.Equal(t, "narrow", gatewaytest.Header(h, gateway.HeaderRecipient))
		assert.Equal(t, string(gateway.ReasonScope), gatewaytest.Header(h, gateway.HeaderReason))
	}
	require.Len(t, res, 4)
}

// TestPipelineReusesResults: a worker hands its observers the same result
// for every record it handles, so an observer that keeps one keeps a
// Clone; the clone keeps the record's own outcomes.
func TestPipelineReusesResults(t *testing.T) {
	src := gatewaytest.NewMemSource(true, msgs("e1", "e2")...)
	calls := 0 // one worker: the records are decided in turn
	dec := gatewaytest.DeciderFunc(func(ctx context.Context, dc *gateway.DecisionContext, r *gateway.Recipient) (gateway.Decision, error) {
		if calls++; calls == 2 {
			return gateway.Decision{Allow: false, Reasons: []string{"not the second"}, Revision: "rev1"}, nil
		}
		return allowAll(ctx, dc, r)
	})
	var kept, clones []*gateway.EventResult
	p, err := gateway.New(src, decoder(), dec, redactor(), &gatewaytest.MemSink{}, []*gateway.Recipient{recipient("ok")},
		gateway.WithWorkers(1), gateway.WithObserver(gateway.ObserverFunc(func(r *gateway.EventResult) {
			kept = append(kept, r)
			clones = append(clones, r.Clone())
		})))
	require.NoError(t, err)
	require.NoError(t, p.Run(t.Context()))
	require.Len(t, clones, 2)
	assert.Same(t, kept[0], kept[1], "one worker, one result")
	assert.Equal(t, "e1", clones[0].EventID)
	assert.Equal(t, gateway.OutcomeDelivered, clones[0].Recipients[0].Outcome)
	assert.Equal(t, "e2", clones[1].EventID)
	assert.Equal(t, gateway.OutcomeRefused, clones[1].Recipients[0].Outcome)
	assert.Empty(t, kept[1].Recipients, "after the record, the worker keeps nothing of it")
}
