package audit

import (
	"encoding/binary"
	"fmt"
	"time"
)

// handSchemaFP is the CRC-64-AVRO fingerprint of the audit schema that
// appendEntry writes by hand. The fingerprint covers the parsing canonical
// form (names, types, field order, enum symbols), which is all that shapes
// the binary encoding: a codec built from any other schema encodes with
// hamba's generic Marshal instead.
const handSchemaFP uint64 = 0x51f77d7e7908b8cb

// Enum symbol indexes of schemas/audit.avsc, in schema order.
var (
	kindIndex     = map[string]int64{KindDecision: 0, KindCorrection: 1}
	outcomeIndex  = map[string]int64{"delivered": 0, "refused": 1, "held": 2}
	operatorIndex = map[string]int64{"keep": 0, "generalise": 1, "mask": 2, "hash": 3}
)

// appendEntry appends the Avro binary encoding of e under the schema with
// fingerprint handSchemaFP, byte for byte what hamba's Marshal writes with
// the codec's config: zig-zag varints, strings as length and bytes,
// nullable unions as branch index then value, each array as one block
// (count, items, then 0; no block size), timestamps as Unix milliseconds.
// It exists because the generic Marshal walks the schema through
// reflection for every entry and was half the auditor's cost (issue #7).
func appendEntry(b []byte, e *Entry) ([]byte, error) {
	b, err := appendHead(b, e)
	if err != nil {
		return nil, err
	}
	if n := len(e.Decisions); n > 0 {
		b = appendLong(b, int64(n))
		for i := range e.Decisions {
			var err error
			if b, err = appendDecision(b, &e.Decisions[i]); err != nil {
				return nil, fmt.Errorf("decisions[%d]: %w", i, err)
			}
		}
	}
	b = appendLong(b, 0)
	return appendTail(b, e), nil
}

// appendHead appends the fields of e before its decisions.
func appendHead(b []byte, e *Entry) ([]byte, error) {
	kind, ok := kindIndex[e.Kind]
	if !ok {
		return nil, fmt.Errorf("kind: unknown enum symbol %q", e.Kind)
	}
	b = appendString(b, e.ChainID)
	b = appendLong(b, e.Seq)
	b = append(b, e.PrevHash[:]...)
	b = appendString(b, e.KeyID)
	b = appendLong(b, kind)
	if e.CorrectsSeq == nil {
		b = appendLong(b, 0)
	} else {
		b = appendLong(appendLong(b, 1), *e.CorrectsSeq)
	}
	b = appendMillis(b, e.RecordedAt)
	b = appendString(b, e.EventID)
	b = appendString(b, e.EventType)
	b = appendMillis(b, e.OccurredAt)
	b = appendString(b, e.Purpose)
	b = appendString(b, e.SourceTopic)
	b = appendLong(b, int64(e.SourcePartition))
	b = appendLong(b, e.SourceOffset)
	b = appendString(b, e.Subject)
	return appendOptString(b, e.TraceID), nil
}

// appendTail appends the fields of e after its decisions: hash and mac.
func appendTail(b []byte, e *Entry) []byte {
	b = append(b, e.Hash[:]...)
	return append(b, e.MAC[:]...)
}

func appendDecision(b []byte, d *Decision) ([]byte, error) {
	outcome, ok := outcomeIndex[d.Outcome]
	if !ok {
		return nil, fmt.Errorf("outcome: unknown enum symbol %q", d.Outcome)
	}
	b = appendString(b, d.RecipientID)
	b = appendString(b, d.RecipientName)
	b = appendString(b, d.RecipientType)
	b = appendString(b, d.RecipientCountry)
	b = appendLong(b, outcome)
	b = appendOptString(b, d.Reason)
	b = appendString(b, d.PolicyRevision)
	b = appendOptString(b, d.Basis)
	if d.CrossBorder {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = appendOptString(b, d.Mechanism)
	if n := len(d.Disclosed); n > 0 {
		b = appendLong(b, int64(n))
		for _, f := range d.Disclosed {
			op, ok := operatorIndex[f.Operator]
			if !ok {
				return nil, fmt.Errorf("disclosed operator: unknown enum symbol %q", f.Operator)
			}
			b = appendLong(appendString(b, f.Path), op)
		}
	}
	b = appendLong(b, 0)
	b = appendStrings(b, d.Withheld)
	return appendStrings(b, d.Reasons), nil
}

func appendStrings(b []byte, ss []string) []byte {
	if len(ss) > 0 {
		b = appendLong(b, int64(len(ss)))
		for _, s := range ss {
			b = appendString(b, s)
		}
	}
	return appendLong(b, 0)
}

func appendOptString(b []byte, s *string) []byte {
	if s == nil {
		return appendLong(b, 0)
	}
	return appendString(appendLong(b, 1), *s)
}

func appendString(b []byte, s string) []byte {
	return append(appendLong(b, int64(len(s))), s...)
}

// appendMillis writes timestamp-millis exactly as hamba computes it.
func appendMillis(b []byte, t time.Time) []byte {
	return appendLong(b, t.Unix()*1e3+int64(t.Nanosecond()/1e6))
}

// appendLong writes an Avro long (and int): zig-zag, then varint.
func appendLong(b []byte, v int64) []byte {
	return binary.AppendUvarint(b, uint64((v<<1)^(v>>63)))
}
