package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// watchdog checks the current generation's partitions every quarter of
// StallTimeout until Close (see "Stalls" in the Source doc).
func (s *Source) watchdog() {
	defer s.bg.Done()
	t := time.NewTicker(max(s.cfg.StallTimeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.closing.Done():
			return
		case <-t.C:
			s.checkStalls()
		}
	}
}

// checkStalls asks the broker for the end of every partition whose fetch
// has waited StallTimeout, and restarts the fetchers of those that have
// records after their next offset.
func (s *Source) checkStalls() {
	s.mu.Lock()
	var waiting []*partition
	if s.gen != nil && !s.gen.ended {
		for _, p := range s.gen.parts {
			if !p.waiting.IsZero() && time.Since(p.waiting) >= s.cfg.StallTimeout {
				waiting = append(waiting, p)
			}
		}
	}
	s.mu.Unlock()
	if len(waiting) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(s.closing, s.cfg.DialTimeout)
	defer cancel()
	req := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}, IsolationLevel: kafkago.ReadCommitted}
	for _, p := range waiting {
		req.Topics[p.topic] = append(req.Topics[p.topic], kafkago.FirstOffsetOf(p.partition), kafkago.LastOffsetOf(p.partition))
	}
	resp, err := s.admin.ListOffsets(ctx, req)
	if err != nil {
		// The fetchers report the broker's trouble themselves.
		s.log.Debug("kafka source: stall check: list offsets", "error", err.Error())
		return
	}
	ends := map[topicPartition]kafkago.PartitionOffsets{}
	for topic, pos := range resp.Topics {
		for _, po := range pos {
			if po.Error == nil {
				ends[topicPartition{topic, po.Partition}] = po
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range waiting {
		po, ok := ends[p.topicPartition]
		// Still waiting since the same moment: no record came meanwhile.
		if !ok || p.waiting.IsZero() || time.Since(p.waiting) < s.cfg.StallTimeout {
			continue
		}
		next := p.next
		switch next {
		case kafkago.FirstOffset:
			// Where kafka-go starts; the restarted reader starts there too.
			next = po.FirstOffset
			p.next = next
		case kafkago.LastOffset:
			continue // nothing is owed before the first record written after the start
		}
		p.hwm = max(p.hwm, po.LastOffset)
		if po.LastOffset <= next {
			continue // caught up: waiting is what it should do
		}
		s.stalls++
		p.stalled = true
		s.log.Warn("kafka source: partition stalled: no record fetched although the broker has more; restarting its fetcher",
			"topic", p.topic, "partition", p.partition, "next_offset", next, "end_offset", po.LastOffset,
			"waited", time.Since(p.waiting).Round(time.Millisecond).String())
		// A new reader, a new connection, the same offset.
		p.waiting = time.Time{}
		if p.kick != nil {
			p.kick()
		}
	}
}

// Stalls is how many times the watchdog found a partition of this member
// stalled and restarted its fetcher.
func (s *Source) Stalls() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stalls
}

// Stalled reports the partitions of the current generation found stalled
// that have not fetched a record since, naming topic, partition and next
// offset; nil when there are none. It is meant for readiness checks.
func (s *Source) Stalled() error {
	s.mu.Lock()
	var names []string
	if s.gen != nil {
		for _, p := range s.gen.parts {
			if p.stalled {
				names = append(names, fmt.Sprintf("%s/%d at offset %d", p.topic, p.partition, p.next))
			}
		}
	}
	s.mu.Unlock()
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	return errors.New("partitions stalled: " + strings.Join(names, ", "))
}
