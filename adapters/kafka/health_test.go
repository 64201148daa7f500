package kafka_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
)

// TestSourceLag follows one partition's lag as records are read and acked
// out of order: it counts from the first record not acked, whatever was
// acked after it.
func TestSourceLag(t *testing.T) {
	brokers := startBroker(t, 1, "lag")
	publish(t, brokers, "lag", "v", 10, 3)
	s := newSource(t, fastSource(brokers, "lag-group", "lag"))
	assert.Empty(t, s.Lag(), "no partition read yet")

	rs := readN(t, s, 3) // offsets 0, 1, 2 handed out
	lag := func() []gateway.PartitionLag { return s.Lag() }
	steps := []struct {
		name string
		ack  []int // indexes into rs
		want int64
	}{
		{"nothing acked", nil, 10},
		{"a later record acked first", []int{1}, 10},
		{"the first acked: prefix 0..1", []int{0}, 8},
		{"all handed out acked", []int{2}, 7},
	}
	for _, st := range steps {
		for _, i := range st.ack {
			require.NoError(t, rs[i].ack(testCtx(t)))
		}
		assert.Equal(t, []gateway.PartitionLag{{Topic: "lag", Partition: 0, Lag: st.want}}, lag(), st.name)
	}
	for _, r := range readN(t, s, 7) {
		require.NoError(t, r.ack(testCtx(t)))
	}
	assert.Equal(t, []gateway.PartitionLag{{Topic: "lag", Partition: 0, Lag: 0}}, lag(), "caught up")
}

func TestSourcePing(t *testing.T) {
	brokers := startBroker(t, 1, "ping")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, newSource(t, fastSource(brokers, "ping-group", "ping")).Ping(ctx))

	// An address nobody listens on any more.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	require.NoError(t, ln.Close())
	err = newSource(t, fastSource([]string{dead}, "ping-group", "ping")).Ping(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), dead, "the error names the broker that did not answer")
}
