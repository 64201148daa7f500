// Package codec reads and writes dgw's records: Avro single-object encoding
// (C3 01, the 8-byte little-endian CRC-64-AVRO fingerprint of the schema,
// then the Avro binary body). The Decoder checks a record, extracts the
// PII-free decision context and indexes where each field's value lies
// (Layout), from which the redactor writes recipients' records; Decode and
// DecodeBody give the normalised value form, and JSON is for the CLI.
//
// Errors never quote record bytes or field values; they name the schema,
// the field path and what was expected.
package codec

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/schema"
)

// Magic is the single-object encoding marker.
var Magic = [2]byte{0xC3, 0x01}

// HeaderLen is the length of the single-object header.
const HeaderLen = 10

// Encode encodes v (normalised form) for s in single-object encoding.
func Encode(s *schema.Schema, v map[string]any) ([]byte, error) {
	return AppendEncode(make([]byte, 0, 512), s, v)
}

// AppendEncode appends the single-object encoding of v to dst.
func AppendEncode(dst []byte, s *schema.Schema, v map[string]any) ([]byte, error) {
	dst = append(dst, Magic[0], Magic[1])
	dst = binary.LittleEndian.AppendUint64(dst, s.Fingerprint)
	out, err := write(dst, s.Avro, v, "")
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", s.Name, err)
	}
	return out, nil
}

// Fingerprint reads the schema fingerprint of a single-object record.
func Fingerprint(raw []byte) (uint64, error) {
	if len(raw) < HeaderLen || raw[0] != Magic[0] || raw[1] != Magic[1] {
		return 0, gateway.Park(gateway.ReasonBadMagic,
			fmt.Errorf("record of %d bytes does not start with the Avro single-object header C3 01 + 8-byte fingerprint", len(raw)))
	}
	return binary.LittleEndian.Uint64(raw[2:HeaderLen]), nil
}

// Decode decodes a single-object record against the schemas of set. Errors
// are *gateway.ParkError with a dead-letter reason.
func Decode(set *schema.Set, raw []byte) (*schema.Schema, map[string]any, error) {
	fp, err := Fingerprint(raw)
	if err != nil {
		return nil, nil, err
	}
	s, ok := set.ByFingerprint(fp)
	if !ok {
		return nil, nil, unknownSchema(fp)
	}
	v, err := DecodeBody(s, raw[HeaderLen:])
	if err != nil {
		return s, nil, err
	}
	return s, v, nil
}

func unknownSchema(fp uint64) error {
	return gateway.Park(gateway.ReasonUnknownSchema,
		fmt.Errorf("fingerprint %s names no known schema: %w", gateway.FingerprintHex(fp), gateway.ErrSchemaNotFound))
}

// DecodeBody decodes a bare Avro binary body of schema s.
func DecodeBody(s *schema.Schema, body []byte) (map[string]any, error) {
	r := reader{b: body}
	v, err := r.read(s.Avro, "")
	if err != nil {
		return nil, decodeError(s, err)
	}
	if r.i != len(body) {
		return nil, trailing(s, len(body)-r.i)
	}
	return v.(map[string]any), nil
}

// decodeError parks a decoding failure: ReasonInvalid for a value out of
// range, ReasonDecode otherwise.
func decodeError(s *schema.Schema, err error) error {
	var te *trailingError
	if errors.As(err, &te) {
		return trailing(s, te.n)
	}
	reason := gateway.ReasonDecode
	var ve *valueError
	if errors.As(err, &ve) && ve.invalid {
		reason = gateway.ReasonInvalid
	}
	return gateway.Park(reason, fmt.Errorf("decode %s: %w", s.Name, err))
}

func trailing(s *schema.Schema, n int) error {
	return gateway.Park(gateway.ReasonDecode, fmt.Errorf("decode %s: %d trailing bytes after the record", s.Name, n))
}

// trailingError reports bytes left after a record.
type trailingError struct{ n int }

func (e *trailingError) Error() string { return fmt.Sprintf("%d trailing bytes after the record", e.n) }

// Decoder implements gateway.Decoder over a schema set.
type Decoder struct {
	set     *schema.Set
	maxSize int
	state   gateway.SubjectState
	progs   map[uint64]*program // by fingerprint; a schema without one is read generically
}

var _ gateway.Decoder = (*Decoder)(nil)

// Option configures a Decoder.
type Option func(*Decoder)

// WithMaxSize sets the largest record accepted (default 1 MiB); larger ones
// are dead-lettered with gateway.ReasonTooLarge before any decoding.
func WithMaxSize(n int) Option { return func(d *Decoder) { d.maxSize = n } }

// WithSubjectState merges consents, objections and erasure into every
// event's decision context.
func WithSubjectState(s gateway.SubjectState) Option { return func(d *Decoder) { d.state = s } }

// NewDecoder returns a decoder over set.
func NewDecoder(set *schema.Set, opts ...Option) *Decoder {
	d := &Decoder{set: set, maxSize: 1 << 20, progs: map[uint64]*program{}}
	for _, o := range opts {
		o(d)
	}
	if set != nil {
		for _, s := range set.All() {
			if p, err := compile(s); err == nil {
				d.progs[s.Fingerprint] = p
			}
		}
	}
	return d
}

// Decode turns a source message into an event.
func (d *Decoder) Decode(msg gateway.Message) (*gateway.Event, error) {
	if len(msg.Value) > d.maxSize {
		return nil, gateway.Park(gateway.ReasonTooLarge,
			fmt.Errorf("record of %d bytes exceeds the limit of %d", len(msg.Value), d.maxSize))
	}
	fp, err := Fingerprint(msg.Value)
	if err != nil {
		return nil, err
	}
	prog := d.progs[fp]
	if prog == nil {
		return d.decodeGeneric(msg)
	}
	s, ok := d.set.ByFingerprint(fp)
	if !ok {
		return nil, unknownSchema(fp)
	}
	body := msg.Value[HeaderLen:]
	if len(body) > maxLayoutBody {
		return d.decodeGeneric(msg)
	}
	lay := &Layout{}
	ev := &gateway.Event{Msg: msg, Schema: s.Ref(), Layout: lay}
	var x extractor
	x.init(s, &ev.Context)
	if err := prog.scan(body, &x, lay); err != nil {
		return nil, decodeError(s, err)
	}
	ids, err := x.finish()
	if err != nil {
		return nil, gateway.Park(gateway.ReasonInvalid, fmt.Errorf("%s: %w", s.Name, err))
	}
	ev.ID, ev.SubjectID, ev.OccurredAt = ids.eventID, ids.subjectID, ids.occurredAt
	if d.state != nil {
		merge(&ev.Context.Subject, d.state.Lookup(ev.SubjectID))
	}
	return ev, nil
}

// decodeGeneric decodes with the generic reader, then extracts the context.
func (d *Decoder) decodeGeneric(msg gateway.Message) (*gateway.Event, error) {
	s, v, err := Decode(d.set, msg.Value)
	if err != nil {
		return nil, err
	}
	ev := &gateway.Event{Msg: msg, Schema: s.Ref(), Value: v}
	ids, err := extract(s, v, &ev.Context)
	if err != nil {
		return nil, gateway.Park(gateway.ReasonInvalid, fmt.Errorf("%s: %w", s.Name, err))
	}
	ev.ID, ev.SubjectID, ev.OccurredAt = ids.eventID, ids.subjectID, ids.occurredAt
	if d.state != nil {
		merge(&ev.Context.Subject, d.state.Lookup(ev.SubjectID))
	}
	return ev, nil
}

func merge(dst *gateway.SubjectContext, st gateway.SubjectContext) {
	for k, v := range st.Consents {
		dst.Consents[k] = v
	}
	dst.Objections = append(dst.Objections, st.Objections...)
	dst.Erased = dst.Erased || st.Erased
}
