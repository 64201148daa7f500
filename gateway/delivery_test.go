package gateway_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/gatewaytest"
)

// Delivery guarantees of the pipeline: recipient filtering for redrive,
// header checks, the in-flight bound and draining on shutdown.

func TestPipelineConsidersOnlyTheRecipientsAMessageNames(t *testing.T) {
	tests := []struct {
		name       string
		recipients []string
		want       []string // recipients with a delivery
	}{
		{name: "nil: every recipient", recipients: nil, want: []string{"a", "b", "c"}},
		{name: "a redriven held record", recipients: []string{"b"}, want: []string{"b"}},
		{name: "two named", recipients: []string{"c", "a"}, want: []string{"a", "c"}},
		{name: "unknown id: none", recipients: []string{"gone"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := msgs("e1")
			ms[0].Recipients = tt.recipients
			src := gatewaytest.NewMemSource(true, ms...)
			sink := &gatewaytest.MemSink{}
			res := run(t, src, gatewaytest.DeciderFunc(allowAll), redactor(), sink,
				[]*gateway.Recipient{recipient("a"), recipient("b"), recipient("c")})

			var got []string
			for _, id := range []string{"a", "b", "c"} {
				if n := len(sink.Topic("out." + id)); n > 0 {
					assert.Equal(t, 1, n)
					got = append(got, id)
				}
			}
			assert.Equal(t, tt.want, got)
			require.Len(t, res, 1)
			assert.Len(t, res[0].Recipients, len(tt.want), "results name only the recipients considered")
			assert.Equal(t, map[int64]int{1: 1}, src.Acked())
		})
	}
}

func TestPipelineDeadLettersBadHeaders(t *testing.T) {
	tests := []struct {
		name    string
		headers []gateway.Header
		bad     bool
	}{
		{name: "empty key", headers: []gateway.Header{{Key: "", Value: []byte("x")}}, bad: true},
		{name: "key not UTF-8", headers: []gateway.Header{{Key: "k\xff\xfe", Value: []byte("x")}}, bad: true},
		{name: "control character in key", headers: []gateway.Header{{Key: "a\x00b", Value: nil}}, bad: true},
		{name: "forged recipient", headers: []gateway.Header{{Key: gateway.HeaderRecipient, Value: []byte("kz-police")}}, bad: true},
		{name: "forged event id, other case", headers: []gateway.Header{{Key: "DGW-Event-Id", Value: []byte("e0")}}, bad: true},
		{name: "binary value of an ordinary header", headers: []gateway.Header{{Key: "x-app", Value: []byte{0, 0xff, 0xc3, 0x01}}}, bad: false},
		{name: "garbage traceparent", headers: []gateway.Header{{Key: "traceparent", Value: []byte("00-zz-\xff")}}, bad: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := msgs("e1")
			ms[0].Headers = append([]gateway.Header{{Key: "x-origin", Value: []byte("crs")}}, tt.headers...)
			src := gatewaytest.NewMemSource(true, ms...)
			sink := &gatewaytest.MemSink{}
			res := run(t, src, gatewaytest.DeciderFunc(allowAll), redactor(), sink, []*gateway.Recipient{recipient("ok")})
			require.Len(t, res, 1)
			assert.Equal(t, map[int64]int{1: 1}, src.Acked())
			dead := sink.Topic("dgw.deadletter")
			if !tt.bad {
				assert.Empty(t, dead)
				assert.Len(t, sink.Topic("out.ok"), 1, "header values are opaque: the record is delivered")
				return
			}
			assert.Empty(t, sink.Topic("out.ok"), "nothing is forwarded")
			assert.Equal(t, gateway.ReasonBadHeader, res[0].DeadLetter)
			require.Len(t, dead, 1)
			assert.Equal(t, string(gateway.ReasonBadHeader), gatewaytest.Header(dead[0], gateway.HeaderReason))
			assert.Contains(t, gatewaytest.Header(dead[0], gateway.HeaderReasonDetail), "header 1")
			assert.Equal(t, "e1", string(dead[0].Value), "the source bytes are kept")
			assert.Equal(t, "crs", gatewaytest.Header(dead[0], "x-origin"), "well-formed headers are kept")
			own := map[string]bool{gateway.HeaderReason: true, gateway.HeaderReasonDetail: true,
				gateway.HeaderSourceTopic: true, gateway.HeaderSourcePartition: true, gateway.HeaderSourceOffset: true}
			for _, h := range dead[0].Headers {
				if !own[h.Key] {
					assert.NoError(t, gateway.CheckHeaders([]gateway.Header{{Key: h.Key}}), "a malformed or forged header %q reached the dead-letter topic", h.Key)
				}
			}
			assert.Empty(t, gatewaytest.Header(dead[0], gateway.HeaderRecipient), "a forged recipient does not survive")
		})
	}
}

// countingSource hands out numbered messages and counts the events in
// flight: read and not yet acked, and their bytes.
type countingSource struct {
	mu       sync.Mutex
	cond     *sync.Cond
	n        int // messages available
	size     func(i int) int
	reads    int
	inflight int
	max      int
	acked    int
	bytes    int
	maxBytes int
}

func newCountingSource(n int) *countingSource {
	s := &countingSource{n: n}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *countingSource) Read(ctx context.Context) (gateway.Message, gateway.AckFunc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reads == s.n {
		return gateway.Message{}, nil, gateway.ErrClosed
	}
	s.reads++
	s.inflight++
	s.max = max(s.max, s.inflight)
	s.cond.Broadcast()
	m := gateway.Message{Topic: "src", Offset: int64(s.reads), Key: []byte("k" + strconv.Itoa(s.reads%7)), Value: []byte("e" + strconv.Itoa(s.reads))}
	if s.size != nil {
		m.Value = append(m.Value, make([]byte, s.size(s.reads))...)
	}
	size := len(m.Key) + len(m.Value)
	s.bytes += size
	s.maxBytes = max(s.maxBytes, s.bytes)
	var once sync.Once
	return m, func(context.Context) error {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.bytes -= size
			s.inflight--
			s.acked++
			s.cond.Broadcast()
		})
		return nil
	}, nil
}

func (s *countingSource) Close(context.Context) error { return nil }

// waitReads blocks until at least n messages were read.
func (s *countingSource) waitReads(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.reads < n {
		s.cond.Wait()
	}
}

func (s *countingSource) snapshot() (reads, inflight, maxInflight, acked int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads, s.inflight, s.max, s.acked
}

// assertEveryEventAcked checks that src's events were all read, handled
// and acked, and returns the most that were in flight at once.
func assertEveryEventAcked(t *testing.T, src *countingSource) (maxInflight int) {
	t.Helper()
	reads, inflight, maxInflight, acked := src.snapshot()
	assert.Equal(t, src.n, reads)
	assert.Equal(t, reads, acked, "every event read is handled and acked")
	assert.Zero(t, inflight)
	return maxInflight
}

// gatedSink lets one Write through per permit, or all once opened; when
// entered is set, every Write first says it started.
type gatedSink struct {
	gatewaytest.MemSink
	permits chan struct{}
	open    chan struct{}
	once    sync.Once
	entered chan struct{}
}

func newGatedSink() *gatedSink {
	return &gatedSink{permits: make(chan struct{}), open: make(chan struct{})}
}

func (s *gatedSink) Write(ctx context.Context, ds ...gateway.Disclosure) error {
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	select {
	case <-s.permits:
	case <-s.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.MemSink.Write(ctx, ds...)
}

func (s *gatedSink) openAll() { s.once.Do(func() { close(s.open) }) }

func TestPipelineBoundsEventsInFlight(t *testing.T) {
	tests := []struct{ workers, queue int }{
		{1, 0}, {1, 3}, {3, 2},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.workers)+"x"+strconv.Itoa(tt.queue), func(t *testing.T) {
			bound := tt.workers * (tt.queue + 1)
			const cycles = 40
			src := newCountingSource(bound + cycles + 50)
			sink := newGatedSink()
			p, err := gateway.New(src, decoder(), gatewaytest.DeciderFunc(allowAll), redactor(), sink,
				[]*gateway.Recipient{recipient("ok")}, gateway.WithWorkers(tt.workers), gateway.WithQueue(tt.queue))
			require.NoError(t, err)
			done := make(chan error, 1)
			go func() { done <- p.Run(t.Context()) }()

			if tt.workers == 1 {
				// One worker: the reader fills the worker and its queue,
				// then must wait. Each permit finishes one event, after
				// which exactly one more may be read.
				for c := range cycles {
					src.waitReads(bound + c)
					sink.permits <- struct{}{}
				}
			}
			sink.openAll()
			require.NoError(t, <-done)
			maxInflight := assertEveryEventAcked(t, src)
			assert.LessOrEqual(t, maxInflight, bound, "events in flight exceeded workers × (queue+1)")
			if tt.workers == 1 {
				assert.Equal(t, bound, maxInflight, "the backlog filled the window")
			}
			assert.Len(t, sink.Topic("out.ok"), src.n)
		})
	}
}

// TestPipelineBoundsBytesInFlight: records are handed to workers only
// while their bytes fit the budget, whatever the number of workers; a
// record larger than the budget goes alone. Nothing is lost either way.
func TestPipelineBoundsBytesInFlight(t *testing.T) {
	const budget = 10_000
	tests := []struct {
		name string
		size func(i int) int
		// held: the most records handed over at once; largest: the
		// largest record's value.
		held, largest int
	}{
		{"4 KB records", func(int) int { return 4_000 }, 2, 4_000},
		{"every fifth record over the budget", func(i int) int {
			if i%5 == 0 {
				return 3 * budget
			}
			return 1_000
		}, 9, 3 * budget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newCountingSource(60)
			src.size = tt.size
			sink := newGatedSink()
			p, err := gateway.New(src, decoder(), gatewaytest.DeciderFunc(allowAll), redactor(), sink,
				[]*gateway.Recipient{recipient("ok")}, gateway.WithWorkers(8), gateway.WithQueue(2),
				gateway.WithMaxInFlightBytes(budget))
			require.NoError(t, err)
			done := make(chan error, 1)
			go func() { done <- p.Run(t.Context()) }()
			// With every write held, the reader stops at the budget, not at
			// the 24 events the workers and queues could take.
			src.waitReads(1)
			for range 40 {
				sink.permits <- struct{}{}
			}
			sink.openAll()
			require.NoError(t, <-done)
			maxInflight := assertEveryEventAcked(t, src)
			// The source counts from Read: the records handed over, and
			// the one the reader holds while it waits for room.
			assert.LessOrEqual(t, maxInflight, tt.held+1, "more records in flight than their bytes allow")
			src.mu.Lock()
			maxBytes := src.maxBytes
			src.mu.Unlock()
			assert.LessOrEqual(t, maxBytes, budget+tt.largest+16, "bytes in flight exceed the budget and one waiting record")
			assert.Len(t, sink.Topic("out.ok"), src.n)
		})
	}
}

func TestPipelineDrainsInFlightEventsOnCancel(t *testing.T) {
	const workers, queue = 2, 3
	bound := workers * (queue + 1)
	src := newCountingSource(1000)
	sink := newGatedSink()
	ctx, cancel := context.WithCancel(t.Context())
	p, err := gateway.New(src, decoder(), gatewaytest.DeciderFunc(allowAll), redactor(), sink,
		[]*gateway.Recipient{recipient("ok")}, gateway.WithWorkers(workers), gateway.WithQueue(queue),
		gateway.WithDrainTimeout(time.Minute))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	// The sink is shut, so nothing finishes: wait for some events to be
	// read (some in the workers, some queued), then stop, as SIGTERM does.
	src.waitReads(workers)
	cancel()
	sink.openAll()
	require.NoError(t, <-done)

	reads, inflight, _, acked := src.snapshot()
	assert.LessOrEqual(t, reads, bound)
	assert.Equal(t, reads, acked, "everything read before the stop is finished and acked")
	assert.Zero(t, inflight)
	assert.Len(t, sink.Topic("out.ok"), reads, "and delivered")
}

// keyGatedSink holds every write of the events "a…" until released, and
// says when it has written want records of the others.
type keyGatedSink struct {
	gatewaytest.MemSink
	release chan struct{}
	mu      sync.Mutex
	others  int
	want    int
	done    chan struct{}
}

func (s *keyGatedSink) Write(ctx context.Context, ds ...gateway.Disclosure) error {
	for _, d := range ds {
		if fromA(d) {
			select {
			case <-s.release:
			case <-ctx.Done():
				return ctx.Err()
			}
			break
		}
	}
	if err := s.MemSink.Write(ctx, ds...); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		if !fromA(d) {
			s.others++
			if s.others == s.want {
				close(s.done)
			}
		}
	}
	return nil
}

// fromA tells a delivery of an event "a…" (redactor() writes "<recipient>:<event id>").
func fromA(d gateway.Disclosure) bool { return strings.HasPrefix(string(d.Value), "ok:a") }

// TestPipelineBusyWorkerHoldsUpNoOther: a worker whose writes wait keeps
// its events in its own queue, and the reader goes on with the other
// workers' events for as long as the window has room. (When the queues
// had a fixed length, the reader waited for the busy worker's queue and
// every other worker waited with it.)
func TestPipelineBusyWorkerHoldsUpNoOther(t *testing.T) {
	// Two workers and a window of 2 × (2+1) = 6 events. Keys "A" and "B"
	// go to different workers (FNV-1a of one byte keeps its parity).
	const workers, queue, busy, others = 2, 2, 5, 30
	var ms []gateway.Message
	for i := range busy {
		ms = append(ms, gateway.Message{Topic: "src", Offset: int64(len(ms) + 1), Key: []byte("A"), Value: []byte("a" + strconv.Itoa(i))})
	}
	for i := range others {
		ms = append(ms, gateway.Message{Topic: "src", Offset: int64(len(ms) + 1), Key: []byte("B"), Value: []byte("b" + strconv.Itoa(i))})
	}
	src := gatewaytest.NewMemSource(true, ms...)
	sink := &keyGatedSink{release: make(chan struct{}), want: others, done: make(chan struct{})}
	p, err := gateway.New(src, decoder(), gatewaytest.DeciderFunc(allowAll), redactor(), sink,
		[]*gateway.Recipient{recipient("ok")}, gateway.WithWorkers(workers), gateway.WithQueue(queue))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- p.Run(t.Context()) }()

	select {
	case <-sink.done:
	case err := <-done:
		t.Fatalf("the pipeline stopped early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the events of the idle worker waited for the busy worker's writes")
	}
	for _, d := range sink.Topic("out.ok") {
		assert.False(t, fromA(d), "a held write went through")
	}
	close(sink.release)
	require.NoError(t, <-done)

	var order []string
	for _, d := range sink.Topic("out.ok") {
		if fromA(d) {
			order = append(order, string(d.Value))
		}
	}
	assert.Equal(t, []string{"ok:a0", "ok:a1", "ok:a2", "ok:a3", "ok:a4"}, order, "the busy worker's events keep their order")
	acked := src.Acked()
	assert.Len(t, acked, busy+others, "every event is acked")
}
