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
	"github.com/segmentio/kafka-go/protocol"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
	produceAPI "github.com/segmentio/kafka-go/protocol/produce"

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
// Each broker has at most MaxInFlight produce requests of this sink in
// flight, and one request carries the records of every partition led by
// that broker that are waiting and not in flight already. A record for a
// broker with fewer requests in flight is sent at once; records arriving
// while MaxInFlight are in flight (or while their partition is) wait for
// one to end and then go together in the next one. So a lightly loaded
// gateway pays one round trip per write, not a linger (kafka-go's Writer
// always waits BatchTimeout for a partial batch), nor the end of another
// write's request; and a busy one sends as few requests as the broker's
// round trip allows: the gateway's records are spread over dozens of
// recipient partitions, which a request per partition would send one or
// two at a time. A partition is never in two requests at once, which
// keeps its records in the order they were handed to Write, retries
// included.
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

	// qmu guards the queues: every partition's and broker's state below.
	// A Write takes it once to queue all its records; a sender once per
	// request to take a batch and once to finish it.
	qmu     sync.Mutex
	parts   map[topicPartition]*sinkPartition
	brokers map[int32]*brokerQueue
	// partIDs caches the []int of partition ids the balancer takes, per
	// partition count.
	partIDs map[int][]int

	senders sync.WaitGroup // requests in flight and their senders, waited for by Close

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
		brokers:  map[int32]*brokerQueue{},
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

// sinkPartition is the queue of one topic partition. Guarded by Sink.qmu.
type sinkPartition struct {
	tp    topicPartition
	queue []pending
	// bq is the broker queue the partition's records go through. It
	// changes (to the partition's current leader) only while the
	// partition has nothing queued or in flight, so two brokers' requests
	// never hold records of one partition at once.
	bq       *brokerQueue
	inflight bool // a batch of it is in bq's request in flight
	ready    bool // listed in bq.ready
}

// brokerQueue is what waits for one broker. Guarded by Sink.qmu.
type brokerQueue struct {
	leader  int32
	ready   []*sinkPartition // partitions with records queued and none in flight, in arrival order
	sending int              // requests in flight, at most MaxInFlight (each sender takes the next one)
}

// partBatch is one partition's records in a request.
type partBatch struct {
	p     *sinkPartition
	batch []pending
	err   error // outcome, set by the sender
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

	// Partition every record (outside the lock: the metadata lookup may
	// wait for the broker), then queue them all in one step, so a Write's
	// records of one partition stay together and in order. A write has
	// records for a few topics and partitions: linear searches group them
	// with less work than maps.
	type group struct {
		tp     topicPartition
		leader int32
		idx    []int
	}
	var inline [8]group
	groups := inline[:0]
	var topic string
	var meta topicMeta
	var topicErr error
	for i := range ds {
		d := &ds[i]
		if d.Topic == "" {
			w.settle(i, errors.New("deliver: record has no topic"))
			continue
		}
		if recordSize(d) > s.cfg.BatchBytes {
			w.settle(i, fmt.Errorf("deliver to %s: %w", d.Topic, kafkago.MessageTooLargeError{
				Message: kafkago.Message{Topic: d.Topic, Key: d.Key, Value: d.Value, Headers: kafkaHeaders(d.Headers)}}))
			continue
		}
		if d.Topic != topic {
			topic = d.Topic
			meta, topicErr = s.partitions(ctx, topic)
		}
		if topicErr != nil {
			w.settle(i, fmt.Errorf("deliver to %s: %w", topic, topicErr))
			continue
		}
		id := s.balancer.Balance(kafkago.Message{Key: d.Key}, meta.ids...)
		tp := topicPartition{topic, id}
		g := 0
		for g < len(groups) && groups[g].tp != tp {
			g++
		}
		if g == len(groups) {
			groups = append(groups, group{tp: tp, leader: meta.leaders[id]})
		}
		groups[g].idx = append(groups[g].idx, i)
	}
	if len(groups) == 0 {
		return w.errs
	}

	// Queue, and start a request for every broker that has none in
	// flight. Such a request holds only this Write's records (an idle
	// broker has nothing queued), so the last one is sent from this
	// goroutine, which would only wait anyway, and may end with ctx.
	type start struct {
		bq  *brokerQueue
		req []partBatch
	}
	var starts []start
	s.qmu.Lock()
	for _, g := range groups {
		p := s.parts[g.tp]
		if p == nil {
			p = &sinkPartition{tp: g.tp}
			s.parts[g.tp] = p
		}
		if p.bq == nil || (p.bq.leader != g.leader && !p.inflight && len(p.queue) == 0) {
			p.bq = s.brokerQueue(g.leader)
		}
		for _, i := range g.idx {
			p.queue = append(p.queue, pending{w: w, i: i, size: recordSize(&ds[i])})
		}
		if !p.inflight && !p.ready {
			p.ready = true
			p.bq.ready = append(p.bq.ready, p)
		}
	}
	for _, g := range groups {
		bq := s.parts[g.tp].bq
		if bq.sending >= s.cfg.MaxInFlight || len(bq.ready) == 0 {
			continue
		}
		bq.sending++
		if req := s.take(bq); len(req) > 0 {
			starts = append(starts, start{bq, req})
		} else {
			bq.sending--
		}
	}
	s.senders.Add(len(starts))
	s.qmu.Unlock()
	for k, st := range starts {
		if k < len(starts)-1 {
			go s.run(context.Background(), st.bq, st.req, false)
		} else {
			s.run(ctx, st.bq, st.req, true)
		}
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

// brokerQueue returns the queue of leader, created on first use. s.qmu
// must be held.
func (s *Sink) brokerQueue(leader int32) *brokerQueue {
	bq := s.brokers[leader]
	if bq == nil {
		bq = &brokerQueue{leader: leader}
		s.brokers[leader] = bq
	}
	return bq
}

// topicMeta is what Write needs of a topic's metadata.
type topicMeta struct {
	ids     []int   // partition ids 0..n-1, for the balancer
	leaders []int32 // leader broker of each partition, -1 unknown
}

// partitions returns the partitions of topic and their leaders from the
// transport's metadata cache (no request to the broker unless the cache is
// empty). A missing topic is an error: it is never created.
func (s *Sink) partitions(ctx context.Context, topic string) (topicMeta, error) {
	cl := s.client.Load()
	r, err := cl.Transport.RoundTrip(ctx, s.addr, &metadataAPI.Request{TopicNames: []string{topic}})
	if err != nil {
		return topicMeta{}, fmt.Errorf("metadata: %w", err)
	}
	for _, t := range r.(*metadataAPI.Response).Topics {
		if t.Name != topic {
			continue
		}
		if t.ErrorCode != 0 {
			return topicMeta{}, kafkago.Error(t.ErrorCode)
		}
		n := len(t.Partitions)
		if n == 0 {
			return topicMeta{}, kafkago.UnknownTopicOrPartition
		}
		leaders := make([]int32, n)
		for i := range leaders {
			leaders[i] = -1
		}
		for _, p := range t.Partitions {
			if p.PartitionIndex >= 0 && int(p.PartitionIndex) < n {
				leaders[p.PartitionIndex] = p.LeaderID
			}
		}
		s.qmu.Lock()
		defer s.qmu.Unlock()
		ids := s.partIDs[n]
		if ids == nil {
			ids = make([]int, n)
			for i := range ids {
				ids[i] = i
			}
			s.partIDs[n] = ids
		}
		return topicMeta{ids: ids, leaders: leaders}, nil
	}
	return topicMeta{}, kafkago.UnknownTopicOrPartition
}

// take builds bq's next request from its ready partitions: per partition
// at least one record, then more within BatchSize and BatchBytes. Records
// of callers that stopped waiting are dropped on the way. s.qmu must be
// held.
func (s *Sink) take(bq *brokerQueue) []partBatch {
	req := make([]partBatch, 0, len(bq.ready))
	for _, p := range bq.ready {
		p.ready = false
		var batch []pending
		var bytes int64
		n := 0
		for ; n < len(p.queue); n++ {
			r := p.queue[n]
			if len(batch) > 0 && (len(batch) >= s.cfg.BatchSize || bytes+r.size > s.cfg.BatchBytes) {
				break
			}
			if r.w.abandoned.Load() {
				r.w.settle(r.i, context.Canceled)
				continue
			}
			batch = append(batch, r)
			bytes += r.size
		}
		// Shift instead of reslicing, so the queue's array is reused
		// rather than regrown forever.
		rest := copy(p.queue, p.queue[n:])
		clear(p.queue[rest:])
		p.queue = p.queue[:rest]
		if len(batch) > 0 {
			p.inflight = true
			req = append(req, partBatch{p: p, batch: batch})
		}
	}
	clear(bq.ready)
	bq.ready = bq.ready[:0]
	return req
}

// run sends req, then bq's next requests until nothing is ready; the
// caller counted the request in bq.sending and the sender in s.senders.
// inline: run is called by the Write whose records req holds (only those:
// a Write that finds fewer than MaxInFlight requests in flight finds
// nothing else ready, since every Write and every finished request takes
// what is ready while a slot is free), so its ctx may end that request;
// the next ones hold others' records and are sent from a new goroutine, so
// that Write is not held.
func (s *Sink) run(ctx context.Context, bq *brokerQueue, req []partBatch, inline bool) {
	for {
		s.send(ctx, req)
		req = s.finish(bq, req)
		if req == nil {
			s.senders.Done()
			return
		}
		if inline {
			go s.run(context.Background(), bq, req, false)
			return
		}
	}
}

// finish settles req's records and returns bq's next request, or nil after
// clearing bq.sending when nothing is ready.
func (s *Sink) finish(bq *brokerQueue, req []partBatch) []partBatch {
	var dropped []pending
	var droppedErr []error
	s.qmu.Lock()
	for _, pb := range req {
		p := pb.p
		p.inflight = false
		if pb.err != nil && len(p.queue) > 0 {
			// A caller whose record failed must not get a later record of
			// the same partition written, which its retry of the failed
			// one would then follow: fail its queued ones too. Done
			// before any of its records settle, so its retry cannot be
			// queued yet.
			kept := p.queue[:0]
			for _, r := range p.queue {
				if failedIn(req, p, r.w) {
					dropped = append(dropped, r)
					droppedErr = append(droppedErr, fmt.Errorf("deliver to %s: an earlier record of this write to partition %d failed: %w",
						p.tp.topic, p.tp.partition, pb.err))
					continue
				}
				kept = append(kept, r)
			}
			clear(p.queue[len(kept):])
			p.queue = kept
		}
		if len(p.queue) > 0 && !p.ready {
			p.ready = true
			bq.ready = append(bq.ready, p)
		}
	}
	var next []partBatch
	if len(bq.ready) > 0 {
		next = s.take(bq)
	}
	if len(next) == 0 {
		next = nil
		bq.sending--
	}
	s.qmu.Unlock()
	for _, pb := range req {
		for _, r := range pb.batch {
			if pb.err != nil {
				r.w.settle(r.i, fmt.Errorf("deliver to %s: %w", pb.p.tp.topic, pb.err))
			} else {
				r.w.settle(r.i, nil)
			}
		}
	}
	for k, r := range dropped {
		r.w.settle(r.i, droppedErr[k])
	}
	return next
}

// failedIn reports whether w has a failed record of p in req.
func failedIn(req []partBatch, p *sinkPartition, w *waiter) bool {
	for _, pb := range req {
		if pb.p != p || pb.err == nil {
			continue
		}
		for _, r := range pb.batch {
			if r.w == w {
				return true
			}
		}
	}
	return false
}

// send produces req (one request for all its partitions) and sets each
// partition's outcome. Partitions that fail with a retriable error are
// retried one by one, up to MaxAttempts attempts in all.
func (s *Sink) send(ctx context.Context, req []partBatch) {
	cl := s.client.Load()
	s.produceMany(ctx, cl, req)
	var retry []int
	for k := range req {
		if err := req[k].err; err != nil && ctx.Err() == nil && (retriableProduce(err) || isRouting(err)) {
			retry = append(retry, k)
		}
	}
	if len(retry) == 0 {
		return
	}
	if staleMetadata(req[retry[0]].err) || isRouting(req[retry[0]].err) {
		s.refresh(cl)
	}
	var wg sync.WaitGroup
	for _, k := range retry {
		wg.Go(func() { req[k].err = s.produce(ctx, req[k].p.tp, req[k].batch, 1, req[k].err) })
	}
	wg.Wait()
}

// refresh replaces cl's transport with a new one, which fetches the
// metadata afresh, unless another sender did so already.
func (s *Sink) refresh(cl *kafkago.Client) {
	if s.client.CompareAndSwap(cl, s.newClient()) {
		// The old transport's connections close once idle; its requests
		// in flight finish.
		cl.Transport.(*kafkago.Transport).CloseIdleConnections()
	}
}

// isRouting tells the transport's refusal to send a request because its
// cached metadata does not name a single leader for its partitions.
func isRouting(err error) bool {
	var pe *produceAPI.Error
	return errors.As(err, &pe)
}

// produceMany makes one attempt of req as one produce request and sets
// each partition's error.
func (s *Sink) produceMany(ctx context.Context, cl *kafkago.Client, req []partBatch) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	records := make([]batchRecords, len(req))
	pr := &produceAPI.Request{Acks: int16(kafkago.RequireAll), Timeout: int32(s.cfg.WriteTimeout / time.Millisecond)}
	for k := range req {
		pb := &req[k]
		records[k].batch = pb.batch
		t := len(pr.Topics) - 1
		for t >= 0 && pr.Topics[t].Topic != pb.p.tp.topic {
			t--
		}
		if t < 0 {
			pr.Topics = append(pr.Topics, produceAPI.RequestTopic{Topic: pb.p.tp.topic})
			t = len(pr.Topics) - 1
		}
		pr.Topics[t].Partitions = append(pr.Topics[t].Partitions, produceAPI.RequestPartition{
			Partition: int32(pb.p.tp.partition),
			RecordSet: protocol.RecordSet{Records: &records[k]},
		})
	}
	r, err := cl.Transport.RoundTrip(ctx, s.addr, pr)
	if err != nil {
		for k := range req {
			req[k].err = err
		}
		return
	}
	res := r.(*produceAPI.Response)
	for k := range req {
		pb := &req[k]
		answered := false
		for _, rt := range res.Topics {
			if rt.Topic != pb.p.tp.topic {
				continue
			}
			for _, rp := range rt.Partitions {
				if int(rp.Partition) == pb.p.tp.partition {
					pb.err, answered = partitionError(rp.ErrorCode, rp.RecordErrors), true
				}
			}
		}
		if !answered {
			// Not acknowledged, so not written as far as we know.
			pb.err = fmt.Errorf("%w: no answer for partition %d in the produce response", kafkago.UnknownTopicOrPartition, pb.p.tp.partition)
		}
	}
}

// partitionError is the outcome of one partition in a produce response.
func partitionError(code int16, recordErrors []produceAPI.ResponseError) error {
	if code != 0 {
		return kafkago.Error(code)
	}
	for _, e := range recordErrors {
		// The broker rejected the batch because of some of its records
		// (e.g. an invalid timestamp); it wrote none of them.
		return fmt.Errorf("record %d of the batch: %s", e.BatchIndex, e.BatchIndexErrorMessage)
	}
	return nil
}

// Backoff between attempts of one produce request, as kafka-go's Writer.
const (
	backoffMin = 100 * time.Millisecond
	backoffMax = time.Second
)

// produce sends batch to tp alone, retrying retriable errors until
// MaxAttempts attempts were made, and returns the last error; first is the
// number of attempts already made, prev the last one's error. The whole
// batch is acknowledged or failed together: a produce request appends a
// batch atomically. ctx ends the attempts early; each attempt is also
// bounded by WriteTimeout.
func (s *Sink) produce(ctx context.Context, tp topicPartition, batch []pending, first int, prev error) error {
	err := prev
	for attempt := first; attempt < s.cfg.MaxAttempts; attempt++ {
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
		if !(retriableProduce(err) || isRouting(err)) || ctx.Err() != nil {
			return err
		}
		if staleMetadata(err) || isRouting(err) {
			s.refresh(cl)
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

// WriteTo lets kafka-go's encoder take the bytes in one Write (io.Copy
// prefers it) instead of reading them through its page buffer.
func (b *bytesReader) WriteTo(w io.Writer) (int64, error) {
	if b.off >= len(b.b) {
		return 0, nil
	}
	n, err := w.Write(b.b[b.off:])
	b.off += n
	return int64(n), err
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
