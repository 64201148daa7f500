package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"time"
	"unicode/utf8"

	"github.com/hamba/avro/v2"
)

// errTruncated means the body ended inside a value.
var errTruncated = errors.New("truncated")

// valueError locates a problem inside a record. It never holds the value.
type valueError struct {
	path    string
	msg     string
	invalid bool // decoded fine but out of range: ReasonInvalid rather than ReasonDecode
}

func (e *valueError) Error() string {
	if e.path == "" {
		return e.msg
	}
	return "field " + e.path + ": " + e.msg
}

func verr(path, format string, args ...any) error {
	return &valueError{path: path, msg: fmt.Sprintf(format, args...)}
}

func invalid(path, format string, args ...any) error {
	return &valueError{path: path, msg: fmt.Sprintf(format, args...), invalid: true}
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// Dates outside this range are rejected: they are typos or attacks, and
// generalise/age-band arithmetic must stay meaningful.
var (
	minTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2201, 1, 1, 0, 0, 0, 0, time.UTC)
)

// timestampOf checks a timestamp-millis long (micros: -micros) against the
// range every reader and writer of dgw accepts, 1900..2200, and returns
// its time.
func timestampOf(path string, v int64, micros bool) (time.Time, error) {
	lo, hi, at := minTime.UnixMilli(), maxTime.UnixMilli(), time.UnixMilli
	if micros {
		lo, hi, at = minTime.UnixMicro(), maxTime.UnixMicro(), time.UnixMicro
	}
	if v < lo || v >= hi {
		return time.Time{}, invalid(path, "timestamp out of range 1900..2200")
	}
	return at(v).UTC(), nil
}

type reader struct {
	b []byte
	i int
}

func (r *reader) long(path string) (int64, error) {
	var u uint64
	var shift uint
	for n := 0; ; n++ {
		if r.i >= len(r.b) {
			return 0, verr(path, "%v reading a varint", errTruncated)
		}
		if n == 10 {
			return 0, verr(path, "varint longer than 10 bytes")
		}
		c := r.b[r.i]
		r.i++
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
		shift += 7
	}
	return int64(u>>1) ^ -int64(u&1), nil
}

func (r *reader) take(path string, n int64) ([]byte, error) {
	if n < 0 {
		return nil, verr(path, "negative length")
	}
	if n > int64(len(r.b)-r.i) {
		return nil, verr(path, "%v: length %d exceeds the %d bytes left", errTruncated, n, len(r.b)-r.i)
	}
	out := r.b[r.i : r.i+int(n)]
	r.i += int(n)
	return out, nil
}

func (r *reader) bytes(path string) ([]byte, error) {
	n, err := r.long(path)
	if err != nil {
		return nil, err
	}
	return r.take(path, n)
}

// read decodes one value of schema s into the normalised form.
func (r *reader) read(s avro.Schema, path string) (any, error) {
	switch s.Type() {
	case avro.Null:
		return nil, nil
	case avro.Boolean:
		b, err := r.take(path, 1)
		if err != nil {
			return nil, err
		}
		if b[0] > 1 {
			return nil, verr(path, "expected boolean byte 0 or 1")
		}
		return b[0] == 1, nil
	case avro.Int:
		v, err := r.long(path)
		if err != nil {
			return nil, err
		}
		if v < math.MinInt32 || v > math.MaxInt32 {
			return nil, verr(path, "int out of 32-bit range")
		}
		if isLogical(s, avro.Date) {
			t := time.Unix(v*86400, 0).UTC()
			if t.Before(minTime) || !t.Before(maxTime) {
				return nil, invalid(path, "date out of range 1900-01-01..2200-12-31")
			}
			return t, nil
		}
		return int(v), nil
	case avro.Long:
		v, err := r.long(path)
		if err != nil {
			return nil, err
		}
		switch {
		case isLogical(s, avro.TimestampMillis):
			return timestampOf(path, v, false)
		case isLogical(s, avro.TimestampMicros):
			return timestampOf(path, v, true)
		}
		return v, nil
	case avro.Float:
		b, err := r.take(path, 4)
		if err != nil {
			return nil, err
		}
		return math.Float32frombits(binary.LittleEndian.Uint32(b)), nil
	case avro.Double:
		b, err := r.take(path, 8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	case avro.String:
		b, err := r.bytes(path)
		if err != nil {
			return nil, err
		}
		if !utf8.Valid(b) {
			return nil, invalid(path, "string is not valid UTF-8")
		}
		return string(b), nil
	case avro.Bytes:
		b, err := r.bytes(path)
		if err != nil {
			return nil, err
		}
		if d, ok := decimalOf(s); ok {
			return d.rat(b, path)
		}
		return append([]byte(nil), b...), nil
	case avro.Fixed:
		fs := s.(*avro.FixedSchema)
		b, err := r.take(path, int64(fs.Size()))
		if err != nil {
			return nil, err
		}
		if d, ok := decimalOf(s); ok {
			return d.rat(b, path)
		}
		return append([]byte(nil), b...), nil
	case avro.Enum:
		es := s.(*avro.EnumSchema)
		i, err := r.long(path)
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= int64(len(es.Symbols())) {
			return nil, verr(path, "enum index %d outside the %d symbols of %s", i, len(es.Symbols()), es.FullName())
		}
		return es.Symbols()[i], nil
	case avro.Array:
		items := s.(*avro.ArraySchema).Items()
		out := []any{}
		var total int64
		for {
			n, err := r.blockCount(path)
			if err != nil {
				return nil, err
			}
			if n == 0 {
				return out, nil
			}
			if items.Type() != avro.Null && n > int64(len(r.b)-r.i) {
				return nil, verr(path, "%v: array block of %d items exceeds the bytes left", errTruncated, n)
			}
			if items.Type() == avro.Null && n > maxNullItems-total {
				return nil, verr(path, "array of more than %d null items", maxNullItems)
			}
			total += n
			for range n {
				v, err := r.read(items, path)
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
		}
	case avro.Map:
		vs := s.(*avro.MapSchema).Values()
		out := map[string]any{}
		for {
			n, err := r.blockCount(path)
			if err != nil {
				return nil, err
			}
			if n == 0 {
				return out, nil
			}
			if n > int64(len(r.b)-r.i) {
				return nil, verr(path, "%v: map block of %d entries exceeds the bytes left", errTruncated, n)
			}
			for range n {
				k, err := r.bytes(path)
				if err != nil {
					return nil, err
				}
				v, err := r.read(vs, path)
				if err != nil {
					return nil, err
				}
				out[string(k)] = v
			}
		}
	case avro.Record:
		rec := s.(*avro.RecordSchema)
		out := make(map[string]any, len(rec.Fields()))
		for _, f := range rec.Fields() {
			p := join(path, f.Name())
			v, err := r.read(f.Type(), p)
			if err != nil {
				return nil, err
			}
			out[f.Name()] = v
		}
		return out, nil
	case avro.Union:
		types := s.(*avro.UnionSchema).Types()
		i, err := r.long(path)
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= int64(len(types)) {
			return nil, verr(path, "union branch %d outside the %d branches", i, len(types))
		}
		return r.read(types[i], path)
	case avro.Ref:
		return r.read(s.(*avro.RefSchema).Schema(), path)
	}
	return nil, verr(path, "unsupported Avro type %s", s.Type())
}

// maxNullItems bounds an array of nulls: its items take no bytes, so the
// record's length does not bound their count, and a forged count would
// keep a reader busy for ever.
const maxNullItems = 1 << 16

func (r *reader) blockCount(path string) (int64, error) {
	n, err := r.long(path)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		// A negative count is followed by the block's size in bytes.
		if _, err := r.long(path); err != nil {
			return 0, err
		}
		n = -n
		if n < 0 {
			return 0, verr(path, "block count overflow")
		}
	}
	return n, nil
}

func isLogical(s avro.Schema, t avro.LogicalType) bool {
	l, ok := s.(avro.LogicalTypeSchema)
	return ok && l.Logical() != nil && l.Logical().Type() == t
}

type decimal struct{ precision, scale int }

func decimalOf(s avro.Schema) (decimal, bool) {
	l, ok := s.(avro.LogicalTypeSchema)
	if !ok || l.Logical() == nil || l.Logical().Type() != avro.Decimal {
		return decimal{}, false
	}
	d := l.Logical().(*avro.DecimalLogicalSchema)
	return decimal{d.Precision(), d.Scale()}, true
}

func (d decimal) rat(b []byte, path string) (*big.Rat, error) {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	if tooManyDigits(n, d.precision) {
		return nil, invalid(path, "decimal has more than %d digits", d.precision)
	}
	return new(big.Rat).SetFrac(n, pow10(d.scale)), nil
}

func pow10(n int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }

// unscaled returns r × 10^scale as an integer, or an error when r has more
// decimals than the scale allows.
func (d decimal) unscaled(r *big.Rat, path string) (*big.Int, error) {
	x := new(big.Rat).Mul(r, new(big.Rat).SetInt(pow10(d.scale)))
	if !x.IsInt() {
		return nil, verr(path, "decimal has more than %d decimal places", d.scale)
	}
	n := x.Num()
	if tooManyDigits(n, d.precision) {
		return nil, verr(path, "decimal has more than %d digits", d.precision)
	}
	return n, nil
}

// tooManyDigits reports whether |n| has more than p decimal digits, without
// formatting n: a hostile record can carry a megabyte-long number, which
// takes about a second to format. |n| < 10^p < 2^(4p).
func tooManyDigits(n *big.Int, p int) bool {
	if n.BitLen() > 4*p {
		return true
	}
	return new(big.Int).Abs(n).Cmp(pow10(p)) >= 0
}

// TwosComplement encodes n big-endian in the fewest bytes, as Avro
// decimals are written.
func TwosComplement(n *big.Int) []byte {
	if n.Sign() >= 0 {
		b := n.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -n fits in k bytes when 2^(8k-1) >= |n|.
	k := (new(big.Int).Sub(new(big.Int).Neg(n), big.NewInt(1)).BitLen())/8 + 1
	m := new(big.Int).Add(n, new(big.Int).Lsh(big.NewInt(1), uint(k)*8))
	b := m.Bytes()
	for len(b) < k {
		b = append([]byte{0xff}, b...)
	}
	return b
}
