package gateway

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func jobAt(i int) job { return job{msg: Message{Offset: int64(i)}, bytes: int64(i)} }

// TestWorkQueueKeepsOrder: jobs come out in the order they went in,
// across the queue's compactions (pushes while some were taken) and its
// shrinking once empty; close lets the worker take what is left first.
func TestWorkQueueKeepsOrder(t *testing.T) {
	q := newWorkQueue()
	next, want := 0, 0
	// Bursts of different lengths, each partly taken before the next,
	// so pushes meet a full array with taken jobs at its front.
	for _, burst := range []struct{ push, pop int }{{5, 3}, {7, 2}, {3, 10}, {200, 150}, {1, 51}, {10, 4}} {
		for range burst.push {
			q.push(jobAt(next))
			next++
		}
		for range burst.pop {
			j, ok := q.pop()
			require.True(t, ok)
			require.Equal(t, int64(want), j.msg.Offset, "jobs out of order")
			want++
		}
	}
	assert.LessOrEqual(t, cap(q.jobs), 2*200, "the array grows beyond twice the longest backlog")
	q.close()
	for ; want < next; want++ {
		j, ok := q.pop()
		require.True(t, ok, "a closed queue still hands out its jobs")
		assert.Equal(t, int64(want), j.msg.Offset)
	}
	_, ok := q.pop()
	assert.False(t, ok, "a closed, empty queue ends the worker")
}

// TestWorkQueueLetsGoOfItsBacklog: an emptied queue keeps no large array,
// and a taken job's slot no longer holds its record.
func TestWorkQueueLetsGoOfItsBacklog(t *testing.T) {
	q := newWorkQueue()
	for i := range 1000 {
		q.push(jobAt(i))
	}
	for range 999 {
		_, ok := q.pop()
		require.True(t, ok)
	}
	for _, j := range q.jobs[:q.head] {
		assert.Zero(t, j.msg.Offset, "a taken job is still referenced")
	}
	_, ok := q.pop()
	require.True(t, ok)
	assert.LessOrEqual(t, cap(q.jobs), shrinkAbove)
}

// TestWorkQueueConcurrent: one reader pushing, one worker popping, as the
// pipeline uses it; every job arrives once, in order (run with -race).
func TestWorkQueueConcurrent(t *testing.T) {
	const n = 20_000
	q := newWorkQueue()
	var wg sync.WaitGroup
	got := make([]int64, 0, n)
	wg.Go(func() {
		for j, ok := q.pop(); ok; j, ok = q.pop() {
			got = append(got, j.msg.Offset)
		}
	})
	for i := range n {
		q.push(jobAt(i))
	}
	q.close()
	wg.Wait()
	require.Len(t, got, n)
	for i, o := range got {
		if o != int64(i) {
			t.Fatalf("job %d came out as the %dth", o, i)
		}
	}
}
