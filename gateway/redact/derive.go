package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hamba/avro/v2"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/schema"
)

// FormatCardSecurityCode is the format no contract scope may name, with any
// operator (PCI DSS 3.3.1: sensitive authentication data is never kept or
// passed on after authorisation).
const FormatCardSecurityCode = "card_security_code"

// RoleBirthDate marks the date field that generalise turns into an age band.
const RoleBirthDate = "birth_date"

// opCode is an operator as the compiled program handles it. opNone means
// "not released": absent from the decision, or drop.
type opCode uint8

const (
	opNone opCode = iota
	opKeep
	opMask
	opHash
	opGeneralise
)

func codeOf(op gateway.Operator) opCode {
	switch op {
	case gateway.OpKeep:
		return opKeep
	case gateway.OpMask:
		return opMask
	case gateway.OpHash:
		return opHash
	case gateway.OpGeneralise:
		return opGeneralise
	}
	return opNone
}

// opOrder lists operators in the order docs and annotations show them.
var opOrder = []gateway.Operator{gateway.OpKeep, gateway.OpGeneralise, gateway.OpMask, gateway.OpHash, gateway.OpDrop}

// scalar is the kind of a source leaf value, or of each element of an
// array-of-primitives leaf.
type scalar uint8

const (
	sString scalar = iota + 1
	sInt
	sLong
	sBool
	sFloat
	sDouble
	sBytes
	sEnum
	sDate
	sTimestampMillis
	sTimestampMicros
	sDecimal
)

var scalarNames = map[scalar]string{sString: "string", sInt: "int", sLong: "long", sBool: "boolean",
	sFloat: "float", sDouble: "double", sBytes: "bytes", sEnum: "enum", sDate: "date",
	sTimestampMillis: "timestamp", sTimestampMicros: "timestamp", sDecimal: "decimal"}

func (s scalar) String() string { return scalarNames[s] }

// generalisation is what generalise yields for a leaf.
type generalisation uint8

const (
	genNone    generalisation = iota
	genYear                   // date → int year
	genAgeBand                // birth date → string age band at the event time
	genDate                   // timestamp → date
)

// leaf is one scoped leaf field, compiled.
type leaf struct {
	path      string
	slot      int
	allowed   uint8 // bit per opCode
	kind      scalar
	format    string
	gen       generalisation
	array     bool // array of primitives: the operator applies per element
	itemsNull bool // array items are ["null", T]
	// src is the source's type (of the non-null branch); raw says a kept
	// value's source bytes are its derived encoding.
	src avro.Schema
	raw bool

	symbols map[string]int // enum symbol → index
	digits  int            // decimal precision
	scale   int            // decimal scale
	pow10   *big.Rat       // 10^scale
}

func (l *leaf) allows(c opCode) bool { return c != opNone && l.allowed&(1<<c) != 0 }

// node is one field of a derived record: a leaf, a nested record or an
// array of records. Records cover the leaf slots [lo, hi).
type node struct {
	name      string
	src       int    // the field's index in the source record
	path      string // for errors
	leaf      *leaf
	fields    []*node
	array     bool // array of records
	itemsNull bool
	lo, hi    int
}

// program projects events of one event schema to one recipient's derived
// schema. It is immutable after New, except for the size hint.
type program struct {
	recipient string
	eventType string
	source    *schema.Schema
	derived   *schema.Schema
	json      []byte
	root      *node
	leaves    []*leaf // by slot
	byPath    map[string]*leaf
	hashers   *sync.Pool // of *hasher; nil when the scope allows no hash
	sizeHint  atomic.Int64
}

func scopeError(recipient, eventType, path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if path == "" {
		return fmt.Errorf("recipient %s, event type %s: %s", recipient, eventType, msg)
	}
	return fmt.Errorf("recipient %s, event type %s, field %s: %s", recipient, eventType, path, msg)
}

// Namespace is the Avro namespace of a recipient's derived schemas:
// "dgw.recipient." and the id with every character that is not a letter,
// digit or '_' replaced by '_' (and '_' put before a leading digit).
func Namespace(recipientID string) string {
	var b strings.Builder
	for i, r := range recipientID {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_':
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return "dgw.recipient." + b.String()
}

// compile validates one (recipient, event type) scope against the event
// schema and builds the projection program and the derived schema.
func compile(r *gateway.Recipient, eventType string, src *schema.Schema, scope map[string][]gateway.Operator) (*program, error) {
	if len(scope) == 0 {
		return nil, scopeError(r.ID, eventType, "", "the scope names no field")
	}
	paths := make([]string, 0, len(scope))
	for p := range scope {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		f, ok := src.Field(p)
		if !ok {
			return nil, scopeError(r.ID, eventType, p, "no such field in schema %s", src.Name)
		}
		if !f.Leaf {
			return nil, scopeError(r.ID, eventType, p, "is a %s, not a leaf: scopes name leaf fields", f.Kind)
		}
		if f.Format == FormatCardSecurityCode {
			return nil, scopeError(r.ID, eventType, p, "a card security code may never be disclosed, with any operator (PCI DSS 3.3.1)")
		}
		ops := scope[p]
		if len(ops) == 0 {
			return nil, scopeError(r.ID, eventType, p, "no operators")
		}
		for _, op := range ops {
			if !op.Valid() {
				return nil, scopeError(r.ID, eventType, p, "unknown operator %q", string(op))
			}
		}
	}
	c := &compiler{r: r, eventType: eventType, src: src, scope: scope,
		used: map[string]bool{src.Avro.Name(): true}, enums: map[string]string{}}
	root, fields, err := c.record(src.Avro, "")
	if err != nil {
		return nil, err
	}
	if root == nil || len(c.leaves) != len(paths) {
		// Every scoped path is a catalogue leaf and the walk visits every
		// catalogue leaf, so this is a bug; fail closed all the same.
		return nil, scopeError(r.ID, eventType, "", "compiled %d of %d scoped fields", len(c.leaves), len(paths))
	}
	top := obj{
		{"type", "record"},
		{"name", src.Avro.Name()},
		{"namespace", Namespace(r.ID)},
		{"doc", recordDoc(r, src)},
		{"dgw.recipient", r.ID},
		{"dgw.source_schema", src.Name},
		{"dgw.source_event_type", eventType},
		{"fields", fields},
	}
	text, err := pretty(nil, top, "")
	if err != nil {
		return nil, fmt.Errorf("recipient %s, event type %s: marshal derived schema: %w", r.ID, eventType, err)
	}
	text = append(text, '\n')
	derived, err := schema.ParseDerived(r.ID+"/"+eventType+".avsc", text)
	if err != nil {
		return nil, fmt.Errorf("recipient %s, event type %s: derived schema does not parse: %w", r.ID, eventType, err)
	}
	p := &program{recipient: r.ID, eventType: eventType, source: src, derived: derived, json: text,
		root: root, leaves: c.leaves, byPath: make(map[string]*leaf, len(c.leaves))}
	for _, l := range c.leaves {
		p.byPath[l.path] = l
	}
	p.sizeHint.Store(128)
	return p, nil
}

func recordDoc(r *gateway.Recipient, src *schema.Schema) string {
	who := r.ID
	if r.Name != "" {
		who = r.Name + " (" + r.ID + ")"
	}
	return fmt.Sprintf("Events of type %s for %s, derived by dgw from %s and the recipient's contract scope. "+
		"Only the fields of the contract scope appear; each is optional and null whenever the policy withholds it for an event. "+
		"Field docs and the dgw.operators property say how each value may be transformed (masked, pseudonymised, generalised).",
		src.EventType, who, src.Name)
}

type compiler struct {
	r         *gateway.Recipient
	eventType string
	src       *schema.Schema
	scope     map[string][]gateway.Operator
	leaves    []*leaf
	used      map[string]bool   // derived type names taken
	enums     map[string]string // source enum full name → derived name, once defined
}

// typeName reserves a derived type name: the source's short name or, when
// taken, the name suffixed with the field path.
func (c *compiler) typeName(short, path string) string {
	n := short
	for i := 1; c.used[n]; i++ {
		n = short + "_" + strings.ReplaceAll(path, ".", "_")
		if i > 1 {
			n = fmt.Sprintf("%s_%d", n, i)
		}
	}
	c.used[n] = true
	return n
}

// record compiles the scoped part of rec. It returns a nil node when no
// scoped leaf lies below, and the JSON of the derived record's fields.
func (c *compiler) record(rec *avro.RecordSchema, prefix string) (*node, []any, error) {
	n := &node{lo: len(c.leaves)}
	var fields []any
	for i, f := range rec.Fields() {
		p := f.Name()
		if prefix != "" {
			p = prefix + "." + f.Name()
		}
		t, _ := unwrapNullable(f.Type())
		t = deref(t)
		var items avro.Schema
		itemsNull, itemsNullLast := false, false
		if a, ok := t.(*avro.ArraySchema); ok {
			items, itemsNull = unwrapNullable(a.Items())
			items = deref(items)
			itemsNullLast = itemsNull && a.Items().(*avro.UnionSchema).Types()[0].Type() != avro.Null
		}
		var child *node
		var typ any
		var err error
		switch {
		case isRecord(t):
			child, typ, err = c.nested(t.(*avro.RecordSchema), p)
		case items != nil && isRecord(items):
			child, typ, err = c.nested(items.(*avro.RecordSchema), p)
			if child != nil {
				child.array, child.itemsNull = true, itemsNull
				if itemsNull {
					typ = []any{"null", typ}
				}
				typ = obj{{"type", "array"}, {"items", typ}}
			}
		default:
			ops, scoped := c.scope[p]
			if !scoped {
				continue
			}
			var l *leaf
			l, typ, err = c.leaf(p, t, items, itemsNull, ops)
			if l != nil {
				// A kept value is copied from the source's bytes, but for
				// items ["T", "null"]: their branch indexes differ from the
				// derived ["null", T].
				l.src, l.raw = t, !itemsNullLast
				child = &node{leaf: l, lo: l.slot, hi: l.slot + 1}
			}
		}
		if err != nil {
			return nil, nil, err
		}
		if child == nil {
			continue
		}
		child.name, child.path, child.src = f.Name(), p, i
		n.fields = append(n.fields, child)
		fields = append(fields, c.field(f, p, typ, child.leaf))
	}
	n.hi = len(c.leaves)
	if len(n.fields) == 0 {
		return nil, nil, nil
	}
	return n, fields, nil
}

func (c *compiler) nested(rs *avro.RecordSchema, path string) (*node, any, error) {
	n, fields, err := c.record(rs, path)
	if err != nil || n == nil {
		return nil, nil, err
	}
	t := obj{{"type", "record"}, {"name", c.typeName(rs.Name(), path)}}
	if rs.Doc() != "" {
		t = append(t, kv{"doc", rs.Doc()})
	}
	return n, append(t, kv{"fields", fields}), nil
}

// field is the JSON of one derived field: optional, default null, with the
// source's category and doc, and the operators the contract allows.
func (c *compiler) field(f *avro.Field, path string, typ any, l *leaf) obj {
	out := obj{{"name", f.Name()}, {"type", []any{"null", typ}}, {"default", nil}}
	cat, _ := f.Prop(schema.PropCategory).(string)
	out = append(out, kv{"category", cat})
	doc := f.Doc()
	if l != nil {
		ops := c.sortedOps(path)
		if d := opsDoc(l, ops); d != "" {
			if doc != "" && !strings.HasSuffix(doc, ".") {
				doc += "."
			}
			doc = strings.TrimSpace(doc + " " + d)
		}
		if l.format != "" && slices.Contains(ops, gateway.OpKeep) {
			out = append(out, kv{"format", l.format})
		}
		names := make([]any, len(ops))
		for i, op := range ops {
			names[i] = string(op)
		}
		out = append(out, kv{"dgw.operators", names})
	}
	if doc != "" {
		out = append(out, kv{"doc", doc})
	}
	return out
}

func (c *compiler) sortedOps(path string) []gateway.Operator {
	var out []gateway.Operator
	for _, op := range opOrder {
		if slices.Contains(c.scope[path], op) {
			out = append(out, op)
		}
	}
	return out
}

// leaf compiles one scoped leaf and returns its derived type (the T of
// ["null", T]).
func (c *compiler) leaf(path string, t, items avro.Schema, itemsNull bool, ops []gateway.Operator) (*leaf, any, error) {
	cat, _ := c.src.Field(path)
	l := &leaf{path: path, slot: len(c.leaves), format: cat.Format}
	vt := t
	if items != nil {
		l.array, l.itemsNull, vt = true, itemsNull, items
	}
	kind, err := scalarOf(vt)
	if err != nil {
		return nil, nil, fmt.Errorf("recipient %s, event type %s, field %s: %w", c.r.ID, c.eventType, path, err)
	}
	l.kind = kind
	switch kind {
	case sEnum:
		syms := vt.(*avro.EnumSchema).Symbols()
		l.symbols = make(map[string]int, len(syms))
		for i, s := range syms {
			l.symbols[s] = i
		}
	case sDecimal:
		d := vt.(avro.LogicalTypeSchema).Logical().(*avro.DecimalLogicalSchema)
		l.digits, l.scale = d.Precision(), d.Scale()
		l.pow10 = new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(l.scale)), nil))
	case sDate:
		l.gen = genYear
		if cat.Role == RoleBirthDate {
			l.gen = genAgeBand
		}
	case sTimestampMillis, sTimestampMicros:
		l.gen = genDate
	}
	// Every operator but drop fixes the derived type; they must agree.
	type outType struct {
		key string
		op  gateway.Operator
	}
	var outs []outType
	for _, op := range ops {
		code := codeOf(op)
		if code == opNone {
			continue
		}
		l.allowed |= 1 << code
		var key string
		switch op {
		case gateway.OpKeep:
			key = "keep:" + kind.String()
		case gateway.OpMask:
			if kind != sString {
				return nil, nil, scopeError(c.r.ID, c.eventType, path, "mask applies to strings only, the field is a %s", kind)
			}
			key = "string"
		case gateway.OpHash:
			key = "string"
		case gateway.OpGeneralise:
			switch l.gen {
			case genYear:
				key = "int"
			case genAgeBand:
				key = "string"
			case genDate:
				key = "date"
			default:
				return nil, nil, scopeError(c.r.ID, c.eventType, path,
					"generalise applies to dates (to the year), birth dates (to an age band) and timestamps (to the date), the field is a %s", kind)
			}
		}
		if key == "keep:string" {
			key = "string"
		}
		outs = append(outs, outType{key, op})
	}
	for _, o := range outs[min(1, len(outs)):] {
		if o.key != outs[0].key {
			return nil, nil, scopeError(c.r.ID, c.eventType, path,
				"operators %s and %s give different types (%s, %s); a field has one type per recipient",
				outs[0].op, o.op, strings.TrimPrefix(outs[0].key, "keep:"), strings.TrimPrefix(o.key, "keep:"))
		}
	}
	var typ any
	switch {
	case len(outs) == 0 || strings.HasPrefix(outs[0].key, "keep:"):
		// keep, or drop only: the source type.
		typ = c.keepType(vt, path)
	case outs[0].key == "string":
		typ = "string"
	case outs[0].key == "int":
		typ = "int"
	case outs[0].key == "date":
		typ = obj{{"type", "int"}, {"logicalType", "date"}}
	}
	if l.array {
		if itemsNull {
			typ = []any{"null", typ}
		}
		typ = obj{{"type", "array"}, {"items", typ}}
	}
	c.leaves = append(c.leaves, l)
	return l, typ, nil
}

// keepType is the JSON of a kept value's type.
func (c *compiler) keepType(t avro.Schema, path string) any {
	switch x := t.(type) {
	case *avro.EnumSchema:
		if n, ok := c.enums[x.FullName()]; ok {
			return n
		}
		n := c.typeName(x.Name(), path)
		c.enums[x.FullName()] = n
		syms := make([]any, len(x.Symbols()))
		for i, s := range x.Symbols() {
			syms[i] = s
		}
		e := obj{{"type", "enum"}, {"name", n}}
		if x.Doc() != "" {
			e = append(e, kv{"doc", x.Doc()})
		}
		e = append(e, kv{"symbols", syms})
		if x.HasDefault() {
			e = append(e, kv{"default", x.Default()})
		}
		return e
	case avro.LogicalTypeSchema:
		if x.Logical() != nil {
			switch lt := x.Logical().(type) {
			case *avro.DecimalLogicalSchema:
				return obj{{"type", string(t.Type())}, {"logicalType", "decimal"}, {"precision", lt.Precision()}, {"scale", lt.Scale()}}
			default:
				return obj{{"type", string(t.Type())}, {"logicalType", string(lt.Type())}}
			}
		}
	}
	return string(t.Type())
}

func scalarOf(t avro.Schema) (scalar, error) {
	logical := ""
	if l, ok := t.(avro.LogicalTypeSchema); ok && l.Logical() != nil {
		logical = string(l.Logical().Type())
	}
	var k scalar
	switch t.Type() {
	case avro.String:
		k = sString
	case avro.Int:
		k = sInt
		if logical == string(avro.Date) {
			k, logical = sDate, ""
		}
	case avro.Long:
		k = sLong
		switch logical {
		case string(avro.TimestampMillis):
			k, logical = sTimestampMillis, ""
		case string(avro.TimestampMicros):
			k, logical = sTimestampMicros, ""
		}
	case avro.Boolean:
		k = sBool
	case avro.Float:
		k = sFloat
	case avro.Double:
		k = sDouble
	case avro.Bytes:
		k = sBytes
		if logical == string(avro.Decimal) {
			k, logical = sDecimal, ""
		}
	case avro.Enum:
		k = sEnum
	default:
		return 0, fmt.Errorf("fields of Avro type %s are not supported in recipient schemas", t.Type())
	}
	if logical != "" {
		return 0, fmt.Errorf("logical type %s is not supported in recipient schemas", logical)
	}
	return k, nil
}

// opsDoc tells partners how a field may have been transformed.
func opsDoc(l *leaf, ops []gateway.Operator) string {
	var parts []string
	for _, op := range ops {
		switch op {
		case gateway.OpKeep:
			parts = append(parts, "as recorded")
		case gateway.OpMask:
			parts = append(parts, "masked: "+maskDoc[l.format])
		case gateway.OpHash:
			parts = append(parts, "pseudonymised: HMAC-SHA256 with a key kept for this recipient, lowercase hex; equal values give equal pseudonyms")
		case gateway.OpGeneralise:
			switch l.gen {
			case genYear:
				parts = append(parts, "generalised to the calendar year")
			case genAgeBand:
				parts = append(parts, "generalised to the age band at the event time ("+strings.Join(ageBands, ", ")+")")
			case genDate:
				parts = append(parts, "generalised to the UTC calendar date")
			}
		}
	}
	each := ""
	if l.array {
		each = "each element "
	}
	if len(parts) == 0 {
		return "Always null: the contract allows only drop."
	}
	return "Sent " + each + strings.Join(parts, "; or ") + ". Null when withheld."
}

var maskDoc = map[string]string{
	"":         "first character, then ***",
	"pan":      "only the last four digits remain (************1234)",
	"email":    "first character of the local part, then ***@ and the domain",
	"phone":    "every digit but the last two replaced by *",
	"document": "every character but the last three replaced by *",
	"ip":       "IPv4 cut to its /24 network, IPv6 to its /48 network, in CIDR notation",
}

func isRecord(t avro.Schema) bool { _, ok := t.(*avro.RecordSchema); return ok }

func deref(t avro.Schema) avro.Schema {
	if r, ok := t.(*avro.RefSchema); ok {
		return r.Schema()
	}
	return t
}

// unwrapNullable returns T for ["null", T] or [T, "null"].
func unwrapNullable(t avro.Schema) (avro.Schema, bool) {
	u, ok := t.(*avro.UnionSchema)
	if !ok || len(u.Types()) != 2 {
		return t, false
	}
	a, b := u.Types()[0], u.Types()[1]
	if a.Type() == avro.Null {
		return b, true
	}
	if b.Type() == avro.Null {
		return a, true
	}
	return t, false
}

// obj is a JSON object that keeps its key order.
type obj []kv

type kv struct {
	k string
	v any
}

// lineWidth is the widest value pretty keeps on one line.
const lineWidth = 100

// pretty appends v as indented JSON, keeping values that fit on one line
// (["null", "string"], short symbol lists, small types) on one line.
func pretty(dst []byte, v any, indent string) ([]byte, error) {
	flat, err := compact(nil, v)
	if err != nil {
		return nil, err
	}
	if len(flat)+len(indent) <= lineWidth {
		return append(dst, flat...), nil
	}
	inner := indent + "  "
	switch x := v.(type) {
	case obj:
		dst = append(dst, '{')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(append(dst, '\n'), inner...)
			if dst, err = compact(dst, e.k); err != nil {
				return nil, err
			}
			dst = append(dst, ": "...)
			if dst, err = pretty(dst, e.v, inner); err != nil {
				return nil, err
			}
		}
		return append(append(append(dst, '\n'), indent...), '}'), nil
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(append(dst, '\n'), inner...)
			if dst, err = pretty(dst, e, inner); err != nil {
				return nil, err
			}
		}
		return append(append(append(dst, '\n'), indent...), ']'), nil
	}
	return append(dst, flat...), nil
}

// compact appends v as one-line JSON with a blank after ':' and ','.
func compact(dst []byte, v any) ([]byte, error) {
	var err error
	switch x := v.(type) {
	case obj:
		dst = append(dst, '{')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			if dst, err = compact(dst, e.k); err != nil {
				return nil, err
			}
			dst = append(dst, ": "...)
			if dst, err = compact(dst, e.v); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			if dst, err = compact(dst, e); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // docs may hold '<' or '&'
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return append(dst, bytes.TrimSuffix(b.Bytes(), []byte("\n"))...), nil
}
