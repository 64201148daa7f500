package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/gatewaytest"
)

// The audit rule: an event's audit records are acknowledged before any of
// its deliveries is written, and the offset is acked only after both.
func TestPipelineWritesAuditRecordsAhead(t *testing.T) {
	var mu sync.Mutex
	var order []string // topic of every record in the order the sink saw them
	sink := &gatewaytest.MemSink{Fail: func(d gateway.Disclosure, _ int) error {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, d.Topic)
		return nil
	}}
	src := gatewaytest.NewMemSource(true, msgs("e1")...)
	run(t, src, gatewaytest.DeciderFunc(allowAll), redactor(), sink,
		[]*gateway.Recipient{recipient("a"), recipient("b")}, gateway.WithAuditor(auditor{}))

	require.Equal(t, []string{"audit", "audit", "out.a", "out.b"}, order, "audit records first, in one write")
	assert.Equal(t, map[int64]int{1: 1}, src.Acked())
}

// auditCounter counts Records calls and can be told to fail the writes.
type auditCounter struct {
	mu    sync.Mutex
	calls []*gateway.AuditInput
}

func (a *auditCounter) Records(in *gateway.AuditInput) ([]gateway.Disclosure, error) {
	a.mu.Lock()
	a.calls = append(a.calls, in)
	a.mu.Unlock()
	return auditor{}.Records(in)
}

func (a *auditCounter) Calls() []*gateway.AuditInput {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*gateway.AuditInput(nil), a.calls...)
}

// auditFailingSink fails every audit record and writes the rest;
// attempted is closed at the first audit write.
func auditFailingSink() (sink *gatewaytest.MemSink, attempted chan struct{}) {
	attempted = make(chan struct{})
	var once sync.Once
	return &gatewaytest.MemSink{Fail: func(d gateway.Disclosure, _ int) error {
		if d.Topic == "audit" {
			once.Do(func() { close(attempted) })
			return gatewaytest.ErrInjected
		}
		return nil
	}}, attempted
}

// runUntilAuditFails runs one worker over src, with aud, on a sink that
// fails every audit record, until the first audit write was attempted;
// then it stops the pipeline and returns the sink.
func runUntilAuditFails(t *testing.T, src gateway.Source, aud gateway.Auditor, r *gateway.Recipient) *gatewaytest.MemSink {
	t.Helper()
	sink, attempted := auditFailingSink()
	ctx, cancel := context.WithCancel(t.Context())
	p, err := gateway.New(src, decoder(), gatewaytest.DeciderFunc(allowAll), redactor(), sink,
		[]*gateway.Recipient{r}, gateway.WithAuditor(aud), gateway.WithWorkers(1),
		gateway.WithRetryBackoff(time.Millisecond, time.Millisecond), gateway.WithDrainTimeout(20*time.Millisecond))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-attempted
	cancel()
	require.NoError(t, <-done)
	return sink
}

func TestPipelineDisclosesNothingBeforeItsAuditIsAcknowledged(t *testing.T) {
	src := gatewaytest.NewMemSource(false, msgs("e1", "e2")...)
	aud := &auditCounter{}
	sink := runUntilAuditFails(t, src, aud, recipient("ok"))

	assert.Empty(t, sink.Topic("out.ok"), "no delivery without an acknowledged audit record")
	assert.Empty(t, src.Acked(), "nothing is acked")
	calls := aud.Calls()
	require.Len(t, calls, 1, "after an unfinished audit write the worker starts no further audit record")
	assert.Equal(t, "e1", calls[0].Event.ID)
}

func TestPipelineCorrectsTheAuditWhenADeliveryIsHeld(t *testing.T) {
	tests := []struct {
		name          string
		failCorrected bool
		wantAcked     map[int64]int
		wantAudit     []string
	}{
		{name: "correction written", wantAcked: map[int64]int{1: 1},
			wantAudit: []string{"e1:down:delivered", "e1:fine:delivered", "e1:down:held:correction"}},
		{name: "correction not written: not acked", failCorrected: true, wantAcked: map[int64]int{},
			wantAudit: []string{"e1:down:delivered", "e1:fine:delivered"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &gatewaytest.MemSink{Fail: func(d gateway.Disclosure, _ int) error {
				if d.Topic == "out.down" || tt.failCorrected && strings.HasSuffix(string(d.Value), ":correction") {
					return gatewaytest.ErrInjected
				}
				return nil
			}}
			src := gatewaytest.NewMemSource(!tt.failCorrected, msgs("e1")...)
			aud := &auditCounter{}
			opts := []gateway.Option{gateway.WithAuditor(aud), gateway.WithSinkAttempts(2),
				gateway.WithRetryBackoff(time.Millisecond, time.Millisecond)}
			if tt.failCorrected {
				ctx, cancel := context.WithCancel(t.Context())
				p, err := gateway.New(src, decoder(), gatewaytest.DeciderFunc(allowAll), redactor(), sink,
					[]*gateway.Recipient{recipient("down"), recipient("fine")},
					append(opts, gateway.WithDrainTimeout(20*time.Millisecond))...)
				require.NoError(t, err)
				done := make(chan error, 1)
				go func() { done <- p.Run(ctx) }()
				require.Eventually(t, func() bool { return len(aud.Calls()) == 2 }, 10*time.Second, time.Millisecond)
				cancel()
				require.NoError(t, <-done)
			} else {
				run(t, src, gatewaytest.DeciderFunc(allowAll), redactor(), sink,
					[]*gateway.Recipient{recipient("down"), recipient("fine")}, opts...)
			}
			var got []string
			for _, d := range sink.Topic("audit") {
				got = append(got, string(d.Value))
			}
			assert.Equal(t, tt.wantAudit, got)
			assert.Equal(t, tt.wantAcked, src.Acked())
			calls := aud.Calls()
			require.Len(t, calls, 2)
			assert.True(t, calls[1].Correction)
			assert.Same(t, calls[0].Event, calls[1].Event)
			assert.Equal(t, calls[0].Worker, calls[1].Worker, "a correction joins the worker's chain")
			require.Len(t, calls[1].Results, 1, "only the corrected recipient")
			assert.Equal(t, "down", calls[1].Results[0].Recipient.ID)
			assert.Equal(t, gateway.ReasonSink, calls[1].Results[0].Reason)
		})
	}
}

// chainChecker plays a per-worker hash chain: it fails the test if a
// worker's Records call overlaps another of the same worker, or comes
// before the previous call's records were acknowledged.
type chainChecker struct {
	t       *testing.T
	sink    *gatewaytest.MemSink
	workers int

	mu       sync.Mutex
	busy     map[int]bool
	last     map[int]string
	problems []string
}

func (c *chainChecker) Records(in *gateway.AuditInput) ([]gateway.Disclosure, error) {
	c.mu.Lock()
	if in.Worker < 0 || in.Worker >= c.workers {
		c.problems = append(c.problems, fmt.Sprintf("worker %d out of range", in.Worker))
	}
	if c.busy[in.Worker] {
		c.problems = append(c.problems, fmt.Sprintf("worker %d: overlapping Records calls", in.Worker))
	}
	c.busy[in.Worker] = true
	prev := c.last[in.Worker]
	c.mu.Unlock()

	if prev != "" {
		found := false
		for _, d := range c.sink.Topic("audit") {
			if string(d.Value) == prev {
				found = true
			}
		}
		if !found {
			c.mu.Lock()
			c.problems = append(c.problems, fmt.Sprintf("worker %d: %s not acknowledged before the next call", in.Worker, prev))
			c.mu.Unlock()
		}
	}
	v := fmt.Sprintf("w%d:%s", in.Worker, in.Event.ID)
	c.mu.Lock()
	c.last[in.Worker] = v
	c.busy[in.Worker] = false
	c.mu.Unlock()
	return []gateway.Disclosure{{Topic: "audit", Key: []byte(fmt.Sprint(in.Worker)), Value: []byte(v)}}, nil
}

func TestPipelineSerialisesAuditRecordsPerWorker(t *testing.T) {
	var ms []gateway.Message
	for i := range 200 {
		ms = append(ms, gateway.Message{Topic: "src", Partition: i % 3, Offset: int64(i + 1),
			Key: []byte(fmt.Sprintf("p%d", i%17)), Value: []byte(fmt.Sprintf("e%03d", i))})
	}
	sink := &gatewaytest.MemSink{}
	c := &chainChecker{t: t, sink: sink, workers: 4, busy: map[int]bool{}, last: map[int]string{}}
	run(t, gatewaytest.NewMemSource(true, ms...), gatewaytest.DeciderFunc(allowAll), redactor(), sink,
		[]*gateway.Recipient{recipient("ok")}, gateway.WithAuditor(c), gateway.WithWorkers(4))

	assert.Empty(t, c.problems)
	assert.Len(t, sink.Topic("audit"), 200)
	workers := map[string]bool{}
	for _, d := range sink.Topic("audit") {
		workers[string(d.Key)] = true
	}
	assert.Greater(t, len(workers), 1, "events spread over several workers")
}

// recycler is an AuditRecycler that notes what the pipeline hands back.
type recycler struct {
	auditCounter
	mu       sync.Mutex
	recycled []string // "worker:value" of every record handed back
}

func (r *recycler) Recycle(worker int, recs []gateway.Disclosure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range recs {
		r.recycled = append(r.recycled, fmt.Sprintf("%d:%s", worker, d.Value))
	}
}

func (r *recycler) Recycled() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.recycled...)
}

// The pipeline hands audit records back to an AuditRecycler once the sink
// acknowledged them, and never records whose write did not complete: a
// request still in flight may read those.
func TestPipelineHandsAuditRecordsBackOnceAcknowledged(t *testing.T) {
	t.Run("acknowledged", func(t *testing.T) {
		sink := &gatewaytest.MemSink{}
		aud := &recycler{}
		run(t, gatewaytest.NewMemSource(true, msgs("e1", "e2")...), gatewaytest.DeciderFunc(allowAll), redactor(), sink,
			[]*gateway.Recipient{recipient("a")}, gateway.WithAuditor(aud), gateway.WithWorkers(1))
		assert.Equal(t, []string{"0:e1:a:delivered", "0:e2:a:delivered"}, aud.Recycled())
		var written []string
		for _, d := range sink.Topic("audit") {
			written = append(written, string(d.Value))
		}
		assert.Equal(t, []string{"e1:a:delivered", "e2:a:delivered"}, written)
	})
	t.Run("not acknowledged", func(t *testing.T) {
		aud := &recycler{}
		runUntilAuditFails(t, gatewaytest.NewMemSource(false, msgs("e1")...), aud, recipient("a"))
		require.Len(t, aud.Calls(), 1)
		assert.Empty(t, aud.Recycled(), "a record whose write did not complete is never handed back")
	})
}
