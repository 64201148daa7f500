package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startBrokerCmd runs `dgw broker` in-process and returns its address and
// a func that stops it (as SIGTERM does) and returns its exit code and
// stderr.
func startBrokerCmd(t *testing.T, args ...string) (string, func() (int, string)) {
	t.Helper()
	pr, pw := io.Pipe()
	var stderr safeBuffer
	a := &app{stdin: strings.NewReader(""), stdout: pw, stderr: &stderr}
	ctx, cancel := context.WithCancel(t.Context())
	code := make(chan int, 1)
	go func() {
		code <- a.run(ctx, append([]string{"broker", "--addr", "127.0.0.1:0"}, args...))
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	require.True(t, lines.Scan(), "no output; stderr: %s", stderr.String())
	addr, ok := strings.CutPrefix(lines.Text(), "dgw broker: listening on ")
	require.True(t, ok, lines.Text())
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return addr, func() (int, string) {
		cancel()
		return <-code, stderr.String()
	}
}

// TestBrokerCommandKeepsItsLog: `dgw broker --data-dir` stopped and
// started again serves the records and topics it had.
func TestBrokerCommandKeepsItsLog(t *testing.T) {
	dir := t.TempDir()
	addr, stop := startBrokerCmd(t, "--data-dir", dir, "--partitions", "2", "--topics", "pax.booking,dgw.held")
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	require.NoError(t, err)
	for _, v := range []string{"a", "b", "c"} {
		require.NoError(t, cl.ProduceSync(t.Context(), &kgo.Record{Topic: "pax.booking", Key: []byte(v), Value: []byte(v)}).FirstErr())
	}
	cl.Close()
	code, stderr := stop()
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "dgw broker: stopped")

	addr, stop = startBrokerCmd(t, "--data-dir", dir, "--topics", "pax.booking")
	defer stop()
	got := readAll(t, []string{addr}, "pax.booking", "dgw.held")
	var values []string
	for _, r := range got["pax.booking"] {
		values = append(values, string(r.Value))
	}
	assert.ElementsMatch(t, []string{"a", "b", "c"}, values, "the records survived the restart")
	assert.Empty(t, got["dgw.held"], "the other topic is still there, empty")
}

func TestBrokerCommandBadUsage(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var stderr safeBuffer
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr}
	assert.Equal(t, 2, a.run(ctx, []string{"broker", "--addr", "0.0.0.0:0"}), "an address clients cannot dial")
	assert.Contains(t, stderr.String(), "dialable")
}
