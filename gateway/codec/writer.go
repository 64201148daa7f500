package codec

import (
	"encoding/binary"
	"math"
	"math/big"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/hamba/avro/v2"
)

// AppendLong appends the Avro (zig-zag varint) encoding of an int or long.
func AppendLong(dst []byte, v int64) []byte {
	return binary.AppendUvarint(dst, uint64((v<<1)^(v>>63)))
}

func appendBytes(dst, b []byte) []byte {
	return append(AppendLong(dst, int64(len(b))), b...)
}

// write appends the Avro binary encoding of the normalised value v.
func write(dst []byte, s avro.Schema, v any, path string) ([]byte, error) {
	switch s.Type() {
	case avro.Null:
		if v != nil {
			return nil, verr(path, "expected null, got %s", TypeName(v))
		}
		return dst, nil
	case avro.Boolean:
		b, ok := v.(bool)
		if !ok {
			return nil, verr(path, "expected boolean, got %s", TypeName(v))
		}
		if b {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case avro.Int:
		if isLogical(s, avro.Date) {
			t, ok := v.(time.Time)
			if !ok {
				return nil, verr(path, "expected date (time.Time), got %s", TypeName(v))
			}
			if t.Before(minTime) || !t.Before(maxTime) {
				return nil, verr(path, "date out of range 1900-01-01..2200-12-31")
			}
			days := int64(math.Floor(float64(t.Unix()) / 86400))
			return AppendLong(dst, days), nil
		}
		n, ok := asInt64(v)
		if !ok {
			return nil, verr(path, "expected int, got %s", TypeName(v))
		}
		if n < math.MinInt32 || n > math.MaxInt32 {
			return nil, verr(path, "int out of 32-bit range")
		}
		return AppendLong(dst, n), nil
	case avro.Long:
		if isLogical(s, avro.TimestampMillis) || isLogical(s, avro.TimestampMicros) {
			t, ok := v.(time.Time)
			if !ok {
				return nil, verr(path, "expected timestamp (time.Time), got %s", TypeName(v))
			}
			if t.Before(minTime) || !t.Before(maxTime) {
				return nil, verr(path, "timestamp out of range 1900..2200")
			}
			if isLogical(s, avro.TimestampMicros) {
				return AppendLong(dst, t.UnixMicro()), nil
			}
			return AppendLong(dst, t.UnixMilli()), nil
		}
		n, ok := asInt64(v)
		if !ok {
			return nil, verr(path, "expected long, got %s", TypeName(v))
		}
		return AppendLong(dst, n), nil
	case avro.Float:
		var f float32
		switch x := v.(type) {
		case float32:
			f = x
		case float64:
			f = float32(x)
		default:
			return nil, verr(path, "expected float, got %s", TypeName(v))
		}
		return binary.LittleEndian.AppendUint32(dst, math.Float32bits(f)), nil
	case avro.Double:
		var f float64
		switch x := v.(type) {
		case float64:
			f = x
		case float32:
			f = float64(x)
		default:
			return nil, verr(path, "expected double, got %s", TypeName(v))
		}
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f)), nil
	case avro.String:
		str, ok := v.(string)
		if !ok {
			return nil, verr(path, "expected string, got %s", TypeName(v))
		}
		if !utf8.ValidString(str) {
			return nil, verr(path, "string is not valid UTF-8")
		}
		dst = AppendLong(dst, int64(len(str)))
		return append(dst, str...), nil
	case avro.Bytes, avro.Fixed:
		var b []byte
		if d, ok := decimalOf(s); ok {
			r, ok := v.(*big.Rat)
			if !ok || r == nil {
				return nil, verr(path, "expected decimal (*big.Rat), got %s", TypeName(v))
			}
			n, err := d.unscaled(r, path)
			if err != nil {
				return nil, err
			}
			b = TwosComplement(n)
		} else {
			x, ok := v.([]byte)
			if !ok {
				return nil, verr(path, "expected bytes, got %s", TypeName(v))
			}
			b = x
		}
		if fs, ok := s.(*avro.FixedSchema); ok {
			if len(b) > fs.Size() {
				return nil, verr(path, "value needs %d bytes, fixed size is %d", len(b), fs.Size())
			}
			pad := byte(0)
			if len(b) > 0 && b[0]&0x80 != 0 && isDecimal(s) {
				pad = 0xff
			}
			for range fs.Size() - len(b) {
				dst = append(dst, pad)
			}
			return append(dst, b...), nil
		}
		return appendBytes(dst, b), nil
	case avro.Enum:
		es := s.(*avro.EnumSchema)
		str, ok := v.(string)
		if !ok {
			return nil, verr(path, "expected enum symbol of %s, got %s", es.FullName(), TypeName(v))
		}
		i := slices.Index(es.Symbols(), str)
		if i < 0 {
			return nil, verr(path, "not a symbol of enum %s", es.FullName())
		}
		return AppendLong(dst, int64(i)), nil
	case avro.Array:
		items := s.(*avro.ArraySchema).Items()
		arr, ok := v.([]any)
		if !ok {
			if v == nil {
				return append(dst, 0), nil
			}
			return nil, verr(path, "expected array, got %s", TypeName(v))
		}
		if len(arr) > 0 {
			dst = AppendLong(dst, int64(len(arr)))
			for _, x := range arr {
				var err error
				if dst, err = write(dst, items, x, path); err != nil {
					return nil, err
				}
			}
		}
		return append(dst, 0), nil
	case avro.Map:
		vs := s.(*avro.MapSchema).Values()
		m, ok := v.(map[string]any)
		if !ok {
			return nil, verr(path, "expected map, got %s", TypeName(v))
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if len(keys) > 0 {
			dst = AppendLong(dst, int64(len(keys)))
			for _, k := range keys {
				dst = appendBytes(dst, []byte(k))
				var err error
				if dst, err = write(dst, vs, m[k], path); err != nil {
					return nil, err
				}
			}
		}
		return append(dst, 0), nil
	case avro.Record:
		rec := s.(*avro.RecordSchema)
		m, ok := v.(map[string]any)
		if !ok {
			return nil, verr(path, "expected record %s, got %s", rec.FullName(), TypeName(v))
		}
		for _, f := range rec.Fields() {
			x, present := m[f.Name()]
			p := join(path, f.Name())
			if !present {
				if !f.HasDefault() {
					return nil, verr(p, "missing required field")
				}
				x = normaliseDefault(f.Default())
			}
			var err error
			if dst, err = write(dst, f.Type(), x, p); err != nil {
				return nil, err
			}
		}
		return dst, nil
	case avro.Union:
		// Only ["null", T] unions are supported (the schema lint enforces
		// it): the normalised value is T's value or nil.
		types := s.(*avro.UnionSchema).Types()
		idx := -1
		for i, t := range types {
			if (t.Type() == avro.Null) == (v == nil) {
				idx = i
				break
			}
		}
		if idx < 0 {
			return nil, verr(path, "expected a value of the union, got %s", TypeName(v))
		}
		dst = AppendLong(dst, int64(idx))
		return write(dst, types[idx], v, path)
	case avro.Ref:
		return write(dst, s.(*avro.RefSchema).Schema(), v, path)
	}
	return nil, verr(path, "unsupported Avro type %s", s.Type())
}

func isDecimal(s avro.Schema) bool { _, ok := decimalOf(s); return ok }

// normaliseDefault maps hamba's parsed default to the normalised form.
func normaliseDefault(d any) any {
	if d == avro.NoDefault {
		return nil
	}
	switch x := d.(type) {
	case nil:
		return nil
	case float64:
		return x
	}
	return d
}

func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}

// TypeName describes the type of a normalised value without its value,
// for errors that must not quote personal data.
func TypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case int, int32, int64:
		return "integer"
	case float32, float64:
		return "number"
	case []byte:
		return "bytes"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case time.Time:
		return "time"
	case *big.Rat:
		return "decimal"
	}
	return "unsupported type"
}
