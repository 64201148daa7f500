package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
)

func TestSourceReadsEverythingInPartitionOrder(t *testing.T) {
	brokers := startBroker(t, 3, "pax.a", "pax.b")
	before := time.Now().Add(-time.Minute)
	publish(t, brokers, "pax.a", "a", 40, 7)
	publish(t, brokers, "pax.b", "b", 20, 5)
	// One record with headers, to see them come through.
	require.NoError(t, newSink(t, brokers).Write(testCtx(t), gateway.Disclosure{Topic: "pax.b", Key: []byte("hk"),
		Value: []byte("with-headers"), Headers: []gateway.Header{{Key: "traceparent", Value: []byte("00-abc")}, {Key: "x", Value: nil}}}))

	s := newSource(t, fastSource(brokers, "g", "pax.a", "pax.b"))
	rs := readN(t, s, 61)

	last := map[string]int64{}
	var got []string
	for _, r := range rs {
		m := r.msg
		tp := fmt.Sprintf("%s/%d", m.Topic, m.Partition)
		if prev, ok := last[tp]; ok {
			assert.Greater(t, m.Offset, prev, "offsets of %s in order", tp)
		}
		last[tp] = m.Offset
		got = append(got, string(m.Value))
		assert.True(t, m.Time.After(before) && m.Time.Before(time.Now().Add(time.Minute)), "record time %s", m.Time)
		switch string(m.Value) {
		case "with-headers":
			assert.Equal(t, []byte("hk"), m.Key)
			assert.Equal(t, []byte("00-abc"), m.Header("traceparent"))
			require.Len(t, m.Headers, 2)
			assert.Equal(t, "x", m.Headers[1].Key)
		default:
			assert.NotEmpty(t, m.Key)
			assert.Empty(t, m.Headers)
		}
	}
	var want []string
	for i := range 40 {
		want = append(want, fmt.Sprintf("a%02d", i))
	}
	for i := range 20 {
		want = append(want, fmt.Sprintf("b%02d", i))
	}
	want = append(want, "with-headers")
	sort.Strings(got)
	sort.Strings(want)
	assert.Equal(t, want, got, "every record exactly once")
	assert.Greater(t, len(last), 3, "several partitions were read")
}

// TestSourceOrderedCommit acks out of order and proves, by reopening the
// group, that exactly the unacked records and everything after them are
// read again.
func TestSourceOrderedCommit(t *testing.T) {
	brokers := startBroker(t, 1, "pax")
	publish(t, brokers, "pax", "v", 10, 3)

	a := newSource(t, fastSource(brokers, "g", "pax"))
	rs := readN(t, a, 10)
	for i, r := range rs {
		require.EqualValues(t, i, r.msg.Offset)
	}
	// Acks arrive out of order; 3 and 6 are never acked.
	for _, i := range []int{5, 2, 7, 0, 9, 4, 1, 8} {
		require.NoError(t, rs[i].ack(testCtx(t)))
	}
	require.NoError(t, rs[2].ack(testCtx(t)), "acking twice is harmless")
	require.Eventually(t, func() bool { return committed(t, brokers, "g", "pax", 1)[0] == 3 }, testTimeout, 10*time.Millisecond,
		"offsets 0..2 are the acked prefix: the group resumes at 3")
	require.NoError(t, a.Close(testCtx(t)))
	assert.Equal(t, []int64{3}, committed(t, brokers, "g", "pax", 1), "Close commits no further than the acked prefix")

	// A marker after the restart shows where the re-read ends.
	publish(t, brokers, "pax", "end", 1, 1)
	b := newSource(t, fastSource(brokers, "g", "pax"))
	again := readN(t, b, 8)
	assert.Equal(t, []string{"v03", "v04", "v05", "v06", "v07", "v08", "v09", "end00"}, values(again))
	for _, r := range again {
		require.NoError(t, r.ack(testCtx(t)))
	}
	require.NoError(t, b.Close(testCtx(t)))
	assert.Equal(t, []int64{11}, committed(t, brokers, "g", "pax", 1), "Close commits everything acked")
}

func TestSourceCommitsPerPartition(t *testing.T) {
	brokers := startBroker(t, 2, "pax")
	publish(t, brokers, "pax", "v", 40, 10)
	s := newSource(t, fastSource(brokers, "g", "pax"))
	rs := readN(t, s, 40)
	// Ack everything of one partition and all but the first record of the
	// other: the second partition's offset must not move at all.
	blocked := rs[0].msg.Partition
	var want [2]int64
	for _, r := range rs {
		p := r.msg.Partition
		if p == blocked && r.msg.Offset == 0 {
			continue
		}
		require.NoError(t, r.ack(testCtx(t)))
		if p != blocked {
			want[p] = max(want[p], r.msg.Offset+1)
		}
	}
	want[blocked] = -1
	require.Eventually(t, func() bool { return committed(t, brokers, "g", "pax", 2)[1-blocked] == want[1-blocked] },
		testTimeout, 10*time.Millisecond)
	require.NoError(t, s.Close(testCtx(t)))
	assert.Equal(t, want[:], committed(t, brokers, "g", "pax", 2))
}

func TestSourceCommitsNothingWithoutAck(t *testing.T) {
	brokers := startBroker(t, 1, "acked", "unacked")
	publish(t, brokers, "unacked", "u", 5, 1)
	s := newSource(t, fastSource(brokers, "g", "acked", "unacked"))
	rs := readN(t, s, 5)
	assert.Equal(t, []string{"u00", "u01", "u02", "u03", "u04"}, values(rs))

	// A record of another topic, acked, proves the commit loop has run.
	publish(t, brokers, "acked", "a", 1, 1)
	other := readN(t, s, 1)
	require.Equal(t, "acked", other[0].msg.Topic)
	require.NoError(t, other[0].ack(testCtx(t)))
	require.Eventually(t, func() bool { return committed(t, brokers, "g", "acked", 1)[0] == 1 }, testTimeout, 10*time.Millisecond)
	assert.Equal(t, []int64{-1}, committed(t, brokers, "g", "unacked", 1))

	require.NoError(t, s.Close(testCtx(t)))
	assert.Equal(t, []int64{-1}, committed(t, brokers, "g", "unacked", 1), "Close does not commit unacked records")
	again := readN(t, newSource(t, fastSource(brokers, "g", "acked", "unacked")), 5)
	assert.Equal(t, []string{"u00", "u01", "u02", "u03", "u04"}, values(again))
}

func TestSourceCloseThenRead(t *testing.T) {
	brokers := startBroker(t, 1, "pax")
	publish(t, brokers, "pax", "v", 2, 1)
	s := newSource(t, fastSource(brokers, "g", "pax"))
	rs := readN(t, s, 1)
	require.NoError(t, s.Close(testCtx(t)))
	require.NoError(t, s.Close(testCtx(t)), "Close is idempotent")

	_, ack, err := s.Read(testCtx(t))
	require.ErrorIs(t, err, gateway.ErrClosed)
	assert.Nil(t, ack)
	assert.ErrorIs(t, rs[0].ack(testCtx(t)), gateway.ErrClosed, "an ack after the final commit reports it cannot count")
	assert.Equal(t, []int64{-1}, committed(t, brokers, "g", "pax", 1))
}

func TestSourceCancelUnblocksRead(t *testing.T) {
	brokers := startBroker(t, 1, "empty")
	s := newSource(t, fastSource(brokers, "g", "empty"))

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, _, err := s.Read(ctx)
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(testTimeout):
		t.Fatal("Read did not return after its context was cancelled")
	}
}

func TestSourceCloseUnblocksRead(t *testing.T) {
	brokers := startBroker(t, 1, "empty")
	s := newSource(t, fastSource(brokers, "g", "empty"))
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		_, _, err := s.Read(testCtx(t))
		errc <- err
	}()
	<-started
	require.NoError(t, s.Close(testCtx(t)))
	select {
	case err := <-errc:
		require.ErrorIs(t, err, gateway.ErrClosed)
	case <-time.After(testTimeout):
		t.Fatal("Read did not return after Close")
	}
}

// TestSourceRebalanceRewind has a second member join the group while the
// first holds unacked records. kafka-go's range balancer gives the only
// partition to the member whose id sorts last, so the first member keeps
// it, and the new generation starts it at the committed offset (the old
// generation's final commit found nothing new acked). The Source must hand
// out the unacked records again, in order, and track the partition afresh:
// the re-read records alone decide its commits, so earlier reads that are
// never acked (their worker gave up) do not hold the partition back.
func TestSourceRebalanceRewind(t *testing.T) {
	brokers := startBroker(t, 1, "pax")
	publish(t, brokers, "pax", "v", 6, 2)

	cfg := fastSource(brokers, "g", "pax")
	cfg.ClientID = "z-keeper"
	cfg.RevokeDrain = 100 * time.Millisecond // the first reads of 2, 3 and 5 stay unacked
	a := newSource(t, cfg)
	first := readN(t, a, 6)
	for _, i := range []int{1, 0, 4} {
		require.NoError(t, first[i].ack(testCtx(t)))
	}
	require.Eventually(t, func() bool { return committed(t, brokers, "g", "pax", 1)[0] == 2 }, testTimeout, 10*time.Millisecond)

	joiner := cfg
	joiner.ClientID = "a-joiner"
	b := newSource(t, joiner)
	// b gets no partition; its Read blocks until the test ends.
	go func() { _, _, _ = b.Read(t.Context()) }()

	again := readN(t, a, 4)
	assert.Equal(t, []string{"v02", "v03", "v04", "v05"}, values(again), "unacked records are read again, in order, from the committed offset")
	for _, i := range []int{3, 1, 0} { // offsets 5, 3, 2; 4 still open
		require.NoError(t, again[i].ack(testCtx(t)))
	}
	require.Eventually(t, func() bool { return committed(t, brokers, "g", "pax", 1)[0] == 4 }, testTimeout, 10*time.Millisecond,
		"the re-read prefix 2..3 is committed although the first reads of 2 and 3 are not acked")
	require.NoError(t, again[2].ack(testCtx(t)))
	require.Eventually(t, func() bool { return committed(t, brokers, "g", "pax", 1)[0] == 6 }, testTimeout, 10*time.Millisecond)
	// Late acks of the first reads are harmless.
	for _, i := range []int{2, 3, 5} {
		require.NoError(t, first[i].ack(testCtx(t)))
	}
	require.NoError(t, a.Close(testCtx(t)))
	assert.Equal(t, []int64{6}, committed(t, brokers, "g", "pax", 1))
}

func TestSourceConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  kafka.SourceConfig
		want []string
	}{
		{"empty", kafka.SourceConfig{}, []string{"brokers: at least one", "group_id", "topics: at least one"}},
		{"bad topics", kafka.SourceConfig{Brokers: []string{"h:1"}, GroupID: "g", Topics: []string{"a", "a", "b c", ""}},
			[]string{"a is listed twice", `"b c": only ASCII`, "must not be empty"}},
		{"bad start", kafka.SourceConfig{Brokers: []string{"h:1"}, GroupID: "g", Topics: []string{"a"}, StartOffset: "middle"},
			[]string{`start_offset: expected earliest or latest, got "middle"`}},
		{"durations", kafka.SourceConfig{Brokers: []string{"h:1"}, GroupID: "g", Topics: []string{"a"}, CommitInterval: -1,
			HeartbeatInterval: time.Minute, SessionTimeout: time.Second}, []string{"commit_interval", "heartbeat_interval (1m0s) must be shorter"}},
		{"security", kafka.SourceConfig{Brokers: []string{"h:1"}, GroupID: "g", Topics: []string{"a"},
			Security: kafka.Security{SASLMechanism: "PLAIN", Username: "u", CertFile: "c.pem"}},
			[]string{"needs a username and a password", "cert_file and key_file"}},
		{"unreadable ca", kafka.SourceConfig{Brokers: []string{"h:1"}, GroupID: "g", Topics: []string{"a"},
			Security: kafka.Security{CAFile: "/does/not/exist.pem"}}, []string{"read ca_file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := kafka.NewSource(tt.cfg, nil)
			require.Error(t, err)
			assert.Nil(t, s)
			for _, w := range tt.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

// TestSourceFatalErrorIsReturned: a fetch error kafka-go does not recover from ends
// Read with an error the pipeline reports, instead of spinning forever.
func TestSourceFatalErrorIsReturned(t *testing.T) {
	// Reading a group with SASL from a broker without SASL fails the
	// handshake on every connection, which kafka-go reports as a
	// non-temporary error.
	brokers := startBroker(t, 1, "pax")
	cfg := fastSource(brokers, "g", "pax")
	cfg.Security = kafka.Security{SASLMechanism: kafka.SASLPlain, Username: "u", Password: "not-in-errors-42"}
	s := newSource(t, cfg)
	_, _, err := s.Read(testCtx(t))
	require.Error(t, err)
	assert.False(t, errors.Is(err, gateway.ErrClosed))
	assert.Contains(t, err.Error(), "SASL")
	assert.NotContains(t, err.Error(), "not-in-errors-42", "no secrets in errors")
}

// TestSourceConcurrentAcks acks from many goroutines in random order, as
// the pipeline's workers do, leaving one record per partition unacked: each
// partition's commit stops exactly there.
func TestSourceConcurrentAcks(t *testing.T) {
	const parts, n = 3, 300
	brokers := startBroker(t, parts, "pax")
	publish(t, brokers, "pax", "v", n, 31)
	s := newSource(t, fastSource(brokers, "g", "pax"))
	rs := readN(t, s, n)

	held := map[int]int64{} // partition → the offset left unacked
	perPart := map[int]int64{}
	for _, r := range rs {
		perPart[r.msg.Partition]++
	}
	for p, count := range perPart {
		held[p] = count / 2
	}
	rand.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
	work := make(chan read)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for r := range work {
				assert.NoError(t, r.ack(t.Context()))
			}
		})
	}
	for _, r := range rs {
		if r.msg.Offset != held[r.msg.Partition] {
			work <- r
		}
	}
	close(work)
	wg.Wait()
	require.NoError(t, s.Close(testCtx(t)))

	got := committed(t, brokers, "g", "pax", parts)
	for p := range parts {
		assert.Equal(t, held[p], got[p], "partition %d resumes at its unacked record", p)
	}
	var again int64
	for p, count := range perPart {
		again += count - held[p]
	}
	reread := readN(t, newSource(t, fastSource(brokers, "g", "pax")), int(again))
	for _, r := range reread {
		assert.GreaterOrEqual(t, r.msg.Offset, held[r.msg.Partition])
	}
}
