package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/dgwproject/dgw/gateway"
)

var _ gateway.Sink = (*Sink)(nil)

// ErrSinkClosed is returned by Write after Close.
var ErrSinkClosed = errors.New("kafka sink closed")

// Sink writes disclosures with one kafka-go Writer, the topic taken from
// each record.
//
// Every record is acknowledged by all in-sync replicas (acks=all) before
// Write returns nil. Records with the same key go to the same partition
// (murmur2 of the key, as the Java client and librdkafka's murmur2_random
// partitioner do, so keys land where other producers put them), which
// keeps each recipient's records about one passenger in order; records
// without a key are spread at random.
//
// Topics are never created implicitly: a missing topic fails the records
// meant for it. kafka-go caches metadata, so a topic created by someone
// else after such a failure becomes writable within its metadata TTL (6s).
type Sink struct {
	w         *kafkago.Writer
	transport *kafkago.Transport

	mu     sync.RWMutex // held for reading during Write, for writing by Close
	closed bool
}

// NewSink validates cfg and builds the writer. Connections are made on the
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
	t := &kafkago.Transport{
		ClientID:    cfg.ClientID,
		DialTimeout: cfg.DialTimeout,
		TLS:         tlsCfg,
		SASL:        cfg.Security.mechanism(),
	}
	w := &kafkago.Writer{
		Addr:                   kafkago.TCP(cfg.Brokers...),
		Balancer:               &kafkago.Murmur2Balancer{},
		RequiredAcks:           kafkago.RequireAll,
		BatchTimeout:           cfg.BatchTimeout,
		BatchSize:              cfg.BatchSize,
		MaxAttempts:            cfg.MaxAttempts,
		WriteTimeout:           cfg.WriteTimeout,
		AllowAutoTopicCreation: false,
		Transport:              t,
	}
	return &Sink{w: w, transport: t}, nil
}

// Write sends ds and waits until the broker has acknowledged each record.
// It returns nil when all were acknowledged, and otherwise a
// gateway.DeliveryErrors with one entry per record of ds: nil for the
// acknowledged ones, the cause for the others. A record whose outcome is
// unknown (ctx ended while waiting) counts as failed: writing it again is
// at-least-once. After Close it returns ErrSinkClosed.
func (s *Sink) Write(ctx context.Context, ds ...gateway.Disclosure) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrSinkClosed
	}
	if len(ds) == 0 {
		return nil
	}
	errs := make(gateway.DeliveryErrors, len(ds))
	// kafka-go fails a whole call when one topic's metadata cannot be
	// had (e.g. the topic does not exist), so each topic is written by its
	// own call; the calls run concurrently and still share batches. A
	// write has records for a few topics: a linear search groups them
	// with less work than a map.
	type group struct {
		topic string
		idx   []int
	}
	var inline [4]group
	groups := inline[:0]
	for i := range ds {
		topic := ds[i].Topic
		if topic == "" {
			errs[i] = errors.New("deliver: record has no topic")
			continue
		}
		g := 0
		for g < len(groups) && groups[g].topic != topic {
			g++
		}
		if g == len(groups) {
			groups = append(groups, group{topic: topic})
		}
		groups[g].idx = append(groups[g].idx, i)
	}
	if len(groups) == 1 {
		s.writeTopic(ctx, groups[0].topic, ds, groups[0].idx, errs)
	} else {
		var wg sync.WaitGroup
		for _, g := range groups {
			wg.Go(func() { s.writeTopic(ctx, g.topic, ds, g.idx, errs) })
		}
		wg.Wait()
	}
	for _, err := range errs {
		if err != nil {
			return errs
		}
	}
	return nil
}

// writeTopic writes the records ds[idx] (all for topic) and sets errs[i]
// for each one that was not acknowledged. Goroutines of one Write touch
// disjoint entries of errs.
func (s *Sink) writeTopic(ctx context.Context, topic string, ds []gateway.Disclosure, idx []int, errs gateway.DeliveryErrors) {
	fail := func(i int, err error) { errs[i] = fmt.Errorf("deliver to %s: %w", topic, err) }
	for len(idx) > 0 {
		msgs := make([]kafkago.Message, len(idx))
		for k, i := range idx {
			d := &ds[i]
			msgs[k] = kafkago.Message{Topic: d.Topic, Key: d.Key, Value: d.Value, WriterData: i, Headers: kafkaHeaders(d.Headers)}
		}
		err := s.w.WriteMessages(ctx, msgs...)
		var we kafkago.WriteErrors
		var tooLarge kafkago.MessageTooLargeError
		switch {
		case err == nil:
			return
		case errors.As(err, &we) && len(we) == len(idx):
			for k, i := range idx {
				if we[k] != nil {
					fail(i, we[k])
				}
			}
			return
		case errors.As(err, &tooLarge):
			// Nothing was sent. Fail the oversized record, send the rest.
			big, ok := tooLarge.Message.WriterData.(int)
			if !ok {
				break
			}
			fail(big, err)
			rest := idx[:0:0]
			for _, i := range idx {
				if i != big {
					rest = append(rest, i)
				}
			}
			idx = rest
			continue
		}
		for _, i := range idx {
			fail(i, err)
		}
		return
	}
}

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

// Close flushes pending batches and closes the connections. It returns
// ctx's error if ctx ends first; the flush then finishes in the background.
func (s *Sink) Close(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		// Waits for running Writes: they hold the read lock.
		s.mu.Lock()
		already := s.closed
		s.closed = true
		s.mu.Unlock()
		if already {
			done <- nil
			return
		}
		err := s.w.Close()
		s.transport.CloseIdleConnections()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("kafka sink: close: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
