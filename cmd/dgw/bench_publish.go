package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
)

// The latency phase's load generator runs in a process of its own, as
// producers do in production. In the gateway's process its records (about
// 50 MB for 10 s at 3,500 events/s) and its produce requests made the
// gateway's collector mark and run more than the gateway alone would, and
// each collection is a stall of the tail being measured.
//
// The parent writes the phase's records to a file (benchRecordWriter),
// starts `dgw bench --serve-publisher FILE`, which loads them and prints
// benchPublisherReady; the parent answers benchPublisherGo when its
// measurement starts; the child publishes at the rate for the duration and
// prints "published N SECONDS".
const (
	// benchChildEnv is set in the environment of bench's child processes
	// (main_test.go: the test binary then runs as dgw).
	benchChildEnv       = "DGW_BENCH_CHILD"
	benchPublisherReady = "ready"
	benchPublisherGo    = "go"
	benchPublished      = "published"
)

// benchRecordWriter writes records as topic, key and value, each a uvarint
// length and its bytes.
type benchRecordWriter struct {
	w   *bufio.Writer
	buf [binary.MaxVarintLen64]byte
}

func (b *benchRecordWriter) write(d gateway.Disclosure) error {
	for _, f := range [][]byte{[]byte(d.Topic), d.Key, d.Value} {
		n := binary.PutUvarint(b.buf[:], uint64(len(f)))
		if _, err := b.w.Write(b.buf[:n]); err != nil {
			return err
		}
		if _, err := b.w.Write(f); err != nil {
			return err
		}
	}
	return nil
}

// maxBenchField bounds one field of a record file: records are at most a
// few KB, so a larger length is a corrupt file, not a reason to allocate.
const maxBenchField = 16 << 20

// readBenchRecords reads a file written by benchRecordWriter. A truncated
// or corrupt file is an error naming the record and the field.
func readBenchRecords(r io.Reader) ([]gateway.Disclosure, error) {
	br := bufio.NewReader(r)
	var out []gateway.Disclosure
	for i := 0; ; i++ {
		var f [3][]byte
		for k, name := range []string{"topic", "key", "value"} {
			n, err := binary.ReadUvarint(br)
			if k == 0 && errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return nil, fmt.Errorf("record %d: %s length: %w", i, name, noEOF(err))
			}
			if n > maxBenchField {
				return nil, fmt.Errorf("record %d: %s length %d: expected at most %d", i, name, n, maxBenchField)
			}
			f[k] = make([]byte, n)
			if _, err := io.ReadFull(br, f[k]); err != nil {
				return nil, fmt.Errorf("record %d: %s: %w", i, name, noEOF(err))
			}
		}
		if len(f[0]) == 0 {
			return nil, fmt.Errorf("record %d: topic: expected a name, got none", i)
		}
		d := gateway.Disclosure{Topic: string(f[0]), Value: f[2]}
		if len(f[1]) > 0 {
			d.Key = f[1]
		}
		out = append(out, d)
	}
}

// noEOF reports a record cut short as such.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// publishAt writes recs to brokers at rate events/s for at most d (fewer
// when recs run out first), in writes every few milliseconds, and returns
// how many it sent and over how long.
func publishAt(ctx context.Context, brokers []string, recs []gateway.Disclosure, rate float64, d time.Duration) (int64, time.Duration, error) {
	sink, err := kafka.NewSink(kafka.SinkConfig{Brokers: brokers, ClientID: "dgw-bench-live"})
	if err != nil {
		return 0, 0, err
	}
	defer sink.Close(context.WithoutCancel(ctx))
	start := time.Now()
	const tick = 5 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	var sent int64
	for time.Since(start) < d {
		want := min(int64(rate*time.Since(start).Seconds()), int64(len(recs)))
		if want > sent {
			if err := sink.Write(ctx, recs[sent:want]...); err != nil {
				return sent, 0, fmt.Errorf("publish: %w", err)
			}
			clear(recs[sent:want]) // a sink keeps no bytes past a nil Write: let them go
			sent = want
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return sent, 0, ctx.Err()
		}
	}
	return sent, time.Since(start), nil
}

// serveBenchPublisher is the publisher child: it loads o.servePublisher,
// says it is ready, waits for the parent's go, publishes and says how many
// records it sent over how long.
func (a *app) serveBenchPublisher(ctx context.Context, o benchOptions) error {
	f, err := os.Open(o.servePublisher)
	if err != nil {
		return fmt.Errorf("bench publisher: %w", err)
	}
	recs, err := readBenchRecords(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("bench publisher: %s: %w", o.servePublisher, err)
	}
	fmt.Fprintln(a.stdout, benchPublisherReady)
	in := bufio.NewScanner(a.stdin)
	if !in.Scan() || in.Text() != benchPublisherGo {
		return fmt.Errorf("bench publisher: expected %q from the parent, got %q", benchPublisherGo, in.Text())
	}
	sent, took, err := publishAt(ctx, strings.Split(o.broker, ","), recs, o.rate, o.latency)
	if err != nil {
		return fmt.Errorf("bench publisher: after %d records: %w", sent, err)
	}
	fmt.Fprintf(a.stdout, "%s %d %s\n", benchPublished, sent, strconv.FormatFloat(took.Seconds(), 'f', -1, 64))
	return nil
}

// benchPublisher is the parent's handle on a publisher child.
type benchPublisher struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// startBenchPublisher starts the publisher child on file and waits until it
// has loaded the records.
func (a *app) startBenchPublisher(ctx context.Context, brokers []string, file string, rate float64, d time.Duration) (*benchPublisher, error) {
	cmd, stdin, out, err := a.startBenchChild(ctx, "--serve-publisher", file, "--broker", strings.Join(brokers, ","),
		"--latency-rate", strconv.FormatFloat(rate, 'f', -1, 64), "--latency", d.String())
	if err != nil {
		return nil, fmt.Errorf("start publisher process: %w", err)
	}
	p := &benchPublisher{cmd: cmd, stdin: stdin, out: out}
	line, err := p.out.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != benchPublisherReady {
		p.kill()
		return nil, fmt.Errorf("publisher process: expected %q, got %q: %v", benchPublisherReady, line, err)
	}
	return p, nil
}

// run has the child publish and returns what it sent and over how long.
func (p *benchPublisher) run() (int64, time.Duration, error) {
	if _, err := io.WriteString(p.stdin, benchPublisherGo+"\n"); err != nil {
		p.kill()
		return 0, 0, fmt.Errorf("publisher process: %w", err)
	}
	line, rerr := p.out.ReadString('\n')
	werr := p.cmd.Wait()
	f := strings.Fields(line)
	if rerr != nil || len(f) != 3 || f[0] != benchPublished {
		return 0, 0, fmt.Errorf("publisher process: expected %q, got %q: %v", benchPublished+" N SECONDS", line, errors.Join(rerr, werr))
	}
	sent, err1 := strconv.ParseInt(f[1], 10, 64)
	secs, err2 := strconv.ParseFloat(f[2], 64)
	if err := errors.Join(err1, err2, werr); err != nil {
		return 0, 0, fmt.Errorf("publisher process: %q: %w", line, err)
	}
	return sent, time.Duration(secs * float64(time.Second)), nil
}

func (p *benchPublisher) kill() {
	p.stdin.Close()
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// startBenchChild starts `dgw bench` with args as a child process (this
// executable; benchChildEnv lets a test binary stand in for dgw), its
// standard error the parent's, and returns its input and output. The child
// is killed when ctx ends.
func (a *app) startBenchChild(ctx context.Context, args ...string) (*exec.Cmd, io.WriteCloser, *bufio.Reader, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, nil, err
	}
	cmd := exec.CommandContext(ctx, exe, append([]string{"bench"}, args...)...)
	cmd.Env = append(os.Environ(), benchChildEnv+"=1")
	cmd.Stderr = a.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	return cmd, stdin, bufio.NewReader(stdout), nil
}
