package kafka_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dgwproject/dgw/adapters/kafka"
)

// TestSourceLateAcksOfALostPartition is the fault run's stall: a member
// loses a partition in a rebalance while it still holds records of it; the
// new owner reads the rest and commits the partition's end; then the old
// member's workers finish and ack. Those acks must not be committed: with
// kafka-go's group Reader they were, in the new generation, and moved the
// group's offset back below records nobody would read again.
func TestSourceLateAcksOfALostPartition(t *testing.T) {
	brokers := startBroker(t, 1, "pax")
	publish(t, brokers, "pax", "v", 6, 2)

	// kafka-go's range balancer gives the only partition to the member
	// whose id sorts last once both are in.
	cfg := fastSource(brokers, "g", "pax")
	cfg.ClientID = "a-loser"
	cfg.RevokeDrain = 50 * time.Millisecond
	a := newSource(t, cfg)
	first := readN(t, a, 6)
	require.NoError(t, first[0].ack(testCtx(t)))
	require.NoError(t, first[1].ack(testCtx(t)))
	require.Eventually(t, func() bool { return committed(t, brokers, "g", "pax", 1)[0] == 2 }, testTimeout, 10*time.Millisecond)

	taker := cfg
	taker.ClientID = "z-taker"
	b := newSource(t, taker)
	// a gets no partition now; its Read blocks until the test ends.
	go func() { _, _, _ = a.Read(t.Context()) }()
	again := readN(t, b, 4)
	assert.Equal(t, []string{"v02", "v03", "v04", "v05"}, values(again), "the new owner starts at the commit")
	for _, r := range again {
		require.NoError(t, r.ack(testCtx(t)))
	}
	require.Eventually(t, func() bool { return committed(t, brokers, "g", "pax", 1)[0] == 6 }, testTimeout, 10*time.Millisecond)

	// The old member's late acks: a prefix ending at 3.
	require.NoError(t, first[2].ack(testCtx(t)))
	require.NoError(t, first[3].ack(testCtx(t)))
	// Close commits whatever a would still commit.
	require.NoError(t, a.Close(testCtx(t)))
	assert.Equal(t, []int64{6}, committed(t, brokers, "g", "pax", 1), "the late acks of a lost partition moved the group's offset back")
	require.NoError(t, b.Close(testCtx(t)))
	assert.Equal(t, []int64{6}, committed(t, brokers, "g", "pax", 1))
}

// TestSourceCommitsWhenItsGenerationEnds: with periodic commits out of the
// picture, a member that loses its partition commits what was acked when
// its generation ends, before the partition is released, so the new owner
// does not read those records again.
func TestSourceCommitsWhenItsGenerationEnds(t *testing.T) {
	brokers := startBroker(t, 1, "pax")
	publish(t, brokers, "pax", "v", 6, 2)

	cfg := fastSource(brokers, "g", "pax")
	cfg.ClientID = "a-loser"
	cfg.CommitInterval = time.Hour           // only generation ends commit
	cfg.RevokeDrain = 200 * time.Millisecond // held[5] is never acked
	a := newSource(t, cfg)
	held := readN(t, a, 6)
	for _, r := range held[:5] {
		require.NoError(t, r.ack(testCtx(t)))
	}
	assert.Equal(t, []int64{-1}, committed(t, brokers, "g", "pax", 1), "nothing committed before the rebalance")

	taker := cfg
	taker.ClientID = "z-taker"
	b := newSource(t, taker)
	go func() { _, _, _ = a.Read(t.Context()) }()
	got := readN(t, b, 1)
	assert.Equal(t, "v05", string(got[0].msg.Value), "the new owner starts after what the old one finished")
	assert.Equal(t, []int64{5}, committed(t, brokers, "g", "pax", 1))
}

// TestSourceStallWatchdog: the broker stops answering the fetches of one
// partition (kfake swallows them, as a hung connection would) while it
// holds records. The watchdog must report the partition by name and
// offsets, count it, and restart its fetcher until records flow; then
// Stalled clears.
func TestSourceStallWatchdog(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "pax", "calm"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	var swallow atomic.Bool
	swallow.Store(true)
	var swallowed atomic.Int64
	c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !swallow.Load() {
			return nil, nil, false
		}
		for _, rt := range req.(*kmsg.FetchRequest).Topics {
			if rt.Topic == "pax" {
				swallowed.Add(1)
				return nil, nil, true // never answered
			}
		}
		return nil, nil, false
	})
	publish(t, brokers, "pax", "v", 3, 1)

	cfg := fastSource(brokers, "g", "pax", "calm")
	cfg.StallTimeout = 200 * time.Millisecond
	s := newSource(t, cfg)
	require.Eventually(t, func() bool { return s.Stalls() >= 2 }, testTimeout, 10*time.Millisecond,
		"the watchdog reports the stalled partition and keeps restarting its fetcher")
	require.EqualError(t, s.Stalled(), "partitions stalled: pax/0 at offset 0", "calm/0 has nothing to read, so it is not stalled")
	assert.GreaterOrEqual(t, swallowed.Load(), int64(2), "each restart fetches on a new connection")

	swallow.Store(false)
	got := readN(t, s, 3)
	assert.Equal(t, []string{"v00", "v01", "v02"}, values(got))
	require.NoError(t, s.Stalled(), "a partition that reads again is no longer stalled")
}

func TestSourceStallConfig(t *testing.T) {
	_, err := kafka.NewSource(kafka.SourceConfig{Brokers: []string{"h:1"}, GroupID: "g", Topics: []string{"a"},
		StallTimeout: -1, RevokeDrain: time.Minute}, nil)
	require.Error(t, err)
	assert.ErrorContains(t, err, "stall_timeout: expected a positive duration")
	assert.ErrorContains(t, err, "revoke_drain (1m0s) must be shorter than session_timeout (30s) and rebalance_timeout (30s)")
}
