package gateway

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrClosed is returned by Source.Read once the source is closed or drained.
	ErrClosed = errors.New("source closed")
	// ErrSchemaNotFound means the record names a schema dgw does not know.
	ErrSchemaNotFound = errors.New("schema not found")
	// ErrUndefined means the policy produced no decision; it is a refusal.
	ErrUndefined = errors.New("policy decision undefined")
	// ErrScopeViolation means a decision released a field, or used an
	// operator, outside the recipient's contract scope.
	ErrScopeViolation = errors.New("decision outside contract scope")
)

// Reason classifies why an event was parked. Reasons are stable strings:
// they appear in the dgw-reason header, in metrics and in the audit trail.
type Reason string

// Dead-letter reasons: the record itself is bad and no policy change fixes it.
const (
	ReasonDecode        Reason = "decode"         // bytes are not valid Avro for the schema
	ReasonBadMagic      Reason = "bad-magic"      // not Avro single-object encoding
	ReasonUnknownSchema Reason = "unknown-schema" // fingerprint names no known schema
	ReasonTooLarge      Reason = "too-large"      // record over the size limit
	ReasonInvalid       Reason = "invalid"        // decoded, but a required value is missing or out of range
	ReasonBadHeader     Reason = "bad-header"     // a header key is malformed or reserved for dgw (see CheckHeaders)
)

// Held reasons: the record is fine but dgw could not decide or deliver it.
const (
	ReasonPolicy Reason = "policy-error"    // evaluation failed or the result is malformed
	ReasonScope  Reason = "scope-violation" // decision outside contract scope
	ReasonRedact Reason = "redact-error"    // operator could not be applied
	ReasonSink   Reason = "sink-error"      // delivery failed after retries
)

// DeadLetter reports whether a reason belongs in the dead-letter topic
// (bad input) rather than the held topic (redrivable once the cause is fixed).
func (r Reason) DeadLetter() bool {
	switch r {
	case ReasonDecode, ReasonBadMagic, ReasonUnknownSchema, ReasonTooLarge, ReasonInvalid, ReasonBadHeader:
		return true
	}
	return false
}

// ParkError is an error that parks an event. Detail must never hold field
// values: field paths, schema names, offsets and recipient ids only.
type ParkError struct {
	Reason    Reason
	Recipient string // empty when the whole event is parked
	Err       error
}

func (e *ParkError) Error() string {
	if e.Recipient != "" {
		return fmt.Sprintf("%s (recipient %s): %v", e.Reason, e.Recipient, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Reason, e.Err)
}

func (e *ParkError) Unwrap() error { return e.Err }

// Park wraps err with a reason.
func Park(reason Reason, err error) error { return &ParkError{Reason: reason, Err: err} }

// ReasonOf returns the park reason of err, or ("", false).
func ReasonOf(err error) (Reason, bool) {
	var pe *ParkError
	if errors.As(err, &pe) {
		return pe.Reason, true
	}
	return "", false
}
