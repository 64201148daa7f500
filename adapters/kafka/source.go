// Package kafka holds the gateway's Kafka adapters, built on
// segmentio/kafka-go: a consumer-group Source that commits offsets in order,
// a Sink that returns only when the broker acknowledged every record
// (acks=all), and topic provisioning. TLS and SASL (PLAIN, SCRAM) are
// optional and shared through Security.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/dgwproject/dgw/gateway"
)

var _ gateway.Source = (*Source)(nil)

// Source reads the source topics as one consumer group.
//
// # Ordered commits
//
// Workers ack messages out of order, but Kafka stores one committed offset
// per partition, meaning "everything before this is done". The Source
// therefore keeps, per topic-partition, the offsets it handed out in order
// and marks them as they are acked; the committable offset is the end of
// the acked prefix. Offset N is committed only when N and every earlier
// offset of its partition that this Source handed out are acked, so a crash
// or rebalance never skips an unfinished record.
//
// # Commit mode
//
// Acks never wait for the broker: an ack only updates the in-memory state.
// A commit loop sends the committable offsets of all partitions in one
// synchronous OffsetCommit every CommitInterval, and the end of a
// generation (a rebalance, or Close) sends a final one. A synchronous
// commit per ack would cost a round trip per record.
//
// # Generations
//
// The Source runs kafka-go's ConsumerGroup itself and reads each assigned
// partition with its own fetcher, instead of using kafka-go's group
// Reader: that Reader sends every commit with the generation current when
// the commit leaves, so a member that had lost a partition in a rebalance
// could still commit its older acked prefix in the new generation, after
// the new owner's last commit, and move the group's offset back for good
// (seen in the fault run as a group that stopped a few records short of
// the end). Here every partition's state belongs to one generation, and
// its offsets are committed only with that generation's id: the broker
// refuses them once the group has moved on.
//
// When a generation ends, the Source stops handing out its records, waits
// up to RevokeDrain for the ones it handed out to be acked, commits the
// acked prefixes and only then lets kafka-go rejoin the group, so the next
// owner of a partition starts after what this member finished rather than
// at its last periodic commit. Records still unacked then are read again
// by the next owner (at-least-once); their late acks change nothing.
//
// # Stalls
//
// A watchdog looks at the partitions of the current generation: one whose
// fetch has waited StallTimeout while the broker's end offset lies beyond
// the next offset to read is logged (topic, partition, offsets), counted
// (Stalls), reported by Stalled until it reads again, and its fetcher is
// restarted with a new connection at the same offset.
type Source struct {
	cfg    SourceConfig
	log    *slog.Logger
	dialer *kafkago.Dialer
	admin  *kafkago.Client // end offsets for the watchdog
	adminT *kafkago.Transport
	group  *kafkago.ConsumerGroup

	msgs    chan fetched
	failed  chan struct{} // closed with fatalErr set
	closing context.Context
	stop    context.CancelFunc
	runDone chan struct{} // the group loop and the watchdog have exited
	bg      sync.WaitGroup
	readers sync.WaitGroup // partition fetchers, also of ended generations

	mu       sync.Mutex
	gen      *generation                   // the current generation; nil between generations
	parts    map[topicPartition]*partition // the latest generation's partitions
	closed   bool                          // Read returns ErrClosed
	finished bool                          // Close's final commit is taken: acks no longer count
	fatalErr error
	stalls   int64
	finalErr error // the last generation's final commit

	closeOnce sync.Once
	closeErr  error
}

type topicPartition struct {
	topic     string
	partition int
}

// generation is one generation of the group as this member sees it.
type generation struct {
	kg      *kafkago.Generation
	parts   map[topicPartition]*partition
	ended   bool          // no more records are handed out
	final   bool          // its final commit is taken: acks no longer count
	pending int           // handed out and not acked
	drained chan struct{} // closed when ended and pending reaches 0
}

// partition tracks the offsets of one assigned topic-partition handed out
// by Read during one generation.
type partition struct {
	topicPartition
	inflight  []*handed // handed out and not in the acked prefix, oldest first
	last      int64     // offset of the last message handed out; start-1 before
	done      int64     // end of the acked prefix: committable; -1 none
	committed int64     // highest offset committed from this state; -1 none
	hwm       int64     // high-water mark the broker gave with the last fetch

	// The fetcher's side, for the watchdog.
	next    int64              // next offset the fetcher asks for; < 0: the start offset kafka-go resolves
	waiting time.Time          // when the fetcher began waiting for records; zero while not waiting
	kick    context.CancelFunc // restarts the fetcher's reader
	stalled bool               // reported as stalled and not read since
}

type handed struct {
	offset int64
	acked  bool
}

type fetched struct {
	gen *generation
	p   *partition
	m   kafkago.Message
}

// NewSource validates cfg and joins the consumer group in the background;
// the first Read waits for the group's assignment. log may be nil.
func NewSource(cfg SourceConfig, log *slog.Logger) (*Source, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka source config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tlsCfg, err := cfg.Security.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("kafka source config: %w", err)
	}
	dialer := &kafkago.Dialer{
		ClientID:      cfg.ClientID,
		Timeout:       cfg.DialTimeout,
		DualStack:     true,
		TLS:           tlsCfg,
		SASLMechanism: cfg.Security.mechanism(),
	}
	group, err := kafkago.NewConsumerGroup(kafkago.ConsumerGroupConfig{
		ID:                    cfg.GroupID,
		Brokers:               cfg.Brokers,
		Dialer:                dialer,
		Topics:                cfg.Topics,
		HeartbeatInterval:     cfg.HeartbeatInterval,
		SessionTimeout:        cfg.SessionTimeout,
		RebalanceTimeout:      cfg.RebalanceTimeout,
		JoinGroupBackoff:      cfg.JoinGroupBackoff,
		StartOffset:           cfg.startOffset(),
		WatchPartitionChanges: true,
		// kafka-go gives a JoinGroup this plus RebalanceTimeout. A join
		// may wait a whole rebalance timeout after the last member joined
		// (the embedded broker restarts that wait on every join); a member
		// that gives up joins again under a new member id, which restarts
		// the rebalance, and the group can keep rebalancing for good.
		Timeout:     max(cfg.DialTimeout, cfg.RebalanceTimeout),
		Logger:      kafkaLogger(log, slog.LevelDebug),
		ErrorLogger: kafkaLogger(log, slog.LevelWarn),
	})
	if err != nil {
		return nil, fmt.Errorf("kafka source config: %w", err)
	}
	tr := &kafkago.Transport{ClientID: cfg.ClientID, TLS: tlsCfg, SASL: cfg.Security.mechanism(), DialTimeout: cfg.DialTimeout}
	closing, stop := context.WithCancel(context.Background())
	s := &Source{
		cfg:     cfg,
		log:     log,
		dialer:  dialer,
		admin:   &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Timeout: cfg.DialTimeout, Transport: tr},
		adminT:  tr,
		group:   group,
		msgs:    make(chan fetched, 100),
		failed:  make(chan struct{}),
		closing: closing,
		stop:    stop,
		runDone: make(chan struct{}),
		parts:   map[topicPartition]*partition{},
	}
	s.bg.Add(2)
	go s.run()
	go s.watchdog()
	go func() {
		s.bg.Wait()
		close(s.runDone)
	}()
	log.Debug("kafka source started", "group", cfg.GroupID, "topics", len(cfg.Topics), "security", cfg.Security)
	return s, nil
}

// Read returns the next message and the func that acks it. Messages of one
// partition come in offset order. Read returns gateway.ErrClosed once Close
// has started, and ctx's error when ctx ends first.
func (s *Source) Read(ctx context.Context) (gateway.Message, gateway.AckFunc, error) {
	for {
		if s.isClosed() {
			return gateway.Message{}, nil, gateway.ErrClosed
		}
		select {
		case f := <-s.msgs:
			if msg, ack, ok := s.track(f); ok {
				return msg, ack, nil
			}
			// Its generation ended (or Close started): not handed out,
			// so the partition's next owner reads it.
		case <-s.failed:
			return gateway.Message{}, nil, s.fatal()
		case <-s.closing.Done():
			return gateway.Message{}, nil, gateway.ErrClosed
		case <-ctx.Done():
			return gateway.Message{}, nil, ctx.Err()
		}
	}
}

func (s *Source) fatal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fatalErr
}

// fail ends Read with err (the first one wins).
func (s *Source) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fatalErr == nil {
		s.fatalErr = err
		close(s.failed)
	}
}

// run follows the group from generation to generation until Close.
func (s *Source) run() {
	defer s.bg.Done()
	failures := 0
	for {
		kg, err := s.group.Next(s.closing)
		if err != nil {
			if s.closing.Err() != nil || errors.Is(err, kafkago.ErrGroupClosed) {
				return
			}
			failures++
			// kafka-go retries joining by itself (with JoinGroupBackoff);
			// an error that is not about the group's churn or the
			// network, three times in a row, is a configuration problem
			// (authentication, authorisation) for the operator.
			if !retriableGroup(err) && failures >= 3 {
				s.fail(fmt.Errorf("kafka source: join group %s: %w", s.cfg.GroupID, err))
				return
			}
			s.log.Warn("kafka source: joining the group failed; retrying", "attempt", failures, "error", err.Error())
			continue
		}
		failures = 0
		gen := s.newGeneration(kg)
		kg.Start(func(ctx context.Context) { s.runGeneration(ctx, gen) })
	}
}

func (s *Source) newGeneration(kg *kafkago.Generation) *generation {
	gen := &generation{kg: kg, parts: map[topicPartition]*partition{}}
	n := 0
	for topic, as := range kg.Assignments {
		for _, a := range as {
			key := topicPartition{topic, a.ID}
			last := int64(-1)
			if a.Offset > 0 {
				last = a.Offset - 1
			}
			gen.parts[key] = &partition{topicPartition: key, last: last, done: -1, committed: -1, next: a.Offset}
			n++
		}
	}
	s.mu.Lock()
	s.gen, s.parts, s.finalErr = gen, gen.parts, nil
	s.mu.Unlock()
	s.log.Info("kafka source: joined the group", "group", s.cfg.GroupID, "generation", kg.ID, "partitions", n)
	return gen
}

// runGeneration fetches the generation's partitions and commits every
// CommitInterval until the generation ends, then drains and commits.
func (s *Source) runGeneration(ctx context.Context, gen *generation) {
	fctx, stopFetching := context.WithCancel(context.Background())
	for _, p := range gen.parts {
		s.readers.Go(func() { s.fetch(fctx, gen, p) })
	}
	t := time.NewTicker(s.cfg.CommitInterval)
	defer t.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-t.C:
			if err := s.commit(gen, false); err != nil {
				// Kept for the next round; the broker keeps the old offset.
				s.log.Warn("kafka source: commit failed; retrying", "error", err.Error())
			}
		}
	}
	stopFetching()
	s.drain(gen)
	err := s.commit(gen, true)
	if err != nil {
		s.log.Warn("kafka source: final commit of the generation failed; its partitions' next owners read from the last commit", "generation", gen.kg.ID, "error", err.Error())
	}
	s.mu.Lock()
	s.finalErr = err
	if s.gen == gen {
		s.gen = nil
	}
	s.mu.Unlock()
	// The fetchers close their connections on their own: nothing they
	// fetch now is handed out, and waiting for them would only delay
	// joining the next generation (Close waits for them).
}

// drain stops handing out gen's records and waits up to RevokeDrain for
// those handed out to be acked. Close does not wait: the pipeline has
// drained before it closes the source.
func (s *Source) drain(gen *generation) {
	s.mu.Lock()
	gen.ended = true
	wait := gen.pending > 0 && !s.closed
	var ch chan struct{}
	if wait {
		ch = make(chan struct{})
		gen.drained = ch
	}
	s.mu.Unlock()
	if !wait {
		return
	}
	t := time.NewTimer(s.cfg.RevokeDrain)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-s.closing.Done():
	}
}

// fetch reads one partition for gen into s.msgs until ctx ends. The
// watchdog restarts its reader through p.kick.
func (s *Source) fetch(ctx context.Context, gen *generation, p *partition) {
	for ctx.Err() == nil {
		rctx, kick := context.WithCancel(ctx)
		s.mu.Lock()
		p.kick = kick
		next := p.next
		s.mu.Unlock()
		r := kafkago.NewReader(kafkago.ReaderConfig{
			Brokers:   s.cfg.Brokers,
			Topic:     p.topic,
			Partition: p.partition,
			Dialer:    s.dialer,
			MaxWait:   s.cfg.MaxWait,
			// Records of aborted transactions are never disclosed.
			IsolationLevel: kafkago.ReadCommitted,
			Logger:         kafkaLogger(s.log, slog.LevelDebug),
			ErrorLogger:    kafkaLogger(s.log, slog.LevelWarn),
		})
		if err := r.SetOffset(next); err != nil {
			// Only a closed reader refuses an offset; this one is new.
			s.fail(fmt.Errorf("kafka source: start %s/%d at %d: %w", p.topic, p.partition, next, err))
			kick()
			_ = r.Close()
			return
		}
		s.fetchWith(ctx, rctx, gen, p, r)
		kick()
		if err := r.Close(); err != nil {
			s.log.Debug("kafka source: close partition reader", "topic", p.topic, "partition", p.partition, "error", err.Error())
		}
	}
}

// fetchWith reads with r until ctx ends (return), rctx ends (the watchdog
// asks for a new reader) or a fatal error.
func (s *Source) fetchWith(ctx, rctx context.Context, gen *generation, p *partition, r *kafkago.Reader) {
	for attempt := 1; ; {
		s.mu.Lock()
		p.waiting = time.Now()
		s.mu.Unlock()
		m, err := r.FetchMessage(rctx)
		s.mu.Lock()
		p.waiting = time.Time{}
		if err == nil {
			p.next, p.stalled = m.Offset+1, false
		}
		s.mu.Unlock()
		if err != nil {
			switch {
			case rctx.Err() != nil:
				return
			case !retriable(err):
				s.fail(fmt.Errorf("kafka source: fetch %s/%d: %w", p.topic, p.partition, err))
				<-ctx.Done()
				return
			}
			// kafka-go keeps reconnecting on its own and reports each
			// failure; wait a little so a broken cluster does not spin.
			s.log.Warn("kafka source: fetch failed; retrying", "topic", p.topic, "partition", p.partition, "attempt", attempt, "error", err.Error())
			t := time.NewTimer(min(time.Duration(attempt)*100*time.Millisecond, 2*time.Second))
			select {
			case <-t.C:
			case <-rctx.Done():
				t.Stop()
			}
			attempt++
			continue
		}
		attempt = 1
		select {
		case s.msgs <- fetched{gen: gen, p: p, m: m}:
		case <-ctx.Done():
			return
		}
	}
}

// retriable reports whether a fetch error is one kafka-go recovers from by
// itself (broker restarts, leader moves, rebalances, network trouble).
// Others, such as failed authentication or authorisation, end Read.
func retriable(err error) bool {
	var ke kafkago.Error
	if errors.As(err, &ke) {
		return ke.Temporary()
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// retriableGroup is retriable plus the errors of a group's churn, which
// joining again resolves.
func retriableGroup(err error) bool {
	var ke kafkago.Error
	if errors.As(err, &ke) {
		switch ke {
		case kafkago.RebalanceInProgress, kafkago.UnknownMemberId, kafkago.IllegalGeneration,
			kafkago.MemberIDRequired, kafkago.GroupCoordinatorNotAvailable, kafkago.NotCoordinatorForGroup,
			kafkago.GroupLoadInProgress, kafkago.GroupMaxSizeReached:
			return true
		}
	}
	return retriable(err)
}

func (s *Source) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track records f's message as handed out and builds its message and ack;
// false when its generation has ended or Close has started.
func (s *Source) track(f fetched) (gateway.Message, gateway.AckFunc, bool) {
	m, p, gen := &f.m, f.p, f.gen
	s.mu.Lock()
	if s.closed || gen.ended {
		s.mu.Unlock()
		return gateway.Message{}, nil, false
	}
	h := &handed{offset: m.Offset}
	p.inflight = append(p.inflight, h)
	p.last = m.Offset
	p.hwm = m.HighWaterMark
	gen.pending++
	s.mu.Unlock()

	msg := gateway.Message{
		Topic:     m.Topic,
		Partition: m.Partition,
		Offset:    m.Offset,
		Key:       m.Key,
		Value:     m.Value,
		Time:      m.Time,
	}
	if len(m.Headers) > 0 {
		msg.Headers = make([]gateway.Header, len(m.Headers))
		for i, kh := range m.Headers {
			msg.Headers[i] = gateway.Header{Key: kh.Key, Value: kh.Value}
		}
	}
	return msg, func(context.Context) error { return s.ack(gen, p, h) }, true
}

// ack marks h acked and extends p's acked prefix. Acking twice is a no-op.
// An ack after its generation's final commit changes nothing (the record's
// partition is read again from that commit); after Close has taken its
// final commit it reports gateway.ErrClosed.
func (s *Source) ack(gen *generation, p *partition, h *handed) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.acked {
		return nil
	}
	if gen.final {
		if s.finished {
			return gateway.ErrClosed
		}
		return nil
	}
	h.acked = true
	gen.pending--
	if gen.pending == 0 && gen.drained != nil {
		close(gen.drained)
		gen.drained = nil
	}
	for len(p.inflight) > 0 && p.inflight[0].acked {
		p.done = p.inflight[0].offset
		p.inflight[0] = nil
		p.inflight = p.inflight[1:]
	}
	return nil
}

// commit sends, with gen's id, the end of every partition's acked prefix
// that is not committed yet. final marks gen's last commit: later acks of
// gen no longer count. Only runGeneration calls it, so commits of one
// generation never overlap.
func (s *Source) commit(gen *generation, final bool) error {
	s.mu.Lock()
	if gen.final {
		s.mu.Unlock()
		return nil
	}
	if final {
		gen.final = true
		s.finished = s.finished || s.closed
	}
	offsets := map[string]map[int]int64{}
	var parts []*partition
	for _, p := range gen.parts {
		if p.done > p.committed {
			if offsets[p.topic] == nil {
				offsets[p.topic] = map[int]int64{}
			}
			// The committed offset is the next one to read.
			offsets[p.topic][p.partition] = p.done + 1
			parts = append(parts, p)
		}
	}
	s.mu.Unlock()
	if len(parts) == 0 {
		return nil
	}
	if err := gen.kg.CommitOffsets(offsets); err != nil {
		return fmt.Errorf("kafka source: commit offsets of %d partitions in generation %d: %w", len(parts), gen.kg.ID, err)
	}
	s.mu.Lock()
	for _, p := range parts {
		p.committed = max(p.committed, offsets[p.topic][p.partition]-1)
	}
	s.mu.Unlock()
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		for _, p := range parts {
			s.log.Debug("kafka source: committed", "topic", p.topic, "partition", p.partition, "next_offset", offsets[p.topic][p.partition], "generation", gen.kg.ID)
		}
	}
	return nil
}

// Close stops reading, commits every committable offset, leaves the group
// and closes the connections. ctx bounds the wait; the group is left even
// if the final commit fails. Later calls return the first result.
func (s *Source) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.stop()
		left := make(chan struct{})
		go func() {
			// Ends the generation (its final commit runs first), then
			// leaves the group.
			_ = s.group.Close()
			<-s.runDone
			s.readers.Wait()
			s.adminT.CloseIdleConnections()
			close(left)
		}()
		select {
		case <-left:
			s.mu.Lock()
			s.finished = true
			if s.finalErr != nil {
				s.closeErr = fmt.Errorf("kafka source: final commit: %w", s.finalErr)
			}
			s.mu.Unlock()
		case <-ctx.Done():
			s.closeErr = fmt.Errorf("kafka source: close: %w", ctx.Err())
		}
	})
	return s.closeErr
}
