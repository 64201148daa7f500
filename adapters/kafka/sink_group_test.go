package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
)

// The sink's group commit, observed from the broker: kfake control
// functions see every produce request, can hold one until the test
// releases it and can answer with an error instead of appending.

// produceLog records the produce requests the broker received: per
// request, the record count of each partition's batch.
type produceLog struct {
	mu   sync.Mutex
	reqs [][]int32
}

func (l *produceLog) add(req *kmsg.ProduceRequest) {
	var counts []int32
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			var b kmsg.RecordBatch
			if err := b.ReadFrom(p.Records); err == nil {
				counts = append(counts, b.NumRecords)
			}
		}
	}
	l.mu.Lock()
	l.reqs = append(l.reqs, counts)
	l.mu.Unlock()
}

func (l *produceLog) requests() [][]int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]int32(nil), l.reqs...)
}

// startKfake starts a bare kfake cluster (the embedded broker does not
// expose its control functions) with topics of the given partition count,
// and logs its produce requests.
func startKfake(t *testing.T, partitions int, topics ...string) (*kfake.Cluster, []string, *produceLog) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(partitions), topics...))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	log := &produceLog{}
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		log.add(req.(*kmsg.ProduceRequest))
		return nil, nil, false
	})
	return c, c.ListenAddrs(), log
}

// holdNextProduce makes the broker hold the next produce request until
// release is closed; arrived is closed when the request has reached it.
func holdNextProduce(c *kfake.Cluster) (arrived, release chan struct{}) {
	arrived, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		held := false
		once.Do(func() { held = true })
		if !held {
			c.DropControl()
			return nil, nil, false
		}
		close(arrived)
		c.SleepControl(func() { <-release })
		c.DropControl()
		return nil, nil, false
	})
	return arrived, release
}

// failProduce answers the next n produce requests with code instead of
// appending their records; it returns the count of requests it answered.
func failProduce(c *kfake.Cluster, n int64, code int16) *atomic.Int64 {
	var failed atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if failed.Load() >= n {
			c.DropControl()
			return nil, nil, false
		}
		c.KeepControl()
		failed.Add(1)
		pr := req.(*kmsg.ProduceRequest)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		resp.Version = pr.Version
		for _, rt := range pr.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	return &failed
}

func TestSinkSendsAtOnceAndGroupsWhatArrivesMeanwhile(t *testing.T) {
	c, brokers, log := startKfake(t, 1, "out", "other", "third")
	s := newSinkWith(t, kafka.SinkConfig{Brokers: brokers, MaxInFlight: 1})
	// Warm the metadata cache, so the requests below are produce requests only.
	require.NoError(t, s.Write(testCtx(t), gateway.Disclosure{Topic: "out", Value: []byte("warm-up")}))

	arrived, release := holdNextProduce(c)
	first := make(chan error, 1)
	go func() { first <- s.Write(testCtx(t), gateway.Disclosure{Topic: "out", Value: []byte("first")}) }()
	// No linger: the record for an idle broker reaches it while its Write
	// still waits (a sink that lingered for a batch would still be holding
	// it; the wait below would then end only with the test's timeout).
	select {
	case <-arrived:
	case <-testCtx(t).Done():
		t.Fatal("the first record was never sent")
	}
	// Five writers while that request is in flight, for three partitions
	// of the same broker: with one request in flight at most, they queue.
	var wg sync.WaitGroup
	topics := []string{"out", "out", "other", "out", "third"}
	errs := make([]error, len(topics))
	for i, topic := range topics {
		wg.Go(func() {
			errs[i] = s.Write(testCtx(t), gateway.Disclosure{Topic: topic, Value: fmt.Appendf(nil, "queued-%d", i)})
		})
	}
	require.Eventually(t, func() bool {
		return s.Queued("out", 0) == 3 && s.Queued("other", 0) == 1 && s.Queued("third", 0) == 1
	}, testTimeout, time.Millisecond, "the records queue behind the request in flight")
	close(release)
	require.NoError(t, <-first)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	reqs := log.requests()
	require.Len(t, reqs, 3, "one request per idle write, then one for everything queued meanwhile")
	assert.Equal(t, [][]int32{{1}, {1}}, reqs[:2])
	assert.ElementsMatch(t, []int32{3, 1, 1}, reqs[2], "the queued records of three partitions in one request, one batch per partition")
	var got []string
	for _, m := range consumeAll(t, brokers, "out") {
		got = append(got, string(m.Value))
	}
	require.Len(t, got, 5)
	assert.Equal(t, []string{"warm-up", "first"}, got[:2])
	assert.Len(t, consumeAll(t, brokers, "other"), 1)
	assert.Len(t, consumeAll(t, brokers, "third"), 1)
}

// holdProduces makes the broker hold the next n produce requests until
// release is closed; arrived receives once per held request, when it has
// reached the broker.
func holdProduces(c *kfake.Cluster, n int) (arrived chan struct{}, release chan struct{}) {
	arrived, release = make(chan struct{}, n), make(chan struct{})
	var held atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if held.Add(1) > int64(n) {
			c.DropControl()
			return nil, nil, false
		}
		c.KeepControl()
		arrived <- struct{}{}
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	return arrived, release
}

func TestSinkSendsBesideRequestsInFlightUpToMaxInFlight(t *testing.T) {
	c, brokers, log := startKfake(t, 1, "out", "other", "third")
	s := newSinkWith(t, kafka.SinkConfig{Brokers: brokers, MaxInFlight: 2})
	for _, topic := range []string{"out", "other", "third"} {
		// Warm the metadata cache, so the requests below are produce requests only.
		require.NoError(t, s.Write(testCtx(t), gateway.Disclosure{Topic: topic, Value: []byte("warm-up")}))
	}
	warm := len(log.requests())
	arrived, release := holdProduces(c, 2)
	write := func(topic, value string) chan error {
		done := make(chan error, 1)
		go func() { done <- s.Write(testCtx(t), gateway.Disclosure{Topic: topic, Value: []byte(value)}) }()
		return done
	}
	waitArrival := func(what string) {
		t.Helper()
		select {
		case <-arrived:
		case <-testCtx(t).Done():
			t.Fatalf("%s never reached the broker", what)
		}
	}
	first := write("out", "first")
	waitArrival("the first record")
	// Another partition's record does not wait for the request in flight.
	other := write("other", "other")
	waitArrival("a record for another partition, while one request was in flight")
	// Two requests in flight: a third partition's record waits, and so
	// does a record of a partition already in flight.
	third, second := write("third", "third"), write("out", "second")
	require.Eventually(t, func() bool { return s.Queued("third", 0) == 1 && s.Queued("out", 0) == 1 },
		testTimeout, time.Millisecond, "records queue while MaxInFlight requests are in flight")
	close(release)
	for _, done := range []chan error{first, other, third, second} {
		require.NoError(t, <-done)
	}
	reqs := log.requests()[warm:]
	require.GreaterOrEqual(t, len(reqs), 3)
	assert.Equal(t, [][]int32{{1}, {1}}, reqs[:2], "one request per write while fewer than two were in flight")
	// The queued records go as the held requests end: together, or the
	// third partition's first when the other partition's request ends
	// before the first partition's.
	var rest []int32
	for _, r := range reqs[2:] {
		rest = append(rest, r...)
	}
	assert.Equal(t, []int32{1, 1}, rest, "the queued records, each sent once")
	var got []string
	for _, m := range consumeAll(t, brokers, "out") {
		got = append(got, string(m.Value))
	}
	assert.Equal(t, []string{"warm-up", "first", "second"}, got, "a partition's records in the order written")
}

func TestSinkOrderPerPartitionUnderConcurrentWriters(t *testing.T) {
	_, brokers, log := startKfake(t, 3, "out.a", "out.b")
	s := newSink(t, brokers)
	const writers, writes = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range writes {
				// Each write: two records of this writer's key for out.a
				// (one partition), one for out.b.
				ds := []gateway.Disclosure{
					{Topic: "out.a", Key: fmt.Appendf(nil, "w%d", w), Value: fmt.Appendf(nil, "w%d-%03d-x", w, i)},
					{Topic: "out.b", Key: fmt.Appendf(nil, "w%d", w), Value: fmt.Appendf(nil, "w%d-%03d", w, i)},
					{Topic: "out.a", Key: fmt.Appendf(nil, "w%d", w), Value: fmt.Appendf(nil, "w%d-%03d-y", w, i)},
				}
				if err := s.Write(testCtx(t), ds...); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, topic := range []string{"out.a", "out.b"} {
		got := map[string][]string{}
		partOf := map[string]int{}
		for _, m := range consumeAll(t, brokers, topic) {
			k := string(m.Key)
			if p, ok := partOf[k]; ok {
				require.Equal(t, p, m.Partition, "key %s on two partitions", k)
			}
			partOf[k] = m.Partition
			got[k] = append(got[k], string(m.Value))
		}
		for w := range writers {
			k := fmt.Sprintf("w%d", w)
			var want []string
			for i := range writes {
				if topic == "out.a" {
					want = append(want, fmt.Sprintf("w%d-%03d-x", w, i), fmt.Sprintf("w%d-%03d-y", w, i))
				} else {
					want = append(want, fmt.Sprintf("w%d-%03d", w, i))
				}
			}
			assert.Equal(t, want, got[k], "%s: writer %d's records in the order it wrote them", topic, w)
			assert.Equal(t, (&kafkago.Murmur2Balancer{}).Balance(kafkago.Message{Key: []byte(k)}, 0, 1, 2), partOf[k], "murmur2 partition of %s", k)
		}
	}
	var records, requests int
	for _, r := range log.requests() {
		requests++
		for _, n := range r {
			records += int(n)
		}
	}
	assert.Equal(t, writers*writes*3, records, "every record sent once")
	t.Logf("%d records in %d produce requests", records, requests)
}

func TestSinkRetriesAcrossABrokerError(t *testing.T) {
	c, brokers, log := startKfake(t, 1, "out")
	s := newSink(t, brokers)
	require.NoError(t, s.Write(testCtx(t), gateway.Disclosure{Topic: "out", Value: []byte("warm-up")}))
	// Two refusals that mean "ask the metadata again": the sink retries on
	// a fresh transport and the third attempt lands.
	failed := failProduce(c, 2, kerr.NotLeaderForPartition.Code)
	require.NoError(t, s.Write(testCtx(t),
		gateway.Disclosure{Topic: "out", Key: []byte("k"), Value: []byte("a")},
		gateway.Disclosure{Topic: "out", Key: []byte("k"), Value: []byte("b")}))
	assert.Equal(t, int64(2), failed.Load())
	assert.Len(t, log.requests(), 1+3, "warm-up, two refused attempts, one accepted")
	var got []string
	for _, m := range consumeAll(t, brokers, "out") {
		got = append(got, string(m.Value))
	}
	assert.Equal(t, []string{"warm-up", "a", "b"}, got, "written once, in order")
}

func TestSinkGivesUpAfterMaxAttempts(t *testing.T) {
	c, brokers, log := startKfake(t, 1, "out")
	s, err := kafka.NewSink(kafka.SinkConfig{Brokers: brokers, MaxAttempts: 2})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(testCtx(t)) })
	require.NoError(t, s.Write(testCtx(t), gateway.Disclosure{Topic: "out", Value: []byte("warm-up")}))

	failProduce(c, 2, kerr.NotEnoughReplicas.Code) // as many as MaxAttempts
	err = s.Write(testCtx(t), gateway.Disclosure{Topic: "out", Value: []byte("a")}, gateway.Disclosure{Topic: "out", Value: []byte("b")})
	var de gateway.DeliveryErrors
	require.ErrorAs(t, err, &de)
	require.Len(t, de, 2)
	for _, e := range de {
		assert.ErrorIs(t, e, kafkago.NotEnoughReplicas, "each record fails with the broker's error")
		assert.ErrorContains(t, e, "after 2 attempts")
	}
	assert.Len(t, log.requests(), 1+2, "warm-up, then MaxAttempts attempts")

	// A refusal that is not retriable fails at once.
	failProduce(c, 1000, kerr.TopicAuthorizationFailed.Code)
	err = s.Write(testCtx(t), gateway.Disclosure{Topic: "out", Value: []byte("c")})
	require.ErrorAs(t, err, &de)
	assert.ErrorIs(t, de[0], kafkago.TopicAuthorizationFailed)
	assert.Len(t, log.requests(), 1+2+1, "no retry of a permanent error")
}

func TestSinkMissingTopicFailsOnlyItsRecords(t *testing.T) {
	_, brokers, log := startKfake(t, 1, "out")
	s := newSink(t, brokers)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.Write(testCtx(t),
				gateway.Disclosure{Topic: "out", Key: []byte("k"), Value: fmt.Appendf(nil, "ok-%d", i)},
				gateway.Disclosure{Topic: "gone", Key: []byte("k"), Value: []byte("lost")})
		})
	}
	wg.Wait()
	for _, err := range errs {
		var de gateway.DeliveryErrors
		require.ErrorAs(t, err, &de)
		require.Len(t, de, 2)
		assert.NoError(t, de[0])
		assert.ErrorIs(t, de[1], kafkago.UnknownTopicOrPartition)
		assert.ErrorContains(t, de[1], "gone")
	}
	assert.Len(t, consumeAll(t, brokers, "out"), 4)
	for _, r := range log.requests() {
		for _, n := range r {
			assert.Positive(t, n)
		}
	}
}

func TestSinkCloseFlushesQueuedRecords(t *testing.T) {
	c, brokers, _ := startKfake(t, 1, "out")
	s, err := kafka.NewSink(kafka.SinkConfig{Brokers: brokers})
	require.NoError(t, err)
	require.NoError(t, s.Write(testCtx(t), gateway.Disclosure{Topic: "out", Value: []byte("warm-up")}))

	arrived, release := holdNextProduce(c)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	wg.Go(func() { errs[0] = s.Write(testCtx(t), gateway.Disclosure{Topic: "out", Value: []byte("in-flight")}) })
	<-arrived
	for i := 1; i < len(errs); i++ {
		wg.Go(func() {
			errs[i] = s.Write(testCtx(t), gateway.Disclosure{Topic: "out", Value: fmt.Appendf(nil, "queued-%d", i)})
		})
	}
	require.Eventually(t, func() bool { return s.Queued("out", 0) == 3 }, testTimeout, time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- s.Close(testCtx(t)) }()
	close(release)
	require.NoError(t, <-closed)
	wg.Wait()
	for _, err := range errs {
		assert.NoError(t, err, "a record queued when Close was called is written, not dropped")
	}
	assert.Len(t, consumeAll(t, brokers, "out"), 5)
	require.ErrorIs(t, s.Write(testCtx(t), gateway.Disclosure{Topic: "out", Value: []byte("late")}), kafka.ErrSinkClosed)
}

func TestSinkRetriesAcrossABrokenConnection(t *testing.T) {
	c, brokers, _ := startKfake(t, 2, "out")
	s := newSink(t, brokers)
	require.NoError(t, s.Write(testCtx(t), gateway.Disclosure{Topic: "out", Value: []byte("warm-up")}))
	// The broker drops the connection instead of answering the next
	// produce request (as a broker restart would): the outcome is unknown
	// to the sink, which sends the records again on a new connection.
	var dropped atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		dropped.Add(1)
		return nil, errors.New("connection dropped by the test"), true
	})
	ds := []gateway.Disclosure{
		{Topic: "out", Key: []byte("k1"), Value: []byte("a")},
		{Topic: "out", Key: []byte("k2"), Value: []byte("b")},
		{Topic: "out", Key: []byte("k1"), Value: []byte("c")},
	}
	require.NoError(t, s.Write(testCtx(t), ds...))
	assert.Equal(t, int64(1), dropped.Load())
	got := map[string][]string{}
	for _, m := range consumeAll(t, brokers, "out") {
		got[string(m.Key)] = append(got[string(m.Key)], string(m.Value))
	}
	assert.Equal(t, []string{"a", "c"}, got["k1"], "written once, in order")
	assert.Equal(t, []string{"b"}, got["k2"])
}

func TestSinkCallerThatStopsWaiting(t *testing.T) {
	c, brokers, _ := startKfake(t, 1, "out")
	s := newSink(t, brokers)
	require.NoError(t, s.Write(testCtx(t), gateway.Disclosure{Topic: "out", Value: []byte("warm-up")}))

	arrived, release := holdNextProduce(c)
	first := make(chan error, 1)
	go func() { first <- s.Write(testCtx(t), gateway.Disclosure{Topic: "out", Value: []byte("in-flight")}) }()
	<-arrived
	// A caller whose ctx ends while its record waits behind the request
	// in flight: its Write fails (the caller writes the record again
	// later), and the record, not sent yet, is dropped rather than sent
	// behind its back.
	ctx, cancel := context.WithCancel(testCtx(t))
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- s.Write(ctx, gateway.Disclosure{Topic: "out", Value: []byte("abandoned")}) }()
	require.Eventually(t, func() bool { return s.Queued("out", 0) == 1 }, testTimeout, time.Millisecond)
	cancel()
	err := <-gaveUp
	var de gateway.DeliveryErrors
	require.ErrorAs(t, err, &de)
	require.Len(t, de, 1)
	assert.ErrorIs(t, de[0], context.Canceled)

	close(release)
	require.NoError(t, <-first)
	require.NoError(t, s.Close(testCtx(t)))
	var got []string
	for _, m := range consumeAll(t, brokers, "out") {
		got = append(got, string(m.Value))
	}
	assert.Equal(t, []string{"warm-up", "in-flight"}, got)
}

func TestSinkFailedRecordFailsTheCallersLaterRecordsOfItsPartition(t *testing.T) {
	c, brokers, log := startKfake(t, 1, "out")
	// One record per request, so a write's two records of one partition
	// go in two requests, one after the other.
	s, err := kafka.NewSink(kafka.SinkConfig{Brokers: brokers, BatchSize: 1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(testCtx(t)) })
	require.NoError(t, s.Write(testCtx(t), gateway.Disclosure{Topic: "out", Value: []byte("warm-up")}))

	failProduce(c, 1, kerr.TopicAuthorizationFailed.Code)
	err = s.Write(testCtx(t),
		gateway.Disclosure{Topic: "out", Key: []byte("k"), Value: []byte("first")},
		gateway.Disclosure{Topic: "out", Key: []byte("k"), Value: []byte("second")})
	var de gateway.DeliveryErrors
	require.ErrorAs(t, err, &de)
	require.Len(t, de, 2)
	assert.ErrorIs(t, de[0], kafkago.TopicAuthorizationFailed)
	assert.ErrorIs(t, de[1], kafkago.TopicAuthorizationFailed)
	assert.ErrorContains(t, de[1], "an earlier record of this write to partition 0 failed",
		"written, the second record would come before the first's retry")
	assert.Len(t, log.requests(), 1+1, "the second record is not sent")
	var got []string
	for _, m := range consumeAll(t, brokers, "out") {
		got = append(got, string(m.Value))
	}
	assert.Equal(t, []string{"warm-up"}, got)
}

func TestSinkFollowsMovedLeaders(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(6, "out"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	var requests, refused atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		requests.Add(1)
		for _, rt := range req.(*kmsg.ProduceRequest).Topics {
			for _, rp := range rt.Partitions {
				if c.LeaderFor(rt.Topic, rp.Partition) != c.CurrentNode() {
					refused.Add(1)
				}
			}
		}
		return nil, nil, false
	})
	s := newSink(t, brokers)
	write := func(round int) {
		t.Helper()
		var ds []gateway.Disclosure
		for k := range 12 {
			ds = append(ds, gateway.Disclosure{Topic: "out", Key: fmt.Appendf(nil, "k%d", k), Value: fmt.Appendf(nil, "k%d-%d", k, round)})
		}
		require.NoError(t, s.Write(testCtx(t), ds...), "round %d", round)
	}
	// Records for partitions led by three brokers: one request per broker.
	write(0)
	// Every partition moves to the next broker: the old leaders refuse
	// (NOT_LEADER_FOR_PARTITION), the sink fetches the metadata again and
	// sends to the new ones.
	for p := range int32(6) {
		require.NoError(t, c.MoveTopicPartition("out", p, (c.LeaderFor("out", p)+1)%3))
	}
	write(1)
	assert.Positive(t, refused.Load(), "the first write after the move went to the old leaders")
	before := requests.Load()
	write(2)
	assert.LessOrEqual(t, requests.Load()-before, int64(3), "then one request per broker again")
	got := map[string][]string{}
	for _, m := range consumeAll(t, brokers, "out") {
		got[string(m.Key)] = append(got[string(m.Key)], string(m.Value))
	}
	for k := range 12 {
		key := fmt.Sprintf("k%d", k)
		assert.Equal(t, []string{key + "-0", key + "-1", key + "-2"}, got[key], "each record once, in order, across the move")
	}
}
