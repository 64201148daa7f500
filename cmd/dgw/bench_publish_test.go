package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dgwproject/dgw/adapters/broker"
	"github.com/dgwproject/dgw/gateway"
)

func benchRecordFile(t testing.TB, recs []gateway.Disclosure) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := &benchRecordWriter{w: bufio.NewWriter(&buf)}
	for _, r := range recs {
		require.NoError(t, w.write(r))
	}
	require.NoError(t, w.w.Flush())
	return buf.Bytes()
}

var someBenchRecords = []gateway.Disclosure{
	{Topic: "dgw.bench.t.pax.booking", Key: []byte("P1"), Value: []byte("\xc3\x01avro")},
	{Topic: "dgw.bench.t.pax.checkin", Value: []byte{}}, // no key, empty value
	{Topic: "t", Key: []byte("P2"), Value: bytes.Repeat([]byte{0}, 3000)},
}

// TestBenchRecordsRoundTrip: the publisher child reads the records the
// parent wrote, byte for byte; a record without a key stays without one.
func TestBenchRecordsRoundTrip(t *testing.T) {
	got, err := readBenchRecords(bytes.NewReader(benchRecordFile(t, someBenchRecords)))
	require.NoError(t, err)
	require.Len(t, got, len(someBenchRecords))
	for i, want := range someBenchRecords {
		assert.Equal(t, want.Topic, got[i].Topic)
		assert.Equal(t, want.Key, got[i].Key, "record %d", i)
		assert.Equal(t, len(want.Value), len(got[i].Value), "record %d", i)
		assert.True(t, bytes.Equal(want.Value, got[i].Value), "record %d", i)
	}
	none, err := readBenchRecords(bytes.NewReader(nil))
	require.NoError(t, err)
	assert.Empty(t, none, "an empty file is no records")
}

// TestReadBenchRecordsRejects: a file cut anywhere but between records, a
// length no record has, or a record without a topic is an error naming
// the record and the field.
func TestReadBenchRecordsRejects(t *testing.T) {
	file := benchRecordFile(t, someBenchRecords)
	ends := map[int]bool{0: true}
	for i := range someBenchRecords {
		ends[len(benchRecordFile(t, someBenchRecords[:i+1]))] = true
	}
	for cut := range len(file) {
		if ends[cut] {
			continue
		}
		_, err := readBenchRecords(bytes.NewReader(file[:cut]))
		require.Error(t, err, "cut at %d", cut)
		assert.Regexp(t, `^record \d: (topic|key|value)`, err.Error())
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	}
	huge := []byte{0x01, 't', 0xff, 0xff, 0xff, 0xff, 0x0f}
	_, err := readBenchRecords(bytes.NewReader(huge))
	assert.EqualError(t, err, "record 0: key length 4294967295: expected at most 16777216")
	_, err = readBenchRecords(bytes.NewReader([]byte{0, 0, 0}))
	assert.EqualError(t, err, "record 0: topic: expected a name, got none")
}

func FuzzReadBenchRecords(f *testing.F) {
	f.Add(benchRecordFile(f, someBenchRecords))
	f.Add([]byte{0x01, 't', 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := readBenchRecords(bytes.NewReader(b))
		if err != nil {
			return
		}
		again, err := readBenchRecords(bytes.NewReader(benchRecordFile(t, recs)))
		require.NoError(t, err)
		require.Equal(t, len(recs), len(again))
		for i := range recs {
			require.Equal(t, recs[i].Topic, again[i].Topic)
			require.True(t, bytes.Equal(recs[i].Key, again[i].Key) && bytes.Equal(recs[i].Value, again[i].Value))
		}
	})
}

// TestServeBenchPublisher drives the publisher child's protocol against a
// broker: ready once it has loaded the file, nothing published before the
// parent's go, then every record (the rate allows them all within the
// duration) and how many it sent.
func TestServeBenchPublisher(t *testing.T) {
	const topic = "dgw.bench.pub.pax.booking"
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", Partitions: 1, Topics: []string{topic}})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	var recs []gateway.Disclosure
	for i := range 40 {
		recs = append(recs, gateway.Disclosure{Topic: topic, Key: []byte{'k', byte('a' + i%26)}, Value: []byte(strings.Repeat("v", i+1))})
	}
	file := filepath.Join(t.TempDir(), "records")
	require.NoError(t, os.WriteFile(file, benchRecordFile(t, recs), 0o600))

	inR, inW := io.Pipe()
	outR, outW := net.Pipe() // with a deadline, so that a missing answer fails
	require.NoError(t, outR.SetReadDeadline(time.Now().Add(time.Minute)))
	a := &app{stdin: inR, stdout: outW, stderr: io.Discard, environ: []string{}}
	done := make(chan error, 1)
	go func() {
		err := a.serveBenchPublisher(t.Context(), benchOptions{servePublisher: file, broker: strings.Join(b.Addrs(), ","),
			rate: 1000, latency: 300 * time.Millisecond})
		outW.Close()
		done <- err
	}()
	out := bufio.NewReader(outR)
	line, err := out.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, benchPublisherReady+"\n", line)
	assert.Zero(t, countRecords(t, b.Addrs(), topic), "nothing is published before the parent says go")

	_, err = io.WriteString(inW, benchPublisherGo+"\n")
	require.NoError(t, err)
	line, err = out.ReadString('\n')
	require.NoError(t, err)
	f := strings.Fields(line)
	require.Len(t, f, 3, line)
	assert.Equal(t, benchPublished, f[0])
	assert.Equal(t, "40", f[1], "every record was published")
	require.NoError(t, <-done)
	assert.Equal(t, 40, countRecords(t, b.Addrs(), topic))
}

// TestServeBenchPublisherRefuses: a corrupt file or a parent that does not
// say go is an error, and nothing is published.
func TestServeBenchPublisherRefuses(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt")
	require.NoError(t, os.WriteFile(corrupt, []byte{0x05, 'a'}, 0o600))
	good := filepath.Join(dir, "good")
	require.NoError(t, os.WriteFile(good, benchRecordFile(t, someBenchRecords), 0o600))
	for _, c := range []struct{ name, file, input, want string }{
		{"corrupt file", corrupt, "", "record 0: topic: unexpected EOF"},
		{"missing file", filepath.Join(dir, "none"), "", "no such file"},
		{"no go", good, "stop\n", `expected "go" from the parent, got "stop"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			a := &app{stdin: strings.NewReader(c.input), stdout: &out, stderr: io.Discard, environ: []string{}}
			err := a.serveBenchPublisher(t.Context(), benchOptions{servePublisher: c.file, broker: "127.0.0.1:1", rate: 10, latency: time.Second})
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.NotContains(t, out.String(), benchPublished)
		})
	}
}

// countRecords is the end offset of topic's partition 0: its records.
func countRecords(t *testing.T, addrs []string, topic string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	require.NoError(t, err)
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(t.Context(), topic)
	require.NoError(t, err)
	o, ok := ends.Lookup(topic, 0)
	require.True(t, ok)
	require.NoError(t, o.Err)
	return int(o.Offset)
}

// TestBenchTrace: --trace writes an execution trace of the latency phase
// that Go's trace tool reads; it needs a latency phase and one run.
func TestBenchTrace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latency.trace")
	_, stderr, code := runCLI(t, nil, "bench", "--events", "60", "--latency", "1s", "--trace", path, "--mirror=false", "--warm=false",
		"--stages=false", "--embedded", "in-process", "--partitions", "1", "--recipients", "2", "--json")
	require.Equal(t, 0, code, stderr)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(b, []byte("go 1.")), "a Go execution trace starts with its version: %q", b[:min(len(b), 16)])
	assert.Greater(t, len(b), 1000, "the phase's events are in it")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--latency", "0"}, "--trace traces the latency phase"},
		{[]string{"--runs", "2"}, "profile one run"},
	} {
		_, stderr, code := runCLI(t, nil, append([]string{"bench", "--trace", path}, c.args...)...)
		assert.Equal(t, 2, code)
		assert.Contains(t, stderr, c.want)
	}
}
