package kafka_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/adapters/kafka"
)

func TestGroupOffsets(t *testing.T) {
	brokers := startBroker(t, 2, "held", "other")
	admin := kafka.AdminConfig{Brokers: brokers}

	lag, err := admin.GroupOffsets(testCtx(t), "redrive", "held")
	require.NoError(t, err)
	assert.Equal(t, []kafka.GroupOffset{
		{Topic: "held", Partition: 0, Committed: -1},
		{Topic: "held", Partition: 1, Committed: -1},
	}, lag, "empty topic, new group")

	// One key per partition is not guaranteed, so count per partition.
	publish(t, brokers, "held", "v", 10, 10)
	lag, err = admin.GroupOffsets(testCtx(t), "redrive", "held")
	require.NoError(t, err)
	var total int64
	for _, l := range lag {
		assert.Equal(t, int64(-1), l.Committed)
		assert.Equal(t, l.End, l.Remaining(), "nothing committed: everything remains")
		total += l.End
	}
	assert.Equal(t, int64(10), total)

	// Read and ack 4 records: the group's commit moves, the lag drops.
	src := newSource(t, fastSource(brokers, "redrive", "held"))
	for _, r := range readN(t, src, 4) {
		require.NoError(t, r.ack(testCtx(t)))
	}
	require.NoError(t, src.Close(testCtx(t)))
	lag, err = admin.GroupOffsets(testCtx(t), "redrive", "held")
	require.NoError(t, err)
	total = 0
	for _, l := range lag {
		total += l.Remaining()
		assert.LessOrEqual(t, l.Committed, l.End)
	}
	assert.Equal(t, int64(6), total)

	// Another group sees its own position only.
	lag, err = admin.GroupOffsets(testCtx(t), "someone-else", "held", "other")
	require.NoError(t, err)
	require.Len(t, lag, 4)
	assert.Equal(t, "held", lag[0].Topic)
	assert.Equal(t, "other", lag[3].Topic)
	total = 0
	for _, l := range lag {
		total += l.Remaining()
	}
	assert.Equal(t, int64(10), total)
}

func TestGroupOffsetsErrors(t *testing.T) {
	brokers := startBroker(t, 1, "held")
	admin := kafka.AdminConfig{Brokers: brokers}
	_, err := admin.GroupOffsets(testCtx(t), "", "held")
	assert.ErrorContains(t, err, "group")
	_, err = admin.GroupOffsets(testCtx(t), "g")
	assert.ErrorContains(t, err, "topics")
	_, err = admin.GroupOffsets(testCtx(t), "g", "missing")
	assert.ErrorContains(t, err, "missing")
}

func TestGroupOffsetRemaining(t *testing.T) {
	tests := []struct {
		name string
		lag  kafka.GroupOffset
		want int64
	}{
		{"no commit", kafka.GroupOffset{Committed: -1, Start: 3, End: 10}, 7},
		{"commit", kafka.GroupOffset{Committed: 8, Start: 3, End: 10}, 2},
		{"commit below the log start", kafka.GroupOffset{Committed: 1, Start: 3, End: 10}, 7},
		{"caught up", kafka.GroupOffset{Committed: 10, Start: 3, End: 10}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, tt.lag.Remaining()) })
	}
}
