package gateway

import "sync"

// workQueue is one worker's first-in first-out list of jobs. Handing a job
// over never waits: the pipeline's tokens bound the jobs of all the queues
// together (workers × (queue+1)), so a queue needs no bound of its own. A
// channel of fixed length per worker had the reader wait whenever the
// worker of the next record had a full queue, and every other worker wait
// with it: a worker slowed by one long write, a decision miss or a
// collection held up the records of all the others (in `dgw bench`'s
// latency phase at 3,500 events/s, the p99 from a record's timestamp to its
// read fell from 35–48 ms to 8–10 ms without that wait).
type workQueue struct {
	mu     sync.Mutex
	jobs   []job // jobs[head:] are waiting, oldest first
	head   int
	closed bool
	// ready holds a wake-up for the worker once a job was pushed or the
	// queue closed; one is enough, as the worker looks again under mu.
	ready chan struct{}
}

func newWorkQueue() *workQueue { return &workQueue{ready: make(chan struct{}, 1)} }

// shrinkAbove is the capacity a queue that empties lets go of: after a
// burst for one key, the worker does not keep a backlog-sized array.
const shrinkAbove = 64

func (q *workQueue) push(j job) {
	q.mu.Lock()
	if len(q.jobs) == cap(q.jobs) && q.head > 0 {
		// Move the waiting jobs to the front rather than grow: the
		// array stays within twice the longest backlog.
		n := copy(q.jobs, q.jobs[q.head:])
		clear(q.jobs[n:])
		q.jobs, q.head = q.jobs[:n], 0
	}
	q.jobs = append(q.jobs, j)
	q.mu.Unlock()
	q.wake()
}

// close lets the worker return once it has taken every job.
func (q *workQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wake()
}

func (q *workQueue) wake() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// waiting is the number of jobs in the queue (not the one its worker
// handles).
func (q *workQueue) waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.jobs) - q.head
}

// pop returns the oldest job, waiting for one; false once the queue is
// closed and empty.
func (q *workQueue) pop() (job, bool) {
	for {
		q.mu.Lock()
		if q.head < len(q.jobs) {
			j := q.jobs[q.head]
			q.jobs[q.head] = job{} // the record's bytes go with the job
			q.head++
			if q.head == len(q.jobs) {
				q.head = 0
				if cap(q.jobs) > shrinkAbove {
					q.jobs = nil
				} else {
					q.jobs = q.jobs[:0]
				}
			}
			q.mu.Unlock()
			return j, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return job{}, false
		}
		<-q.ready
	}
}
