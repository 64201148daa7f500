package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"time"

	"github.com/hamba/avro/v2"
)

// Entry kinds.
const (
	KindDecision   = "decision"
	KindCorrection = "correction"
)

// Entry is one audit entry (schemas/audit.avsc): the decisions dgw took
// about one event, or a correction of them, as one link of a hash chain.
type Entry struct {
	ChainID         string     `avro:"chain_id" json:"chain_id"`
	Seq             int64      `avro:"seq" json:"seq"`
	PrevHash        [32]byte   `avro:"prev_hash" json:"-"`
	KeyID           string     `avro:"key_id" json:"key_id"`
	Kind            string     `avro:"kind" json:"kind"`
	CorrectsSeq     *int64     `avro:"corrects_seq" json:"corrects_seq,omitempty"`
	RecordedAt      time.Time  `avro:"recorded_at" json:"recorded_at"`
	EventID         string     `avro:"event_id" json:"event_id"`
	EventType       string     `avro:"event_type" json:"event_type"`
	OccurredAt      time.Time  `avro:"occurred_at" json:"occurred_at"`
	Purpose         string     `avro:"purpose" json:"purpose"`
	SourceTopic     string     `avro:"source_topic" json:"source_topic"`
	SourcePartition int32      `avro:"source_partition" json:"source_partition"`
	SourceOffset    int64      `avro:"source_offset" json:"source_offset"`
	Subject         string     `avro:"subject" json:"subject"`
	TraceID         *string    `avro:"trace_id" json:"trace_id,omitempty"`
	Decisions       []Decision `avro:"decisions" json:"decisions"`
	Hash            [32]byte   `avro:"hash" json:"-"`
	MAC             [32]byte   `avro:"mac" json:"-"`
}

// Decision is one recipient's decision within an entry.
type Decision struct {
	RecipientID      string           `avro:"recipient_id" json:"recipient_id"`
	RecipientName    string           `avro:"recipient_name" json:"recipient_name"`
	RecipientType    string           `avro:"recipient_type" json:"recipient_type"`
	RecipientCountry string           `avro:"recipient_country" json:"recipient_country"`
	Outcome          string           `avro:"outcome" json:"outcome"`
	Reason           *string          `avro:"reason" json:"reason,omitempty"`
	PolicyRevision   string           `avro:"policy_revision" json:"policy_revision"`
	Basis            *string          `avro:"basis" json:"basis,omitempty"`
	CrossBorder      bool             `avro:"cross_border" json:"cross_border"`
	Mechanism        *string          `avro:"mechanism" json:"mechanism,omitempty"`
	Disclosed        []DisclosedField `avro:"disclosed" json:"disclosed"`
	Withheld         []string         `avro:"withheld" json:"withheld"`
	Reasons          []string         `avro:"reasons" json:"reasons"`
}

// DisclosedField is a delivered leaf path and the operator applied to it.
type DisclosedField struct {
	Path     string `avro:"path" json:"path"`
	Operator string `avro:"operator" json:"operator"`
}

// Sentinel errors of Decode; every decode error wraps one of them.
var (
	// ErrNotEntry means the bytes are not an audit entry of this schema.
	ErrNotEntry = errors.New("not an audit entry")
	// ErrNotCanonical means the bytes decode, but not from the encoding
	// dgw writes: they were changed.
	ErrNotCanonical = errors.New("audit entry not in canonical encoding")
)

// SchemaName is the full name of the audit entry schema.
const SchemaName = "dgw.audit.AuditEntry"

// MaxEntrySize bounds the bytes Decode accepts.
const MaxEntrySize = 1 << 20

// tail is the length of the hash and mac fields that end every encoding.
const tail = 64

// hashDomain starts the hashed bytes, so an entry hash is never confused
// with another SHA-256 of the same bytes.
const hashDomain = "dgw.audit.v1\n"

// Codec writes and reads audit entries in Avro single-object encoding
// (C3 01, the 8-byte little-endian CRC-64-AVRO fingerprint, the body).
type Codec struct {
	schema avro.Schema
	fp     uint64
	header [10]byte
	api    avro.API
	// hand is set when the schema is the one appendEntry encodes by hand.
	hand bool
	// domain is hashDomain, as the bytes sealParts hashes.
	domain []byte
}

// NewCodec parses the audit entry schema (schemas/audit.avsc) and checks
// it is one this package can chain: record dgw.audit.AuditEntry ending in
// the fields hash and mac, both fixed 32 bytes.
func NewCodec(avsc []byte) (*Codec, error) {
	s, err := avro.ParseBytesWithCache(avsc, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("audit schema: %w", err)
	}
	rec, ok := s.(*avro.RecordSchema)
	if !ok || rec.FullName() != SchemaName {
		return nil, fmt.Errorf("audit schema: expected record %s", SchemaName)
	}
	fs := rec.Fields()
	if len(fs) < 2 || fs[len(fs)-2].Name() != "hash" || fs[len(fs)-1].Name() != "mac" {
		return nil, errors.New("audit schema: the last two fields must be hash and mac")
	}
	for _, f := range fs[len(fs)-2:] {
		t := f.Type()
		if ref, ok := t.(*avro.RefSchema); ok {
			t = ref.Schema()
		}
		fx, ok := t.(*avro.FixedSchema)
		if !ok || fx.Size() != 32 {
			return nil, fmt.Errorf("audit schema: field %s must be fixed 32 bytes", f.Name())
		}
	}
	fpb, err := rec.FingerprintUsing(avro.CRC64Avro)
	if err != nil {
		return nil, fmt.Errorf("audit schema: fingerprint: %w", err)
	}
	c := &Codec{schema: rec, fp: binary.BigEndian.Uint64(fpb), domain: []byte(hashDomain)}
	c.header[0], c.header[1] = 0xC3, 0x01
	binary.LittleEndian.PutUint64(c.header[2:], c.fp)
	c.api = avro.Config{
		TagKey:                 "avro",
		BlockLength:            1 << 30, // one block per array: the canonical form
		DisableBlockSizeHeader: true,
		UnionResolutionError:   true,
		MaxByteSliceSize:       MaxEntrySize,
		MaxSliceAllocSize:      MaxEntrySize,
	}.Freeze()
	// The Go types must match the schema: fail now, not at the first event.
	if _, err := c.api.Marshal(c.schema, &Entry{Kind: KindDecision, Decisions: []Decision{{Outcome: "refused"}}}); err != nil {
		return nil, fmt.Errorf("audit schema does not match audit.Entry: %w", err)
	}
	if c.fp == handSchemaFP {
		// Fail closed should the hand encoder ever disagree with Marshal.
		probe := probeEntry()
		want, err := c.api.Marshal(c.schema, probe)
		if err != nil {
			return nil, fmt.Errorf("audit schema: probe entry: %w", err)
		}
		got, err := appendEntry(nil, probe)
		if err != nil || !bytes.Equal(got, want) {
			return nil, fmt.Errorf("audit schema: the hand encoder disagrees with Marshal (%v)", err)
		}
		c.hand = true
	}
	return c, nil
}

// Fingerprint is the schema's CRC-64-AVRO fingerprint.
func (c *Codec) Fingerprint() uint64 { return c.fp }

// seal encodes e, computing its hash over everything before the hash
// field and its MAC with key, and stores both in e. It returns the
// encoding in a new slice; scratch, if not nil, is reused for the work and
// returned grown for the next call.
func (c *Codec) seal(e *Entry, key *keyMACs, scratch []byte) (out, grown []byte, err error) {
	e.Hash, e.MAC = [32]byte{}, [32]byte{}
	// The hashed bytes are the domain, the header and the body without its
	// tail: encode them in one buffer and hash it without copying.
	buf := append(append(scratch[:0], hashDomain...), c.header[:]...)
	if c.hand {
		buf, err = appendEntry(buf, e)
	} else {
		var body []byte
		if body, err = c.api.Marshal(c.schema, e); err == nil {
			buf = append(buf, body...)
		}
	}
	if err != nil {
		return nil, scratch, fmt.Errorf("encode audit entry: %w", err)
	}
	e.Hash = sha256.Sum256(buf[:len(buf)-tail])
	e.MAC = key.sign(e.Hash)
	out = bytes.Clone(buf[len(hashDomain):])
	copy(out[len(out)-tail:], e.Hash[:])
	copy(out[len(out)-tail+32:], e.MAC[:])
	return out, buf[:0], nil
}

// sealParts is seal for the hand encoder with the decisions given as
// their encodings (parts, of total length n), from the memo: the entry's
// bytes are those seal writes for e with those decisions. It writes the
// record straight into the slice it returns, of exactly its length, and
// hashes the domain and the record with the reused digest s.sum, so that
// the ~10 KB of an entry are neither copied out of a scratch buffer nor
// over-allocated. e.Decisions is not read.
func (c *Codec) sealParts(e *Entry, ps [][]byte, n int, key *keyMACs, s *sealScratch, spare []byte) ([]byte, error) {
	e.Hash, e.MAC = [32]byte{}, [32]byte{}
	head, err := appendHead(s.head[:0], e)
	if err != nil {
		return nil, fmt.Errorf("encode audit entry: %w", err)
	}
	s.head = head
	size := len(c.header) + len(head) + n + 2*binary.MaxVarintLen64 + tail
	out := spare[:0]
	if cap(out) < size {
		out = make([]byte, 0, size)
	}
	out = append(append(out, c.header[:]...), head...)
	if len(ps) > 0 {
		out = appendLong(out, int64(len(ps)))
		for _, p := range ps {
			out = append(out, p...)
		}
	}
	out = appendLong(out, 0)
	s.sum.Reset()
	s.sum.Write(c.domain)
	s.sum.Write(out)
	s.sum.Sum(e.Hash[:0])
	e.MAC = key.sign(e.Hash)
	return appendTail(out, e), nil
}

// sealScratch is what sealParts reuses from entry to entry of a chain.
type sealScratch struct {
	head []byte
	sum  hash.Hash // SHA-256
}

// probeEntry sets every optional field and array, so NewCodec compares
// every branch of the hand encoder with Marshal.
func probeEntry() *Entry {
	s, n := "probe-\u00fc", int64(-3)
	return &Entry{ChainID: "c", Seq: 1 << 40, PrevHash: [32]byte{1, 2}, KeyID: "k", Kind: KindCorrection, CorrectsSeq: &n,
		RecordedAt: time.Date(2026, 1, 2, 3, 4, 5, 6_789_000, time.UTC), EventID: "e", EventType: "t",
		OccurredAt: time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.UTC), Purpose: "p", SourceTopic: "st",
		SourcePartition: -1, SourceOffset: 1 << 62, Subject: "s", TraceID: &s,
		Decisions: []Decision{
			{RecipientID: "r", Outcome: "held", Reason: &s, PolicyRevision: "rev", Basis: &s, CrossBorder: true, Mechanism: &s,
				Disclosed: []DisclosedField{{Path: "a", Operator: "keep"}, {Path: "b", Operator: "generalise"}, {Path: "c", Operator: "mask"}, {Path: "d", Operator: "hash"}},
				Withheld:  []string{"x", "y"}, Reasons: []string{s}},
			{Outcome: "delivered"}, {Outcome: "refused"},
		},
		Hash: [32]byte{3}, MAC: [32]byte{4}}
}

// contentHash hashes a sealed encoding without its hash and mac.
func contentHash(raw []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(hashDomain))
	h.Write(raw[:len(raw)-tail])
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// Decode reads one audit entry. The bytes must be exactly the encoding
// dgw writes: a record that decodes but re-encodes differently (trailing
// bytes, over-long numbers) is returned together with ErrNotCanonical, so
// a verifier still learns which chain it claims. Decode does not check the
// hash or MAC; HashOK and the Verifier do.
func (c *Codec) Decode(raw []byte) (*Entry, error) {
	if len(raw) > MaxEntrySize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrNotEntry, len(raw), MaxEntrySize)
	}
	if len(raw) < len(c.header)+tail || !bytes.Equal(raw[:2], c.header[:2]) {
		return nil, fmt.Errorf("%w: no Avro single-object header", ErrNotEntry)
	}
	if !bytes.Equal(raw[2:len(c.header)], c.header[2:]) {
		return nil, fmt.Errorf("%w: schema fingerprint %016x is not the audit schema's", ErrNotEntry, binary.LittleEndian.Uint64(raw[2:10]))
	}
	e := new(Entry)
	body := raw[len(c.header):]
	if err := c.api.Unmarshal(c.schema, body, e); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotEntry, err)
	}
	again, err := c.api.Marshal(c.schema, e)
	if err != nil || !bytes.Equal(again, body) {
		return e, ErrNotCanonical
	}
	return e, nil
}

// HashOK reports whether raw, a record Decode accepted as e, still matches
// the hash it carries.
func HashOK(raw []byte, e *Entry) bool {
	return len(raw) >= tail && contentHash(raw) == e.Hash
}
