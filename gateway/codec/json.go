package codec

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/dgwproject/dgw/gateway/schema"
)

// FromJSON converts plain JSON (Avro field names, no union wrapping) into
// the normalised form of s: dates as "YYYY-MM-DD", timestamps as RFC 3339
// strings or integer milliseconds, decimals as strings ("1234.50") or
// numbers, bytes as base64, enums as symbols, null for absent optionals.
// Errors name the field path and the expected type, never the value.
func FromJSON(s *schema.Schema, data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%s: not valid JSON: %w", s.EventType, jsonSyntax(err))
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: more than one JSON value", s.EventType)
	}
	v, err := fromJSON(s.Avro, raw, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.EventType, err)
	}
	return v.(map[string]any), nil
}

// jsonSyntax strips quoted input from JSON errors.
func jsonSyntax(err error) error {
	if se, ok := err.(*json.SyntaxError); ok {
		return fmt.Errorf("syntax error at byte %d", se.Offset)
	}
	if ue, ok := err.(*json.UnmarshalTypeError); ok {
		return fmt.Errorf("unexpected %s at byte %d", ue.Value, ue.Offset)
	}
	return err
}

func jsonKind(x any) string {
	switch x.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

func expected(path, want string, got any) error {
	return verr(path, "expected %s, got %s", want, jsonKind(got))
}

func fromJSON(s avro.Schema, x any, path string) (any, error) {
	switch s.Type() {
	case avro.Null:
		if x != nil {
			return nil, expected(path, "null", x)
		}
		return nil, nil
	case avro.Boolean:
		b, ok := x.(bool)
		if !ok {
			return nil, expected(path, "boolean", x)
		}
		return b, nil
	case avro.Int:
		if isLogical(s, avro.Date) {
			str, ok := x.(string)
			if !ok {
				return nil, expected(path, `date "YYYY-MM-DD"`, x)
			}
			t, err := time.Parse(time.DateOnly, str)
			if err != nil {
				return nil, verr(path, `expected date "YYYY-MM-DD"`)
			}
			if t.Before(minTime) || !t.Before(maxTime) {
				return nil, verr(path, "date out of range 1900-01-01..2200-12-31")
			}
			return t, nil
		}
		n, err := jsonInt(x, path, math.MinInt32, math.MaxInt32, "int")
		return int(n), err
	case avro.Long:
		if isLogical(s, avro.TimestampMillis) || isLogical(s, avro.TimestampMicros) {
			var t time.Time
			switch y := x.(type) {
			case string:
				var err error
				if t, err = time.Parse(time.RFC3339Nano, y); err != nil {
					return nil, verr(path, "expected timestamp as RFC 3339 text (2026-11-01T10:00:00Z) or integer milliseconds")
				}
			case json.Number:
				ms, err := y.Int64()
				if err != nil {
					return nil, verr(path, "expected timestamp as integer milliseconds")
				}
				t = time.UnixMilli(ms)
			default:
				return nil, expected(path, "timestamp (RFC 3339 text or integer milliseconds)", x)
			}
			t = t.UTC()
			if t.Before(minTime) || !t.Before(maxTime) {
				return nil, verr(path, "timestamp out of range 1900..2200")
			}
			return t, nil
		}
		return jsonInt(x, path, math.MinInt64, math.MaxInt64, "long")
	case avro.Float, avro.Double:
		n, ok := x.(json.Number)
		if !ok {
			return nil, expected(path, "number", x)
		}
		f, err := n.Float64()
		if err != nil {
			return nil, verr(path, "expected a finite number")
		}
		if s.Type() == avro.Float {
			return float32(f), nil
		}
		return f, nil
	case avro.String:
		str, ok := x.(string)
		if !ok {
			return nil, expected(path, "string", x)
		}
		return str, nil
	case avro.Bytes, avro.Fixed:
		if d, ok := decimalOf(s); ok {
			var text string
			switch y := x.(type) {
			case string:
				text = y
			case json.Number:
				text = y.String()
			default:
				return nil, expected(path, `decimal as text ("1234.50") or number`, x)
			}
			// big.Rat also reads fractions, exponents, 0x/0b/0o prefixes and
			// digit separators ("0x1p999999999" is a 10^9-bit number):
			// only plain digits are a decimal here.
			if !plainDecimal(text) {
				return nil, verr(path, `expected decimal as plain digits ("1234.50")`)
			}
			r, ok := new(big.Rat).SetString(text)
			if !ok {
				return nil, verr(path, `expected decimal as plain digits ("1234.50")`)
			}
			if _, err := d.unscaled(r, path); err != nil {
				return nil, err
			}
			return r, nil
		}
		str, ok := x.(string)
		if !ok {
			return nil, expected(path, "base64 string", x)
		}
		b, err := base64.StdEncoding.DecodeString(str)
		if err != nil {
			return nil, verr(path, "expected base64 string")
		}
		return b, nil
	case avro.Enum:
		es := s.(*avro.EnumSchema)
		str, ok := x.(string)
		if !ok {
			return nil, expected(path, "one of "+strings.Join(es.Symbols(), ", "), x)
		}
		for _, sym := range es.Symbols() {
			if sym == str {
				return str, nil
			}
		}
		return nil, verr(path, "expected one of %s", strings.Join(es.Symbols(), ", "))
	case avro.Array:
		arr, ok := x.([]any)
		if !ok {
			return nil, expected(path, "array", x)
		}
		items := s.(*avro.ArraySchema).Items()
		out := make([]any, len(arr))
		for i, e := range arr {
			v, err := fromJSON(items, e, path+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case avro.Map:
		m, ok := x.(map[string]any)
		if !ok {
			return nil, expected(path, "object", x)
		}
		vs := s.(*avro.MapSchema).Values()
		out := make(map[string]any, len(m))
		for k, e := range m {
			v, err := fromJSON(vs, e, path)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	case avro.Record:
		rec := s.(*avro.RecordSchema)
		m, ok := x.(map[string]any)
		if !ok {
			return nil, expected(path, "object (record "+rec.Name()+")", x)
		}
		out := make(map[string]any, len(rec.Fields()))
		known := make(map[string]bool, len(rec.Fields()))
		for _, f := range rec.Fields() {
			known[f.Name()] = true
			p := join(path, f.Name())
			e, present := m[f.Name()]
			if !present {
				if !f.HasDefault() {
					return nil, verr(p, "missing required field")
				}
				out[f.Name()] = normaliseDefault(f.Default())
				continue
			}
			v, err := fromJSON(f.Type(), e, p)
			if err != nil {
				return nil, err
			}
			out[f.Name()] = v
		}
		for k := range m {
			if !known[k] {
				return nil, verr(join(path, k), "unknown field (record %s has no such field)", rec.Name())
			}
		}
		return out, nil
	case avro.Union:
		types := s.(*avro.UnionSchema).Types()
		for _, t := range types {
			if (t.Type() == avro.Null) == (x == nil) {
				return fromJSON(t, x, path)
			}
		}
		return nil, expected(path, "a value of the union", x)
	case avro.Ref:
		return fromJSON(s.(*avro.RefSchema).Schema(), x, path)
	}
	return nil, verr(path, "unsupported Avro type %s", s.Type())
}

// plainDecimal reports whether text is an optionally signed number in
// plain decimal digits with an optional fraction: "-1234.50", "7".
func plainDecimal(text string) bool {
	if text != "" && (text[0] == '-' || text[0] == '+') {
		text = text[1:]
	}
	whole, frac, dot := strings.Cut(text, ".")
	return allDigits(whole) && (!dot || allDigits(frac))
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func jsonInt(x any, path string, lo, hi int64, name string) (int64, error) {
	n, ok := x.(json.Number)
	if !ok {
		return 0, expected(path, name, x)
	}
	i, err := n.Int64()
	if err != nil || i < lo || i > hi {
		return 0, verr(path, "expected %s (an integer in range)", name)
	}
	return i, nil
}

// ToJSON renders a normalised value as plain JSON in schema field order, the
// inverse of FromJSON.
func ToJSON(s *schema.Schema, v map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	if err := toJSON(&buf, s.Avro, v, ""); err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	return buf.Bytes(), nil
}

func toJSON(buf *bytes.Buffer, s avro.Schema, v any, path string) error {
	if v == nil {
		buf.WriteString("null")
		return nil
	}
	quote := func(str string) {
		b, _ := json.Marshal(str)
		buf.Write(b)
	}
	switch s.Type() {
	case avro.Union:
		for _, t := range s.(*avro.UnionSchema).Types() {
			if t.Type() != avro.Null {
				return toJSON(buf, t, v, path)
			}
		}
	case avro.Ref:
		return toJSON(buf, s.(*avro.RefSchema).Schema(), v, path)
	case avro.Record:
		m, ok := v.(map[string]any)
		if !ok {
			return verr(path, "expected record, got %s", TypeName(v))
		}
		buf.WriteByte('{')
		for i, f := range s.(*avro.RecordSchema).Fields() {
			if i > 0 {
				buf.WriteByte(',')
			}
			quote(f.Name())
			buf.WriteByte(':')
			if err := toJSON(buf, f.Type(), m[f.Name()], join(path, f.Name())); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
		return nil
	case avro.Array:
		arr, ok := v.([]any)
		if !ok {
			return verr(path, "expected array, got %s", TypeName(v))
		}
		buf.WriteByte('[')
		for i, e := range arr {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := toJSON(buf, s.(*avro.ArraySchema).Items(), e, path); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	}
	switch x := v.(type) {
	case time.Time:
		if isLogical(s, avro.Date) {
			quote(x.UTC().Format(time.DateOnly))
		} else {
			quote(x.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
		}
	case *big.Rat:
		scale := 2
		if d, ok := decimalOf(s); ok {
			scale = d.scale
		}
		quote(x.FloatString(scale))
	case []byte:
		quote(base64.StdEncoding.EncodeToString(x))
	case string:
		quote(x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return verr(path, "cannot render %s as JSON", TypeName(v))
		}
		buf.Write(b)
	}
	return nil
}
