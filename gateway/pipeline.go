package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Outcome is what happened for one (event, recipient).
type Outcome string

// Outcomes of a recipient decision.
const (
	OutcomeDelivered Outcome = "delivered" // a redacted record was acknowledged on the recipient's topic
	OutcomeRefused   Outcome = "refused"   // the policy refused; nothing was sent
	OutcomeHeld      Outcome = "held"      // could not decide or deliver; parked in the held topic
)

// RecipientResult is the outcome for one recipient of one event.
type RecipientResult struct {
	Recipient *Recipient
	Outcome   Outcome
	Decision  Decision // zero when the decision itself failed
	Reason    Reason   // for held results
	Err       error    // for held results; never holds field values
	Schema    uint64   // fingerprint of the recipient schema, for deliveries
}

// EventResult reports how one source record was handled. It is handed to
// observers after the record is acknowledged. It carries no field values.
// The worker that handled the record reuses it, Recipients included, for
// its next record: an observer that keeps it past Observe keeps a Clone.
type EventResult struct {
	Topic      string
	Partition  int
	Offset     int64
	EventID    string // empty when the record could not be decoded
	EventType  string
	SourceTime time.Time
	DeadLetter Reason // non-empty when the whole record was dead-lettered
	Err        error  // the dead-letter cause
	Recipients []RecipientResult
}

// Clone returns a copy of r that its worker does not reuse.
func (r *EventResult) Clone() *EventResult {
	c := *r
	c.Recipients = slices.Clone(r.Recipients)
	return &c
}

// Observer receives every handled record, e.g. to count, audit or report.
// Observe is called from worker goroutines concurrently and must not block,
// nor keep r after it returns (EventResult.Clone).
type Observer interface {
	Observe(r *EventResult)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(r *EventResult)

// Observe calls f(r).
func (f ObserverFunc) Observe(r *EventResult) { f(r) }

// AuditInput is what an Auditor records about one handled event.
type AuditInput struct {
	// Worker is the index of the pipeline worker that handled the event.
	// Records is never called for one worker while an earlier call for it
	// is still running or its records are not yet acknowledged: a worker
	// calls Records again only after the broker acknowledged every record
	// of its previous call, and stops calling it once a write could not be
	// completed. The records of one worker therefore reach the broker in
	// the order Records returned them, with no gap, which lets an auditor
	// keep one hash chain per worker.
	Worker int
	// TraceID is the W3C trace id of the event's trace (32 hex digits), or
	// empty when the event is not traced.
	TraceID string
	Event   *Event
	// Results holds one result per recipient, refusals and held ones
	// included; for a correction only the corrected recipients.
	Results []RecipientResult
	// Correction is set on a second call for the same event by the same
	// worker, made after the deliveries were written: Results then holds
	// only recipients first recorded as delivered whose delivery could not
	// be written and was held instead.
	Correction bool
}

// AuditRecycler is an Auditor that reuses the bytes of its records: the
// pipeline hands an event's audit records back once the sink acknowledged
// them (a Sink keeps no record's bytes past a Write that returned nil), and
// never hands back records whose write did not complete.
type AuditRecycler interface {
	Recycle(worker int, recs []Disclosure)
}

// Auditor turns an event's decisions into audit records.
//
// The pipeline writes an event's audit records before anything of the
// event reaches a recipient (write-ahead) and retries them until they are
// acknowledged: a disclosure never exists without its audit record, and
// the source offset is committed only after both. If Records fails, every
// delivery of the event is held instead. Records must not block; the
// records it returns carry no field values.
type Auditor interface {
	Records(in *AuditInput) ([]Disclosure, error)
}

// Option configures a Pipeline.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	workers          int
	queue            int
	maxInFlightBytes int64
	deadLetter       string
	held             string
	logger           *slog.Logger
	observers        []Observer
	auditor          Auditor
	drainTimeout     time.Duration
	retryMin         time.Duration
	retryMax         time.Duration
	sinkAttempts     int
	recipientList    []*Recipient

	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	propagator     propagation.TextMapPropagator
}

// DefaultWorkers and DefaultQueue are the pipeline's defaults, and dgw
// run's. A worker handles one event at a time, and each event waits for
// two acknowledged writes in turn (its audit entry, then its deliveries),
// so one worker handles at most one event per two round trips to the
// brokers: the workers are the writes in flight, and they must cover the
// round trip times the rate (128 events in flight at 2 ms round trips is
// 32,000 events/s). More workers also fill each produce request with
// more records. Memory is bounded by workers × (queue+1) events.
const (
	DefaultWorkers = 128
	DefaultQueue   = 4
)

// DefaultMaxInFlightBytes bounds the record bytes (key and value) of the
// events in flight, whatever their count: 128 × 5 events of 1 MiB would
// otherwise be 640 MiB of records before their decoded and redacted
// copies. Events of a few KB never reach it.
const DefaultMaxInFlightBytes = 64 << 20

// WithWorkers sets the number of concurrent workers. Events with the same
// key always go to the same worker, which keeps per-key order in every
// recipient topic. Default DefaultWorkers.
func WithWorkers(n int) Option { return optionFunc(func(c *config) { c.workers = n }) }

// WithQueue sets the events in flight per worker beyond the one it handles:
// workers × (queue+1) bounds the events in flight, and so memory, whatever
// the backlog. The bound is shared: a busy worker's events wait in its own
// queue, which may take any part of the window, so the reader goes on with
// the other workers' records until the whole window is in use. Default
// DefaultQueue.
func WithQueue(n int) Option { return optionFunc(func(c *config) { c.queue = n }) }

// WithMaxInFlightBytes bounds the record bytes (key and value) of the
// events in flight besides their number: a record is handed to its worker
// only when the bytes in flight leave room for it. A record larger than n
// waits until nothing else is in flight, then goes alone. Default
// DefaultMaxInFlightBytes.
func WithMaxInFlightBytes(n int64) Option {
	return optionFunc(func(c *config) { c.maxInFlightBytes = n })
}

// WithDeadLetterTopic names the topic for undecodable records. Default dgw.deadletter.
func WithDeadLetterTopic(t string) Option { return optionFunc(func(c *config) { c.deadLetter = t }) }

// WithHeldTopic names the topic for records that could not be decided or
// delivered for a recipient. Default dgw.held.
func WithHeldTopic(t string) Option { return optionFunc(func(c *config) { c.held = t }) }

// WithLogger sets the logger. Default discards.
func WithLogger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.logger = l }) }

// WithObserver adds an observer.
func WithObserver(o Observer) Option {
	return optionFunc(func(c *config) { c.observers = append(c.observers, o) })
}

// WithAuditor sets the auditor whose records join every event's write.
func WithAuditor(a Auditor) Option { return optionFunc(func(c *config) { c.auditor = a }) }

// WithDrainTimeout bounds how long Run keeps working on queued events after
// its context is cancelled. Events not finished by then are not acked and
// so not committed: they are read again after a restart. Default 30s.
func WithDrainTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.drainTimeout = d })
}

// WithRetryBackoff sets the backoff between attempts to write parked
// records. Parking is retried until it succeeds or the drain timeout ends.
func WithRetryBackoff(min, max time.Duration) Option {
	return optionFunc(func(c *config) { c.retryMin, c.retryMax = min, max })
}

// WithSinkAttempts sets how many times a failed delivery is written again
// before the recipient's copy is held. Default 3.
func WithSinkAttempts(n int) Option { return optionFunc(func(c *config) { c.sinkAttempts = n }) }

func (c *config) validate() error {
	if c.workers <= 0 {
		return fmt.Errorf("workers must be positive, got %d", c.workers)
	}
	if c.queue < 0 {
		return fmt.Errorf("queue must not be negative, got %d", c.queue)
	}
	if c.maxInFlightBytes <= 0 {
		return fmt.Errorf("max in-flight bytes must be positive, got %d", c.maxInFlightBytes)
	}
	if c.deadLetter == "" || c.held == "" {
		return errors.New("dead-letter and held topics must be named")
	}
	if c.retryMin <= 0 || c.retryMax < c.retryMin {
		return fmt.Errorf("retry backoff: need 0 < min <= max, got %s..%s", c.retryMin, c.retryMax)
	}
	if c.sinkAttempts <= 0 {
		return fmt.Errorf("sink attempts must be positive, got %d", c.sinkAttempts)
	}
	seenID := map[string]bool{}
	seenTopic := map[string]bool{c.deadLetter: true, c.held: true}
	for _, r := range c.recipientList {
		if r == nil || r.ID == "" || r.Topic == "" {
			return errors.New("every recipient needs an id and a topic")
		}
		if seenID[r.ID] {
			return fmt.Errorf("recipient %s registered twice", r.ID)
		}
		if seenTopic[r.Topic] {
			return fmt.Errorf("recipient %s: topic %s is used twice", r.ID, r.Topic)
		}
		seenID[r.ID], seenTopic[r.Topic] = true, true
	}
	return nil
}

// Pipeline reads source records, decides and redacts per recipient, writes
// the recipients' records, parks what it cannot handle, and acks a record
// only when everything written for it is acknowledged.
type Pipeline struct {
	src        Source
	dec        Decoder
	decider    Decider
	red        Redactor
	sink       Sink
	recipients []*Recipient
	cfg        config
	log        *slog.Logger
	tel        *instruments
	consumed   sync.Map // source topic → []metric.AddOption
	// started is when New ran: time.Since(started) reads the monotonic
	// clock only, half the cost of time.Now, for every decision's duration.
	started time.Time
}

// New builds a pipeline. recipients is the registry: every event is
// considered for every recipient, in the given order.
func New(src Source, dec Decoder, decider Decider, red Redactor, sink Sink, recipients []*Recipient, opts ...Option) (*Pipeline, error) {
	if src == nil || dec == nil || decider == nil || red == nil || sink == nil {
		return nil, errors.New("pipeline: source, decoder, decider, redactor and sink are required")
	}
	cfg := config{
		workers:          DefaultWorkers,
		queue:            DefaultQueue,
		maxInFlightBytes: DefaultMaxInFlightBytes,
		deadLetter:       "dgw.deadletter",
		held:             "dgw.held",
		drainTimeout:     30 * time.Second,
		retryMin:         100 * time.Millisecond,
		retryMax:         5 * time.Second,
		sinkAttempts:     3,
		recipientList:    recipients,
	}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	log := cfg.logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	tel, err := newInstruments(&cfg)
	if err != nil {
		return nil, fmt.Errorf("pipeline: telemetry: %w", err)
	}
	return &Pipeline{src: src, dec: dec, decider: decider, red: red, sink: sink,
		recipients: recipients, cfg: cfg, log: log, tel: tel, started: time.Now()}, nil
}

type job struct {
	msg Message
	ack AckFunc
	// bytes is what the job holds of the in-flight byte budget.
	bytes int64
}

// Run processes records until ctx is cancelled or the source is closed, then
// drains queued work (bounded by the drain timeout) and returns. It does not
// close the source or the sink: their owner does, after Run returns, so the
// source can commit what was acked.
func (p *Pipeline) Run(ctx context.Context) error {
	// Work continues past ctx's cancellation so queued events can finish;
	// workCtx ends drainTimeout after ctx does.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(p.cfg.drainTimeout, cancelWork)
		context.AfterFunc(workCtx, func() { t.Stop() })
	})
	defer stop()
	// A token is taken before each Read and given back once the event is
	// handled, so at most workers × (queue+1) events are in flight, and
	// memory is bounded, whatever the backlog and however keys are spread.
	tokens := make(chan struct{}, p.cfg.workers*(p.cfg.queue+1))
	// And the record bytes in flight are bounded whatever the records'
	// size.
	queues := make([]*workQueue, p.cfg.workers)
	for i := range queues {
		queues[i] = newWorkQueue()
	}
	work := &inFlight{budget: newByteBudget(p.cfg.maxInFlightBytes), queues: queues}
	unregister, err := p.registerGauges(work)
	if err != nil {
		return fmt.Errorf("pipeline: telemetry: %w", err)
	}
	defer unregister()
	var wg sync.WaitGroup
	for i := range queues {
		wg.Add(1)
		go func(w int, q *workQueue) {
			defer wg.Done()
			ws := &workerScratch{scopes: newScopeMemo()}
			for j, ok := q.pop(); ok; j, ok = q.pop() {
				p.handle(workCtx, w, j, ws)
				work.budget.release(j.bytes)
				work.events.Add(-1)
				<-tokens
			}
		}(i, queues[i])
	}
	var runErr error
	for {
		select {
		case tokens <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		msg, ack, err := p.src.Read(ctx)
		if err != nil {
			if !errors.Is(err, ErrClosed) && ctx.Err() == nil {
				runErr = fmt.Errorf("read source: %w", err)
			}
			break
		}
		work.events.Add(1)
		// A record read is always handed to its worker, even when ctx has
		// ended meanwhile: it is then drained like the others, so a clean
		// stop leaves nothing read-but-unfinished to be read again. The
		// worker frees a slot even after the drain timeout, as handling
		// with an ended work context returns at once.
		// Waited for with the work context, which outlives ctx by the drain
		// timeout: the record is handed over either way (see below), only
		// past the drain timeout without waiting for room.
		n := min(int64(len(msg.Key)+len(msg.Value)), p.cfg.maxInFlightBytes)
		if work.budget.acquire(workCtx, n) != nil {
			n = 0
		}
		queues[p.worker(&msg)].push(job{msg, ack, n})
		if ctx.Err() != nil {
			break
		}
	}
	for _, q := range queues {
		q.close()
	}
	wg.Wait()
	return runErr
}

// byteBudget bounds the bytes in flight. Only the reader acquires, so one
// waiter at a time: release wakes it through a one-slot channel, and it
// checks the room again under the lock.
type byteBudget struct {
	mu   sync.Mutex
	max  int64
	free int64
	wake chan struct{}
}

func newByteBudget(n int64) *byteBudget {
	return &byteBudget{max: n, free: n, wake: make(chan struct{}, 1)}
}

// used is the bytes taken and not given back.
func (b *byteBudget) used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.max - b.free
}

// acquire takes n (at most the budget) once there is room, or returns
// ctx's error.
func (b *byteBudget) acquire(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.free >= n {
			b.free -= n
			b.mu.Unlock()
			return nil
		}
		b.mu.Unlock()
		select {
		case <-b.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *byteBudget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// worker picks the worker of m: FNV-1a of its key, or of its topic and
// partition when it has none. Computed inline: hash/fnv's hasher escapes
// through its interface, an allocation per event.
func (p *Pipeline) worker(m *Message) int {
	const offset32, prime32 = 2166136261, 16777619
	h := uint32(offset32)
	if len(m.Key) > 0 {
		for _, c := range m.Key {
			h = (h ^ uint32(c)) * prime32
		}
	} else {
		for i := range len(m.Topic) {
			h = (h ^ uint32(m.Topic[i])) * prime32
		}
		h = (h ^ uint32(byte(m.Partition>>8))) * prime32
		h = (h ^ uint32(byte(m.Partition))) * prime32
	}
	return int(h % uint32(p.cfg.workers))
}

// workerScratch is what a worker reuses from record to record: its memo of
// scope checks, and the result and the lists one record's handling fills
// (a few KB a record at 16 recipients, a third of what the warm path
// allocated, and so of the collections that lengthen the latency tail).
// Nothing in them outlives the record: they are cleared after it, so no
// decision or record bytes stay reachable from the worker.
type workerScratch struct {
	scopes     *scopeMemo
	res        EventResult
	recipients []RecipientResult
	out        []Disclosure
	owner      []int
}

// start returns the scratch's result for a new record (cleared by done)
// and its empty disclosure lists.
func (ws *workerScratch) start() (*EventResult, []Disclosure, []int) {
	return &ws.res, ws.out[:0], ws.owner[:0]
}

// results is the result list for n recipients.
func (ws *workerScratch) results(n int) []RecipientResult {
	if cap(ws.recipients) < n {
		ws.recipients = make([]RecipientResult, n)
	}
	return ws.recipients[:n]
}

// done clears what one record left, keeping the lists' storage.
func (ws *workerScratch) done(out []Disclosure, owner []int) {
	clear(ws.recipients[:cap(ws.recipients)])
	clear(out[:cap(out)])
	ws.out, ws.owner = out[:0], owner[:0]
	ws.res = EventResult{}
}

// handle processes one record. It acks only when every record written for
// it is acknowledged; when parking fails until the work context ends, the
// record stays unacked and is read again after a restart.
func (p *Pipeline) handle(ctx context.Context, worker int, j job, ws *workerScratch) {
	scopes := ws.scopes
	res, out, owner := ws.start()
	defer func() { ws.done(out, owner) }()
	res.Topic, res.Partition, res.Offset, res.SourceTime = j.msg.Topic, j.msg.Partition, j.msg.Offset, j.msg.Time
	// The trace continues from the publisher's record into every output.
	// The carrier points at a copy of the slice header: a pointer into j
	// would move the whole job to the heap, for every event.
	srcHeaders := j.msg.Headers
	ctx = p.tel.prop.Extract(ctx, HeaderCarrier{&srcHeaders})
	var span trace.Span
	if p.tel.untraced {
		// The no-op tracer's span would be the extracted parent's, as
		// this one is, after building a name and attributes per event.
		span = trace.SpanFromContext(ctx)
	} else {
		ctx, span = p.tel.tracer.Start(ctx, "dgw.consume "+j.msg.Topic, trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(attribute.String("messaging.system", "kafka"),
				attribute.String("messaging.destination.name", j.msg.Topic),
				attribute.Int("messaging.destination.partition.id", j.msg.Partition),
				attribute.Int64("messaging.kafka.offset", j.msg.Offset)))
	}
	defer span.End()
	p.tel.consumed.Add(ctx, 1, p.consumedBy(j.msg.Topic)...)
	var ev *Event
	err := CheckHeaders(j.msg.Headers)
	if err == nil {
		ev, err = p.dec.Decode(j.msg)
	}
	if err != nil {
		reason, ok := ReasonOf(err)
		if !ok {
			reason = ReasonDecode
		}
		res.DeadLetter, res.Err = reason, err
		span.SetAttributes(attribute.String("dgw.outcome", "dead-lettered"), attribute.String("dgw.reason", string(reason)))
		span.SetStatus(codes.Error, string(reason))
		p.log.Warn("dead-lettered record", "topic", j.msg.Topic, "partition", j.msg.Partition,
			"offset", j.msg.Offset, "reason", string(reason), "error", err.Error())
		if !p.writeParked(ctx, p.parked(&j.msg, p.cfg.deadLetter, reason, err, "", "")) {
			return
		}
		p.finish(ctx, j, res)
		return
	}
	res.EventID, res.EventType = ev.ID, ev.Schema.EventType
	if span.IsRecording() {
		span.SetAttributes(attribute.String("dgw.event.id", ev.ID), attribute.String("dgw.event.type", ev.Schema.EventType))
	}
	recipients := p.recipientsFor(&j.msg)
	// One policy revision decides the whole event (DeciderSnapshot).
	decider := p.decider
	if s, ok := decider.(DeciderSnapshot); ok {
		decider = s.Snapshot()
	}
	res.Recipients = ws.results(len(recipients))
	// out holds the records to write, owner the recipient index of each
	// (-1 for a held one); most pairs are refused, so they stay short.
	for i, r := range recipients {
		rr := &res.Recipients[i]
		rr.Recipient = r
		rctx, rspan := p.tel.child(ctx, "dgw.disclose")
		// Attributes are built only for a span that records them: per
		// recipient of every event they would otherwise be allocated and
		// dropped.
		recording := rspan.IsRecording()
		if recording {
			rspan.SetAttributes(attribute.String("dgw.recipient.id", r.ID), attribute.String("dgw.recipient.type", r.Type))
		}
		p.discloseTo(rctx, decider, scopes, &j.msg, ev, r, rr, i, &out, &owner)
		if d := &rr.Decision; recording {
			rspan.SetAttributes(attribute.String("dgw.outcome", string(rr.Outcome)), attribute.String("dgw.policy.revision", d.Revision))
			if d.Transfer.CrossBorder {
				rspan.SetAttributes(attribute.String("dgw.transfer.mechanism", d.Transfer.Mechanism))
			}
		}
		if rr.Outcome == OutcomeHeld {
			rspan.SetAttributes(attribute.String("dgw.reason", string(rr.Reason)))
			rspan.SetStatus(codes.Error, string(rr.Reason))
		}
		rspan.End()
	}
	if p.cfg.auditor != nil {
		// Write-ahead: the audit records are acknowledged before anything
		// of the event reaches a recipient. Once the work context has
		// ended no audit record is started, so a worker's records never
		// follow one whose write was not completed.
		if ctx.Err() != nil {
			span.SetStatus(codes.Error, "not audited before shutdown")
			return
		}
		in := &AuditInput{Worker: worker, TraceID: traceID(span), Event: ev, Results: res.Recipients}
		recs, err := p.cfg.auditor.Records(in)
		if err != nil {
			// Without its audit record no disclosure may happen: hold the
			// deliveries, keep the other parked records.
			p.log.Error("audit records failed; holding deliveries", "event_id", ev.ID, "error", err.Error())
			for k, i := range owner {
				if i >= 0 {
					rr := &res.Recipients[i]
					rr.Outcome, rr.Reason, rr.Err = OutcomeHeld, ReasonSink, err
					out[k] = p.parked(&j.msg, p.cfg.held, ReasonSink, err, rr.Recipient.ID, ev.ID)
					owner[k] = -1
				}
			}
		} else if !p.writeAudit(ctx, worker, recs) {
			span.SetStatus(codes.Error, "audit records not acknowledged before shutdown")
			return
		}
	}
	pctx, pspan := p.producerSpan(ctx, "dgw.produce", len(out))
	ok := p.deliver(pctx, &j.msg, ev, res, out, owner)
	pspan.End()
	if !ok {
		span.SetStatus(codes.Error, "not delivered before shutdown")
		return
	}
	if !p.correctAudit(ctx, worker, span, ev, res, owner) {
		return
	}
	p.finish(ctx, j, res)
}

// correctAudit records, after the deliveries were written, the recipients
// first audited as delivered whose delivery was held instead. It returns
// false when the correction could not be written: the record is then not
// acked and is handled again after a restart.
//
// The recipients audited as delivered are those owner names (owner[k] >=
// 0, in recipient order): discloseTo adds every delivered one, a failed
// audit un-names them as it holds them, and deliver does not change
// owner. Reading it spares a copy of every outcome per event.
func (p *Pipeline) correctAudit(ctx context.Context, worker int, span trace.Span, ev *Event, res *EventResult, owner []int) bool {
	if p.cfg.auditor == nil {
		return true
	}
	var changed []RecipientResult
	for _, i := range owner {
		if i >= 0 && res.Recipients[i].Outcome != OutcomeDelivered {
			changed = append(changed, res.Recipients[i])
		}
	}
	if len(changed) == 0 {
		return true
	}
	if ctx.Err() != nil {
		span.SetStatus(codes.Error, "audit correction not written before shutdown")
		return false
	}
	recs, err := p.cfg.auditor.Records(&AuditInput{Worker: worker, TraceID: traceID(span), Event: ev, Results: changed, Correction: true})
	if err != nil {
		p.log.Error("audit correction failed; the event will be handled again", "event_id", ev.ID, "error", err.Error())
		span.SetStatus(codes.Error, "audit correction failed")
		return false
	}
	if !p.writeAudit(ctx, worker, recs) {
		span.SetStatus(codes.Error, "audit correction not acknowledged before shutdown")
		return false
	}
	return true
}

// writeAudit writes worker's audit records until they are acknowledged or
// ctx ends. Acknowledged, they go back to an AuditRecycler; records whose
// write did not complete are never handed back, since a request still in
// flight may read them.
func (p *Pipeline) writeAudit(ctx context.Context, worker int, recs []Disclosure) bool {
	ctx, span := p.producerSpan(ctx, "dgw.audit", len(recs))
	defer span.End()
	if !p.writeRetrying(ctx, "audit records", recs...) {
		return false
	}
	if r, ok := p.cfg.auditor.(AuditRecycler); ok {
		r.Recycle(worker, recs)
	}
	return true
}

// producerSpan starts the span of a write of n records; untraced, the
// parent's span, without building attributes for the no-op tracer.
func (p *Pipeline) producerSpan(ctx context.Context, name string, n int) (context.Context, trace.Span) {
	if p.tel.untraced {
		return ctx, trace.SpanFromContext(ctx)
	}
	return p.tel.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attribute.Int("dgw.records", n)))
}

// consumedBy returns the attribute option of the consumed counter for a
// source topic, built once per topic: building it per event sorts and
// allocates.
func (p *Pipeline) consumedBy(topic string) []metric.AddOption {
	if o, ok := p.consumed.Load(topic); ok {
		return o.([]metric.AddOption)
	}
	o, _ := p.consumed.LoadOrStore(topic, []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("topic", topic)))})
	return o.([]metric.AddOption)
}

func traceID(span trace.Span) string {
	if sc := span.SpanContext(); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}

// recipientsFor returns the recipients m is considered for: all of them,
// or those m.Recipients names (a redriven held record).
func (p *Pipeline) recipientsFor(m *Message) []*Recipient {
	if m.Recipients == nil {
		return p.recipients
	}
	var out []*Recipient
	for _, r := range p.recipients {
		if slices.Contains(m.Recipients, r.ID) {
			out = append(out, r)
		}
	}
	return out
}

// discloseTo decides, checks and redacts one recipient's copy of ev, sets
// rr, and appends what must be written for it (a delivery or a held
// record) to out. The decision is used where it is kept, in rr: a local
// copy whose address reaches the redactor would be moved to the heap for
// every (event, recipient).
func (p *Pipeline) discloseTo(ctx context.Context, decider Decider, scopes *scopeMemo, msg *Message, ev *Event, r *Recipient, rr *RecipientResult, i int, out *[]Disclosure, owner *[]int) {
	hold := func(reason Reason, err error) {
		rr.Outcome, rr.Reason, rr.Err = OutcomeHeld, reason, err
		p.log.Warn("held for recipient", "event_id", ev.ID, "recipient", r.ID, "reason", string(reason), "error", err.Error())
		*out = append(*out, p.parked(msg, p.cfg.held, reason, err, r.ID, ev.ID))
		*owner = append(*owner, -1)
	}
	var err error
	rr.Decision, err = p.decide(ctx, decider, scopes, ev, r)
	d := &rr.Decision
	if err != nil {
		reason, ok := ReasonOf(err)
		if !ok {
			reason = ReasonPolicy
		}
		hold(reason, err)
		return
	}
	if !d.Allow {
		rr.Outcome = OutcomeRefused
		return
	}
	_, span := p.tel.child(ctx, "dgw.redact")
	val, fp, err := p.red.Redact(ev, r, d)
	span.End()
	if err != nil {
		reason := ReasonRedact
		if errors.Is(err, ErrScopeViolation) {
			reason = ReasonScope
		}
		hold(reason, err)
		return
	}
	rr.Outcome, rr.Schema = OutcomeDelivered, fp
	*out = append(*out, p.delivery(ev, r, d, val, fp))
	*owner = append(*owner, i)
	// The carrier points into out, which is on the heap already.
	p.tel.prop.Inject(ctx, HeaderCarrier{&(*out)[len(*out)-1].Headers})
}

func (p *Pipeline) decide(ctx context.Context, decider Decider, scopes *scopeMemo, ev *Event, r *Recipient) (Decision, error) {
	ctx, span := p.tel.child(ctx, "dgw.decide")
	defer span.End()
	start := time.Since(p.started)
	d, err := decider.Decide(ctx, &ev.Context, r)
	if err != nil {
		span.SetStatus(codes.Error, string(ReasonPolicy))
		return Decision{}, &ParkError{Reason: ReasonPolicy, Recipient: r.ID, Err: err}
	}
	p.tel.decided(ctx, &d, time.Since(p.started)-start)
	if span.IsRecording() {
		span.SetAttributes(attribute.Bool("dgw.decision.allow", d.Allow), attribute.Bool("dgw.decision.cached", d.Cached))
	}
	releases, err := scopes.check(&d, r, ev.Schema.EventType)
	if err != nil {
		return d, &ParkError{Reason: ReasonScope, Recipient: r.ID, Err: err}
	}
	if d.Allow && !releases {
		// Allowed with nothing to release: an empty record tells the
		// recipient only that the passenger exists. Refuse instead.
		// Reasons may be a cached decision's slice, shared with other
		// workers: clipped, the append copies it instead of writing into
		// spare capacity that others' appends write too.
		d.Allow = false
		d.Reasons = append(slices.Clip(d.Reasons), "no field released")
	}
	return d, nil
}

// deliver writes out; deliveries that fail after the configured attempts are
// turned into held records for their recipient. It returns false when the
// records could not all be written or parked before ctx ended.
func (p *Pipeline) deliver(ctx context.Context, msg *Message, ev *Event, res *EventResult, out []Disclosure, owner []int) bool {
	pending := out
	pendingOwner := owner
	for attempt := 1; len(pending) > 0; attempt++ {
		err := p.sink.Write(ctx, pending...)
		if err == nil {
			return true
		}
		var de DeliveryErrors
		failed := make([]int, 0, len(pending))
		if errors.As(err, &de) && len(de) == len(pending) {
			for k, e := range de {
				if e != nil {
					failed = append(failed, k)
				}
			}
		} else {
			for k := range pending {
				failed = append(failed, k)
			}
		}
		next := make([]Disclosure, 0, len(failed))
		nextOwner := make([]int, 0, len(failed))
		for _, k := range failed {
			i := pendingOwner[k]
			if i >= 0 && attempt >= p.cfg.sinkAttempts {
				rr := &res.Recipients[i]
				rr.Outcome, rr.Reason, rr.Err = OutcomeHeld, ReasonSink, err
				p.log.Warn("delivery failed; held", "event_id", ev.ID, "recipient", rr.Recipient.ID, "error", err.Error())
				next = append(next, p.parked(msg, p.cfg.held, ReasonSink, err, rr.Recipient.ID, ev.ID))
				nextOwner = append(nextOwner, -1)
				continue
			}
			next = append(next, pending[k])
			nextOwner = append(nextOwner, i)
		}
		pending, pendingOwner = next, nextOwner
		if !p.sleep(ctx, attempt) {
			return false
		}
	}
	return true
}

// writeParked writes parked records until they are acknowledged or ctx ends.
func (p *Pipeline) writeParked(ctx context.Context, ds ...Disclosure) bool {
	return p.writeRetrying(ctx, "parked record", ds...)
}

// writeRetrying writes ds until every record is acknowledged or ctx ends.
// Records acknowledged by a failed attempt are not written again.
func (p *Pipeline) writeRetrying(ctx context.Context, what string, ds ...Disclosure) bool {
	for attempt := 1; ; attempt++ {
		err := p.sink.Write(ctx, ds...)
		if err == nil {
			return true
		}
		var de DeliveryErrors
		if errors.As(err, &de) && len(de) == len(ds) {
			rest := make([]Disclosure, 0, len(ds))
			for k, e := range de {
				if e != nil {
					rest = append(rest, ds[k])
				}
			}
			ds = rest
		}
		p.log.Error("writing "+what+" failed; retrying", "attempt", attempt, "error", err.Error())
		if !p.sleep(ctx, attempt) {
			return false
		}
	}
}

func (p *Pipeline) sleep(ctx context.Context, attempt int) bool {
	d := p.cfg.retryMin << min(attempt-1, 16)
	if d > p.cfg.retryMax || d <= 0 {
		d = p.cfg.retryMax
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (p *Pipeline) finish(ctx context.Context, j job, res *EventResult) {
	if err := j.ack(ctx); err != nil {
		// Not committed: the record is read again (at-least-once).
		p.log.Error("ack failed", "topic", j.msg.Topic, "partition", j.msg.Partition, "offset", j.msg.Offset, "error", err.Error())
		return
	}
	p.tel.observe(ctx, res, time.Now())
	for _, o := range p.cfg.observers {
		o.Observe(res)
	}
}

func (p *Pipeline) delivery(ev *Event, r *Recipient, d *Decision, val []byte, fp uint64) Disclosure {
	// The header values share one buffer: one allocation instead of one
	// per header, for every record written. Each value is capped, so
	// growing one cannot overwrite the next.
	m := &ev.Msg
	buf := make([]byte, 0, len(ev.ID)+len(ev.Schema.EventType)+32+len(d.Revision)+len(r.ID)+len(m.Topic)+40)
	hs := make([]Header, 0, 10)
	add := func(key string, b []byte) {
		hs = append(hs, Header{key, b[len(buf):len(b):len(b)]})
		buf = b
	}
	add(HeaderEventID, append(buf, ev.ID...))
	add(HeaderEventType, append(buf, ev.Schema.EventType...))
	add(HeaderSchema, appendFingerprintHex(buf, fp))
	add(HeaderSourceSchema, appendFingerprintHex(buf, ev.Schema.Fingerprint))
	add(HeaderPolicyRevision, append(buf, d.Revision...))
	add(HeaderRecipient, append(buf, r.ID...))
	add(HeaderSourceTopic, append(buf, m.Topic...))
	add(HeaderSourcePartition, strconv.AppendInt(buf, int64(m.Partition), 10))
	add(HeaderSourceOffset, strconv.AppendInt(buf, m.Offset, 10))
	return Disclosure{Topic: r.Topic, Key: ev.Msg.Key, Value: val, Headers: hs}
}

// parked builds a dead-letter or held record: the source bytes unchanged,
// the source headers, and why. recipient is set for held records, which are
// redriven for that recipient only.
func (p *Pipeline) parked(m *Message, topic string, reason Reason, err error, recipient, eventID string) Disclosure {
	hs := make([]Header, 0, len(m.Headers)+8)
	for _, h := range m.Headers {
		if checkHeaderKey(h.Key) == nil { // drops dgw's own and malformed headers
			hs = append(hs, h)
		}
	}
	hs = append(hs, Header{HeaderReason, []byte(reason)}, Header{HeaderReasonDetail, []byte(err.Error())})
	if recipient != "" {
		hs = append(hs, Header{HeaderRecipient, []byte(recipient)})
	}
	if eventID != "" {
		hs = append(hs, Header{HeaderEventID, []byte(eventID)})
	}
	hs = sourceHeaders(m, hs)
	return Disclosure{Topic: topic, Key: m.Key, Value: m.Value, Headers: hs}
}
