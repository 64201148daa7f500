// Package gatewaytest holds in-memory fakes of the gateway ports for pure
// unit tests. Anything that can run for real (broker, Avro, OPA) is tested
// for real elsewhere; these fakes exist to drive the pipeline's own logic,
// such as failures that a real broker cannot be made to produce on demand.
package gatewaytest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/dgwproject/dgw/gateway"
)

// MemSource yields the given messages in order, then returns
// gateway.ErrClosed (when Drain is set) or blocks until the context ends.
type MemSource struct {
	Drain bool

	mu    sync.Mutex
	msgs  []gateway.Message
	next  int
	acked map[int64]int // offset → ack count
}

var _ gateway.Source = (*MemSource)(nil)

// NewMemSource returns a source over msgs; offsets are assigned if zero.
func NewMemSource(drain bool, msgs ...gateway.Message) *MemSource {
	for i := range msgs {
		if msgs[i].Offset == 0 {
			msgs[i].Offset = int64(i)
		}
	}
	return &MemSource{Drain: drain, msgs: msgs, acked: map[int64]int{}}
}

// Read returns the next message.
func (s *MemSource) Read(ctx context.Context) (gateway.Message, gateway.AckFunc, error) {
	s.mu.Lock()
	if s.next < len(s.msgs) {
		m := s.msgs[s.next]
		s.next++
		s.mu.Unlock()
		return m, func(context.Context) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.acked[m.Offset]++
			return nil
		}, nil
	}
	s.mu.Unlock()
	if s.Drain {
		return gateway.Message{}, nil, gateway.ErrClosed
	}
	<-ctx.Done()
	return gateway.Message{}, nil, gateway.ErrClosed
}

// Close does nothing.
func (s *MemSource) Close(context.Context) error { return nil }

// Acked returns how often each offset was acked.
func (s *MemSource) Acked() map[int64]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int64]int, len(s.acked))
	for k, v := range s.acked {
		out[k] = v
	}
	return out
}

// MemSink records written disclosures, copies of their bytes (a Sink keeps
// none of the caller's). Fail, when set, is asked for every disclosure of
// every Write; a non-nil result fails that disclosure.
type MemSink struct {
	Fail func(d gateway.Disclosure, attempt int) error

	mu       sync.Mutex
	written  []gateway.Disclosure
	attempts map[string]int
}

var _ gateway.Sink = (*MemSink)(nil)

// Write records ds, failing those Fail says to.
func (s *MemSink) Write(_ context.Context, ds ...gateway.Disclosure) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.attempts == nil {
		s.attempts = map[string]int{}
	}
	errs := make(gateway.DeliveryErrors, len(ds))
	failed := false
	for i, d := range ds {
		k := d.Topic + "\x00" + string(d.Value)
		s.attempts[k]++
		if s.Fail != nil {
			if err := s.Fail(d, s.attempts[k]); err != nil {
				errs[i], failed = err, true
				continue
			}
		}
		d.Key, d.Value = slices.Clone(d.Key), slices.Clone(d.Value)
		s.written = append(s.written, d)
	}
	if failed {
		return errs
	}
	return nil
}

// Close does nothing.
func (s *MemSink) Close(context.Context) error { return nil }

// Topic returns the disclosures written to topic, in order.
func (s *MemSink) Topic(topic string) []gateway.Disclosure {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []gateway.Disclosure
	for _, d := range s.written {
		if d.Topic == topic {
			out = append(out, d)
		}
	}
	return out
}

// DeciderFunc adapts a function to gateway.Decider.
type DeciderFunc func(ctx context.Context, dc *gateway.DecisionContext, r *gateway.Recipient) (gateway.Decision, error)

// Decide calls f.
func (f DeciderFunc) Decide(ctx context.Context, dc *gateway.DecisionContext, r *gateway.Recipient) (gateway.Decision, error) {
	return f(ctx, dc, r)
}

// DecoderFunc adapts a function to gateway.Decoder.
type DecoderFunc func(m gateway.Message) (*gateway.Event, error)

// Decode calls f.
func (f DecoderFunc) Decode(m gateway.Message) (*gateway.Event, error) { return f(m) }

// RedactorFunc adapts a function to gateway.Redactor.
type RedactorFunc func(e *gateway.Event, r *gateway.Recipient, d *gateway.Decision) ([]byte, uint64, error)

// Redact calls f.
func (f RedactorFunc) Redact(e *gateway.Event, r *gateway.Recipient, d *gateway.Decision) ([]byte, uint64, error) {
	return f(e, r, d)
}

// ErrInjected is the error fakes return when told to fail.
var ErrInjected = errors.New("injected failure")

// Header returns the value of header key in d, or "".
func Header(d gateway.Disclosure, key string) string {
	for _, h := range d.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// String describes d without its value, for test failure messages.
func String(d gateway.Disclosure) string {
	return fmt.Sprintf("%s key=%q event=%s reason=%s recipient=%s", d.Topic, d.Key,
		Header(d, gateway.HeaderEventID), Header(d, gateway.HeaderReason), Header(d, gateway.HeaderRecipient))
}
