package kafka_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/adapters/broker"
	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
)

// testTimeout bounds every blocking step; a healthy run takes far less.
const testTimeout = 30 * time.Second

// startBroker runs the embedded broker with topics of the given partition count.
func startBroker(t testing.TB, partitions int, topics ...string) []string {
	t.Helper()
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", Partitions: partitions, Topics: topics})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	return b.Addrs()
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newSink returns a sink closed at the end of the test.
func newSink(t testing.TB, brokers []string) *kafka.Sink {
	t.Helper()
	return newSinkWith(t, kafka.SinkConfig{Brokers: brokers})
}

// newSinkWith returns a sink with cfg (client id test-sink), closed at the
// end of the test.
func newSinkWith(t testing.TB, cfg kafka.SinkConfig) *kafka.Sink {
	t.Helper()
	cfg.ClientID = "test-sink"
	s, err := kafka.NewSink(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// fastSource returns a source config with short intervals for tests.
func fastSource(brokers []string, group string, topics ...string) kafka.SourceConfig {
	return kafka.SourceConfig{
		Brokers: brokers, ClientID: "test-" + group, GroupID: group, Topics: topics,
		CommitInterval: 20 * time.Millisecond, MaxWait: 50 * time.Millisecond,
		HeartbeatInterval: 100 * time.Millisecond, JoinGroupBackoff: 50 * time.Millisecond,
	}
}

func newSource(t *testing.T, cfg kafka.SourceConfig) *kafka.Source {
	t.Helper()
	s, err := kafka.NewSource(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// publish writes records to topic, keyed "k<i mod keys>", values "<prefix><i>".
func publish(t *testing.T, brokers []string, topic, prefix string, n, keys int) {
	t.Helper()
	ds := make([]gateway.Disclosure, n)
	for i := range ds {
		ds[i] = gateway.Disclosure{Topic: topic, Key: fmt.Appendf(nil, "k%d", i%keys), Value: fmt.Appendf(nil, "%s%02d", prefix, i)}
	}
	require.NoError(t, newSink(t, brokers).Write(testCtx(t), ds...))
}

type read struct {
	msg gateway.Message
	ack gateway.AckFunc
}

// readN reads n messages.
func readN(t *testing.T, s *kafka.Source, n int) []read {
	t.Helper()
	ctx := testCtx(t)
	out := make([]read, 0, n)
	for range n {
		m, ack, err := s.Read(ctx)
		require.NoError(t, err, "after %d of %d messages", len(out), n)
		out = append(out, read{m, ack})
	}
	return out
}

func values(rs []read) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.msg.Value)
	}
	return out
}

// committed returns the group's committed offset (the next offset to read)
// for each partition of topic, -1 where nothing is committed.
func committed(t *testing.T, brokers []string, group, topic string, partitions int) []int64 {
	t.Helper()
	cl := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second}
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	resp, err := cl.OffsetFetch(testCtx(t), &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	require.NoError(t, err)
	require.NoError(t, resp.Error)
	out := make([]int64, partitions)
	for i := range out {
		out[i] = -1
	}
	for _, p := range resp.Topics[topic] {
		require.NoError(t, p.Error)
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// consumeAll reads every record of topic with plain partition readers,
// independent of the adapters, in partition then offset order.
func consumeAll(t *testing.T, brokers []string, topic string) []kafkago.Message {
	t.Helper()
	ctx := testCtx(t)
	cl := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second}
	meta, err := cl.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	require.NoError(t, err)
	require.Len(t, meta.Topics, 1)
	require.NoError(t, meta.Topics[0].Error)
	var parts []int
	for _, p := range meta.Topics[0].Partitions {
		parts = append(parts, p.ID)
	}
	sort.Ints(parts)
	var out []kafkago.Message
	for _, p := range parts {
		offs, err := cl.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{
			topic: {kafkago.LastOffsetOf(p)}}})
		require.NoError(t, err)
		end := offs.Topics[topic][0].LastOffset
		if end == 0 {
			continue
		}
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 50 * time.Millisecond})
		for {
			m, err := r.ReadMessage(ctx)
			require.NoError(t, err)
			out = append(out, m)
			if m.Offset == end-1 {
				break
			}
		}
		require.NoError(t, r.Close())
	}
	return out
}
