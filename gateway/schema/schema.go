// Package schema loads dgw's annotated Avro event schemas and flattens them
// into a field catalogue: every field path with its data category, context
// key, role and masking format. The catalogue is what the policy sees of a
// schema, what contract scopes are checked against, and what the lint
// enforces.
package schema

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/hamba/avro/v2"

	"github.com/dgwproject/dgw/gateway"
)

// Annotation property names.
const (
	PropEventType = "dgw.event_type"
	PropCategory  = "category"
	PropContext   = "context"
	PropRole      = "role"
	PropFormat    = "format"
	// PropKind on the top-level record says what the schema describes:
	// absent or KindEvent for an event schema; KindAudit for the audit
	// entry dgw writes itself. Every kind is linted alike, but only event
	// schemas join a Set, so a non-event record is never read as a source
	// event, listed in the catalogue or given a source topic.
	PropKind = "dgw.kind"
)

// Schema kinds (PropKind).
const (
	KindEvent = "event"
	KindAudit = "audit"
)

// Kinds are the known values of PropKind.
var Kinds = []string{KindEvent, KindAudit}

// Categories are the data categories of the privacy policy (§4.1.1).
var Categories = []string{"identity", "contact", "payment", "travel", "health", "sensitive",
	"technical", "interaction", "social", "shared", "employment", "statistical"}

// ContextKeys are the decision-context keys a field may feed, besides
// subject.consent.<name>.
var ContextKeys = []string{"event.purpose", "event.point_of_sale", "event.route", "event.booking_channel",
	"event.agency_code", "event.corporate_account", "event.employer_paid", "subject.citizenship", "subject.residence"}

// ConsentPrefix marks a boolean field that records a consent.
const ConsentPrefix = "subject.consent."

// Roles identify the event and its subject.
var Roles = []string{"event_id", "occurred_at", "subject_id", "birth_date", "passenger_type"}

// Formats say how the mask operator shortens a value.
var Formats = []string{"pan", "card_security_code", "email", "phone", "document", "ip"}

// Schema is one event schema with its flattened field catalogue.
type Schema struct {
	Name        string
	Kind        string // KindEvent or another of Kinds
	EventType   string
	Fingerprint uint64
	Avro        *avro.RecordSchema
	Fields      []gateway.Field
	byPath      map[string]int
	children    map[string][]string // record path → field names in order
	annotated   map[string][]string // record path → names of fields whose subtree has a context or role annotation
}

// Children returns the field names of the record at path ("" for the root),
// in schema order.
func (s *Schema) Children(path string) []string { return s.children[path] }

// AnnotatedChildren returns the field names of the record at path whose
// subtree holds a field annotated with a context or role, in schema order.
// Context extraction walks only these.
func (s *Schema) AnnotatedChildren(path string) []string { return s.annotated[path] }

func (s *Schema) index() {
	s.children, s.annotated = map[string][]string{}, map[string][]string{}
	marked := map[string]bool{}
	for _, f := range s.Fields {
		if f.Context != "" || f.Role != "" {
			for p := f.Path; ; {
				marked[p] = true
				i := strings.LastIndexByte(p, '.')
				if i < 0 {
					break
				}
				p = p[:i]
			}
		}
	}
	for _, f := range s.Fields {
		parent, name := "", f.Path
		if i := strings.LastIndexByte(f.Path, '.'); i >= 0 {
			parent, name = f.Path[:i], f.Path[i+1:]
		}
		s.children[parent] = append(s.children[parent], name)
		if marked[f.Path] {
			s.annotated[parent] = append(s.annotated[parent], name)
		}
	}
}

// Field returns the catalogue entry of path.
func (s *Schema) Field(path string) (gateway.Field, bool) {
	i, ok := s.byPath[path]
	if !ok {
		return gateway.Field{}, false
	}
	return s.Fields[i], true
}

// Ref names the schema for events.
func (s *Schema) Ref() gateway.SchemaRef {
	return gateway.SchemaRef{Name: s.Name, EventType: s.EventType, Fingerprint: s.Fingerprint}
}

// Problem is one annotation problem.
type Problem struct {
	File string
	Path string
	Msg  string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.File + ": " + p.Msg
	}
	return p.File + ": " + p.Path + ": " + p.Msg
}

// ProblemsError lists every problem found.
type ProblemsError []Problem

func (e ProblemsError) Error() string {
	s := make([]string, len(e))
	for i, p := range e {
		s[i] = p.String()
	}
	return strings.Join(s, "; ")
}

// Parse parses one schema file. Each file gets its own name cache, because
// files reuse nested type names (Flight, Passenger) with different shapes.
func Parse(file string, data []byte) (*Schema, error) {
	s, problems := parse(file, data, true)
	if len(problems) > 0 {
		return nil, ProblemsError(problems)
	}
	return s, nil
}

// ParseDerived parses a schema that is not an event schema (a recipient's
// derived schema): annotations are read but roles and event type are not
// required.
func ParseDerived(file string, data []byte) (*Schema, error) {
	s, problems := parse(file, data, false)
	if len(problems) > 0 {
		return nil, ProblemsError(problems)
	}
	return s, nil
}

func parse(file string, data []byte, event bool) (*Schema, []Problem) {
	as, err := avro.ParseBytesWithCache(data, "", &avro.SchemaCache{})
	if err != nil {
		return nil, []Problem{{File: file, Msg: "not a valid Avro schema: " + err.Error()}}
	}
	rec, ok := as.(*avro.RecordSchema)
	if !ok {
		return nil, []Problem{{File: file, Msg: "expected a record schema at the top level"}}
	}
	fp, err := rec.FingerprintUsing(avro.CRC64Avro)
	if err != nil {
		return nil, []Problem{{File: file, Msg: "fingerprint: " + err.Error()}}
	}
	s := &Schema{Name: rec.FullName(), Kind: KindEvent, Avro: rec, byPath: map[string]int{}}
	for i := range 8 {
		s.Fingerprint |= uint64(fp[i]) << (8 * (7 - i))
	}
	var problems []Problem
	add := func(p, msg string) { problems = append(problems, Problem{File: file, Path: p, Msg: msg}) }
	if v := rec.Prop(PropKind); v != nil {
		k, _ := v.(string)
		switch {
		case !slices.Contains(Kinds, k):
			add("", fmt.Sprintf("unknown %s %v, expected one of %s", PropKind, v, strings.Join(Kinds, ", ")))
		case k != KindEvent:
			// Not an event: no event type or roles are required.
			s.Kind, event = k, false
		}
	}
	if et, _ := rec.Prop(PropEventType).(string); et != "" {
		s.EventType = et
	} else if event {
		add("", "top-level record needs a \""+PropEventType+"\" property")
	}
	s.walk(rec, "", false, add)
	s.index()
	if event {
		for _, role := range []string{"event_id", "occurred_at", "subject_id"} {
			n := 0
			for _, f := range s.Fields {
				if f.Role == role {
					n++
					if strings.Contains(f.Path, ".") {
						add(f.Path, "role "+role+" must be a top-level field")
					}
				}
			}
			if n != 1 {
				add("", fmt.Sprintf("expected exactly one field with role %q, found %d", role, n))
			}
		}
	}
	return s, problems
}

// walk flattens rec's fields into s.Fields, checking annotations.
func (s *Schema) walk(rec *avro.RecordSchema, prefix string, repeated bool, add func(p, msg string)) {
	for _, f := range rec.Fields() {
		p := f.Name()
		if prefix != "" {
			p = prefix + "." + f.Name()
		}
		typ, optional := unwrapNullable(f.Type())
		rep := repeated
		if arr, ok := typ.(*avro.ArraySchema); ok {
			typ, _ = unwrapNullable(arr.Items())
			rep = true
			// Checked after unwrapping, so ["null", {array of arrays}] and
			// arrays of ["null", array] are caught too.
			if _, ok := typ.(*avro.ArraySchema); ok {
				add(p, "arrays of arrays are not supported")
			}
		}
		fld := gateway.Field{Path: p, Kind: kind(typ), Repeated: rep}
		_ = optional
		if _, isUnion := typ.(*avro.UnionSchema); isUnion {
			add(p, "unions other than [\"null\", T] are not supported")
		}
		str := func(name string) string { v, _ := f.Prop(name).(string); return v }
		fld.Category, fld.Context, fld.Role, fld.Format = str(PropCategory), str(PropContext), str(PropRole), str(PropFormat)
		switch {
		case fld.Category == "":
			add(p, "no category: every field needs \"category\", one of "+strings.Join(Categories, ", "))
		case !slices.Contains(Categories, fld.Category):
			add(p, fmt.Sprintf("unknown category %q, expected one of %s", fld.Category, strings.Join(Categories, ", ")))
		}
		if fld.Context != "" && !slices.Contains(ContextKeys, fld.Context) &&
			!(strings.HasPrefix(fld.Context, ConsentPrefix) && len(fld.Context) > len(ConsentPrefix)) {
			add(p, fmt.Sprintf("unknown context %q, expected one of %s or %s<name>", fld.Context, strings.Join(ContextKeys, ", "), ConsentPrefix))
		}
		if fld.Role != "" && !slices.Contains(Roles, fld.Role) {
			add(p, fmt.Sprintf("unknown role %q, expected one of %s", fld.Role, strings.Join(Roles, ", ")))
		}
		if fld.Format != "" && !slices.Contains(Formats, fld.Format) {
			add(p, fmt.Sprintf("unknown format %q, expected one of %s", fld.Format, strings.Join(Formats, ", ")))
		}
		if nested, ok := typ.(*avro.RecordSchema); ok {
			fld.Kind = "record"
			s.add(fld)
			s.walk(nested, p, rep, add)
			continue
		}
		fld.Leaf = true
		s.add(fld)
	}
}

func (s *Schema) add(f gateway.Field) {
	s.byPath[f.Path] = len(s.Fields)
	s.Fields = append(s.Fields, f)
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

// kind names the field kind of an Avro type.
func kind(t avro.Schema) string {
	if l, ok := t.(avro.LogicalTypeSchema); ok && l.Logical() != nil {
		switch l.Logical().Type() {
		case avro.Date:
			return "date"
		case avro.TimestampMillis, avro.TimestampMicros:
			return "timestamp"
		case avro.Decimal:
			return "decimal"
		}
	}
	switch t.Type() {
	case avro.Record:
		return "record"
	case avro.Array:
		return "array"
	case avro.Enum:
		return "enum"
	case avro.String:
		return "string"
	case avro.Int:
		return "int"
	case avro.Long:
		return "long"
	case avro.Float:
		return "float"
	case avro.Double:
		return "double"
	case avro.Boolean:
		return "boolean"
	case avro.Bytes:
		return "bytes"
	case avro.Fixed:
		return "fixed"
	case avro.Map:
		return "map"
	case avro.Union:
		return "union"
	}
	return string(t.Type())
}

// Set is a collection of schemas addressable by fingerprint, event type and
// full name.
type Set struct {
	all    []*Schema
	byFP   map[uint64]*Schema
	byType map[string]*Schema
	byName map[string]*Schema
}

// NewSet builds a set; duplicate fingerprints, names or event types are errors.
func NewSet(schemas ...*Schema) (*Set, error) {
	set := &Set{byFP: map[uint64]*Schema{}, byType: map[string]*Schema{}, byName: map[string]*Schema{}}
	for _, s := range schemas {
		if _, dup := set.byFP[s.Fingerprint]; dup {
			return nil, fmt.Errorf("schema %s: fingerprint %s used twice", s.Name, gateway.FingerprintHex(s.Fingerprint))
		}
		if _, dup := set.byName[s.Name]; dup {
			return nil, fmt.Errorf("schema %s defined twice", s.Name)
		}
		if s.EventType != "" {
			if _, dup := set.byType[s.EventType]; dup {
				return nil, fmt.Errorf("schema %s: event type %s used twice", s.Name, s.EventType)
			}
			set.byType[s.EventType] = s
		}
		set.byFP[s.Fingerprint], set.byName[s.Name] = s, s
		set.all = append(set.all, s)
	}
	sort.Slice(set.all, func(i, j int) bool {
		if set.all[i].EventType != set.all[j].EventType {
			return set.all[i].EventType < set.all[j].EventType
		}
		return set.all[i].Name < set.all[j].Name
	})
	return set, nil
}

// Load parses every *.avsc file of fsys. The error lists every problem.
func Load(fsys fs.FS) (*Set, error) {
	schemas, problems := load(fsys)
	if len(problems) > 0 {
		return nil, ProblemsError(problems)
	}
	return NewSet(schemas...)
}

// Lint returns every annotation problem of the *.avsc files of fsys.
func Lint(fsys fs.FS) []Problem {
	schemas, problems := load(fsys)
	if len(problems) == 0 {
		if _, err := NewSet(schemas...); err != nil {
			problems = append(problems, Problem{File: ".", Msg: err.Error()})
		}
	}
	return problems
}

func load(fsys fs.FS) ([]*Schema, []Problem) {
	files, err := fs.Glob(fsys, "*.avsc")
	if err != nil {
		return nil, []Problem{{File: ".", Msg: err.Error()}}
	}
	if len(files) == 0 {
		return nil, []Problem{{File: ".", Msg: "no *.avsc files"}}
	}
	var out []*Schema
	var problems []Problem
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			problems = append(problems, Problem{File: f, Msg: err.Error()})
			continue
		}
		s, ps := parse(path.Base(f), b, true)
		problems = append(problems, ps...)
		if s != nil && len(ps) == 0 && s.Kind == KindEvent {
			out = append(out, s)
		}
	}
	return out, problems
}

// ByFingerprint finds a schema by its CRC-64-AVRO fingerprint.
func (s *Set) ByFingerprint(fp uint64) (*Schema, bool) { x, ok := s.byFP[fp]; return x, ok }

// ByEventType finds an event schema by event type.
func (s *Set) ByEventType(t string) (*Schema, bool) { x, ok := s.byType[t]; return x, ok }

// ByName finds a schema by Avro full name.
func (s *Set) ByName(full string) (*Schema, bool) { x, ok := s.byName[full]; return x, ok }

// All returns the schemas sorted by event type.
func (s *Set) All() []*Schema { return slices.Clone(s.all) }

// Catalogue maps event type to field catalogue, for the policy's data.
func (s *Set) Catalogue() map[string][]gateway.Field {
	out := map[string][]gateway.Field{}
	for _, x := range s.all {
		if x.EventType != "" {
			out[x.EventType] = slices.Clone(x.Fields)
		}
	}
	return out
}

// ErrNoSchema is returned when a lookup fails.
var ErrNoSchema = errors.New("no such schema")
