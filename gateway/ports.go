package gateway

import "context"

// AckFunc marks a message as fully handled: every delivery and parked record
// for it has been acknowledged by the broker. The source commits offsets in
// order per partition, so acking a later offset first is safe: it is
// committed only once every earlier offset of its partition is acked too.
type AckFunc func(ctx context.Context) error

// Source yields source records.
//
// Read blocks until a message is available and returns ErrClosed once the
// source is closed. Messages of one partition are returned in offset order.
// A message that is never acked is never committed, so it is read again by
// whichever process owns its partition next (at-least-once).
type Source interface {
	Read(ctx context.Context) (Message, AckFunc, error)
	Close(ctx context.Context) error
}

// Sink writes records and returns once the broker has acknowledged them
// (acks=all in production).
//
// Write returns nil when every record was acknowledged. Otherwise it returns
// a *DeliveryErrors with one entry per record (nil for the acknowledged
// ones), or another error when it cannot tell which records were written;
// callers then treat every record as not delivered.
//
// A Sink keeps no record's bytes once Write returned nil: the caller may
// reuse them then (the audit records' are, see AuditRecycler). After any
// other outcome a request still in flight may read them.
type Sink interface {
	Write(ctx context.Context, ds ...Disclosure) error
	Close(ctx context.Context) error
}

// DeliveryErrors reports per-record outcomes of a partially failed Write.
type DeliveryErrors []error

func (e DeliveryErrors) Error() string {
	n := 0
	var first error
	for _, err := range e {
		if err != nil {
			if first == nil {
				first = err
			}
			n++
		}
	}
	if first == nil {
		return "no delivery errors"
	}
	return "deliveries failed: " + itoa(n) + " of " + itoa(len(e)) + ", first: " + first.Error()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// Decoder turns a source message into an Event: it resolves the schema,
// checks the Avro value, extracts the decision context from annotated
// fields and sets the event's Layout or Value for a Redactor of the same
// codec. Errors are *ParkError with a dead-letter reason and never quote
// the record's bytes or values.
type Decoder interface {
	Decode(msg Message) (*Event, error)
}

// Decider asks the policy what a recipient may receive about an event.
// The context holds no personal data. An undefined result is a refusal
// (Allow false), not an error; an error means the policy failed and the
// event is held.
type Decider interface {
	Decide(ctx context.Context, dc *DecisionContext, r *Recipient) (Decision, error)
}

// Redactor applies a decision, already checked against the recipient's
// contract scope, to an event and encodes the recipient's record with the
// recipient's derived schema. It returns the encoded bytes and the
// fingerprint of the schema used.
type Redactor interface {
	Redact(e *Event, r *Recipient, d *Decision) (value []byte, schema uint64, err error)
}

// SubjectState answers what dgw knows about a data subject from subject
// requests: consents, objections, erasure. Implementations must be safe for
// concurrent use.
type SubjectState interface {
	Lookup(subjectID string) SubjectContext
}
