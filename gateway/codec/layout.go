package codec

import (
	"math"
	"unicode/utf8"

	"github.com/hamba/avro/v2"
)

// A Layout locates the values of one decoded record in its Avro body. The
// Decoder builds it instead of the normalised value when it has a program
// for the schema: one pass checks every value as the value decoder would
// (the same errors), feeds the annotated leaves to the decision context,
// and notes where each field's value lies. A Redactor then writes a
// recipient's record from the body: a kept value is copied as it is
// (it was checked against the same type), only the values it transforms
// are decoded, and a field it withholds is not looked at. This is what
// makes an event cost one pass over its bytes however many recipients it
// has, with no map or boxed value per field.
//
// Every record value of the event (the top-level record, nested records,
// the elements of arrays of records) has its fields at consecutive indexes
// of Spans, in schema order; the top-level record's fields start at 0.
type Layout struct {
	Body  []byte // the Avro binary body (after the single-object header)
	Spans []Span
	// Items holds, for each array whose items are records (or null or a
	// record), the index in Spans of each element's first field, -1 for a
	// null element; the elements of one array are consecutive.
	Items []int32
}

// Span is where one field's value lies in Layout.Body.
type Span struct {
	// Start and End delimit the value's encoding, after a union's branch
	// index: the bytes a field of the branch's type holds.
	Start, End int32
	// Sub is, for a record, the index in Spans of its first field; for an
	// array of records, the index in Items of its first element.
	Sub int32
	// N is -1 when the value is null; for an array, its number of elements.
	N int32
}

// Null reports whether the value is null.
func (s Span) Null() bool { return s.N < 0 }

// Bytes returns the value's encoding: for a kept value, the bytes a field of
// the same type holds.
func (l *Layout) Bytes(s Span) []byte { return l.Body[s.Start:s.End] }

// maxLayoutBody is the largest body a Layout can index (its offsets are
// int32); larger ones are decoded into values.
const maxLayoutBody = math.MaxInt32

// DecodeSpan decodes the value of span s, whose type is t (the branch type
// for a union field), into the normalised form: for the values a Redactor
// transforms rather than copies.
func (l *Layout) DecodeSpan(t avro.Schema, s Span) (any, error) {
	if s.Null() {
		return nil, nil
	}
	r := reader{b: l.Body[s.Start:s.End]}
	v, err := r.read(t, "")
	if err != nil {
		return nil, err
	}
	if r.i != len(r.b) {
		return nil, &trailingError{len(r.b) - r.i}
	}
	return v, nil
}

// scanner is the state of one program run that builds a Layout.
type scanner struct {
	r   *preader
	lay *Layout
	tmp []int32 // element indexes of the arrays being scanned, a stack
}

// scan checks body against the program and fills lay, feeding annotated
// leaves to x when x is not nil.
func (p *program) scan(body []byte, x *extractor, lay *Layout) error {
	r := preader{reader: reader{b: body}, x: x}
	s := scanner{r: &r, lay: lay}
	lay.Body = body
	lay.Spans = make([]Span, 0, max(int(p.spans.Load()), 16))
	if _, err := s.record(p.root); err != nil {
		return err
	}
	p.spans.Store(int32(len(lay.Spans)))
	if r.i != len(body) {
		return &trailingError{len(body) - r.i}
	}
	return nil
}

// record scans the fields of one record value and returns the index of
// its first field in Spans.
func (s *scanner) record(n *pnode) (int32, error) {
	base := len(s.lay.Spans)
	s.lay.Spans = append(s.lay.Spans, make([]Span, len(n.fields))...)
	for i := range n.fields {
		f := &n.fields[i]
		sp, leaf, err := s.value(f.node)
		if err != nil {
			return 0, err
		}
		s.lay.Spans[base+i] = sp
		if f.ann != nil && s.r.x != nil {
			// The few annotated leaves are decoded, again, for the
			// decision context.
			var v any
			if !sp.Null() {
				at := s.r.i
				s.r.i = int(sp.Start)
				v, err = s.r.value(leaf)
				s.r.i = at
				if err != nil {
					return 0, err
				}
			}
			s.r.x.leaf(f.ann, v)
		}
	}
	return int32(base), nil
}

// value checks one value of n and returns where it lies and the node of
// its type (a union's branch).
func (s *scanner) value(n *pnode) (Span, *pnode, error) {
	r := s.r
	start := int32(r.i)
	switch n.kind {
	case pUnion:
		i, err := r.long(n.path)
		if err != nil {
			return Span{}, nil, err
		}
		if i < 0 || i >= int64(len(n.branches)) {
			return Span{}, nil, verr(n.path, "union branch %d outside the %d branches", i, len(n.branches))
		}
		b := n.branches[i]
		if b.kind == pNull {
			return Span{Start: int32(r.i), End: int32(r.i), N: -1}, b, nil
		}
		return s.value(b)
	case pNull:
		return Span{Start: start, End: start, N: -1}, n, nil
	case pRecord:
		sub, err := s.record(n)
		return Span{Start: start, End: int32(r.i), Sub: sub}, n, err
	case pArray:
		sp, err := s.array(n, start)
		return sp, n, err
	case pMap:
		err := s.mapValue(n)
		return Span{Start: start, End: int32(r.i)}, n, err
	}
	err := r.check(n)
	return Span{Start: start, End: int32(r.i)}, n, err
}

func (s *scanner) array(n *pnode, start int32) (Span, error) {
	r := s.r
	records := n.items.kind == pRecord || n.items.kind == pUnion && hasRecord(n.items)
	mark := len(s.tmp)
	count := 0
	for {
		cnt, err := r.blockCount(n.path)
		if err != nil {
			return Span{}, err
		}
		if cnt == 0 {
			break
		}
		if n.items.kind != pNull && cnt > int64(len(r.b)-r.i) {
			return Span{}, verr(n.path, "%v: array block of %d items exceeds the bytes left", errTruncated, cnt)
		}
		if n.items.kind == pNull && cnt > maxNullItems-int64(count) {
			return Span{}, verr(n.path, "array of more than %d null items", maxNullItems)
		}
		for range cnt {
			sp, _, err := s.value(n.items)
			if err != nil {
				return Span{}, err
			}
			if records {
				e := sp.Sub
				if sp.Null() {
					e = -1
				}
				s.tmp = append(s.tmp, e)
			}
			count++
		}
	}
	if count > math.MaxInt32 {
		return Span{}, verr(n.path, "array of %d items", count)
	}
	sp := Span{Start: start, End: int32(r.i), N: int32(count)}
	if records {
		// After the elements' own arrays, so that this array's elements
		// are consecutive.
		sp.Sub = int32(len(s.lay.Items))
		s.lay.Items = append(s.lay.Items, s.tmp[mark:]...)
		s.tmp = s.tmp[:mark]
	}
	return sp, nil
}

// hasRecord reports whether a union has a record branch.
func hasRecord(u *pnode) bool {
	for _, b := range u.branches {
		if b.kind == pRecord {
			return true
		}
	}
	return false
}

func (s *scanner) mapValue(n *pnode) error {
	r := s.r
	for {
		cnt, err := r.blockCount(n.path)
		if err != nil {
			return err
		}
		if cnt == 0 {
			return nil
		}
		if cnt > int64(len(r.b)-r.i) {
			return verr(n.path, "%v: map block of %d entries exceeds the bytes left", errTruncated, cnt)
		}
		for range cnt {
			l, err := r.long(n.path)
			if err != nil {
				return err
			}
			if _, err := r.take(n.path, l); err != nil {
				return err
			}
			if _, _, err := s.value(n.items); err != nil {
				return err
			}
		}
	}
}

// check reads one scalar value of n, with the checks of value, without
// building it.
func (r *preader) check(n *pnode) error {
	switch n.kind {
	case pBool:
		b, err := r.take(n.path, 1)
		if err != nil {
			return err
		}
		if b[0] > 1 {
			return verr(n.path, "expected boolean byte 0 or 1")
		}
		return nil
	case pInt, pDate:
		v, err := r.long(n.path)
		if err != nil {
			return err
		}
		if v < math.MinInt32 || v > math.MaxInt32 {
			return verr(n.path, "int out of 32-bit range")
		}
		if n.kind == pDate && (v < minDays || v >= maxDays) {
			return invalid(n.path, "date out of range 1900-01-01..2200-12-31")
		}
		return nil
	case pLong:
		_, err := r.long(n.path)
		return err
	case pTimestampMillis, pTimestampMicros:
		v, err := r.long(n.path)
		if err != nil {
			return err
		}
		_, err = timestampOf(n.path, v, n.kind == pTimestampMicros)
		return err
	case pFloat:
		_, err := r.take(n.path, 4)
		return err
	case pDouble:
		_, err := r.take(n.path, 8)
		return err
	case pString:
		b, err := r.bytes(n.path)
		if err != nil {
			return err
		}
		if !utf8.Valid(b) {
			return invalid(n.path, "string is not valid UTF-8")
		}
		return nil
	case pBytes:
		_, err := r.bytes(n.path)
		return err
	case pDecimalBytes:
		b, err := r.bytes(n.path)
		if err != nil {
			return err
		}
		return n.dec.check(b, n.path)
	case pFixed, pDecimalFixed:
		b, err := r.take(n.path, int64(n.size))
		if err != nil {
			return err
		}
		if n.kind == pDecimalFixed {
			return n.dec.check(b, n.path)
		}
		return nil
	case pEnum:
		i, err := r.long(n.path)
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(n.symbols)) {
			return verr(n.path, "enum index %d outside the %d symbols of %s", i, len(n.symbols), n.enumName)
		}
		return nil
	}
	return verr(n.path, "unsupported Avro type")
}

// The date range of value, in days since 1970-01-01.
var (
	minDays = minTime.Unix() / 86400
	maxDays = maxTime.Unix() / 86400
)

// check is rat's range check without building the number when the
// unscaled value fits an int64 (the common case).
func (d *decimalPlan) check(b []byte, path string) error {
	if len(b) <= 8 && d.precision < 19 {
		if n := smallUnscaled(b); n >= pow10s[d.precision] || n <= -pow10s[d.precision] {
			return invalid(path, "decimal has more than %d digits", d.precision)
		}
		return nil
	}
	_, err := d.rat(b, path)
	return err
}
