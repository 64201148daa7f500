package codec

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hamba/avro/v2"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/schema"
)

// A program checks the Avro binary body of one schema and builds its
// Layout (layout.go). It is the generic reader (binary.go) with everything
// that depends only on the schema worked out once, when the Decoder is
// built, instead of once per value: field names and error paths, logical
// types, enum symbols, decimal scales. It also extracts the decision
// context while it reads, calling the extractor with the value of each
// annotated leaf in document order, so an event is walked once. Tests hold
// it to the generic reader: the same values at every span, the same
// contexts and the same errors.
type program struct {
	root  *pnode
	spans atomic.Int32 // the spans of the last Layout built: the next one's capacity
}

type pkind uint8

const (
	pNull pkind = iota
	pBool
	pInt
	pDate
	pLong
	pTimestampMillis
	pTimestampMicros
	pFloat
	pDouble
	pString
	pBytes
	pFixed
	pDecimalBytes
	pDecimalFixed
	pEnum
	pArray
	pMap
	pRecord
	pUnion
)

// pnode is one compiled schema node at one path.
type pnode struct {
	kind     pkind
	path     string // for errors: the dotted field path
	size     int    // fixed size
	dec      *decimalPlan
	symbols  []string // enum symbols
	boxed    []any    // the symbols boxed once, not once per value
	enumName string   // enum full name, for errors
	items    *pnode   // array items, map values
	fields   []pfield // record fields in schema order
	branches []*pnode // union branches
}

type pfield struct {
	name string
	node *pnode
	// ann is the catalogue entry of an annotated leaf (a context or a
	// role), handed to the extractor with the decoded value; nil otherwise.
	ann *gateway.Field
}

// decimalPlan holds a decimal's powers of ten, computed once.
type decimalPlan struct {
	decimal
	denom *big.Int // 10^scale
	limit *big.Int // 10^precision
}

// maxProgramDepth bounds schema nesting; deeper (or recursive) schemas are
// decoded by the generic reader.
const maxProgramDepth = 64

// compile builds the program of s, or returns an error when s uses
// something the program does not handle; the generic reader then decodes s.
func compile(s *schema.Schema) (*program, error) {
	c := compiler{s: s}
	root, err := c.node(s.Avro, "", 0)
	if err != nil {
		return nil, err
	}
	return &program{root: root}, nil
}

type compiler struct {
	s *schema.Schema
}

func (c *compiler) node(s avro.Schema, path string, depth int) (*pnode, error) {
	if depth > maxProgramDepth {
		return nil, fmt.Errorf("schema %s nests deeper than %d levels at %s", c.s.Name, maxProgramDepth, path)
	}
	n := &pnode{path: path}
	switch s.Type() {
	case avro.Null:
		n.kind = pNull
	case avro.Boolean:
		n.kind = pBool
	case avro.Int:
		n.kind = pInt
		if isLogical(s, avro.Date) {
			n.kind = pDate
		}
	case avro.Long:
		n.kind = pLong
		switch {
		case isLogical(s, avro.TimestampMillis):
			n.kind = pTimestampMillis
		case isLogical(s, avro.TimestampMicros):
			n.kind = pTimestampMicros
		}
	case avro.Float:
		n.kind = pFloat
	case avro.Double:
		n.kind = pDouble
	case avro.String:
		n.kind = pString
	case avro.Bytes:
		n.kind = pBytes
		if d, ok := decimalOf(s); ok {
			n.kind, n.dec = pDecimalBytes, plan(d)
		}
	case avro.Fixed:
		n.kind = pFixed
		n.size = s.(*avro.FixedSchema).Size()
		if d, ok := decimalOf(s); ok {
			n.kind, n.dec = pDecimalFixed, plan(d)
		}
	case avro.Enum:
		es := s.(*avro.EnumSchema)
		n.kind, n.symbols, n.enumName = pEnum, es.Symbols(), es.FullName()
		n.boxed = make([]any, len(n.symbols))
		for i, s := range n.symbols {
			n.boxed[i] = s
		}
	case avro.Array:
		n.kind = pArray
		items, err := c.node(s.(*avro.ArraySchema).Items(), path, depth+1)
		if err != nil {
			return nil, err
		}
		n.items = items
	case avro.Map:
		n.kind = pMap
		vs, err := c.node(s.(*avro.MapSchema).Values(), path, depth+1)
		if err != nil {
			return nil, err
		}
		n.items = vs
	case avro.Record:
		n.kind = pRecord
		rec := s.(*avro.RecordSchema)
		n.fields = make([]pfield, len(rec.Fields()))
		for i, f := range rec.Fields() {
			p := join(path, f.Name())
			fn, err := c.node(f.Type(), p, depth+1)
			if err != nil {
				return nil, err
			}
			n.fields[i] = pfield{name: f.Name(), node: fn}
			if cf, ok := c.s.Field(p); ok && cf.Leaf && (cf.Context != "" || cf.Role != "") {
				n.fields[i].ann = &cf
			}
		}
	case avro.Union:
		n.kind = pUnion
		types := s.(*avro.UnionSchema).Types()
		n.branches = make([]*pnode, len(types))
		for i, t := range types {
			b, err := c.node(t, path, depth+1)
			if err != nil {
				return nil, err
			}
			n.branches[i] = b
		}
	case avro.Ref:
		return c.node(s.(*avro.RefSchema).Schema(), path, depth+1)
	default:
		return nil, fmt.Errorf("schema %s: unsupported Avro type %s at %s", c.s.Name, s.Type(), path)
	}
	return n, nil
}

func plan(d decimal) *decimalPlan {
	return &decimalPlan{decimal: d, denom: pow10(d.scale), limit: pow10(d.precision)}
}

// preader is the state of one program run.
type preader struct {
	reader
	// str is the body as one string: string values are slices of it. When
	// it is empty, each string value is a copy of its own bytes (the
	// layout scan decodes only the few annotated leaves of a record, for
	// which a copy of the whole body would be most of what decoding
	// allocates).
	str string
	x   *extractor
}

// text is the string of the body's bytes from start to the reader's
// position.
func (r *preader) text(start int) string {
	if r.str == "" {
		return string(r.b[start:r.i])
	}
	return r.str[start:r.i]
}

func (r *preader) record(n *pnode) (map[string]any, error) {
	out := make(map[string]any, len(n.fields))
	for i := range n.fields {
		f := &n.fields[i]
		v, err := r.value(f.node)
		if err != nil {
			return nil, err
		}
		out[f.name] = v
		if f.ann != nil && r.x != nil {
			r.x.leaf(f.ann, v)
		}
	}
	return out, nil
}

// value decodes one value of n; it mirrors reader.read.
func (r *preader) value(n *pnode) (any, error) {
	switch n.kind {
	case pNull:
		return nil, nil
	case pBool:
		b, err := r.take(n.path, 1)
		if err != nil {
			return nil, err
		}
		if b[0] > 1 {
			return nil, verr(n.path, "expected boolean byte 0 or 1")
		}
		return b[0] == 1, nil
	case pInt, pDate:
		v, err := r.long(n.path)
		if err != nil {
			return nil, err
		}
		if v < math.MinInt32 || v > math.MaxInt32 {
			return nil, verr(n.path, "int out of 32-bit range")
		}
		if n.kind == pDate {
			t := time.Unix(v*86400, 0).UTC()
			if t.Before(minTime) || !t.Before(maxTime) {
				return nil, invalid(n.path, "date out of range 1900-01-01..2200-12-31")
			}
			return t, nil
		}
		return int(v), nil
	case pLong:
		v, err := r.long(n.path)
		if err != nil {
			return nil, err
		}
		return v, nil
	case pTimestampMillis, pTimestampMicros:
		v, err := r.long(n.path)
		if err != nil {
			return nil, err
		}
		t, err := timestampOf(n.path, v, n.kind == pTimestampMicros)
		if err != nil {
			return nil, err
		}
		return t, nil
	case pFloat:
		b, err := r.take(n.path, 4)
		if err != nil {
			return nil, err
		}
		return math.Float32frombits(binary.LittleEndian.Uint32(b)), nil
	case pDouble:
		b, err := r.take(n.path, 8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	case pString:
		l, err := r.long(n.path)
		if err != nil {
			return nil, err
		}
		start := r.i
		b, err := r.take(n.path, l)
		if err != nil {
			return nil, err
		}
		if !utf8.Valid(b) {
			return nil, invalid(n.path, "string is not valid UTF-8")
		}
		return r.text(start), nil
	case pBytes:
		b, err := r.bytes(n.path)
		if err != nil {
			return nil, err
		}
		return append([]byte(nil), b...), nil
	case pDecimalBytes:
		b, err := r.bytes(n.path)
		if err != nil {
			return nil, err
		}
		return n.dec.rat(b, n.path)
	case pFixed, pDecimalFixed:
		b, err := r.take(n.path, int64(n.size))
		if err != nil {
			return nil, err
		}
		if n.kind == pDecimalFixed {
			return n.dec.rat(b, n.path)
		}
		return append([]byte(nil), b...), nil
	case pEnum:
		i, err := r.long(n.path)
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= int64(len(n.symbols)) {
			return nil, verr(n.path, "enum index %d outside the %d symbols of %s", i, len(n.symbols), n.enumName)
		}
		return n.boxed[i], nil
	case pArray:
		return r.array(n)
	case pMap:
		return r.mapValue(n)
	case pRecord:
		return r.record(n)
	case pUnion:
		i, err := r.long(n.path)
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= int64(len(n.branches)) {
			return nil, verr(n.path, "union branch %d outside the %d branches", i, len(n.branches))
		}
		return r.value(n.branches[i])
	}
	return nil, verr(n.path, "unsupported Avro type")
}

func (r *preader) array(n *pnode) ([]any, error) {
	var out []any
	for {
		cnt, err := r.blockCount(n.path)
		if err != nil {
			return nil, err
		}
		if cnt == 0 {
			if out == nil {
				out = []any{}
			}
			return out, nil
		}
		if n.items.kind != pNull && cnt > int64(len(r.b)-r.i) {
			return nil, verr(n.path, "%v: array block of %d items exceeds the bytes left", errTruncated, cnt)
		}
		if n.items.kind == pNull && cnt > maxNullItems-int64(len(out)) {
			return nil, verr(n.path, "array of more than %d null items", maxNullItems)
		}
		if out == nil && n.items.kind != pNull {
			out = make([]any, 0, cnt)
		}
		for range cnt {
			v, err := r.value(n.items)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
	}
}

func (r *preader) mapValue(n *pnode) (map[string]any, error) {
	out := map[string]any{}
	for {
		cnt, err := r.blockCount(n.path)
		if err != nil {
			return nil, err
		}
		if cnt == 0 {
			return out, nil
		}
		if cnt > int64(len(r.b)-r.i) {
			return nil, verr(n.path, "%v: map block of %d entries exceeds the bytes left", errTruncated, cnt)
		}
		for range cnt {
			l, err := r.long(n.path)
			if err != nil {
				return nil, err
			}
			start := r.i
			if _, err := r.take(n.path, l); err != nil {
				return nil, err
			}
			k := r.text(start)
			v, err := r.value(n.items)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
	}
}

// smallUnscaled is the big-endian two's complement b (at most 8 bytes).
func smallUnscaled(b []byte) int64 {
	var u uint64
	for _, c := range b {
		u = u<<8 | uint64(c)
	}
	if len(b) > 0 && b[0]&0x80 != 0 && len(b) < 8 {
		u |= ^uint64(0) << (8 * uint(len(b)))
	}
	return int64(u)
}

// rat is decimal.rat with the powers of ten computed once.
func (d *decimalPlan) rat(b []byte, path string) (*big.Rat, error) {
	if len(b) <= 8 {
		// The common case: the unscaled value fits an int64.
		n := smallUnscaled(b)
		if d.precision < 19 && (n >= pow10s[d.precision] || n <= -pow10s[d.precision]) {
			return nil, invalid(path, "decimal has more than %d digits", d.precision)
		}
		if d.precision >= 19 || d.scale > 18 {
			return d.ratBig(b, path)
		}
		return new(big.Rat).SetFrac64(n, pow10s[d.scale]), nil
	}
	return d.ratBig(b, path)
}

func (d *decimalPlan) ratBig(b []byte, path string) (*big.Rat, error) {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	if n.BitLen() > 4*d.precision || new(big.Int).Abs(n).Cmp(d.limit) >= 0 {
		return nil, invalid(path, "decimal has more than %d digits", d.precision)
	}
	return new(big.Rat).SetFrac(n, d.denom), nil
}

var pow10s = [19]int64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18}
