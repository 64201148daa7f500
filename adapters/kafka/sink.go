package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"

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
	// own call; the calls run concurrently and still share batches.
	byTopic := map[string][]int{}
	var order []string
	for i, d := range ds {
		if d.Topic == "" {
			errs[i] = errors.New("deliver: record has no topic")
			continue
		}
		if _, ok := byTopic[d.Topic]; !ok {
			order = append(order, d.Topic)
		}
		byTopic[d.Topic] = append(byTopic[d.Topic], i)
	}
	if len(order) == 1 {
		s.writeTopic(ctx, order[0], ds, byTopic[order[0]], errs)
	} else {
		var wg sync.WaitGroup
		for _, topic := range order {
			wg.Go(func() { s.writeTopic(ctx, topic, ds, byTopic[topic], errs) })
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
			msgs[k] = kafkago.Message{Topic: d.Topic, Key: d.Key, Value: d.Value, WriterData: i}
			if len(d.Headers) > 0 {
				msgs[k].Headers = make([]kafkago.Header, len(d.Headers))
				for h, dh := range d.Headers {
					msgs[k].Headers[h] = kafkago.Header{Key: dh.Key, Value: dh.Value}
				}
			}
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
