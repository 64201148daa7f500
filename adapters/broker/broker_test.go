package broker_test

import (
	"context"
	"fmt"
	"net"
	"sort"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/adapters/broker"
)

func start(t *testing.T, cfg broker.Config) *broker.Broker {
	t.Helper()
	b, err := broker.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(b.Close)
	return b
}

// partitions asks the broker, over the wire, how many partitions each topic has.
func partitions(t *testing.T, addr string, topics ...string) map[string]int {
	t.Helper()
	cl := &kafkago.Client{Addr: kafkago.TCP(addr), Timeout: 10 * time.Second}
	resp, err := cl.Metadata(t.Context(), &kafkago.MetadataRequest{Topics: topics})
	require.NoError(t, err)
	out := map[string]int{}
	for _, tp := range resp.Topics {
		if tp.Error == nil {
			out[tp.Name] = len(tp.Partitions)
		}
	}
	return out
}

func TestStartRandomPortWithTopics(t *testing.T) {
	b := start(t, broker.Config{Addr: "127.0.0.1:0", Partitions: 3, Topics: []string{"pax.booking", "dgw.out.a"}})
	addrs := b.Addrs()
	require.Len(t, addrs, 1)
	host, port, err := net.SplitHostPort(addrs[0])
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", host)
	assert.NotEqual(t, "0", port, "the advertised address names the port actually bound")

	assert.Equal(t, map[string]int{"pax.booking": 3, "dgw.out.a": 3}, partitions(t, addrs[0], "pax.booking", "dgw.out.a", "missing"))
}

func TestDefaults(t *testing.T) {
	b := start(t, broker.Config{Topics: []string{"t"}})
	host, _, err := net.SplitHostPort(b.Addrs()[0])
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", host)
	assert.Equal(t, map[string]int{"t": 1}, partitions(t, b.Addrs()[0], "t"))
}

func TestCreateTopics(t *testing.T) {
	b := start(t, broker.Config{Partitions: 2, Topics: []string{"existing"}})
	require.NoError(t, b.CreateTopics(t.Context(), 5, "new", "existing"))
	require.NoError(t, b.CreateTopics(t.Context(), -1, "default"))
	require.NoError(t, b.CreateTopics(t.Context(), 4), "no topics is a no-op")
	assert.Equal(t, map[string]int{"new": 5, "existing": 2, "default": 2},
		partitions(t, b.Addrs()[0], "new", "existing", "default"), "an existing topic keeps its partitions")

	require.ErrorContains(t, b.CreateTopics(t.Context(), 1, "bad topic"), "only ASCII letters")
	require.ErrorContains(t, b.CreateTopics(t.Context(), -2, "x"), "partitions")
	b.Close()
	require.ErrorContains(t, b.CreateTopics(t.Context(), 1, "after-close"), "closed")
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  broker.Config
		want []string
	}{
		{"no port", broker.Config{Addr: "127.0.0.1"}, []string{"expected host:port"}},
		{"no host", broker.Config{Addr: ":9092"}, []string{"a host is required"}},
		{"unspecified v4", broker.Config{Addr: "0.0.0.0:9092"}, []string{"must be dialable"}},
		{"unspecified v6", broker.Config{Addr: "[::]:9092"}, []string{"must be dialable"}},
		{"bad port", broker.Config{Addr: "127.0.0.1:http"}, []string{"port must be a number"}},
		{"port range", broker.Config{Addr: "127.0.0.1:70000"}, []string{"port must be a number"}},
		{"negative partitions", broker.Config{Partitions: -1}, []string{"partitions: expected 1..1000, got -1"}},
		{"bad topics", broker.Config{Topics: []string{"", "a/b", ".."}},
			[]string{"must not be empty", `"a/b": only ASCII`, `".."`}},
		{"everything at once", broker.Config{Addr: "x", Partitions: -3, Topics: []string{""}},
			[]string{"expected host:port", "got -3", "must not be empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := broker.Start(tt.cfg)
			require.Error(t, err)
			assert.Nil(t, b)
			for _, w := range tt.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

func TestAddressInUse(t *testing.T) {
	b := start(t, broker.Config{})
	_, err := broker.Start(broker.Config{Addr: b.Addrs()[0]})
	require.ErrorContains(t, err, "address already in use")
}

func TestCloseFreesPort(t *testing.T) {
	b, err := broker.Start(broker.Config{Topics: []string{"t"}})
	require.NoError(t, err)
	addr := b.Addrs()[0]
	// A connected client must not keep the port bound after Close.
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()

	b.Close()
	b.Close() // idempotent

	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err, "the port is free again after Close")
	require.NoError(t, ln.Close())

	// And a new broker can take the same fixed address.
	b2 := start(t, broker.Config{Addr: addr})
	assert.Equal(t, []string{addr}, b2.Addrs())
}

// TestKafkaGoConsumerGroup is what the gateway relies on: a kafka-go writer
// produces with acks=all, a kafka-go consumer group over several topics
// reads everything, commits, and a second reader of the same group resumes
// after the commit.
func TestKafkaGoConsumerGroup(t *testing.T) {
	topics := []string{"pax.a", "pax.b"}
	b := start(t, broker.Config{Addr: "127.0.0.1:0", Partitions: 3, Topics: topics})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	w := &kafkago.Writer{Addr: kafkago.TCP(b.Addrs()...), RequiredAcks: kafkago.RequireAll,
		Balancer: &kafkago.Hash{}, BatchTimeout: time.Millisecond}
	defer w.Close()
	var msgs []kafkago.Message
	want := map[string]bool{}
	for i := range 30 {
		topic := topics[i%2]
		v := fmt.Sprintf("%s-%02d", topic, i)
		msgs = append(msgs, kafkago.Message{Topic: topic, Key: fmt.Appendf(nil, "k%d", i%7), Value: []byte(v)})
		want[v] = true
	}
	require.NoError(t, w.WriteMessages(ctx, msgs...))

	read := func(n int) []string {
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: b.Addrs(), GroupID: "g", GroupTopics: topics,
			MaxWait: 50 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond})
		defer func() { require.NoError(t, r.Close()) }()
		var got []string
		for range n {
			m, err := r.FetchMessage(ctx)
			require.NoError(t, err)
			require.NoError(t, r.CommitMessages(ctx, m))
			got = append(got, string(m.Value))
		}
		return got
	}
	got := read(len(msgs))
	sort.Strings(got)
	var wantList []string
	for v := range want {
		wantList = append(wantList, v)
	}
	sort.Strings(wantList)
	assert.Equal(t, wantList, got)

	// Everything is committed: a new member of the group sees only new records.
	require.NoError(t, w.WriteMessages(ctx, kafkago.Message{Topic: "pax.b", Value: []byte("late")}))
	assert.Equal(t, []string{"late"}, read(1))
}
