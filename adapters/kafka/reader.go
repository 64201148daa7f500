package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/dgwproject/dgw/gateway"
)

// ReaderConfig configures Scan and Follow, which read every partition of
// one topic directly: no consumer group, nothing committed. dgw reads its
// own topics this way: the audit topic to verify it, the compacted subject
// topic to rebuild the subject state.
type ReaderConfig struct {
	// Brokers are bootstrap addresses, host:port. Required.
	Brokers []string
	// ClientID names this client in broker logs. Default "dgw".
	ClientID string
	// Topic is the topic to read. Required.
	Topic string
	// MaxWait bounds how long a fetch waits for new records; Follow notices
	// its context's end within about this long. Default 500ms.
	MaxWait time.Duration
	// MaxBytes is the most a fetch asks for. Default 1 MiB.
	MaxBytes int
	// DialTimeout bounds connecting to a broker and, added to MaxWait, one
	// fetch. Default 10s.
	DialTimeout time.Duration
	// Security holds optional TLS and SASL settings.
	Security Security
}

func (c *ReaderConfig) setDefaults() {
	if c.ClientID == "" {
		c.ClientID = "dgw"
	}
	if c.MaxWait == 0 {
		c.MaxWait = 500 * time.Millisecond
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 1 << 20
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 10 * time.Second
	}
}

// Validate reports every problem at once. It expects defaults applied.
func (c *ReaderConfig) Validate() error {
	errs := validateBrokers(c.Brokers)
	if err := validateTopic(c.Topic); err != nil {
		errs = append(errs, fmt.Errorf("topic: %w", err))
	}
	if c.MaxWait <= 0 || c.DialTimeout <= 0 {
		errs = append(errs, fmt.Errorf("max_wait and dial_timeout: expected positive durations, got %s and %s", c.MaxWait, c.DialTimeout))
	}
	if c.MaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("max_bytes: expected a positive integer, got %d", c.MaxBytes))
	}
	if err := c.Security.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// PartitionSpan is the offset range of one partition: First is the first
// offset the log still holds (records before it were deleted by retention
// or DeleteRecords), End the offset the next record written gets.
type PartitionSpan struct {
	Partition int
	First     int64
	End       int64
}

// Spans returns the span of every partition of the topic, by partition.
// A topic that does not exist is an error.
func (c ReaderConfig) Spans(ctx context.Context) ([]PartitionSpan, error) {
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("kafka reader config: %w", err)
	}
	return c.spans(ctx)
}

func (c *ReaderConfig) spans(ctx context.Context) ([]PartitionSpan, error) {
	tlsCfg, err := c.Security.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("kafka reader config: %w", err)
	}
	tr := &kafkago.Transport{ClientID: c.ClientID, TLS: tlsCfg, SASL: c.Security.mechanism(), DialTimeout: c.DialTimeout}
	defer tr.CloseIdleConnections()
	cl := &kafkago.Client{Addr: kafkago.TCP(c.Brokers...), Timeout: c.DialTimeout, Transport: tr}
	md, err := cl.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{c.Topic}})
	if err != nil {
		return nil, fmt.Errorf("topic %s: metadata: %w", c.Topic, err)
	}
	var reqs []kafkago.OffsetRequest
	for _, t := range md.Topics {
		if t.Name != c.Topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("topic %s: %w", c.Topic, t.Error)
		}
		for _, p := range t.Partitions {
			reqs = append(reqs, kafkago.FirstOffsetOf(p.ID), kafkago.LastOffsetOf(p.ID))
		}
	}
	if len(reqs) == 0 {
		return nil, fmt.Errorf("topic %s: %w", c.Topic, kafkago.UnknownTopicOrPartition)
	}
	offs, err := cl.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{c.Topic: reqs},
		IsolationLevel: kafkago.ReadCommitted})
	if err != nil {
		return nil, fmt.Errorf("topic %s: list offsets: %w", c.Topic, err)
	}
	var out []PartitionSpan
	for _, po := range offs.Topics[c.Topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("topic %s partition %d: list offsets: %w", c.Topic, po.Partition, po.Error)
		}
		out = append(out, PartitionSpan{Partition: po.Partition, First: po.FirstOffset, End: po.LastOffset})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	return out, nil
}

// Scan reads every record the topic holds when Scan starts: partition after
// partition, each from its first retained offset up to the end offset it
// had at the start, in offset order. Before reading a partition it calls
// begin (when not nil) with the partition's span. An error from fn stops
// the scan and is returned.
func Scan(ctx context.Context, cfg ReaderConfig, begin func(PartitionSpan), fn func(gateway.Message) error) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("kafka reader config: %w", err)
	}
	spans, err := cfg.spans(ctx)
	if err != nil {
		return err
	}
	r, err := cfg.newPartitionReader()
	if err != nil {
		return err
	}
	for _, s := range spans {
		if begin != nil {
			begin(s)
		}
		if err := r.read(ctx, s, false, fn, nil); err != nil {
			return err
		}
	}
	return nil
}

// Follow reads every partition from its first retained offset and keeps
// reading new records until ctx ends, then returns nil. It calls caughtUp
// (when not nil) once, as soon as every partition has been read up to the
// end offset it had when Follow started: what the topic held then has
// been passed to fn. fn is never called concurrently; an error from it
// stops Follow and is returned. Partitions added later are not read.
func Follow(ctx context.Context, cfg ReaderConfig, fn func(gateway.Message) error, caughtUp func()) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("kafka reader config: %w", err)
	}
	spans, err := cfg.spans(ctx)
	if err != nil {
		return err
	}
	r, err := cfg.newPartitionReader()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex // serialises fn and counts caught-up partitions
	pending := len(spans)
	reached := func() {
		mu.Lock()
		defer mu.Unlock()
		if pending--; pending == 0 && caughtUp != nil {
			caughtUp()
		}
	}
	if pending == 0 && caughtUp != nil {
		caughtUp()
	}
	serial := func(m gateway.Message) error {
		mu.Lock()
		defer mu.Unlock()
		return fn(m)
	}
	errc := make(chan error, len(spans))
	var wg sync.WaitGroup
	for _, s := range spans {
		wg.Go(func() {
			if err := r.read(ctx, s, true, serial, reached); err != nil {
				errc <- err
				cancel()
			}
		})
	}
	wg.Wait()
	close(errc)
	return <-errc // nil when no partition failed
}

type partitionReader struct {
	cfg    *ReaderConfig
	dialer *kafkago.Dialer
}

func (c *ReaderConfig) newPartitionReader() (*partitionReader, error) {
	tlsCfg, err := c.Security.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("kafka reader config: %w", err)
	}
	return &partitionReader{cfg: c, dialer: &kafkago.Dialer{ClientID: c.ClientID, Timeout: c.DialTimeout, DualStack: true,
		TLS: tlsCfg, SASLMechanism: c.Security.mechanism()}}, nil
}

// read reads partition s.Partition from s.First. Without follow it stops
// at s.End; with follow it goes on until ctx ends. reached is called once
// the read offset is at or past s.End.
func (r *partitionReader) read(ctx context.Context, s PartitionSpan, follow bool, fn func(gateway.Message) error, reached func()) error {
	c := r.cfg
	offset, end := s.First, s.End
	done := false
	mark := func() {
		if !done && offset >= end {
			done = true
			if reached != nil {
				reached()
			}
		}
	}
	mark()
	var conn *kafkago.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close()
		}
	}()
	failures := 0
	backoff := func() bool {
		failures++
		t := time.NewTimer(min(time.Duration(failures)*100*time.Millisecond, 2*time.Second))
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	empty := 0
	for {
		if ctx.Err() != nil {
			if follow {
				return nil
			}
			return ctx.Err()
		}
		if !follow && offset >= end {
			return nil
		}
		if conn == nil {
			addr := c.Brokers[failures%len(c.Brokers)]
			var err error
			if conn, err = r.dialer.DialLeader(ctx, "tcp", addr, c.Topic, s.Partition); err != nil {
				conn = nil
				if ctx.Err() == nil && !retriable(err) {
					return fmt.Errorf("topic %s partition %d: %w", c.Topic, s.Partition, err)
				}
				if !backoff() && !follow {
					return ctx.Err()
				}
				continue
			}
		}
		if _, err := conn.Seek(offset, kafkago.SeekAbsolute|kafkago.SeekDontCheck); err != nil {
			_ = conn.Close()
			conn = nil
			continue
		}
		_ = conn.SetReadDeadline(time.Now().Add(c.MaxWait + c.DialTimeout))
		batch := conn.ReadBatchWith(kafkago.ReadBatchConfig{MinBytes: 1, MaxBytes: c.MaxBytes, MaxWait: c.MaxWait,
			IsolationLevel: kafkago.ReadCommitted})
		before := offset
		var fnErr error
		for {
			m, err := batch.ReadMessage()
			if err != nil {
				break
			}
			if !follow && m.Offset >= end {
				break
			}
			if m.Offset < offset {
				continue // a batch may start before the offset asked for
			}
			msg := gateway.Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Time: m.Time}
			if len(m.Headers) > 0 {
				msg.Headers = make([]gateway.Header, len(m.Headers))
				for i, h := range m.Headers {
					msg.Headers[i] = gateway.Header{Key: h.Key, Value: h.Value}
				}
			}
			if fnErr = fn(msg); fnErr != nil {
				break
			}
			offset = m.Offset + 1
		}
		if next := batch.Offset(); next > offset && (follow || next <= end) {
			offset = next // past records removed by compaction at the end of a batch
		}
		err := batch.Close()
		if fnErr != nil {
			return fnErr
		}
		mark()
		var kerr kafkago.Error
		switch {
		case err == nil:
			failures = 0
		case errors.As(err, &kerr) && kerr == kafkago.OffsetOutOfRange:
			// Retention deleted records while we read: go on from the new start.
			spans, serr := c.spans(ctx)
			if serr == nil {
				for _, sp := range spans {
					if sp.Partition == s.Partition && sp.First > offset {
						offset = sp.First
					}
				}
			}
			mark()
			continue
		default:
			if ctx.Err() == nil && !retriable(err) && !isTimeout(err) {
				return fmt.Errorf("topic %s partition %d: fetch at offset %d: %w", c.Topic, s.Partition, offset, err)
			}
			_ = conn.Close()
			conn = nil
			if !backoff() && !follow {
				return ctx.Err()
			}
			continue
		}
		if offset > before || follow && offset >= end {
			empty = 0
			continue
		}
		// No record below the end offset although the log had one: the
		// rest of the range was removed since (retention, compaction).
		if empty++; empty >= 3 {
			spans, err := c.spans(ctx)
			if err != nil {
				if ctx.Err() != nil {
					continue
				}
				return err
			}
			for _, sp := range spans {
				if sp.Partition == s.Partition {
					offset = max(offset, sp.First)
					if sp.End <= offset || empty >= 10 {
						end = offset
					}
				}
			}
			mark()
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
