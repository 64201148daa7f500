package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	kafkago "github.com/segmentio/kafka-go"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"

	"github.com/dgwproject/dgw/gateway"
)

var _ gateway.Sink = (*Sink)(nil)

// ErrSinkClosed is returned by Write after Close.
var ErrSinkClosed = errors.New("kafka sink closed")

// Sink writes disclosures with kafka-go's low-level Client, the topic taken
// from each record, and commits them in groups without a linger.
//
// Every record is acknowledged by all in-sync replicas (acks=all) before
// Write returns nil. Records with the same key go to the same partition
// (murmur2 of the key, as the Java client and librdkafka's murmur2_random
// partitioner do, so keys land where other producers put them), which
// keeps each recipient's records about one passenger in order; records
// without a key are spread at random.
//
// Each partition has at most one produce request in flight. A record for a
// partition with nothing in flight is sent at once; records arriving while
// a request is in flight wait for it and then go together in the next one.
// So an idle gateway pays one round trip per write, not a linger (kafka-go's
// Writer always waits BatchTimeout for a partial batch), and a busy one
// batches as much as the broker's round trip lets accumulate. One request
// in flight per partition also keeps the records of a partition in the
// order they were handed to Write, retries included.
//
// Topics are never created implicitly: a missing topic fails the records
// meant for it. kafka-go's transport caches metadata, so a topic created by
// someone else after such a failure becomes writable within its metadata
// TTL (6s).
type Sink struct {
	cfg      SinkConfig
	addr     net.Addr
	balancer *kafkago.Murmur2Balancer

	// client is replaced by one with a new transport when the broker says
	// the cached partition leadership is stale: kafka-go's transport
	// refreshes its metadata only every TTL and offers no way to force it.
	client    atomic.Pointer[kafkago.Client]
	newClient func() *kafkago.Client

	pmu   sync.Mutex
	parts map[topicPartition]*sinkPartition
	// partIDs caches the []int of partition ids the balancer takes, per
	// partition count.
	partIDs map[int][]int

	senders sync.WaitGroup // background senders, waited for by Close

	mu     sync.RWMutex // held for reading during Write, for writing by Close
	closed bool
}

// NewSink validates cfg and builds the client. Connections are made on the
// first Write.
func NewSink(cfg SinkConfig) (*Sink, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka sink config: %w", err)
	}
	tlsCfg, err := cfg.Security.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("kafka sink config: %w", err)
	}
	addr := kafkago.TCP(cfg.Brokers...)
	s := &Sink{
		cfg:      cfg,
		addr:     addr,
		balancer: &kafkago.Murmur2Balancer{},
		parts:    map[topicPartition]*sinkPartition{},
		partIDs:  map[int][]int{},
	}
	s.newClient = func() *kafkago.Client {
		return &kafkago.Client{
			Addr:    addr,
			Timeout: cfg.WriteTimeout,
			Transport: &kafkago.Transport{
				ClientID:    cfg.ClientID,
				DialTimeout: cfg.DialTimeout,
				TLS:         tlsCfg,
				SASL:        cfg.Security.mechanism(),
			},
		}
	}
	s.client.Store(s.newClient())
	return s, nil
}

// waiter is one Write call waiting for its records.
type waiter struct {
	ds   []gateway.Disclosure
	errs gateway.DeliveryErrors // entry i written once, by whoever settles record i
	left atomic.Int64           // records not settled yet
	done chan struct{}          // closed when left reaches 0
	// abandoned is set when the caller stopped waiting (ctx ended): its
	// records not yet sent are dropped instead of sent, since the caller
	// already counts them as failed and will write them again.
	abandoned atomic.Bool
}

func (w *waiter) settle(i int, err error) {
	w.errs[i] = err
	if w.left.Add(-1) == 0 {
		close(w.done)
	}
}

// pending is one record waiting for, or in, a produce request.
type pending struct {
	w    *waiter
	i    int   // index in w.ds
	size int64 // bytes the record takes in a batch
}

// sinkPartition holds the records of one topic partition not yet sent and
// whether a request is in flight.
type sinkPartition struct {
	tp      topicPartition
	mu      sync.Mutex
	queue   []pending
	sending bool
}

// Write sends ds and waits until the broker has acknowledged each record.
// It returns nil when all were acknowledged, and otherwise a
// gateway.DeliveryErrors with one entry per record of ds: nil for the
// acknowledged ones, the cause for the others. A record whose outcome is
// unknown (ctx ended while waiting) counts as failed: writing it again is
// at-least-once. After Close it returns ErrSinkClosed.
//
// The records' bytes may still be read by a request in flight after Write
// returned early because ctx ended: callers must not modify them.
func (s *Sink) Write(ctx context.Context, ds ...gateway.Disclosure) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrSinkClosed
	}
	if len(ds) == 0 {
		return nil
	}
	w := &waiter{ds: ds, errs: make(gateway.DeliveryErrors, len(ds)), done: make(chan struct{})}
	w.left.Store(int64(len(ds)))
	if err := ctx.Err(); err != nil {
		for i := range ds {
			w.settle(i, fmt.Errorf("deliver to %s: %w", ds[i].Topic, err))
		}
		return w.errs
	}

	// Partition every record, then queue each partition's records in one
	// step, so a Write's records of one partition stay together and in
	// order. A write has records for a few topics and partitions: linear
	// searches group them with less work than maps.
	type group struct {
		p   *sinkPartition
		idx []int
	}
	var inline [8]group
	groups := inline[:0]
	var topic string
	var ids []int
	var topicErr error
	for i := range ds {
		d := &ds[i]
		if d.Topic == "" {
			w.settle(i, errors.New("deliver: record has no topic"))
			continue
		}
		size := recordSize(d)
		if size > s.cfg.BatchBytes {
			w.settle(i, fmt.Errorf("deliver to %s: %w", d.Topic, kafkago.MessageTooLargeError{
				Message: kafkago.Message{Topic: d.Topic, Key: d.Key, Value: d.Value, Headers: kafkaHeaders(d.Headers)}}))
			continue
		}
		if d.Topic != topic {
			topic = d.Topic
			ids, topicErr = s.partitions(ctx, topic)
		}
		if topicErr != nil {
			w.settle(i, fmt.Errorf("deliver to %s: %w", topic, topicErr))
			continue
		}
		id := s.balancer.Balance(kafkago.Message{Key: d.Key}, ids...)
		tp := topicPartition{topic, id}
		g := 0
		for g < len(groups) && groups[g].p.tp != tp {
			g++
		}
		if g == len(groups) {
			groups = append(groups, group{p: s.sinkPartition(tp)})
		}
		groups[g].idx = append(groups[g].idx, i)
	}

	// Queue, and start a sender for every partition that has none; the
	// last one is sent from this goroutine, which would only wait anyway.
	var first *sinkPartition
	var firstBatch []pending
	for _, g := range groups {
		p := g.p
		p.mu.Lock()
		for _, i := range g.idx {
			p.queue = append(p.queue, pending{w: w, i: i, size: recordSize(&ds[i])})
		}
		start := !p.sending
		var batch []pending
		if start {
			p.sending = true
			batch = p.take(s.cfg.BatchSize, s.cfg.BatchBytes)
		}
		p.mu.Unlock()
		if !start {
			continue
		}
		if first != nil {
			s.senders.Add(1)
			go s.run(first, firstBatch)
		}
		first, firstBatch = p, batch
	}
	if first != nil {
		s.senders.Add(1)
		s.sendOnce(ctx, first, firstBatch)
	}

	select {
	case <-w.done:
	case <-ctx.Done():
		w.abandoned.Store(true)
		// Records still in flight settle later into w.errs; report every
		// record of this call as failed instead of racing with them.
		errs := make(gateway.DeliveryErrors, len(ds))
		for i := range ds {
			errs[i] = fmt.Errorf("deliver to %s: %w", ds[i].Topic, ctx.Err())
		}
		return errs
	}
	for _, err := range w.errs {
		if err != nil {
			return w.errs
		}
	}
	return nil
}

// sinkPartition returns the state of tp, created on first use.
func (s *Sink) sinkPartition(tp topicPartition) *sinkPartition {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	p := s.parts[tp]
	if p == nil {
		p = &sinkPartition{tp: tp}
		s.parts[tp] = p
	}
	return p
}

// partitions returns the partition ids of topic from the transport's
// metadata cache (no request to the broker unless the cache is empty). A
// missing topic is an error: it is never created.
func (s *Sink) partitions(ctx context.Context, topic string) ([]int, error) {
	cl := s.client.Load()
	r, err := cl.Transport.RoundTrip(ctx, s.addr, &metadataAPI.Request{TopicNames: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	for _, t := range r.(*metadataAPI.Response).Topics {
		if t.Name != topic {
			continue
		}
		if t.ErrorCode != 0 {
			return nil, kafkago.Error(t.ErrorCode)
		}
		n := len(t.Partitions)
		if n == 0 {
			return nil, kafkago.UnknownTopicOrPartition
		}
		s.pmu.Lock()
		defer s.pmu.Unlock()
		ids := s.partIDs[n]
		if ids == nil {
			ids = make([]int, n)
			for i := range ids {
				ids[i] = i
			}
			s.partIDs[n] = ids
		}
		return ids, nil
	}
	return nil, kafkago.UnknownTopicOrPartition
}

// take removes the next batch from p.queue: at least one record, then
// more while the batch stays within maxRecords and maxBytes. Records of
// callers that stopped waiting are dropped on the way. p.mu must be held.
func (p *sinkPartition) take(maxRecords int, maxBytes int64) []pending {
	var batch []pending
	var bytes int64
	n := 0
	for ; n < len(p.queue); n++ {
		r := p.queue[n]
		if len(batch) > 0 && (len(batch) >= maxRecords || bytes+r.size > maxBytes) {
			break
		}
		if r.w.abandoned.Load() {
			r.w.settle(r.i, context.Canceled)
			continue
		}
		batch = append(batch, r)
		bytes += r.size
	}
	// Shift instead of reslicing, so the queue's array is reused rather
	// than regrown forever.
	rest := copy(p.queue, p.queue[n:])
	clear(p.queue[rest:])
	p.queue = p.queue[:rest]
	return batch
}

// run sends batches of p until its queue is empty, starting with batch.
// The caller has set p.sending and called s.senders.Add(1).
func (s *Sink) run(p *sinkPartition, batch []pending) {
	defer s.senders.Done()
	var failed map[*waiter]error
	for batch != nil || s.next(p, &batch) {
		failed = s.send(context.Background(), p, batch, failed)
		batch = nil
	}
}

// sendOnce sends one batch from the writing goroutine and hands what has
// queued meanwhile to a background sender, so a Write never waits for
// other callers' batches after its own. The batch holds only this Write's
// records (the partition was idle, so its queue was empty), which is why
// the caller's ctx may end the request.
func (s *Sink) sendOnce(ctx context.Context, p *sinkPartition, batch []pending) {
	failed := s.send(ctx, p, batch, nil)
	if failed != nil {
		// A caller whose records failed must not get its later records of
		// this partition written (see send): keep the map with them.
		go func() {
			defer s.senders.Done()
			var next []pending
			for s.next(p, &next) {
				failed = s.send(context.Background(), p, next, failed)
			}
		}()
		return
	}
	var next []pending
	if !s.next(p, &next) {
		s.senders.Done()
		return
	}
	go s.run(p, next)
}

// next takes p's next batch into *batch, or clears p.sending and returns
// false when nothing is queued.
func (s *Sink) next(p *sinkPartition, batch *[]pending) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 {
		p.sending = false
		return false
	}
	*batch = p.take(s.cfg.BatchSize, s.cfg.BatchBytes)
	if len(*batch) == 0 {
		// Everything queued was abandoned.
		p.sending = false
		return false
	}
	return true
}

// send produces batch to p with retries and settles each record. failed
// holds the callers with a record of p that failed in this run of sends:
// their later records of p fail without being sent, so a caller never has
// a later record of a partition written and an earlier one not (which its
// retry would then put after it). It returns failed, allocated on the
// first failure.
func (s *Sink) send(ctx context.Context, p *sinkPartition, batch []pending, failed map[*waiter]error) map[*waiter]error {
	if failed != nil {
		kept := batch[:0]
		for _, r := range batch {
			if err, ok := failed[r.w]; ok {
				r.w.settle(r.i, fmt.Errorf("deliver to %s: an earlier record of this write to partition %d failed: %w", p.tp.topic, p.tp.partition, err))
				continue
			}
			kept = append(kept, r)
		}
		batch = kept
		if len(batch) == 0 {
			return failed
		}
	}
	err := s.produce(ctx, p.tp, batch)
	if err == nil {
		for _, r := range batch {
			r.w.settle(r.i, nil)
		}
		return failed
	}
	if failed == nil {
		failed = map[*waiter]error{}
	}
	for _, r := range batch {
		failed[r.w] = err
		r.w.settle(r.i, fmt.Errorf("deliver to %s: %w", p.tp.topic, err))
	}
	return failed
}

// Backoff between attempts of one produce request, as kafka-go's Writer.
const (
	backoffMin = 100 * time.Millisecond
	backoffMax = time.Second
)

// produce sends batch to tp, retrying retriable errors up to MaxAttempts
// times, and returns the last error. The whole batch is acknowledged or
// failed together: a produce request appends a batch atomically. ctx ends
// the attempts early; each attempt is also bounded by WriteTimeout.
func (s *Sink) produce(ctx context.Context, tp topicPartition, batch []pending) error {
	var err error
	for attempt := range s.cfg.MaxAttempts {
		if attempt > 0 {
			t := time.NewTimer(min(backoffMin<<(attempt-1), backoffMax))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("after %d attempts: %w (last: %w)", attempt, ctx.Err(), err)
			}
		}
		cl := s.client.Load()
		err = s.produceOnce(ctx, cl, tp, batch)
		if err == nil {
			return nil
		}
		if !retriableProduce(err) || ctx.Err() != nil {
			return err
		}
		if staleMetadata(err) && s.client.CompareAndSwap(cl, s.newClient()) {
			// The old transport's connections close once idle; its
			// requests in flight finish.
			cl.Transport.(*kafkago.Transport).CloseIdleConnections()
		}
	}
	return fmt.Errorf("after %d attempts: %w", s.cfg.MaxAttempts, err)
}

func (s *Sink) produceOnce(ctx context.Context, cl *kafkago.Client, tp topicPartition, batch []pending) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	res, err := cl.Produce(ctx, &kafkago.ProduceRequest{
		Topic:        tp.topic,
		Partition:    tp.partition,
		RequiredAcks: kafkago.RequireAll,
		Records:      &batchRecords{batch: batch},
	})
	if err != nil {
		return err
	}
	if res.Error != nil {
		return res.Error
	}
	if len(res.RecordErrors) > 0 {
		// The broker rejected the batch because of some of its records
		// (e.g. an invalid timestamp); it wrote none of them.
		for i, e := range res.RecordErrors {
			return fmt.Errorf("record %d of the batch: %w", i, e)
		}
	}
	return nil
}

// retriableProduce tells errors worth another attempt: the broker's
// retriable codes and connections that broke, as kafka-go's Writer decides.
func retriableProduce(err error) bool {
	var temp interface{ Temporary() bool }
	if errors.As(err, &temp) && temp.Temporary() {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, kafkago.BrokerNotAvailable)
}

// staleMetadata tells errors meaning the cached partition leadership is
// out of date.
func staleMetadata(err error) bool {
	return errors.Is(err, kafkago.NotLeaderForPartition) || errors.Is(err, kafkago.LeaderNotAvailable) ||
		errors.Is(err, kafkago.UnknownTopicOrPartition) || errors.Is(err, kafkago.BrokerNotAvailable)
}

// recordSize is the bytes a record takes in a batch, counted as kafka-go's
// Writer does for its BatchBytes limit.
func recordSize(d *gateway.Disclosure) int64 {
	n := int64(4 + 1 + 1 + 8 + 4 + len(d.Key) + 4 + len(d.Value))
	for _, h := range d.Headers {
		n += int64(2*binaryVarintLen + len(h.Key) + len(h.Value))
	}
	return n
}

// binaryVarintLen bounds the length prefix of a header key or value.
const binaryVarintLen = 5

// batchRecords hands a batch's records to kafka-go one at a time, reusing
// one Record and two readers instead of allocating them per record.
type batchRecords struct {
	batch      []pending
	next       int
	rec        kafkago.Record
	key, value bytesReader
}

func (r *batchRecords) ReadRecord() (*kafkago.Record, error) {
	if r.next >= len(r.batch) {
		return nil, io.EOF
	}
	p := r.batch[r.next]
	r.next++
	d := &p.w.ds[p.i]
	r.rec = kafkago.Record{Headers: kafkaHeaders(d.Headers)}
	if d.Key != nil {
		r.key.b, r.key.off = d.Key, 0
		r.rec.Key = &r.key
	}
	if d.Value != nil {
		r.value.b, r.value.off = d.Value, 0
		r.rec.Value = &r.value
	}
	return &r.rec, nil
}

// bytesReader is a resettable kafkago.Bytes over a byte slice.
type bytesReader struct {
	b   []byte
	off int
}

func (b *bytesReader) Read(p []byte) (int, error) {
	if b.off >= len(b.b) {
		return 0, io.EOF
	}
	n := copy(p, b.b[b.off:])
	b.off += n
	return n, nil
}

func (b *bytesReader) Len() int     { return len(b.b) - b.off }
func (b *bytesReader) Close() error { return nil }

// The two header types are the same struct (the conversion compiles only
// while they are), so a record's headers are handed to kafka-go as they
// are instead of copied, one allocation less per record. kafka-go only
// reads them.
var _ = kafkago.Header(gateway.Header{})

func kafkaHeaders(hs []gateway.Header) []kafkago.Header {
	if len(hs) == 0 {
		return nil
	}
	return unsafe.Slice((*kafkago.Header)(unsafe.Pointer(unsafe.SliceData(hs))), len(hs))
}

// Close waits for running Writes and the records they queued (each is
// acknowledged or failed, so Close flushes), then closes the connections.
// It returns ctx's error if ctx ends first; the flush then finishes in the
// background.
func (s *Sink) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		// Waits for running Writes: they hold the read lock.
		s.mu.Lock()
		already := s.closed
		s.closed = true
		s.mu.Unlock()
		if !already {
			s.senders.Wait()
			s.client.Load().Transport.(*kafkago.Transport).CloseIdleConnections()
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka sink: close: %w", ctx.Err())
	}
}
