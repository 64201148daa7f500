package gateway

import (
	"time"
)

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Message is a raw record read from a source topic. Value holds personal
// data: it is handed to the Decoder and to the dead-letter/held sinks, never
// to logs, spans, metrics or errors. Its bytes must not change until the
// event is settled: the decoded event, the deliveries and the parked
// copies are written from them.
type Message struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
	Time      time.Time
	// Recipients, when not nil, limits the event to the recipients named:
	// a redrive of a held record sets the one recipient it was held for,
	// so the recipients that already received the event get no duplicate.
	// Ids not in the registry are ignored. Nil means every recipient.
	Recipients []string
}

// Header returns the value of the first header named key, or nil.
func (m *Message) Header(key string) []byte {
	for _, h := range m.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

// SchemaRef names the Avro schema of a record.
type SchemaRef struct {
	Name        string // full Avro name, e.g. dgw.events.Booking
	EventType   string // short event type the policy sees, e.g. booking
	Fingerprint uint64 // CRC-64-AVRO of the canonical form
}

// Event is one decoded source record about exactly one data subject.
type Event struct {
	Msg        Message
	ID         string // event id, safe to log
	Schema     SchemaRef
	SubjectID  string // passenger id: personal data, never logged or given to the policy
	OccurredAt time.Time
	// Layout is the decoder's index of where each field's value lies in
	// Msg.Value (a *codec.Layout): a Redactor of the same codec writes a
	// recipient's record from those bytes, decoding only the values it
	// transforms. Decoders set Layout or Value; only the Redactor reads them.
	Layout any
	// Value is the decoded Avro value in normalised generic form:
	// map[string]any for records, []any for arrays, nil for null, and the
	// branch value itself for unions; set by decoders without a layout for
	// the schema (and by tests).
	Value   map[string]any
	Context DecisionContext
}

// DecisionContext is everything the policy may see about an event. It holds
// no personal data beyond coarse subject flags (minor, citizenship and
// residence country codes, consent/objection/erasure state); that is what
// makes decisions safe to evaluate in Rego and cacheable by exact value.
type DecisionContext struct {
	Event   EventContext   `json:"event"`
	Subject SubjectContext `json:"subject"`
	Schema  SchemaContext  `json:"schema"`
}

// EventContext is the routing and purpose part of the decision context.
// Fields are filled from schema fields annotated with "context": "event.<name>".
type EventContext struct {
	Type               string   `json:"type"`
	Purpose            string   `json:"purpose"`
	PointOfSale        string   `json:"point_of_sale,omitempty"`
	OriginCountry      string   `json:"origin_country,omitempty"`
	DestinationCountry string   `json:"destination_country,omitempty"`
	Route              []string `json:"route"`
	BookingChannel     string   `json:"booking_channel,omitempty"`
	AgencyCode         string   `json:"agency_code,omitempty"`
	CorporateAccount   string   `json:"corporate_account,omitempty"`
	EmployerPaid       bool     `json:"employer_paid"`
}

// SubjectContext carries the subject flags. Citizenship and residence come
// from annotated fields; consents, objections and erasure from subject state.
type SubjectContext struct {
	Minor       bool            `json:"minor"`
	Citizenship string          `json:"citizenship,omitempty"`
	Residence   string          `json:"residence,omitempty"`
	Consents    map[string]bool `json:"consents"`
	Objections  []string        `json:"objections"`
	Erased      bool            `json:"erased"`
	// VitalInterest says the disclosure protects the passenger's vital
	// interests while they cannot consent (GDPR Art 9(2)(c), Art 49(1)(f)).
	// No event or subject request sets it today, so it is always false and
	// special-category data flows on explicit consent only (fail closed):
	// whether a life is at stake is a case-by-case human determination, not
	// something dgw infers from a record. The policy's vital-interest
	// branches are tested and ready for a producer signal.
	VitalInterest bool `json:"vital_interest"`
}

// SchemaContext names the event's schema; the field catalogue with
// categories is static per schema and is given to the policy as data, not
// input, so it does not bloat every evaluation.
type SchemaContext struct {
	Name string `json:"name"`
}

// Key returns the canonical encoding of the context, used as the decision
// cache key together with the recipient id and policy revision.
// It is the context's JSON (see AppendKey), so equal contexts give equal
// keys and different contexts different ones.
func (c *DecisionContext) Key() string {
	var buf [512]byte
	return string(c.AppendKey(buf[:0]))
}

// Field describes one field of an event schema, flattened to a dotted path
// from the record root. Arrays are transparent: a field of the records in
// array "segments" has path "itinerary.segments.flight_number".
type Field struct {
	Path     string `json:"path"`
	Category string `json:"category"`          // data category from POLICY-REFERENCE §2
	Context  string `json:"context,omitempty"` // decision-context key, e.g. event.route
	Role     string `json:"role,omitempty"`    // event_id, subject_id, occurred_at, birth_date
	Format   string `json:"format,omitempty"`  // pan, email, phone, card_security_code, ...
	Kind     string `json:"kind"`              // string, int, long, boolean, double, enum, date, timestamp, decimal, record, array
	Leaf     bool   `json:"leaf"`
	Repeated bool   `json:"repeated,omitempty"` // inside an array
}

// Disclosure is one record to write: a recipient delivery, a parked event
// or an audit record.
type Disclosure struct {
	Topic   string
	Key     []byte
	Value   []byte
	Headers []Header
}
