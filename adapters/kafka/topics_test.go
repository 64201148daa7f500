package kafka_test

import (
	"testing"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
)

func topicPartitions(t *testing.T, brokers []string, topics ...string) map[string]int {
	t.Helper()
	cl := &kafkago.Client{Addr: kafkago.TCP(brokers...)}
	meta, err := cl.Metadata(testCtx(t), &kafkago.MetadataRequest{Topics: topics})
	require.NoError(t, err)
	out := map[string]int{}
	for _, tp := range meta.Topics {
		if tp.Error == nil {
			out[tp.Name] = len(tp.Partitions)
		}
	}
	return out
}

func TestEnsureTopics(t *testing.T) {
	brokers := startBroker(t, 2, "existing")
	require.NoError(t, kafka.EnsureTopics(testCtx(t), brokers, 3, 1, "new.a", "existing", "new.b", "new.a"))
	assert.Equal(t, map[string]int{"new.a": 3, "new.b": 3, "existing": 2}, topicPartitions(t, brokers, "new.a", "new.b", "existing"),
		"missing topics are created, existing ones keep their partitions")
	require.NoError(t, kafka.EnsureTopics(testCtx(t), brokers, 3, 1, "new.a", "new.b"), "running again is fine")
	require.NoError(t, kafka.EnsureTopics(testCtx(t), brokers, 3, 1), "no topics: nothing to do")

	// The sink can write to a topic created this way at once.
	require.NoError(t, newSink(t, brokers).Write(testCtx(t), gateway.Disclosure{Topic: "new.b", Value: []byte("v")}))
}

func TestEnsureTopicsErrors(t *testing.T) {
	brokers := startBroker(t, 1)
	tests := []struct {
		name                 string
		brokers              []string
		partitions, replicas int
		topics               []string
		want                 []string
	}{
		{"no brokers", nil, 1, 1, []string{"t"}, []string{"brokers: at least one"}},
		{"bad counts", brokers, 0, -2, []string{"t"}, []string{"partitions: expected a positive count or -1, got 0", "replication: expected a positive factor or -1, got -2"}},
		{"bad name", brokers, 1, 1, []string{"a b"}, []string{`"a b": only ASCII`}},
		{"replication above cluster size", brokers, 1, 3, []string{"t"}, []string{"create topic t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := kafka.EnsureTopics(testCtx(t), tt.brokers, tt.partitions, tt.replicas, tt.topics...)
			require.Error(t, err)
			for _, w := range tt.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}
