package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
)

// handledLog records which source records a gateway run handled.
type handledLog struct {
	mu   sync.Mutex
	seen map[string]int // topic/partition/offset → times handled
	n    int
	stop func() // called once n reaches stopAt
	at   int
}

func (h *handledLog) Observe(r *gateway.EventResult) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen[fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)]++
	h.n++
	if h.n == h.at && h.stop != nil {
		h.stop()
	}
}

func (h *handledLog) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// TestGracefulStopCommitsWhatWasDelivered stops a gateway the way SIGTERM
// does (its context ends) while events are in flight. It drains them and
// commits exactly what it handled: the group's committed offsets add up to
// the records handled, and a second process in the same group reads only
// the rest. No record is handled twice, no delivery is duplicated, none is
// missing.
func TestGracefulStopCommitsWhatWasDelivered(t *testing.T) {
	tb := newTestBed(t)
	const total, stopAt, group = 90, 25, "graceful"
	events := generate(t, tb.parts, total, 23)
	var records []gateway.Disclosure
	for _, e := range events {
		records = append(records, e.record)
	}
	tb.publish(t, records...)

	// First process: stopped after stopAt records, others in flight.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	first := &handledLog{seen: map[string]int{}, at: stopAt, stop: cancel}
	errc := make(chan error, 1)
	go func() {
		errc <- runGateway(ctx, gatewayOptions{brokers: tb.brokers, clientID: group, group: group, topics: tb.sources,
			deadLetter: testDeadLetter, held: testHeld, workers: 4, queue: 8, parts: tb.parts, log: discardLogger(),
			observers: []gateway.Observer{first}, acct: tb.acct})
	}()
	select {
	case err := <-errc:
		require.NoError(t, err, "a graceful stop is not an error")
	case <-time.After(120 * testTimeoutScale()):
		t.Fatalf("the first run did not stop; %d handled", first.count())
	}
	n1 := first.count()
	require.GreaterOrEqual(t, n1, stopAt)
	require.Less(t, n1, total, "the stop came too late to test anything")

	offsets, err := kafka.AdminConfig{Brokers: tb.brokers}.GroupOffsets(t.Context(), group, tb.sources...)
	require.NoError(t, err)
	var committed int64
	for _, o := range offsets {
		committed += max(o.Committed, 0)
	}
	assert.Equal(t, int64(n1), committed, "the commit covers exactly the records handled before the stop")

	// Second process, same group: handles exactly the rest.
	second := &handledLog{seen: map[string]int{}}
	tb.runUntil(t, group, int64(total-n1), nil, second)
	for k, c := range second.seen {
		assert.Equal(t, 1, c, "%s handled twice by the second run", k)
		assert.Zero(t, first.seen[k], "%s handled again after a clean stop", k)
	}
	assert.Len(t, first.seen, n1, "the first run handled each record once")
	assert.Equal(t, total, len(first.seen)+len(second.seen), "every record was handled")

	// What recipients got: each (event, recipient) at most once.
	got := readAll(t, tb.brokers, recipientTopics(tb.parts.recipients)...)
	seen := map[string]bool{}
	deliveries := 0
	for _, r := range tb.parts.recipients {
		for _, rec := range got[r.Topic] {
			k := rec.Headers[gateway.HeaderEventID] + "→" + r.ID
			assert.False(t, seen[k], "duplicate delivery %s after a clean stop", k)
			seen[k] = true
			deliveries++
		}
	}
	assert.Positive(t, deliveries)
	offsets, err = kafka.AdminConfig{Brokers: tb.brokers}.GroupOffsets(t.Context(), group, tb.sources...)
	require.NoError(t, err)
	for _, o := range offsets {
		assert.Zero(t, o.Remaining(), "%s/%d not fully committed", o.Topic, o.Partition)
	}
}
