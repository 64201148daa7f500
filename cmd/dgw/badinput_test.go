package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
)

// badInput is one kind of bad source record and the dead-letter reason it
// must end with.
type badInput struct {
	kind    string
	value   []byte
	headers []gateway.Header
	reason  gateway.Reason
}

// badInputs builds the catalogue from a valid booking event. maxRecord is
// the gateway's record size limit.
func badInputs(t *testing.T, p *parts, maxRecord int) []badInput {
	t.Helper()
	booking, ok := p.set.ByEventType("booking")
	require.True(t, ok)
	var base map[string]any
	for _, e := range generate(t, p, 200, 5) {
		if e.ev.Type == "booking" {
			base = e.ev.Value
			break
		}
	}
	require.NotNil(t, base, "no booking in the generated stream")
	encode := func(change func(v map[string]any)) []byte {
		v := clone(base).(map[string]any)
		if change != nil {
			change(v)
		}
		raw, err := codec.Encode(booking, v)
		require.NoError(t, err)
		return raw
	}
	good := encode(nil)

	unknown := bytes.Clone(good)
	unknown[2] ^= 0xff

	// A producer's own schema: valid Avro, but not the schema whose
	// fingerprint it carries.
	legacy := avro.MustParse(`{"type":"record","name":"LegacyPNR","fields":[{"name":"pnr","type":"string"},{"name":"pax","type":"int"}]}`)
	body, err := avro.Marshal(legacy, map[string]any{"pnr": "QX7K2M", "pax": 2})
	require.NoError(t, err)
	wrongSchema := append(bytes.Clone(good[:codec.HeaderLen]), body...)

	// Bigger than the limit, yet valid.
	big := encode(func(v map[string]any) {
		names := make([]any, maxRecord/8)
		for i := range names {
			names[i] = fmt.Sprintf("PAX-%05d", i)
		}
		v["companions"] = names
	})
	require.Greater(t, len(big), maxRecord)

	const marker = "ZZMARKERZZ"
	badUTF8 := encode(func(v map[string]any) { v["record_locator"] = marker })
	i := bytes.Index(badUTF8, []byte(marker))
	require.Positive(t, i)
	badUTF8[i] = 0xff

	// occurred_at (timestamp-millis) follows event_id: rewrite it to a
	// date in 2600.
	rest := good[codec.HeaderLen:]
	n, k := binary.Varint(rest)
	require.Positive(t, k)
	idEnd := codec.HeaderLen + k + int(n)
	_, k2 := binary.Varint(good[idEnd:])
	require.Positive(t, k2)
	farFuture := time.Date(2600, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	outOfRange := append(binary.AppendVarint(bytes.Clone(good[:idEnd]), farFuture), good[idEnd+k2:]...)

	return []badInput{
		{kind: "truncated", value: good[:len(good)/2], reason: gateway.ReasonDecode},
		{kind: "wrong magic bytes", value: append([]byte{0x4f, 0x62}, good[2:]...), reason: gateway.ReasonBadMagic},
		{kind: "no header at all", value: good[10:], reason: gateway.ReasonBadMagic},
		{kind: "unknown fingerprint", value: unknown, reason: gateway.ReasonUnknownSchema},
		{kind: "valid Avro of the wrong schema", value: wrongSchema, reason: gateway.ReasonDecode},
		{kind: "over the size limit", value: big, reason: gateway.ReasonTooLarge},
		{kind: "missing required field", value: encode(func(v map[string]any) { v["event_id"] = "" }), reason: gateway.ReasonInvalid},
		{kind: "missing subject", value: encode(func(v map[string]any) { v["passenger_id"] = "" }), reason: gateway.ReasonInvalid},
		{kind: "invalid UTF-8", value: badUTF8, reason: gateway.ReasonInvalid},
		{kind: "out-of-range date", value: outOfRange, reason: gateway.ReasonInvalid},
		{kind: "forged dgw header", value: good, reason: gateway.ReasonBadHeader,
			headers: []gateway.Header{{Key: gateway.HeaderRecipient, Value: []byte("kz-police")}}},
		{kind: "header key not UTF-8", value: good, reason: gateway.ReasonBadHeader,
			headers: []gateway.Header{{Key: "x-\xc3\x28", Value: []byte("v")}}},
		{kind: "empty header key", value: good, reason: gateway.ReasonBadHeader,
			headers: []gateway.Header{{Key: "", Value: []byte{0xff, 0x00}}}},
	}
}

// clone deep-copies a normalised value.
func clone(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, y := range x {
			out[k] = clone(y)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, y := range x {
			out[i] = clone(y)
		}
		return out
	}
	return v
}

// TestBadInputCatalogue publishes every kind of bad record to a source
// topic of the running gateway: each ends in the dead-letter topic with its
// reason, is counted in the stats and the dgw.dead_lettered metric, reaches
// no recipient, and the gateway keeps running: a good record published
// after them is delivered.
func TestBadInputCatalogue(t *testing.T) {
	tb := newTestBed(t)
	const maxRecord = 16 << 10
	tb.parts.decoder = codec.NewDecoder(tb.parts.set, codec.WithMaxSize(maxRecord))
	tb.parts.maxRecord = maxRecord
	bad := badInputs(t, tb.parts, maxRecord)

	// The good record: an event the policy discloses to someone.
	var good *sourceEvent
	for _, e := range generate(t, tb.parts, 50, 8) {
		ev, err := tb.parts.decoder.Decode(gateway.Message{Value: e.record.Value})
		require.NoError(t, err)
		for _, r := range tb.parts.recipients {
			d, err := tb.parts.decider.Decide(t.Context(), &ev.Context, r)
			require.NoError(t, err)
			if d.Allow && good == nil {
				good = &e
			}
		}
	}
	require.NotNil(t, good)

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	stats := gateway.NewStats()
	var mu sync.Mutex
	handled := map[string]chan struct{}{} // event id → closed once handled
	done := map[string]bool{}
	wait := func(id string) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		if handled[id] == nil {
			handled[id] = make(chan struct{})
		}
		return handled[id]
	}
	var count int
	allBad := make(chan struct{})
	obs := gateway.ObserverFunc(func(r *gateway.EventResult) {
		mu.Lock()
		count++
		if count == len(bad) {
			close(allBad)
		}
		mu.Unlock()
		if r.EventID == "" {
			return
		}
		ch := wait(r.EventID)
		mu.Lock()
		defer mu.Unlock()
		if !done[r.EventID] {
			done[r.EventID] = true
			close(ch)
		}
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- runGateway(ctx, gatewayOptions{brokers: tb.brokers, clientID: "bad", group: "bad", topics: tb.sources,
			deadLetter: testDeadLetter, held: testHeld, workers: 2, queue: 4, parts: tb.parts, log: discardLogger(),
			observers: []gateway.Observer{stats, obs}, extra: []gateway.Option{gateway.WithMeterProvider(mp)}, acct: tb.acct})
	}()

	var records []gateway.Disclosure
	for i, b := range bad {
		records = append(records, gateway.Disclosure{Topic: "pax.booking", Key: fmt.Appendf(nil, "bad-%02d", i),
			Value: b.value, Headers: b.headers})
	}
	tb.publish(t, records...)
	select {
	case <-allBad:
	case err := <-errc:
		t.Fatalf("the gateway stopped on bad input: %v", err)
	case <-time.After(60 * testTimeoutScale()):
		t.Fatal("bad records not handled before the deadline")
	}
	// Still running: a good record published afterwards is delivered.
	tb.publish(t, good.record)
	select {
	case <-wait(good.id):
	case err := <-errc:
		t.Fatalf("the gateway stopped on bad input: %v", err)
	case <-time.After(60 * testTimeoutScale()):
		t.Fatal("the good record after the bad ones was not handled")
	}
	cancel()
	require.NoError(t, <-errc)

	got := readAll(t, tb.brokers, append([]string{testDeadLetter, testHeld}, recipientTopics(tb.parts.recipients)...)...)
	byKey := map[string]outRecord{}
	for _, r := range got[testDeadLetter] {
		byKey[r.Key] = r
	}
	wantCounts := map[gateway.Reason]int64{}
	for i, b := range bad {
		wantCounts[b.reason]++
		r, ok := byKey[fmt.Sprintf("bad-%02d", i)]
		if !assert.True(t, ok, "%s: not in the dead-letter topic", b.kind) {
			continue
		}
		assert.Equal(t, string(b.reason), r.Headers[gateway.HeaderReason], "%s: dead-letter reason", b.kind)
		assert.NotEmpty(t, r.Headers[gateway.HeaderReasonDetail], b.kind)
		assert.Equal(t, b.value, r.Value, "%s: the source bytes are kept unchanged", b.kind)
		assert.Empty(t, r.Headers[gateway.HeaderRecipient], "%s: a forged header does not survive", b.kind)
		assert.Equal(t, "pax.booking", r.Headers[gateway.HeaderSourceTopic])
		assert.False(t, strings.Contains(r.Headers[gateway.HeaderReasonDetail], "ZZMARKER") ||
			strings.Contains(r.Headers[gateway.HeaderReasonDetail], "QX7K2M"), "%s: the reason quotes record content", b.kind)
	}
	assert.Equal(t, len(bad), len(got[testDeadLetter]), "one dead-letter record per bad record")
	assert.Empty(t, got[testHeld])
	assert.Equal(t, wantCounts, stats.Snapshot().DeadLetter, "dead-letter stats per reason")

	metric := map[gateway.Reason]int64{}
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "dgw.dead_lettered" {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			require.True(t, ok, "dgw.dead_lettered is %T", m.Data)
			for _, dp := range sum.DataPoints {
				reason, _ := dp.Attributes.Value("reason")
				metric[gateway.Reason(reason.AsString())] += dp.Value
			}
		}
	}
	assert.Equal(t, wantCounts, metric, "dgw.dead_lettered per reason")

	// Nothing forwarded but the good record.
	delivered := 0
	for _, r := range tb.parts.recipients {
		for _, rec := range got[r.Topic] {
			assert.Equal(t, good.id, rec.Headers[gateway.HeaderEventID], "recipient %s received a record from bad input", r.ID)
			delivered++
		}
	}
	assert.Positive(t, delivered, "the good record was delivered")
}
