// Package subjects reads and writes data-subject requests — consent given
// or withdrawn per purpose, objection per purpose, erasure — as Avro
// records (schemas/subject_request.avsc) on the compacted subject topic,
// and applies them to a gateway.SubjectStore.
//
// # Keys and compaction
//
// A compacted topic keeps only the latest record per key. Keyed by the
// passenger id alone, a later consent would erase an earlier erasure or
// objection from the topic, and with it from the state rebuilt at the next
// start. Records are therefore keyed by passenger id and request family:
//
//	<passenger id>|consent|<purpose>     consent_given, consent_withdrawn
//	<passenger id>|objection|<purpose>   objection, objection_withdrawn
//	<passenger id>|erasure|              erasure
//
// so compaction keeps exactly the current state: the latest consent
// decision and the latest objection decision per purpose, and the erasure.
// Requests of one family and purpose share a key, hence a partition, and
// keep their order; requests of different keys commute, so the order in
// which partitions are read does not matter. A tombstone (a record with
// no value) deletes a key: the state forgets what it recorded.
//
// # Purposes
//
// A request names a purpose of the event schemas (their purpose enum), a
// consent an event schema records (health_data, analytics_cookies,
// marketing_cookies), CrossBorder, or Marketing, which stands for the four
// MarketingPurposes. Expand turns a Marketing request into one request per
// marketing purpose, as `dgw subject request` publishes it; the policy
// also reads a Marketing record another tool wrote (policies/subject.rego).
// A purpose nothing reads is applied all the same, and Apply reports it
// (ErrUnknownPurpose) so that a typo does not pass unnoticed.
package subjects

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/schema"
)

// EventType is the event type of subject request records.
const EventType = "subject_request"

// Request families, the middle part of a record key.
const (
	FamilyConsent   = "consent"
	FamilyObjection = "objection"
	FamilyErasure   = "erasure"
)

// Channels a request may come through (the schema's RequestChannel enum).
var Channels = []string{"website", "email", "contact_centre", "written", "unsubscribe_link"}

// Purposes a request may name besides those of the schemas.
const (
	// Marketing is what a passenger who opts in or out of "marketing"
	// means: every purpose that rests on marketing consent (privacy policy
	// §7.1.1(5)-(8), §16), research included, which is also the consent
	// market research recipients need (§9.1.5).
	Marketing = "marketing"
	// CrossBorder is the consent to a transfer abroad that states the
	// transfer (Law 94-V Art 8, Art 16; GDPR Art 49(1)(a)); no event schema
	// records it.
	CrossBorder = "cross_border"
)

// MarketingPurposes are the purposes Marketing stands for.
func MarketingPurposes() []string { return []string{"campaign", "advertising", "survey", "research"} }

// Errors Apply reports; the state is still updated as each describes.
var (
	// ErrUnreadable: the value did not decode. The most protective reading
	// of its key was applied: consent withdrawn, objection, or erasure.
	ErrUnreadable = errors.New("subject request does not decode")
	// ErrKeyMismatch: the request was applied, but its key does not follow
	// <passenger id>|<family>|<purpose>, so compaction may drop it while an
	// older request of the same family survives, and a restart would
	// rebuild a different state.
	ErrKeyMismatch = errors.New("subject request key does not match the request")
	// ErrBadKey: a tombstone or unreadable record whose key names no
	// request; nothing was applied.
	ErrBadKey = errors.New("subject request key names no passenger and family")
	// ErrUnknownPurpose: the request was applied, but its purpose is none
	// a schema or the policy knows, so no decision reads it.
	ErrUnknownPurpose = errors.New("subject request names a purpose no schema or policy knows")
)

// Request is one subject request with its envelope.
type Request struct {
	gateway.SubjectRequest
	EventID          string
	OccurredAt       time.Time
	SourceSystem     string
	Channel          string
	VerifiedIdentity bool
}

// Family returns the request family of a kind.
func Family(k gateway.SubjectRequestKind) (string, error) {
	switch k {
	case gateway.ConsentGiven, gateway.ConsentWithdrawn:
		return FamilyConsent, nil
	case gateway.Objection, gateway.ObjectionWithdrawn:
		return FamilyObjection, nil
	case gateway.Erasure:
		return FamilyErasure, nil
	}
	return "", fmt.Errorf("unknown subject request kind %q", k)
}

// Validate checks a request: a passenger, a known kind, a purpose for
// consents and objections and none for erasure.
func Validate(r gateway.SubjectRequest) error {
	fam, err := Family(r.Kind)
	if err != nil {
		return err
	}
	switch {
	case r.SubjectID == "":
		return errors.New("subject request names no passenger")
	case strings.Contains(r.Purpose, "|"):
		return errors.New("subject request purpose contains '|'")
	case fam == FamilyErasure && r.Purpose != "":
		return errors.New("an erasure request has no purpose")
	case fam != FamilyErasure && r.Purpose == "":
		return fmt.Errorf("a %s request needs a purpose", r.Kind)
	}
	return nil
}

// Key returns the record key of r.
func Key(r gateway.SubjectRequest) ([]byte, error) {
	if err := Validate(r); err != nil {
		return nil, err
	}
	fam, _ := Family(r.Kind)
	return []byte(r.SubjectID + "|" + fam + "|" + r.Purpose), nil
}

// ParseKey splits a record key into passenger id, family and purpose.
func ParseKey(key []byte) (subjectID, family, purpose string, err error) {
	s := string(key)
	i := strings.LastIndexByte(s, '|')
	if i < 0 {
		return "", "", "", ErrBadKey
	}
	j := strings.LastIndexByte(s[:i], '|')
	if j <= 0 {
		return "", "", "", ErrBadKey
	}
	subjectID, family, purpose = s[:j], s[j+1:i], s[i+1:]
	switch {
	case family == FamilyErasure && purpose == "":
	case (family == FamilyConsent || family == FamilyObjection) && purpose != "":
	default:
		return "", "", "", ErrBadKey
	}
	return subjectID, family, purpose, nil
}

// Expand returns the requests r stands for: a Marketing request becomes
// one request per marketing purpose, each with its own key and the
// purpose appended to its event id, so that compaction keeps, and the
// trail shows, the state of each purpose; any other request is itself.
func Expand(r Request) []Request {
	if r.Purpose != Marketing || r.Kind == gateway.Erasure {
		return []Request{r}
	}
	var out []Request
	for _, p := range MarketingPurposes() {
		x := r
		x.Purpose = p
		x.EventID = r.EventID + "-" + p
		out = append(out, x)
	}
	return out
}

// Codec encodes and decodes subject requests with the subject_request
// schema of a schema set.
type Codec struct {
	set      *schema.Set
	s        *schema.Schema
	known    map[string]bool
	consents map[string]bool
}

// NewCodec finds the subject_request schema in set.
func NewCodec(set *schema.Set) (*Codec, error) {
	s, ok := set.ByEventType(EventType)
	if !ok {
		return nil, fmt.Errorf("subjects: no %s schema in the schema set", EventType)
	}
	known, consents := knownPurposes(set)
	return &Codec{set: set, s: s, known: known, consents: consents}, nil
}

// Known reports whether a request may name purpose: see the package
// documentation, "Purposes".
func (c *Codec) Known(purpose string) bool { return c.known[purpose] }

// KnownPurposes returns the purposes Known accepts, sorted.
func (c *Codec) KnownPurposes() []string { return slices.Sorted(maps.Keys(c.known)) }

// IsConsent reports whether name is a consent rather than a purpose:
// CrossBorder or a consent an event schema records. One withdraws it; one
// does not object to it.
func (c *Codec) IsConsent(name string) bool { return c.consents[name] }

// knownPurposes are the purpose enum of the event schemas, the consents
// their fields record, CrossBorder and Marketing; consents are those
// consents and CrossBorder.
func knownPurposes(set *schema.Set) (known, consents map[string]bool) {
	out := map[string]bool{CrossBorder: true, Marketing: true}
	consents = map[string]bool{CrossBorder: true}
	for _, s := range set.All() {
		for _, f := range s.Fields {
			if c, ok := strings.CutPrefix(f.Context, schema.ConsentPrefix); ok {
				out[c] = true
				consents[c] = true
			}
		}
		for _, f := range s.Avro.Fields() {
			if f.Name() != "purpose" {
				continue
			}
			t := f.Type()
			if r, ok := t.(*avro.RefSchema); ok {
				t = r.Schema()
			}
			if e, ok := t.(*avro.EnumSchema); ok {
				for _, sym := range e.Symbols() {
					out[sym] = true
				}
			}
		}
	}
	return out, consents
}

// Encode returns the record key and the single-object encoded value of r.
func (c *Codec) Encode(r Request) (key, value []byte, err error) {
	if key, err = Key(r.SubjectRequest); err != nil {
		return nil, nil, fmt.Errorf("subject request: %w", err)
	}
	var purpose any
	if r.Purpose != "" {
		purpose = r.Purpose
	}
	v := map[string]any{
		"event_id": r.EventID, "occurred_at": r.OccurredAt.UTC(), "source_system": r.SourceSystem,
		"passenger_id": r.SubjectID, "kind": string(r.Kind), "purpose": purpose, "channel": r.Channel,
		"verified_identity": r.VerifiedIdentity,
	}
	if value, err = codec.Encode(c.s, v); err != nil {
		return nil, nil, fmt.Errorf("subject request: %w", err)
	}
	return key, value, nil
}

// Decode reads a subject request. Errors name fields, never values.
func (c *Codec) Decode(raw []byte) (Request, error) {
	s, v, err := codec.Decode(c.set, raw)
	if err != nil {
		return Request{}, err
	}
	if s.EventType != EventType {
		return Request{}, fmt.Errorf("record of schema %s is not a subject request", s.Name)
	}
	str := func(k string) string { x, _ := v[k].(string); return x }
	r := Request{
		SubjectRequest: gateway.SubjectRequest{SubjectID: str("passenger_id"), Kind: gateway.SubjectRequestKind(str("kind")),
			Purpose: str("purpose")},
		EventID: str("event_id"), SourceSystem: str("source_system"), Channel: str("channel"),
	}
	r.OccurredAt, _ = v["occurred_at"].(time.Time)
	r.VerifiedIdentity, _ = v["verified_identity"].(bool)
	if err := Validate(r.SubjectRequest); err != nil {
		return Request{}, err
	}
	return r, nil
}

// Apply applies one record of the subject topic to store. It returns an
// error wrapping ErrUnreadable, ErrKeyMismatch, ErrUnknownPurpose or
// ErrBadKey when the record is not what dgw writes; the error says what
// was applied all the same. Errors quote neither the passenger id nor an
// unknown purpose (a free string another tool wrote, which could hold
// anything): the record's offset, which the caller logs, finds it.
func (c *Codec) Apply(store *gateway.SubjectStore, m gateway.Message) error {
	if len(m.Value) == 0 {
		subject, family, purpose, err := ParseKey(m.Key)
		if err != nil {
			return fmt.Errorf("tombstone: %w", err)
		}
		store.Forget(subject, familyKind(family), purpose)
		return nil
	}
	r, err := c.Decode(m.Value)
	if err != nil {
		subject, family, purpose, kerr := ParseKey(m.Key)
		if kerr != nil {
			return fmt.Errorf("%w (%w); its key names no request either, nothing applied", ErrUnreadable, err)
		}
		protective := gateway.SubjectRequest{SubjectID: subject, Purpose: purpose}
		switch family {
		case FamilyConsent:
			protective.Kind = gateway.ConsentWithdrawn
		case FamilyObjection:
			protective.Kind = gateway.Objection
		default:
			protective.Kind = gateway.Erasure
		}
		store.Apply(protective)
		return fmt.Errorf("%w (%w); applied %s for the purpose in its key", ErrUnreadable, err, protective.Kind)
	}
	store.Apply(r.SubjectRequest)
	if want, _ := Key(r.SubjectRequest); string(want) != string(m.Key) {
		return fmt.Errorf("%w: %s applied", ErrKeyMismatch, r.Kind)
	}
	if r.Purpose != "" && !c.known[r.Purpose] {
		return fmt.Errorf("%w: %s applied, but no decision reads its purpose", ErrUnknownPurpose, r.Kind)
	}
	return nil
}

// familyKind is the kind whose family Forget clears.
func familyKind(family string) gateway.SubjectRequestKind {
	switch family {
	case FamilyConsent:
		return gateway.ConsentGiven
	case FamilyObjection:
		return gateway.Objection
	}
	return gateway.Erasure
}
