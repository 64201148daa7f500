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
// synchronous OffsetCommit every CommitInterval, and Close sends a final
// one. kafka-go's own asynchronous mode (ReaderConfig.CommitInterval) was
// not used: it hides commit errors, including the final one on Close,
// in its logs. A synchronous commit per ack would cost a round trip per
// record. Only offsets that satisfy the rule above are ever passed to
// CommitMessages.
//
// # Rebalances
//
// kafka-go gives no revocation callbacks. When the group rebalances,
// kafka-go restarts each assigned partition at its committed offset, so a
// partition this Source keeps may be read again from an offset it has
// already handed out. The Source notices that rewind (an offset not above
// the last one handed out) and starts tracking that partition afresh: acks
// of the earlier reads still succeed, but no longer move its commits, and
// the records are processed again (at-least-once). Acks for a partition
// that moved to another member may still be committed once. That can move
// the group's offset back (more redelivery) or forward over records this
// Source finished, but never past a record nobody finished: every offset
// committed here ends a prefix acked here, and that prefix starts at an
// offset the group had committed.
type Source struct {
	r        *kafkago.Reader
	log      *slog.Logger
	interval time.Duration

	closing   context.Context // done once Close starts
	stop      context.CancelFunc
	committed chan struct{} // closed when the commit loop has exited

	mu       sync.Mutex
	parts    map[topicPartition]*partition
	closed   bool // Read returns ErrClosed
	finished bool // the final commit is taken: acks no longer count

	closeOnce sync.Once
	closeErr  error
}

type topicPartition struct {
	topic     string
	partition int
}

// partition tracks the offsets of one topic-partition handed out by Read
// since this Source started reading it (or since its last rewind).
type partition struct {
	inflight  []*handed // handed out and not in the acked prefix, oldest first
	last      int64     // offset of the last message handed out
	done      int64     // end of the acked prefix: committable; -1 none
	committed int64     // highest offset committed from this state; -1 none
	hwm       int64     // high-water mark the broker gave with the last fetch
}

type handed struct {
	offset int64
	acked  bool
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
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:           cfg.Brokers,
		GroupID:           cfg.GroupID,
		GroupTopics:       cfg.Topics,
		Dialer:            dialer,
		StartOffset:       cfg.startOffset(),
		MaxWait:           cfg.MaxWait,
		HeartbeatInterval: cfg.HeartbeatInterval,
		SessionTimeout:    cfg.SessionTimeout,
		RebalanceTimeout:  cfg.RebalanceTimeout,
		JoinGroupBackoff:  cfg.JoinGroupBackoff,
		// Zero: kafka-go commits synchronously when asked; the Source
		// decides when (see the Source doc).
		CommitInterval: 0,
		// Records of aborted transactions are never disclosed.
		IsolationLevel:        kafkago.ReadCommitted,
		WatchPartitionChanges: true,
		Logger:                kafkaLogger(log, slog.LevelDebug),
		ErrorLogger:           kafkaLogger(log, slog.LevelWarn),
	})
	closing, stop := context.WithCancel(context.Background())
	s := &Source{
		r:         r,
		log:       log,
		interval:  cfg.CommitInterval,
		closing:   closing,
		stop:      stop,
		committed: make(chan struct{}),
		parts:     map[topicPartition]*partition{},
	}
	go s.commitLoop()
	log.Debug("kafka source started", "group", cfg.GroupID, "topics", len(cfg.Topics), "security", cfg.Security)
	return s, nil
}

// Read returns the next message and the func that acks it. Messages of one
// partition come in offset order. Read returns gateway.ErrClosed once Close
// has started, and ctx's error when ctx ends first.
func (s *Source) Read(ctx context.Context) (gateway.Message, gateway.AckFunc, error) {
	if s.isClosed() {
		return gateway.Message{}, nil, gateway.ErrClosed
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.closing, cancel)()
	for attempt := 1; ; attempt++ {
		m, err := s.r.FetchMessage(rctx)
		if err != nil {
			switch {
			case s.closing.Err() != nil || errors.Is(err, io.EOF):
				return gateway.Message{}, nil, gateway.ErrClosed
			case ctx.Err() != nil:
				return gateway.Message{}, nil, ctx.Err()
			case !retriable(err):
				return gateway.Message{}, nil, fmt.Errorf("kafka source: fetch: %w", err)
			}
			// kafka-go keeps reconnecting on its own and reports each
			// failure; wait a little so a broken cluster does not spin.
			s.log.Warn("kafka source: fetch failed; retrying", "attempt", attempt, "error", err.Error())
			t := time.NewTimer(min(time.Duration(attempt)*100*time.Millisecond, 2*time.Second))
			select {
			case <-t.C:
			case <-rctx.Done():
				t.Stop()
			}
			continue
		}
		msg, ack, ok := s.track(&m)
		if !ok {
			// Fetched as Close started: not handed out, so not committed.
			return gateway.Message{}, nil, gateway.ErrClosed
		}
		return msg, ack, nil
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
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (s *Source) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track records m as handed out and builds its message and ack.
func (s *Source) track(m *kafkago.Message) (gateway.Message, gateway.AckFunc, bool) {
	key := topicPartition{m.Topic, m.Partition}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return gateway.Message{}, nil, false
	}
	p := s.parts[key]
	if p == nil || m.Offset <= p.last {
		if p != nil {
			s.log.Info("kafka source: partition rewound by a rebalance; its records are read again",
				"topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "last_read", p.last)
		}
		p = &partition{last: -1, done: -1, committed: -1}
		s.parts[key] = p
	}
	h := &handed{offset: m.Offset}
	p.inflight = append(p.inflight, h)
	p.last = m.Offset
	p.hwm = m.HighWaterMark
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
	return msg, func(context.Context) error { return s.ack(p, h) }, true
}

// ack marks h acked and extends p's acked prefix. Acking twice is a no-op.
// After Close has taken its final commit an ack can no longer be committed
// and reports gateway.ErrClosed.
func (s *Source) ack(p *partition, h *handed) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return gateway.ErrClosed
	}
	if h.acked {
		return nil
	}
	h.acked = true
	for len(p.inflight) > 0 && p.inflight[0].acked {
		p.done = p.inflight[0].offset
		p.inflight[0] = nil
		p.inflight = p.inflight[1:]
	}
	return nil
}

// commitLoop commits every interval until Close starts.
func (s *Source) commitLoop() {
	defer close(s.committed)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-s.closing.Done():
			return
		case <-t.C:
			if err := s.commit(s.closing, false); err != nil && s.closing.Err() == nil {
				// Kept for the next round; the broker keeps the old offset.
				s.log.Warn("kafka source: commit failed; retrying", "error", err.Error())
			}
		}
	}
}

// commit sends the end of every partition's acked prefix that is not
// committed yet. final marks the last commit: later acks are refused.
func (s *Source) commit(ctx context.Context, final bool) error {
	s.mu.Lock()
	s.finished = s.finished || final
	var msgs []kafkago.Message
	var parts []*partition
	for k, p := range s.parts {
		if p.done > p.committed {
			// kafka-go commits Offset+1: the next offset to read.
			msgs = append(msgs, kafkago.Message{Topic: k.topic, Partition: k.partition, Offset: p.done})
			parts = append(parts, p)
		}
	}
	s.mu.Unlock()
	if len(msgs) == 0 {
		return nil
	}
	if err := s.r.CommitMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("kafka source: commit offsets of %d partitions: %w", len(msgs), err)
	}
	s.mu.Lock()
	for i, p := range parts {
		p.committed = max(p.committed, msgs[i].Offset)
	}
	s.mu.Unlock()
	if s.log.Enabled(ctx, slog.LevelDebug) {
		for _, m := range msgs {
			s.log.Debug("kafka source: committed", "topic", m.Topic, "partition", m.Partition, "next_offset", m.Offset+1)
		}
	}
	return nil
}

// Close stops reading, commits every committable offset, leaves the group
// and closes the connections. ctx bounds the final commit; the reader is
// closed even if that commit fails. Later calls return the first result.
func (s *Source) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.stop()
		<-s.committed
		commitErr := s.commit(ctx, true)
		if err := s.r.Close(); err != nil {
			commitErr = errors.Join(commitErr, fmt.Errorf("kafka source: close reader: %w", err))
		}
		s.closeErr = commitErr
	})
	return s.closeErr
}
