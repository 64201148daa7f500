package kafka_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
)

func headersOf(m kafkago.Message) []gateway.Header {
	var hs []gateway.Header
	for _, h := range m.Headers {
		hs = append(hs, gateway.Header{Key: h.Key, Value: h.Value})
	}
	return hs
}

func TestSinkRoundTrip(t *testing.T) {
	brokers := startBroker(t, 1, "out.a", "out.b")
	s := newSink(t, brokers)
	ds := []gateway.Disclosure{
		{Topic: "out.a", Key: []byte("p1"), Value: []byte("v1"),
			Headers: []gateway.Header{{Key: "dgw-event-id", Value: []byte("e1")}, {Key: "dgw-recipient", Value: []byte("r1")}}},
		{Topic: "out.b", Key: []byte("p2"), Value: []byte("v2"), Headers: []gateway.Header{{Key: "h", Value: []byte{0, 1, 2}}}},
		{Topic: "out.a", Key: nil, Value: []byte("no key, no headers")},
		{Topic: "out.b", Key: []byte("p3"), Value: nil},
	}
	require.NoError(t, s.Write(testCtx(t), ds...))

	got := map[string][]gateway.Disclosure{}
	for _, topic := range []string{"out.a", "out.b"} {
		for _, m := range consumeAll(t, brokers, topic) {
			got[topic] = append(got[topic], gateway.Disclosure{Topic: m.Topic, Key: m.Key, Value: m.Value, Headers: headersOf(m)})
		}
	}
	// Normalise empty and nil: Kafka does not distinguish them for values.
	for _, l := range got {
		for i := range l {
			if len(l[i].Key) == 0 {
				l[i].Key = nil
			}
			if len(l[i].Value) == 0 {
				l[i].Value = nil
			}
		}
	}
	assert.Equal(t, []gateway.Disclosure{ds[0], ds[2]}, got["out.a"], "records of one topic keep their order")
	assert.Equal(t, []gateway.Disclosure{ds[1], ds[3]}, got["out.b"])
}

func TestSinkSameKeySamePartition(t *testing.T) {
	brokers := startBroker(t, 4, "out")
	s := newSink(t, brokers)
	const keys, perKey = 8, 10
	var ds []gateway.Disclosure
	for i := range keys * perKey {
		ds = append(ds, gateway.Disclosure{Topic: "out", Key: fmt.Appendf(nil, "passenger-%d", i%keys), Value: fmt.Appendf(nil, "%d", i)})
	}
	// Several writes, as concurrent workers would make them.
	for chunk := range 4 {
		part := ds[chunk*len(ds)/4 : (chunk+1)*len(ds)/4]
		require.NoError(t, s.Write(testCtx(t), part...))
	}
	msgs := consumeAll(t, brokers, "out")
	require.Len(t, msgs, len(ds))
	partitionOf := map[string]int{}
	order := map[string][]string{}
	used := map[int]bool{}
	for _, m := range msgs {
		k := string(m.Key)
		if p, ok := partitionOf[k]; ok {
			assert.Equal(t, p, m.Partition, "key %s on two partitions", k)
		}
		partitionOf[k] = m.Partition
		order[k] = append(order[k], string(m.Value))
		used[m.Partition] = true
	}
	assert.Greater(t, len(used), 1, "keys are spread over partitions")
	for k, vs := range order {
		var want []string
		for i := range keys * perKey {
			if fmt.Sprintf("passenger-%d", i%keys) == k {
				want = append(want, fmt.Sprint(i))
			}
		}
		assert.Equal(t, want, vs, "records of key %s in write order", k)
	}
	// The partitioner is murmur2, as Java clients and librdkafka use.
	for k, p := range partitionOf {
		assert.Equal(t, (&kafkago.Murmur2Balancer{}).Balance(kafkago.Message{Key: []byte(k)}, 0, 1, 2, 3), p, k)
	}
}

func TestSinkPerRecordErrors(t *testing.T) {
	brokers := startBroker(t, 1, "out")
	s := newSink(t, brokers)
	tooLarge := bytes.Repeat([]byte("x"), 2<<20)
	ds := []gateway.Disclosure{
		{Topic: "out", Key: []byte("a"), Value: []byte("ok-1")},
		{Topic: "does.not.exist", Key: []byte("b"), Value: []byte("lost")},
		{Topic: "out", Key: []byte("c"), Value: tooLarge},
		{Topic: "", Value: []byte("no topic")},
		{Topic: "out", Key: []byte("d"), Value: []byte("ok-2")},
	}
	err := s.Write(testCtx(t), ds...)
	require.Error(t, err)
	var de gateway.DeliveryErrors
	require.ErrorAs(t, err, &de)
	require.Len(t, de, len(ds), "one entry per record")
	assert.NoError(t, de[0])
	assert.ErrorIs(t, de[1], kafkago.UnknownTopicOrPartition)
	assert.ErrorContains(t, de[1], "does.not.exist")
	assert.ErrorAs(t, de[2], new(kafkago.MessageTooLargeError))
	assert.ErrorContains(t, de[3], "no topic")
	assert.NoError(t, de[4])
	assert.Contains(t, err.Error(), "deliveries failed: 3 of 5")
	assert.NotContains(t, err.Error(), "lost", "errors never quote record values")

	var got []string
	for _, m := range consumeAll(t, brokers, "out") {
		got = append(got, string(m.Value))
	}
	assert.Equal(t, []string{"ok-1", "ok-2"}, got, "the acknowledged records, and only those, were written")
}

func TestSinkMissingTopicOnly(t *testing.T) {
	brokers := startBroker(t, 1)
	s := newSink(t, brokers)
	err := s.Write(testCtx(t), gateway.Disclosure{Topic: "missing", Value: []byte("v")})
	var de gateway.DeliveryErrors
	require.ErrorAs(t, err, &de)
	require.Len(t, de, 1)
	assert.ErrorIs(t, de[0], kafkago.UnknownTopicOrPartition)

	// No topic was created on the way.
	cl := &kafkago.Client{Addr: kafkago.TCP(brokers...)}
	meta, err := cl.Metadata(testCtx(t), &kafkago.MetadataRequest{Topics: []string{"missing"}})
	require.NoError(t, err)
	for _, tp := range meta.Topics {
		assert.Error(t, tp.Error, "topic %s must not be auto-created", tp.Name)
	}
}

func TestSinkCancelledContext(t *testing.T) {
	brokers := startBroker(t, 1, "out")
	s := newSink(t, brokers)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.Write(ctx, gateway.Disclosure{Topic: "out", Value: []byte("a")}, gateway.Disclosure{Topic: "out", Value: []byte("b")})
	var de gateway.DeliveryErrors
	require.ErrorAs(t, err, &de)
	require.Len(t, de, 2)
	for _, e := range de {
		assert.ErrorIs(t, e, context.Canceled)
	}
}

func TestSinkClose(t *testing.T) {
	brokers := startBroker(t, 1, "out")
	s, err := kafka.NewSink(kafka.SinkConfig{Brokers: brokers})
	require.NoError(t, err)
	require.NoError(t, s.Write(testCtx(t)), "an empty write is a no-op")
	require.NoError(t, s.Write(testCtx(t), gateway.Disclosure{Topic: "out", Value: []byte("v")}))
	require.NoError(t, s.Close(testCtx(t)))
	require.NoError(t, s.Close(testCtx(t)), "Close is idempotent")
	err = s.Write(testCtx(t), gateway.Disclosure{Topic: "out", Value: []byte("late")})
	require.ErrorIs(t, err, kafka.ErrSinkClosed)
	assert.Len(t, consumeAll(t, brokers, "out"), 1)
}

func TestSinkConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  kafka.SinkConfig
		want []string
	}{
		{"no brokers", kafka.SinkConfig{}, []string{"brokers: at least one"}},
		{"bad broker", kafka.SinkConfig{Brokers: []string{"localhost"}}, []string{`"localhost" is not host:port`}},
		{"negative values", kafka.SinkConfig{Brokers: []string{"h:1"}, BatchBytes: -1, BatchSize: -1, MaxAttempts: -1, MaxInFlight: -1, WriteTimeout: -1, DialTimeout: -1},
			[]string{"batch_bytes", "batch_size", "max_attempts", "max_in_flight", "write_timeout", "dial_timeout"}},
		{"bad security", kafka.SinkConfig{Brokers: []string{"h:1"}, Security: kafka.Security{SASLMechanism: "GSSAPI"}},
			[]string{`unknown SASL mechanism "GSSAPI"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := kafka.NewSink(tt.cfg)
			require.Error(t, err)
			assert.Nil(t, s)
			for _, w := range tt.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
	_, err := kafka.NewSink(kafka.SinkConfig{Brokers: []string{"h:1"}})
	require.NoError(t, err, "defaults make a minimal config valid")
}
