package broker_test

import (
	"fmt"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dgwproject/dgw/adapters/broker"
)

// TestDataDirSurvivesRestart: with a data directory, records, topics and a
// group's committed offsets outlive the broker; topics named at the second
// start that the saved state lacks are created.
func TestDataDirSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", Partitions: 2, Topics: []string{"t"}, DataDir: dir})
	require.NoError(t, err)
	w := &kafkago.Writer{Addr: kafkago.TCP(b.Addrs()...), Topic: "t", RequiredAcks: kafkago.RequireAll, BatchTimeout: time.Millisecond}
	for i := range 10 {
		require.NoError(t, w.WriteMessages(t.Context(), kafkago.Message{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}))
	}
	require.NoError(t, w.Close())
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
	require.NoError(t, err)
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "t", Partition: 0, At: 1, LeaderEpoch: -1})
	resp, err := kadm.NewClient(cl).CommitOffsets(t.Context(), "g", offsets)
	require.NoError(t, err)
	require.NoError(t, resp.Error())
	cl.Close()
	b.Close()

	b2 := start(t, broker.Config{Addr: "127.0.0.1:0", Partitions: 3, Topics: []string{"t", "t2"}, DataDir: dir})
	assert.Equal(t, map[string]int{"t": 2, "t2": 3}, partitions(t, b2.Addrs()[0], "t", "t2"),
		"t keeps its partitions; t2 is new")
	cl2, err := kgo.NewClient(kgo.SeedBrokers(b2.Addrs()...))
	require.NoError(t, err)
	defer cl2.Close()
	adm := kadm.NewClient(cl2)
	ends, err := adm.ListEndOffsets(t.Context(), "t")
	require.NoError(t, err)
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	assert.Equal(t, int64(10), total, "every acknowledged record is still there")
	fetched, err := adm.FetchOffsets(t.Context(), "g")
	require.NoError(t, err)
	o, ok := fetched.Lookup("t", 0)
	require.True(t, ok, "the committed offset is still there")
	assert.Equal(t, int64(1), o.At)
}

func TestMemoryOnlyForgets(t *testing.T) {
	b := start(t, broker.Config{Addr: "127.0.0.1:0", Topics: []string{"t"}})
	b.Close()
	b2 := start(t, broker.Config{Addr: "127.0.0.1:0"})
	assert.Empty(t, partitions(t, b2.Addrs()[0], "t"), "without a data directory nothing is kept")
}
