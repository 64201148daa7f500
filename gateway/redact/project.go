package redact

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"time"
	"unicode/utf8"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
)

// Dates and timestamps outside the range codec accepts are refused, so
// every record dgw writes is one dgw can read back.
var (
	minTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2201, 1, 1, 0, 0, 0, 0, time.UTC)
)

// hashLen is the length of a pseudonym: hex of a SHA-256 sum.
const hashLen = 2 * 32

// valueError locates a value that cannot be redacted; it never holds the value.
type valueError struct {
	path string
	msg  string
}

func (e *valueError) Error() string { return "field " + e.path + ": " + e.msg }

func verr(path, format string, args ...any) error {
	return &valueError{path: path, msg: fmt.Sprintf(format, args...)}
}

// resolve turns a decision into one operator per leaf slot, checking every
// released field against the compiled contract scope.
func (p *program) resolve(d *gateway.Decision, buf []opCode) ([]opCode, error) {
	var ops []opCode
	if cap(buf) >= len(p.leaves) {
		ops = buf[:len(p.leaves)]
		clear(ops)
	} else {
		ops = make([]opCode, len(p.leaves))
	}
	if len(d.Fields) >= len(p.leaves) {
		// Look each leaf up in the decision; when every entry of the
		// decision matched a leaf, no entry lies outside the scope.
		matched := 0
		for _, l := range p.leaves {
			op, ok := d.Fields[l.path]
			if !ok {
				continue
			}
			matched++
			if op == gateway.OpDrop {
				continue
			}
			c := codeOf(op)
			if !l.allows(c) {
				return nil, p.violation(d)
			}
			ops[l.slot] = c
		}
		if matched == len(d.Fields) {
			return ops, nil
		}
		clear(ops)
	}
	for path, op := range d.Fields {
		if op == gateway.OpDrop {
			continue
		}
		l := p.byPath[path]
		c := codeOf(op)
		if l == nil || !l.allows(c) {
			return nil, p.violation(d)
		}
		ops[l.slot] = c
	}
	return ops, nil
}

// violation names the first released field, in path order, that the
// compiled scope does not allow.
func (p *program) violation(d *gateway.Decision) error {
	for _, path := range d.Released() {
		op := d.Fields[path]
		if !op.Valid() {
			return fmt.Errorf("recipient %s, %s field %s: unknown operator %q: %w", p.recipient, p.eventType, path, string(op), gateway.ErrScopeViolation)
		}
		l := p.byPath[path]
		if l == nil {
			return fmt.Errorf("recipient %s, %s field %s is not in the contract scope: %w", p.recipient, p.eventType, path, gateway.ErrScopeViolation)
		}
		if !l.allows(codeOf(op)) {
			return fmt.Errorf("recipient %s, %s field %s with %s: %w", p.recipient, p.eventType, path, op, gateway.ErrScopeViolation)
		}
	}
	return fmt.Errorf("recipient %s, %s: %w", p.recipient, p.eventType, gateway.ErrScopeViolation)
}

// run is the state of one projection.
type run struct {
	ops []opCode
	at  time.Time // the event time, for age bands
}

// encode appends the single-object encoding of the recipient's record.
// With a layout it writes from the event's bytes, otherwise from its value.
func (p *program) encode(dst []byte, e *gateway.Event, lay *codec.Layout, ops []opCode) ([]byte, error) {
	var h *hasher
	if p.hashers != nil {
		h = p.hashers.Get().(*hasher)
		defer p.hashers.Put(h)
	}
	r := run{ops: ops, at: e.OccurredAt}
	dst = append(dst, codec.Magic[0], codec.Magic[1])
	dst = binary.LittleEndian.AppendUint64(dst, p.derived.Fingerprint)
	if lay != nil {
		return r.fieldsAt(dst, h, p.root, lay, 0)
	}
	return r.fields(dst, h, p.root, e.Value)
}

// fieldsAt is fields over a layout: it writes the derived fields of record
// n from the source record whose fields start at index base of lay.Spans.
func (r *run) fieldsAt(dst []byte, h *hasher, n *node, lay *codec.Layout, base int32) ([]byte, error) {
	var err error
	for _, c := range n.fields {
		if c.leaf != nil && r.ops[c.leaf.slot] == opNone {
			dst = append(dst, 0)
			continue
		}
		i := int(base) + c.src
		if i >= len(lay.Spans) {
			return nil, verr(c.path, "not in the event's layout")
		}
		sp := lay.Spans[i]
		if c.leaf != nil {
			if dst, err = r.leafAt(dst, h, c.leaf, lay, sp); err != nil {
				return nil, err
			}
			continue
		}
		if sp.Null() || !r.released(c) {
			dst = append(dst, 0)
			continue
		}
		dst = append(dst, 2)
		if !c.array {
			if dst, err = r.fieldsAt(dst, h, c, lay, sp.Sub); err != nil {
				return nil, err
			}
			continue
		}
		if sp.N > 0 {
			if int(sp.Sub)+int(sp.N) > len(lay.Items) {
				return nil, verr(c.path, "not in the event's layout")
			}
			dst = codec.AppendLong(dst, int64(sp.N))
			for _, e := range lay.Items[sp.Sub : sp.Sub+sp.N] {
				var null bool
				if dst, null, err = appendItem(dst, e < 0, c.itemsNull, c.path); err != nil {
					return nil, err
				}
				if null {
					continue
				}
				if dst, err = r.fieldsAt(dst, h, c, lay, e); err != nil {
					return nil, err
				}
			}
		}
		dst = append(dst, 0)
	}
	return dst, nil
}

// leafAt is leaf over a layout. A kept value is its source bytes: the
// decoder checked them against the same type. Other operators decode the
// value first.
func (r *run) leafAt(dst []byte, h *hasher, l *leaf, lay *codec.Layout, sp codec.Span) ([]byte, error) {
	op := r.ops[l.slot]
	if op == opNone || sp.Null() {
		return append(dst, 0), nil
	}
	if op == opKeep && l.raw {
		return append(append(dst, 2), lay.Bytes(sp)...), nil
	}
	v, err := lay.DecodeSpan(l.src, sp)
	if err != nil {
		return nil, verr(l.path, "%v", err)
	}
	return r.leaf(dst, h, l, v)
}

// appendItem writes the union branch of one array item when the items are
// ["null", T]: 0 for a null item, which is then complete (null), 2 before
// a value. A null item where the items are T is an error.
func appendItem(dst []byte, isNull, itemsNull bool, path string) (out []byte, null bool, err error) {
	switch {
	case isNull && !itemsNull:
		return nil, false, verr(path, "null array item")
	case isNull:
		return append(dst, 0), true, nil
	case itemsNull:
		return append(dst, 2), false, nil
	}
	return dst, false, nil
}

func (r *run) released(n *node) bool {
	for _, o := range r.ops[n.lo:n.hi] {
		if o != opNone {
			return true
		}
	}
	return false
}

// fields writes the derived fields of record n from the source record m.
// A nested record or array of records is null when the source has none or
// when the decision releases nothing below it.
// The hasher is a parameter, not a field of run: it leaks to the heap
// (through hash.Hash), and would take run and ops with it.
func (r *run) fields(dst []byte, h *hasher, n *node, m map[string]any) ([]byte, error) {
	var err error
	for _, c := range n.fields {
		if c.leaf != nil && r.ops[c.leaf.slot] == opNone {
			// Not released: null, without looking the field up (most
			// leaves, for most recipients).
			dst = append(dst, 0)
			continue
		}
		v := m[c.name]
		if c.leaf != nil {
			if dst, err = r.leaf(dst, h, c.leaf, v); err != nil {
				return nil, err
			}
			continue
		}
		if v == nil || !r.released(c) {
			dst = append(dst, 0)
			continue
		}
		path := c.path
		if !c.array {
			sub, ok := v.(map[string]any)
			if !ok {
				return nil, verr(path, "expected a record, got %s", codec.TypeName(v))
			}
			dst = append(dst, 2)
			if dst, err = r.fields(dst, h, c, sub); err != nil {
				return nil, err
			}
			continue
		}
		arr, ok := v.([]any)
		if !ok {
			return nil, verr(path, "expected an array, got %s", codec.TypeName(v))
		}
		dst = append(dst, 2)
		if len(arr) > 0 {
			dst = codec.AppendLong(dst, int64(len(arr)))
			for _, item := range arr {
				var null bool
				if dst, null, err = appendItem(dst, item == nil, c.itemsNull, path); err != nil {
					return nil, err
				}
				if null {
					continue
				}
				sub, ok := item.(map[string]any)
				if !ok {
					return nil, verr(path, "expected records in the array, got %s", codec.TypeName(item))
				}
				if dst, err = r.fields(dst, h, c, sub); err != nil {
					return nil, err
				}
			}
		}
		dst = append(dst, 0)
	}
	return dst, nil
}

// leaf writes one ["null", T] leaf.
func (r *run) leaf(dst []byte, h *hasher, l *leaf, v any) ([]byte, error) {
	op := r.ops[l.slot]
	if op == opNone || v == nil {
		return append(dst, 0), nil
	}
	dst = append(dst, 2)
	if !l.array {
		return r.value(dst, h, l, op, v)
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, verr(l.path, "expected an array, got %s", codec.TypeName(v))
	}
	if len(arr) > 0 {
		dst = codec.AppendLong(dst, int64(len(arr)))
		for _, item := range arr {
			var null bool
			var err error
			if dst, null, err = appendItem(dst, item == nil, l.itemsNull, l.path); err != nil {
				return nil, err
			}
			if null {
				continue
			}
			if dst, err = r.value(dst, h, l, op, item); err != nil {
				return nil, err
			}
		}
	}
	return append(dst, 0), nil
}

// value writes one operator's result for a non-null value.
func (r *run) value(dst []byte, h *hasher, l *leaf, op opCode, v any) ([]byte, error) {
	switch op {
	case opKeep:
		return keepValue(dst, l, v)
	case opMask:
		s, ok := v.(string)
		if !ok {
			return nil, verr(l.path, "expected string, got %s", codec.TypeName(v))
		}
		if !utf8.ValidString(s) {
			return nil, verr(l.path, "string is not valid UTF-8")
		}
		start := len(dst)
		dst = append(dst, 0) // length, fixed below
		dst = appendMask(dst, l.format, s)
		return fixLength(dst, start), nil
	case opHash:
		if h == nil {
			// New never compiles hash without a key; fail closed all the same.
			return nil, verr(l.path, "no hash key")
		}
		canon, ok := appendCanonical(h.buf[:0], l, v)
		h.buf = canon[:0]
		if !ok {
			return nil, verr(l.path, "expected %s, got %s", l.kind, codec.TypeName(v))
		}
		dst = codec.AppendLong(dst, hashLen)
		return h.appendHash(dst, canon), nil
	case opGeneralise:
		t, ok := v.(time.Time)
		if !ok {
			return nil, verr(l.path, "expected %s, got %s", l.kind, codec.TypeName(v))
		}
		if t.Before(minTime) || !t.Before(maxTime) {
			return nil, verr(l.path, "%s out of range 1900..2200", l.kind)
		}
		switch l.gen {
		case genYear:
			return codec.AppendLong(dst, int64(t.UTC().Year())), nil
		case genDate:
			return codec.AppendLong(dst, days(t)), nil
		case genAgeBand:
			if r.at.IsZero() {
				return nil, verr(l.path, "an age band needs the event time, and the event has none")
			}
			band, ok := ageBand(ageAt(t, r.at))
			if !ok {
				return nil, verr(l.path, "birth date after the event time")
			}
			dst = codec.AppendLong(dst, int64(len(band)))
			return append(dst, band...), nil
		}
	}
	return nil, verr(l.path, "operator not applicable")
}

// keepValue writes v unchanged in the source's type.
func keepValue(dst []byte, l *leaf, v any) ([]byte, error) {
	bad := func() ([]byte, error) { return nil, verr(l.path, "expected %s, got %s", l.kind, codec.TypeName(v)) }
	switch l.kind {
	case sString:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		if !utf8.ValidString(s) {
			return nil, verr(l.path, "string is not valid UTF-8")
		}
		return append(codec.AppendLong(dst, int64(len(s))), s...), nil
	case sEnum:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		i, ok := l.symbols[s]
		if !ok {
			return nil, verr(l.path, "not a symbol of the enum")
		}
		return codec.AppendLong(dst, int64(i)), nil
	case sInt:
		n, ok := asInt64(v)
		if !ok {
			return bad()
		}
		if n < math.MinInt32 || n > math.MaxInt32 {
			return nil, verr(l.path, "int out of 32-bit range")
		}
		return codec.AppendLong(dst, n), nil
	case sLong:
		n, ok := asInt64(v)
		if !ok {
			return bad()
		}
		return codec.AppendLong(dst, n), nil
	case sBool:
		b, ok := v.(bool)
		if !ok {
			return bad()
		}
		if b {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case sFloat:
		switch f := v.(type) {
		case float32:
			return binary.LittleEndian.AppendUint32(dst, math.Float32bits(f)), nil
		case float64:
			return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(f))), nil
		}
		return bad()
	case sDouble:
		switch f := v.(type) {
		case float64:
			return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f)), nil
		case float32:
			return binary.LittleEndian.AppendUint64(dst, math.Float64bits(float64(f))), nil
		}
		return bad()
	case sBytes:
		b, ok := v.([]byte)
		if !ok {
			return bad()
		}
		return append(codec.AppendLong(dst, int64(len(b))), b...), nil
	case sDate, sTimestampMillis, sTimestampMicros:
		t, ok := v.(time.Time)
		if !ok {
			return bad()
		}
		if t.Before(minTime) || !t.Before(maxTime) {
			return nil, verr(l.path, "%s out of range 1900..2200", l.kind)
		}
		switch l.kind {
		case sDate:
			return codec.AppendLong(dst, days(t)), nil
		case sTimestampMillis:
			return codec.AppendLong(dst, t.UnixMilli()), nil
		default:
			return codec.AppendLong(dst, t.UnixMicro()), nil
		}
	case sDecimal:
		r, ok := v.(*big.Rat)
		if !ok || r == nil {
			return bad()
		}
		if dst, ok := l.smallDecimal(dst, r); ok {
			return dst, nil
		}
		x := new(big.Rat).Mul(r, l.pow10)
		if !x.IsInt() {
			return nil, verr(l.path, "decimal has more than %d decimal places", l.scale)
		}
		n := x.Num()
		if n.Sign() != 0 && len(new(big.Int).Abs(n).String()) > l.digits {
			return nil, verr(l.path, "decimal has more than %d digits", l.digits)
		}
		b := codec.TwosComplement(n)
		return append(codec.AppendLong(dst, int64(len(b))), b...), nil
	}
	return bad()
}

// smallDecimal encodes r without allocating when it fits the common case:
// numerator and denominator fit int64, the denominator divides 10^scale,
// and precision and scale are at most 18. It reports false otherwise (the
// general path then encodes or rejects r).
func (l *leaf) smallDecimal(dst []byte, r *big.Rat) ([]byte, bool) {
	if l.digits > 18 || l.scale > 18 || !r.Num().IsInt64() || !r.Denom().IsInt64() {
		return dst, false
	}
	num, den := r.Num().Int64(), r.Denom().Int64()
	p := pow10s[l.scale]
	if den <= 0 || p%den != 0 {
		return dst, false
	}
	f := p / den
	if num > math.MaxInt64/f || num < -math.MaxInt64/f {
		return dst, false
	}
	n := num * f
	if n >= pow10s[l.digits] || n <= -pow10s[l.digits] {
		return dst, false
	}
	// Big-endian two's complement in the fewest bytes.
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	i := 0
	for i < 7 && ((b[i] == 0 && b[i+1]&0x80 == 0) || (b[i] == 0xff && b[i+1]&0x80 != 0)) {
		i++
	}
	dst = codec.AppendLong(dst, int64(8-i))
	return append(dst, b[i:]...), true
}

var pow10s = [19]int64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18}

// days is the Avro date of t: days since 1970-01-01 of its UTC date.
func days(t time.Time) int64 {
	s := t.Unix()
	d := s / 86400
	if s%86400 < 0 {
		d--
	}
	return d
}

// fixLength writes the length of the string that follows dst[start] into
// the one byte reserved there, moving the string when the length needs a
// longer varint.
func fixLength(dst []byte, start int) []byte {
	n := len(dst) - start - 1
	zz := uint64(n) << 1
	if zz < 0x80 {
		dst[start] = byte(zz)
		return dst
	}
	var hdr [binary.MaxVarintLen64]byte
	h := binary.PutUvarint(hdr[:], zz)
	for range h - 1 {
		dst = append(dst, 0)
	}
	copy(dst[start+h:], dst[start+1:start+1+n])
	copy(dst[start:], hdr[:h])
	return dst
}
