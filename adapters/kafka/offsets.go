package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"

	kafkago "github.com/segmentio/kafka-go"
)

// GroupOffset is a consumer group's committed offset on one partition,
// with the bounds of the partition's log.
type GroupOffset struct {
	Topic     string
	Partition int
	// Committed is the next offset the group reads, or -1 when the group
	// has committed nothing on this partition.
	Committed int64
	// Start is the first offset still in the log; End is the offset the
	// next record written gets.
	Start, End int64
}

// From is the offset the group reads next: its commit, or the log start
// when it has none (a Source starts at the earliest offset) or its commit
// points at records already deleted.
func (l GroupOffset) From() int64 { return max(l.Committed, l.Start) }

// Remaining is how many records the group has still to read.
func (l GroupOffset) Remaining() int64 { return max(l.End-l.From(), 0) }

// GroupOffsets returns group's position on every partition of topics, sorted by
// topic and partition. Topics that do not exist are an error.
func (c AdminConfig) GroupOffsets(ctx context.Context, group string, topics ...string) ([]GroupOffset, error) {
	c.setDefaults()
	errs := []error{c.Validate()}
	if group == "" {
		errs = append(errs, errors.New("group: a consumer group id is required"))
	}
	if len(topics) == 0 {
		errs = append(errs, errors.New("topics: at least one topic is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("group offsets: %w", err)
	}
	tlsCfg, err := c.Security.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("group offsets: %w", err)
	}
	tr := &kafkago.Transport{ClientID: c.ClientID, TLS: tlsCfg, SASL: c.Security.mechanism(), DialTimeout: c.Timeout}
	defer tr.CloseIdleConnections()
	cl := &kafkago.Client{Addr: kafkago.TCP(c.Brokers...), Timeout: c.Timeout, Transport: tr}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()

	md, err := cl.Metadata(ctx, &kafkago.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("group offsets: metadata: %w", err)
	}
	parts := map[string][]int{}
	list := map[string][]kafkago.OffsetRequest{}
	for _, t := range md.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("group offsets: topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			parts[t.Name] = append(parts[t.Name], p.ID)
			list[t.Name] = append(list[t.Name], kafkago.FirstOffsetOf(p.ID), kafkago.LastOffsetOf(p.ID))
		}
	}
	for _, t := range topics {
		if len(parts[t]) == 0 {
			return nil, fmt.Errorf("group offsets: topic %s has no partitions", t)
		}
	}
	offs, err := cl.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: list})
	if err != nil {
		return nil, fmt.Errorf("group offsets: list offsets: %w", err)
	}
	committed, err := cl.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: parts})
	if err != nil {
		return nil, fmt.Errorf("group offsets: fetch offsets of group %s: %w", group, err)
	}
	if committed.Error != nil && !errors.Is(committed.Error, kafkago.GroupIdNotFound) {
		// A group that never committed is not an error (some brokers
		// report it as unknown, others as offsets of -1).
		return nil, fmt.Errorf("group offsets: fetch offsets of group %s: %w", group, committed.Error)
	}
	var out []GroupOffset
	for t, ps := range offs.Topics {
		byPart := map[int]kafkago.OffsetFetchPartition{}
		for _, cp := range committed.Topics[t] {
			byPart[cp.Partition] = cp
		}
		for _, po := range ps {
			if po.Error != nil {
				return nil, fmt.Errorf("group offsets: offsets of %s/%d: %w", t, po.Partition, po.Error)
			}
			cp, ok := byPart[po.Partition]
			if ok && cp.Error != nil {
				return nil, fmt.Errorf("group offsets: committed offset of %s/%d: %w", t, po.Partition, cp.Error)
			}
			l := GroupOffset{Topic: t, Partition: po.Partition, Committed: -1, Start: po.FirstOffset, End: po.LastOffset}
			if ok && cp.CommittedOffset >= 0 {
				l.Committed = cp.CommittedOffset
			}
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}
