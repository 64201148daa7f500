package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
)

func readerConfig(brokers []string, topic string) kafka.ReaderConfig {
	return kafka.ReaderConfig{Brokers: brokers, Topic: topic, MaxWait: 50 * time.Millisecond}
}

func TestScanReadsEveryPartitionToItsEnd(t *testing.T) {
	brokers := startBroker(t, 3, "t", "empty")
	publish(t, brokers, "t", "v", 60, 10)

	var spans []kafka.PartitionSpan
	var got []gateway.Message
	err := kafka.Scan(testCtx(t), readerConfig(brokers, "t"), func(s kafka.PartitionSpan) { spans = append(spans, s) },
		func(m gateway.Message) error {
			got = append(got, m)
			return nil
		})
	require.NoError(t, err)
	require.Len(t, spans, 3)
	total := int64(0)
	for i, s := range spans {
		assert.Equal(t, i, s.Partition)
		assert.Zero(t, s.First)
		total += s.End
	}
	assert.Equal(t, int64(60), total)
	require.Len(t, got, 60)
	values := map[string]bool{}
	last := map[int]int64{}
	for i, m := range got {
		values[string(m.Value)] = true
		if i > 0 {
			assert.GreaterOrEqual(t, m.Partition, got[i-1].Partition, "partition after partition")
		}
		if prev, ok := last[m.Partition]; ok {
			assert.Equal(t, prev+1, m.Offset, "offset order, nothing skipped")
		}
		last[m.Partition] = m.Offset
		assert.Equal(t, "t", m.Topic)
	}
	assert.Len(t, values, 60)

	n := 0
	require.NoError(t, kafka.Scan(testCtx(t), readerConfig(brokers, "empty"), nil, func(gateway.Message) error { n++; return nil }))
	assert.Zero(t, n)

	err = kafka.Scan(testCtx(t), readerConfig(brokers, "missing"), nil, func(gateway.Message) error { return nil })
	assert.ErrorContains(t, err, "missing")

	stop := errors.New("enough")
	n = 0
	err = kafka.Scan(testCtx(t), readerConfig(brokers, "t"), nil, func(gateway.Message) error {
		if n++; n == 5 {
			return stop
		}
		return nil
	})
	assert.ErrorIs(t, err, stop)
	assert.Equal(t, 5, n)
}

func TestFollowCatchesUpThenStaysLive(t *testing.T) {
	brokers := startBroker(t, 3, "s")
	publish(t, brokers, "s", "a", 30, 7)

	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	var mu sync.Mutex
	count, atCatchUp := 0, -1
	caughtUp := make(chan struct{})
	reached40 := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- kafka.Follow(ctx, readerConfig(brokers, "s"), func(gateway.Message) error {
			mu.Lock()
			defer mu.Unlock()
			if count++; count == 40 {
				close(reached40)
			}
			return nil
		}, func() {
			// Called while Follow holds the lock that serialises fn.
			atCatchUp = count
			close(caughtUp)
		})
	}()
	select {
	case <-caughtUp:
	case err := <-done:
		t.Fatalf("follow ended before catching up: %v", err)
	}
	assert.Equal(t, 30, atCatchUp, "caught up means everything the topic held was applied")

	publish(t, brokers, "s", "b", 10, 3)
	select {
	case <-reached40:
	case <-ctx.Done():
		t.Fatal("new records were not followed")
	}
	cancel()
	require.NoError(t, <-done, "the end of ctx is a normal stop")
}

func TestFollowStopsOnError(t *testing.T) {
	brokers := startBroker(t, 1, "s")
	publish(t, brokers, "s", "a", 3, 1)
	bad := errors.New("cannot apply")
	err := kafka.Follow(testCtx(t), readerConfig(brokers, "s"), func(gateway.Message) error { return bad }, nil)
	assert.ErrorIs(t, err, bad)
	err = kafka.Follow(testCtx(t), readerConfig(brokers, "missing"), func(gateway.Message) error { return nil }, nil)
	assert.Error(t, err)
	err = kafka.Follow(testCtx(t), kafka.ReaderConfig{Topic: "s"}, func(gateway.Message) error { return nil }, nil)
	assert.ErrorContains(t, err, "brokers")
}

func TestEnsureTopicsWithConfig(t *testing.T) {
	brokers := startBroker(t, 1)
	admin := kafka.AdminConfig{Brokers: brokers}
	ctx := testCtx(t)
	require.NoError(t, admin.EnsureTopicsWithConfig(ctx, 2, 1, map[string]string{"cleanup.policy": "compact"}, "subjects"))
	require.NoError(t, admin.EnsureTopicsWithConfig(ctx, 2, 1,
		map[string]string{"cleanup.policy": "delete", "retention.ms": "189345600000"}, "audit"))
	require.NoError(t, admin.EnsureTopics(ctx, 2, 1, "plain"))

	cfg, err := admin.TopicConfig(ctx, "subjects")
	require.NoError(t, err)
	assert.Equal(t, "compact", cfg["cleanup.policy"])
	cfg, err = admin.TopicConfig(ctx, "audit")
	require.NoError(t, err)
	assert.Equal(t, "delete", cfg["cleanup.policy"])
	assert.Equal(t, "189345600000", cfg["retention.ms"])
	cfg, err = admin.TopicConfig(ctx, "plain")
	require.NoError(t, err)
	assert.Equal(t, "delete", cfg["cleanup.policy"], "the broker default")

	// An existing topic keeps its configuration.
	require.NoError(t, admin.EnsureTopicsWithConfig(ctx, 2, 1, map[string]string{"cleanup.policy": "compact"}, "audit"))
	cfg, err = admin.TopicConfig(ctx, "audit")
	require.NoError(t, err)
	assert.Equal(t, "delete", cfg["cleanup.policy"])

	_, err = admin.TopicConfig(ctx, "missing")
	assert.Error(t, err)
	_, err = admin.TopicConfig(ctx, "bad topic")
	assert.ErrorContains(t, err, fmt.Sprintf("%q", "bad topic"))
}
