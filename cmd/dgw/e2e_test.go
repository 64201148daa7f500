package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/adapters/broker"
	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/audit"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/redact"
	"github.com/dgwproject/dgw/gateway/synth"
)

func testTimeoutScale() time.Duration { return time.Second }

const (
	testDeadLetter = "dgw.deadletter"
	testHeld       = "dgw.held"
)

// testBed is an embedded broker with every topic the gateway uses, and the
// gateway's parts built exactly as `dgw run` builds them.
type testBed struct {
	broker  *broker.Broker
	brokers []string
	parts   *parts
	sources []string
	// acct is the audit trail (defaultAuditTopic, development audit key)
	// and the compacted subject topic every run uses, as dev does.
	acct *accountability
}

func newTestBed(t *testing.T) *testBed {
	t.Helper()
	p, err := buildParts(t.Context(), "", "", redact.DevKeyring("e2e"), 1<<20, discardLogger())
	require.NoError(t, err)
	sources := defaultSourceTopics(p.set)
	topics := append(append([]string{testDeadLetter, testHeld}, sources...), recipientTopics(p.recipients)...)
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", Partitions: 3, Topics: topics})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	acct, err := newAccountability(p.set, defaultAuditTopic, defaultSubjectTopic, audit.DevKey(devAuditSeed), defaultAuditRetention)
	require.NoError(t, err)
	require.NoError(t, acct.ensureTopics(t.Context(), kafka.AdminConfig{Brokers: b.Addrs()}, 3, 1))
	return &testBed{broker: b, brokers: b.Addrs(), parts: p, sources: sources, acct: acct}
}

// publish writes records to the source topics as a booking system would.
func (tb *testBed) publish(t *testing.T, ds ...gateway.Disclosure) {
	t.Helper()
	sink, err := kafka.NewSink(kafka.SinkConfig{Brokers: tb.brokers, ClientID: "test-publisher"})
	require.NoError(t, err)
	defer sink.Close(context.Background())
	for chunk := range slices.Chunk(ds, 200) {
		require.NoError(t, sink.Write(t.Context(), chunk...))
	}
}

// runUntil runs the gateway until it has fully processed n records, then
// stops it and waits for its final commit.
func (tb *testBed) runUntil(t *testing.T, group string, n int64, log *slog.Logger, extra ...gateway.Observer) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var seen atomic.Int64
	done := make(chan struct{})
	obs := append([]gateway.Observer{gateway.ObserverFunc(func(*gateway.EventResult) {
		if seen.Add(1) == n {
			close(done)
		}
	})}, extra...)
	if log == nil {
		log = discardLogger()
	}
	errc := make(chan error, 1)
	go func() {
		errc <- runGateway(ctx, gatewayOptions{brokers: tb.brokers, clientID: group, group: group, topics: tb.sources,
			deadLetter: testDeadLetter, held: testHeld, workers: 4, queue: 16, parts: tb.parts, log: log, observers: obs,
			acct: tb.acct})
	}()
	select {
	case <-done:
	case err := <-errc:
		t.Fatalf("gateway stopped before processing %d records (%d done): %v", n, seen.Load(), err)
	case <-time.After(300 * testTimeoutScale()):
		t.Fatalf("gateway processed %d of %d records before the deadline", seen.Load(), n)
	}
	cancel()
	require.NoError(t, <-errc)
}

type sourceEvent struct {
	ev     synth.Event
	id     string
	strs   map[string][]string // leaf path → string values in the source event
	pans   []string
	cvv    string
	record gateway.Disclosure
}

func generate(t *testing.T, p *parts, n int, seed int64) []sourceEvent {
	t.Helper()
	g := synth.New(synth.Options{Seed: seed})
	out := make([]sourceEvent, 0, n)
	for range n {
		ev := g.Next()
		s, ok := p.set.ByEventType(ev.Type)
		require.True(t, ok, ev.Type)
		raw, err := codec.Encode(s, ev.Value)
		require.NoError(t, err)
		se := sourceEvent{ev: ev, strs: map[string][]string{}, id: ev.Value["event_id"].(string)}
		normalLeaves(ev.Value, "", func(path string, v any) {
			if str, ok := v.(string); ok {
				se.strs[path] = append(se.strs[path], str)
			}
		})
		if card, ok := ev.Value["card"].(map[string]any); ok {
			se.pans = append(se.pans, card["number"].(string))
			se.cvv, _ = card["security_code"].(string)
		}
		se.record = gateway.Disclosure{Topic: sourceTopic(ev.Type), Key: []byte(ev.Key), Value: raw}
		out = append(out, se)
	}
	return out
}

// normalLeaves walks a value in the gateway's normalised form.
func normalLeaves(v any, path string, fn func(string, any)) {
	switch x := v.(type) {
	case nil:
	case map[string]any:
		for k, y := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			normalLeaves(y, p, fn)
		}
	case []any:
		for _, y := range x {
			normalLeaves(y, path, fn)
		}
	default:
		fn(path, v)
	}
}

// TestEndToEnd is the backbone's acceptance test: generated events through
// the embedded broker, the real kafka-go adapters, real Avro, real OPA; every
// recipient topic read back by an independent client and decoded with the
// exported partner schemas.
func TestEndToEnd(t *testing.T) {
	tb := newTestBed(t)
	p := tb.parts
	events := generate(t, p, 600, 42)

	// Bad input rides along: it must end in the dead-letter topic only.
	booking, _ := p.set.ByEventType("booking")
	good := events[0].record.Value
	unknown := bytes.Clone(good)
	unknown[2] ^= 0xff
	bad := []struct {
		value  []byte
		reason gateway.Reason
	}{
		{good[:len(good)/2], gateway.ReasonDecode},
		{good[10:], gateway.ReasonBadMagic},
		{unknown, gateway.ReasonUnknownSchema},
	}
	var records []gateway.Disclosure
	for _, e := range events {
		records = append(records, e.record)
	}
	for i, b := range bad {
		records = append(records, gateway.Disclosure{Topic: sourceTopic(booking.EventType), Key: fmt.Appendf(nil, "bad-%d", i), Value: b.value})
	}
	tb.publish(t, records...)
	tb.runUntil(t, "e2e", int64(len(records)), nil)

	exportDir := t.TempDir()
	_, stderr, code := runCLI(t, nil, "schemas", "export", "--out", exportDir)
	require.Equal(t, 0, code, stderr)
	partner := loadExported(t, exportDir)

	// What the policy allows, asked event by event (the gateway's decoder
	// gives the same PII-free context the pipeline used).
	type delivery struct{ event, recipient string }
	expected := map[delivery]bool{}
	byID := map[string]*sourceEvent{}
	for i := range events {
		e := &events[i]
		byID[e.id] = e
		ev, err := p.decoder.Decode(gateway.Message{Topic: e.record.Topic, Value: e.record.Value})
		require.NoError(t, err)
		for _, r := range p.recipients {
			d, err := p.decider.Decide(t.Context(), &ev.Context, r)
			require.NoError(t, err)
			require.NoError(t, d.CheckScope(r, ev.Schema.EventType))
			if d.Allow && len(d.Released()) > 0 {
				expected[delivery{e.id, r.ID}] = true
			}
		}
	}

	topics := append([]string{testDeadLetter, testHeld}, recipientTopics(p.recipients)...)
	got := readAll(t, tb.brokers, topics...)

	// Bad input: dead-lettered with its reason, nothing held.
	var reasons []string
	for _, r := range got[testDeadLetter] {
		reasons = append(reasons, r.Headers[gateway.HeaderReason])
		assert.NotEmpty(t, r.Headers[gateway.HeaderReasonDetail])
	}
	for _, b := range bad {
		assert.Contains(t, reasons, string(b.reason))
	}
	assert.Len(t, got[testDeadLetter], len(bad))
	assert.Empty(t, got[testHeld], "nothing should be held on a healthy run")

	delivered := map[delivery]bool{}
	perRecipient := map[string]int{}
	for _, r := range p.recipients {
		for _, rec := range got[r.Topic] {
			evID := rec.Headers[gateway.HeaderEventID]
			src := byID[evID]
			require.NotNil(t, src, "recipient %s got a record for unknown event %q", r.ID, evID)
			et := rec.Headers[gateway.HeaderEventType]
			require.Equal(t, src.ev.Type, et)
			d := delivery{evID, r.ID}
			assert.False(t, delivered[d], "duplicate delivery of %s to %s on a clean run", evID, r.ID)
			delivered[d] = true
			perRecipient[r.ID]++

			// Headers and key.
			assert.Equal(t, src.ev.Key, rec.Key, "the source key is kept")
			assert.Equal(t, p.decider.Revision(), rec.Headers[gateway.HeaderPolicyRevision])
			assert.Equal(t, r.ID, rec.Headers[gateway.HeaderRecipient])
			assert.Equal(t, src.record.Topic, rec.Headers[gateway.HeaderSourceTopic])
			assert.NotEmpty(t, rec.Headers[gateway.HeaderSourceOffset])

			s := partner[r.ID][et]
			require.NotNil(t, s, "no exported schema for %s/%s", r.ID, et)
			assert.Equal(t, fingerprintHex(s), rec.Headers[gateway.HeaderSchema])
			v, err := decodePartner(s, rec.Value)
			require.NoError(t, err, "recipient %s, event %s: partner cannot decode", r.ID, evID)

			leaves(s, v, "", func(path string, x any) {
				ops := r.Scope[et][path]
				require.NotEmpty(t, ops, "recipient %s received %s field %s outside its contract scope", r.ID, et, path)
				str, isStr := x.(string)
				if !isStr {
					return
				}
				if !slices.Contains(ops, gateway.OpKeep) {
					assert.NotContains(t, src.strs[path], str,
						"recipient %s: %s %s is masked/hashed/generalised yet equals the source value", r.ID, et, path)
				}
				if src.cvv != "" {
					assert.NotEqual(t, src.cvv, str, "recipient %s received the card security code in %s", r.ID, path)
				}
			})
			for _, pan := range src.pans {
				if bytes.Contains(rec.Value, []byte(pan)) {
					assert.Contains(t, r.Scope[et]["card.number"], gateway.OpKeep,
						"full card number reached %s, whose scope does not allow it", r.ID)
				}
			}
		}
	}
	for d := range expected {
		assert.True(t, delivered[d], "event %s was allowed for %s but never delivered", d.event, d.recipient)
	}
	for d := range delivered {
		assert.True(t, expected[d], "event %s reached %s, which the policy refused", d.event, d.recipient)
	}
	withDeliveries := 0
	for _, n := range perRecipient {
		if n > 0 {
			withDeliveries++
		}
	}
	assert.GreaterOrEqual(t, withDeliveries, 10, "deliveries per recipient: %v", perRecipient)

	// Order per key: within one output partition, records of one key from
	// one source topic keep their source offset order.
	for _, r := range p.recipients {
		last := map[string]int64{}
		for _, rec := range got[r.Topic] {
			k := fmt.Sprintf("%d/%s/%s", rec.Partition, rec.Key, rec.Headers[gateway.HeaderSourceTopic])
			off := atoi64(t, rec.Headers[gateway.HeaderSourceOffset])
			if prev, ok := last[k]; ok {
				assert.Greater(t, off, prev, "recipient %s: key order broken", r.ID)
			}
			last[k] = off
		}
	}
}
