package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/adapters/broker"
	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/audit"
	"github.com/dgwproject/dgw/gateway/redact"
)

// newBedWithout is newTestBed with the topics in missing not created, so
// writes to them fail as when a recipient's topic is gone.
func newBedWithout(t *testing.T, missing ...string) *testBed {
	t.Helper()
	p, err := buildParts(t.Context(), "", "", redact.DevKeyring("e2e"), 1<<20, discardLogger())
	require.NoError(t, err)
	sources := defaultSourceTopics(p.set)
	var topics []string
	for _, tp := range append(append([]string{testDeadLetter, testHeld}, sources...), recipientTopics(p.recipients)...) {
		if !slices.Contains(missing, tp) {
			topics = append(topics, tp)
		}
	}
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", Partitions: 3, Topics: topics})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	acct, err := newAccountability(p.set, defaultAuditTopic, defaultSubjectTopic, audit.DevKey(devAuditSeed), defaultAuditRetention)
	require.NoError(t, err)
	require.NoError(t, acct.ensureTopics(t.Context(), kafka.AdminConfig{Brokers: b.Addrs()}, 3, 1))
	return &testBed{broker: b, brokers: b.Addrs(), parts: p, sources: sources, acct: acct}
}

// runConfig writes a `dgw run` configuration for brokers with hash keys
// for every recipient and an audit key, and returns its path.
func runConfig(t *testing.T, p *parts, brokers []string, extra string) string {
	t.Helper()
	dir := t.TempDir()
	var keys strings.Builder
	for _, r := range p.recipients {
		fmt.Fprintf(&keys, "%s = test-secret-0123456789abcdef0123456789-%s\n", r.ID, r.ID)
	}
	keyFile := filepath.Join(dir, "hash-keys")
	require.NoError(t, os.WriteFile(keyFile, []byte(keys.String()), 0o600))
	auditKey := filepath.Join(dir, "audit-key")
	require.NoError(t, os.WriteFile(auditKey, []byte("test-audit-key-0123456789abcdef0123456789\n"), 0o600))
	cfg := fmt.Sprintf("brokers: [%q]\nhash_keys_file: %q\naudit_key_file: %q\nworkers: 4\nqueue: 8\nlog_level: warn\n%s",
		strings.Join(brokers, `","`), keyFile, auditKey, extra)
	file := filepath.Join(dir, "dgw.yaml")
	require.NoError(t, os.WriteFile(file, []byte(cfg), 0o600))
	return file
}

// runWith runs the gateway as run does (with the test bed's accountability)
// until n records are handled, with extra pipeline options.
func runWith(t *testing.T, tb *testBed, group string, n int64, opts ...gateway.Option) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var seen atomic.Int64
	done := make(chan struct{})
	obs := gateway.ObserverFunc(func(*gateway.EventResult) {
		if seen.Add(1) == n {
			close(done)
		}
	})
	errc := make(chan error, 1)
	go func() {
		errc <- runGateway(ctx, gatewayOptions{brokers: tb.brokers, clientID: group, group: group, topics: tb.sources,
			deadLetter: testDeadLetter, held: testHeld, workers: 4, queue: 8, parts: tb.parts, log: discardLogger(),
			observers: []gateway.Observer{obs}, extra: opts, acct: tb.acct})
	}()
	select {
	case <-done:
	case err := <-errc:
		t.Fatalf("gateway stopped after %d of %d records: %v", seen.Load(), n, err)
	case <-time.After(180 * testTimeoutScale()):
		t.Fatalf("gateway handled %d of %d records before the deadline", seen.Load(), n)
	}
	cancel()
	require.NoError(t, <-errc)
}

func redriveJSON(t *testing.T, args ...string) (redriveReport, string, int) {
	t.Helper()
	out, stderr, code := runCLI(t, nil, append([]string{"redrive", "--json"}, args...)...)
	var rep redriveReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep), "stdout %q, stderr %q", out, stderr)
	return rep, stderr, code
}

func countByRecipient(rs []outRecord) map[string]int {
	out := map[string]int{}
	for _, r := range rs {
		out[r.Headers[gateway.HeaderRecipient]]++
	}
	return out
}

// TestRedriveHeld: a recipient's topic is missing, so its copies are held
// with sink-error while the other recipients get theirs. Once the topic
// exists, redrive delivers the held copies to that recipient only: no
// other recipient gets a duplicate, nothing is held again, and the redrive
// group's offset ends at the held topic's end, so a second run does nothing.
func TestRedriveHeld(t *testing.T) {
	const down = "skychef-catering"
	downTopic := "dgw.out." + down
	tb := newBedWithout(t, downTopic)
	events := generate(t, tb.parts, 24, 11)
	var records []gateway.Disclosure
	for _, e := range events {
		records = append(records, e.record)
	}
	tb.publish(t, records...)
	// One delivery attempt, short backoffs: the missing topic fails fast.
	runWith(t, tb, "redrive-src", int64(len(records)), gateway.WithSinkAttempts(1),
		gateway.WithRetryBackoff(10*time.Millisecond, 50*time.Millisecond))

	outTopics := slices.DeleteFunc(recipientTopics(tb.parts.recipients), func(s string) bool { return s == downTopic })
	before := readAll(t, tb.brokers, append([]string{testHeld}, outTopics...)...)
	held := before[testHeld]
	require.NotEmpty(t, held, "no copy for %s was held; pick another seed", down)
	heldIDs := map[string]bool{}
	for _, h := range held {
		assert.Equal(t, down, h.Headers[gateway.HeaderRecipient], "only the failing recipient's copies are held")
		assert.Equal(t, string(gateway.ReasonSink), h.Headers[gateway.HeaderReason])
		heldIDs[h.Headers[gateway.HeaderEventID]] = true
	}
	// A held record for a recipient the registry no longer has: skipped.
	orphan := held[0]
	orphanHeaders := []gateway.Header{{Key: gateway.HeaderRecipient, Value: []byte("retired-partner")},
		{Key: gateway.HeaderReason, Value: []byte(gateway.ReasonSink)}}
	tb.publish(t, gateway.Disclosure{Topic: testHeld, Key: []byte(orphan.Key), Value: orphan.Value, Headers: orphanHeaders})

	cfg := runConfig(t, tb.parts, tb.brokers, "")
	require.NoError(t, tb.broker.CreateTopics(t.Context(), 3, downTopic))

	// Dry run: reports, writes and commits nothing.
	rep, stderr, code := redriveJSON(t, "--from", "held", "--config", cfg, "--dry-run")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, int64(len(held)+1), rep.Pending)
	assert.Equal(t, int64(len(held)+1), rep.Read)
	assert.Equal(t, int64(1), rep.Skipped)
	assert.Equal(t, int64(len(held)), rep.Delivered, "every held copy would now be delivered")
	lag, err := kafka.AdminConfig{Brokers: tb.brokers}.GroupOffsets(t.Context(), "dgw-redrive", testHeld)
	require.NoError(t, err)
	for _, l := range lag {
		assert.Equal(t, int64(-1), l.Committed, "a dry run commits nothing")
	}

	// The real thing; --brokers overrides the configuration's.
	bad := runConfig(t, tb.parts, []string{"127.0.0.1:1"}, "")
	rep, stderr, code = redriveJSON(t, "--from", "held", "--config", bad, "--brokers", strings.Join(tb.brokers, ","))
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, int64(len(held)), rep.Delivered)
	assert.Empty(t, rep.HeldAgain)
	require.Len(t, rep.Recipients, 1, "only the held recipient is considered")
	assert.Equal(t, down, rep.Recipients[0].ID)

	after := readAll(t, tb.brokers, append([]string{testHeld, downTopic}, outTopics...)...)
	got := map[string]int{}
	for _, r := range after[downTopic] {
		got[r.Headers[gateway.HeaderEventID]]++
		assert.Equal(t, down, r.Headers[gateway.HeaderRecipient])
		assert.True(t, strings.HasPrefix(r.Headers[gateway.HeaderSourceTopic], "pax."), "provenance names the source topic, not the held topic")
	}
	want := map[string]int{}
	for id := range heldIDs {
		want[id] = 1
	}
	assert.Equal(t, want, got, "each held copy delivered exactly once")
	for _, tp := range outTopics {
		assert.Len(t, after[tp], len(before[tp]), "recipient topic %s got a duplicate", tp)
	}
	assert.Len(t, after[testHeld], len(held)+1, "nothing was held again")

	lag, err = kafka.AdminConfig{Brokers: tb.brokers}.GroupOffsets(t.Context(), "dgw-redrive", testHeld)
	require.NoError(t, err)
	for _, l := range lag {
		assert.Zero(t, l.Remaining(), "partition %d: the redrive group committed everything it replayed", l.Partition)
	}

	// Again: nothing pending, nothing written.
	out, stderr, code := runCLI(t, nil, "redrive", "--config", cfg)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "0 pending, 0 read")
	assert.Len(t, readAll(t, tb.brokers, downTopic)[downTopic], len(heldIDs))
}

func TestRedriveBadUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown source", []string{"redrive", "--from", "out", "--brokers", "127.0.0.1:9"}, "--from"},
		{"negative limit", []string{"redrive", "--limit", "-1", "--brokers", "127.0.0.1:9"}, "--limit"},
		{"no brokers", []string{"redrive"}, "brokers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, nil, tt.args...)
			assert.Equal(t, 2, code, stderr)
			assert.Contains(t, stderr, tt.want)
		})
	}
}

func TestRestoreParked(t *testing.T) {
	held := gateway.Message{Topic: testHeld, Partition: 2, Offset: 40, Key: []byte("P1"), Value: []byte("raw"),
		Headers: []gateway.Header{
			{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
			{Key: gateway.HeaderReason, Value: []byte("sink-error")},
			{Key: gateway.HeaderRecipient, Value: []byte("kz-border-api")},
			{Key: gateway.HeaderEventID, Value: []byte("E1")},
			{Key: gateway.HeaderSourceTopic, Value: []byte("pax.checkin")},
			{Key: gateway.HeaderSourcePartition, Value: []byte("1")},
			{Key: gateway.HeaderSourceOffset, Value: []byte("7")},
		}}
	got := restoreParked(&held, true)
	assert.Equal(t, "pax.checkin", got.Topic)
	assert.Equal(t, 1, got.Partition)
	assert.Equal(t, int64(7), got.Offset)
	assert.Equal(t, []string{"kz-border-api"}, got.Recipients)
	assert.Equal(t, []gateway.Header{held.Headers[0]}, got.Headers, "dgw's headers are removed, the trace context kept")
	assert.NoError(t, gateway.CheckHeaders(got.Headers))
	assert.True(t, bytes.Equal(held.Value, got.Value))

	dead := restoreParked(&held, false)
	assert.Nil(t, dead.Recipients, "a dead-lettered record goes to every recipient")

	noRecipient := gateway.Message{Topic: testHeld, Value: []byte("raw")}
	assert.Equal(t, []string{}, restoreParked(&noRecipient, true).Recipients, "a held record without recipient reaches nobody")
}
