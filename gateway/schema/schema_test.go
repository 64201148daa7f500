package schema_test

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/schemas"
)

func TestRealSchemasLoadAndLintClean(t *testing.T) {
	assert.Empty(t, schema.Lint(schemas.FS), "the shipped schemas lint clean")
	set, err := schema.Load(schemas.FS)
	require.NoError(t, err)
	files, err := fs.Glob(schemas.FS, "*.avsc")
	require.NoError(t, err)
	events := 0
	for _, f := range files {
		b, err := fs.ReadFile(schemas.FS, f)
		require.NoError(t, err)
		s, err := schema.Parse(f, b)
		require.NoError(t, err, f)
		if s.Kind == schema.KindEvent {
			events++
		}
	}
	require.Len(t, set.All(), events, "one schema per event file")
	require.Less(t, events, len(files), "audit.avsc is not an event schema")

	var types []string
	for _, s := range set.All() {
		types = append(types, s.EventType)
		roles := map[string]int{}
		for _, f := range s.Fields {
			if f.Role != "" {
				roles[f.Role]++
			}
			assert.Contains(t, schema.Categories, f.Category, "%s %s", s.EventType, f.Path)
		}
		for _, r := range []string{"event_id", "occurred_at", "subject_id"} {
			assert.Equal(t, 1, roles[r], "%s has one %s", s.EventType, r)
			f := fieldWithRole(s, r)
			assert.NotContains(t, f.Path, ".", "%s %s is top-level", s.EventType, r)
		}
		purpose, ok := s.Field("purpose")
		if s.EventType != "subject_request" {
			require.True(t, ok, s.EventType)
			assert.Equal(t, "event.purpose", purpose.Context)
		}
	}
	assert.Equal(t, []string{"assistance", "baggage", "booking", "checkin", "corporate", "loyalty", "payment",
		"subject_request", "websession"}, types, "All is sorted by event type")
}

func fieldWithRole(s *schema.Schema, role string) gateway.Field {
	for _, f := range s.Fields {
		if f.Role == role {
			return f
		}
	}
	return gateway.Field{}
}

// event returns a minimal valid event schema with extra fields appended
// and the top-level properties given.
func event(props, extra string) string {
	if props == "" {
		props = `"dgw.event_type": "t"`
	}
	fields := `{"name": "event_id", "type": "string", "category": "technical", "role": "event_id"},
	  {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}, "category": "technical", "role": "occurred_at"},
	  {"name": "passenger_id", "type": "string", "category": "identity", "role": "subject_id"}`
	if extra != "" {
		fields += ", " + extra
	}
	return `{"type": "record", "name": "T", "namespace": "dgw.test", ` + props + `, "fields": [` + fields + `]}`
}

func TestLint(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		path   string // "" for a problem of the whole file
		msg    string
	}{
		{"no category", event("", `{"name": "note", "type": "string"}`), "note", `no category: every field needs "category"`},
		{"no category, nested", event("", `{"name": "passenger", "category": "identity", "type": {"type": "record", "name": "P", "fields": [
			{"name": "nickname", "type": "string"}]}}`), "passenger.nickname", "no category"},
		{"no category, in an array", event("", `{"name": "segments", "category": "travel", "type": {"type": "array", "items": {"type": "record", "name": "S", "fields": [
			{"name": "seat", "type": ["null", "string"], "default": null}]}}}`), "segments.seat", "no category"},
		{"unknown category", event("", `{"name": "note", "type": "string", "category": "gossip"}`), "note", `unknown category "gossip", expected one of identity, contact`},
		{"unknown context", event("", `{"name": "route", "type": "string", "category": "travel", "context": "event.country"}`), "route", `unknown context "event.country"`},
		{"consent without a name", event("", `{"name": "ok", "type": "boolean", "category": "technical", "context": "subject.consent."}`), "ok", `unknown context "subject.consent."`},
		{"unknown role", event("", `{"name": "dob", "type": "string", "category": "identity", "role": "birthday"}`), "dob", `unknown role "birthday", expected one of event_id`},
		{"unknown format", event("", `{"name": "iban", "type": "string", "category": "payment", "format": "iban"}`), "iban", `unknown format "iban", expected one of pan`},
		{"missing role", strings.Replace(event("", ""), `"role": "subject_id"`, `"category2": "x"`, 1), "", `expected exactly one field with role "subject_id", found 0`},
		{"role twice", event("", `{"name": "other_id", "type": "string", "category": "technical", "role": "event_id"}`), "", `expected exactly one field with role "event_id", found 2`},
		{"role not top-level", strings.Replace(event("", `{"name": "pax", "category": "identity", "type": {"type": "record", "name": "P", "fields": [
			{"name": "id", "type": "string", "category": "identity", "role": "subject_id"}]}}`), `, "role": "subject_id"}`, `}`, 1), "pax.id", "role subject_id must be a top-level field"},
		{"missing dgw.event_type", event(`"doc": "x"`, ""), "", `top-level record needs a "dgw.event_type" property`},
		{"union of two types", event("", `{"name": "x", "type": ["string", "int"], "category": "travel"}`), "x", `unions other than ["null", T] are not supported`},
		{"array of arrays", event("", `{"name": "x", "type": {"type": "array", "items": {"type": "array", "items": "string"}}, "category": "travel"}`), "x", "arrays of arrays are not supported"},
		{"nullable array of arrays", event("", `{"name": "x", "type": ["null", {"type": "array", "items": {"type": "array", "items": "string"}}], "default": null, "category": "travel"}`), "x", "arrays of arrays are not supported"},
		{"array of nullable arrays", event("", `{"name": "x", "type": {"type": "array", "items": ["null", {"type": "array", "items": "string"}]}, "category": "travel"}`), "x", "arrays of arrays are not supported"},
		{"not Avro", `{"type": "record", "name": "T", "fields": [{"name": "x", "type": "nosuchtype"}]}`, "", "not a valid Avro schema"},
		{"not JSON", `{"type": `, "", "not a valid Avro schema"},
		{"not a record", `"string"`, "", "expected a record schema at the top level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"good.avsc": {Data: []byte(strings.Replace(event(`"dgw.event_type": "good"`, ""), `"name": "T"`, `"name": "Good"`, 1))},
				"bad.avsc":  {Data: []byte(tt.schema)},
			}
			problems := schema.Lint(fsys)
			require.Len(t, problems, 1, "%v", problems)
			p := problems[0]
			assert.Equal(t, "bad.avsc", p.File)
			assert.Equal(t, tt.path, p.Path)
			assert.Contains(t, p.Msg, tt.msg)
			if tt.path != "" {
				assert.True(t, strings.HasPrefix(p.String(), "bad.avsc: "+tt.path+": "), p.String())
			} else {
				assert.True(t, strings.HasPrefix(p.String(), "bad.avsc: "), p.String())
			}

			_, err := schema.Load(fsys)
			var pe schema.ProblemsError
			require.True(t, errors.As(err, &pe), "Load fails with the problems: %v", err)
			assert.Equal(t, schema.ProblemsError(problems), pe)
			assert.Contains(t, err.Error(), p.String())

			_, err = schema.Parse("bad.avsc", []byte(tt.schema))
			require.Error(t, err, "Parse finds it too")
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
}

func TestLintListsEveryProblem(t *testing.T) {
	fsys := fstest.MapFS{
		"a.avsc": {Data: []byte(event("", `{"name": "x", "type": "string"}, {"name": "y", "type": "string", "category": "nope", "format": "nope"}`))},
		"b.avsc": {Data: []byte(event(`"doc": "no type"`, ""))},
	}
	var got []string
	for _, p := range schema.Lint(fsys) {
		got = append(got, p.String())
	}
	assert.Len(t, got, 4, "%v", got)
	assert.Contains(t, got, "a.avsc: x: no category: every field needs \"category\", one of "+strings.Join(schema.Categories, ", "))
	assert.True(t, slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, `a.avsc: y: unknown category "nope"`) }))
	assert.True(t, slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, `a.avsc: y: unknown format "nope"`) }))
	assert.Contains(t, got, `b.avsc: top-level record needs a "dgw.event_type" property`)
}

func TestLintSet(t *testing.T) {
	two := fstest.MapFS{
		"a.avsc": {Data: []byte(event("", ""))},
		"b.avsc": {Data: []byte(strings.Replace(event("", ""), `"name": "T"`, `"name": "U"`, 1))},
	}
	problems := schema.Lint(two)
	require.Len(t, problems, 1)
	assert.Equal(t, ".", problems[0].File)
	assert.Contains(t, problems[0].Msg, "event type t used twice")

	problems = schema.Lint(fstest.MapFS{"README.md": {Data: []byte("# none")}})
	require.Len(t, problems, 1)
	assert.Equal(t, schema.Problem{File: ".", Msg: "no *.avsc files"}, problems[0])
}

func TestParseDerived(t *testing.T) {
	derived := `{"type": "record", "name": "Out", "namespace": "dgw.out", "fields": [
		{"name": "passenger_name", "type": ["null", "string"], "default": null, "category": "identity"}]}`
	s, err := schema.ParseDerived("out.avsc", []byte(derived))
	require.NoError(t, err, "derived schemas need no roles or event type")
	assert.Empty(t, s.EventType)
	_, err = schema.Parse("out.avsc", []byte(derived))
	require.Error(t, err, "event schemas do")
	_, err = schema.ParseDerived("out.avsc", []byte(strings.Replace(derived, `"category": "identity"`, `"category": "x"`, 1)))
	require.Error(t, err, "categories are still checked")
}

// crc64Avro is the fingerprint algorithm of the Avro specification
// ("Schema Fingerprints"), written out independently of hamba.
func crc64Avro(data []byte) uint64 {
	const empty = 0xc15d213aa4d7a795
	var table [256]uint64
	for i := range table {
		fp := uint64(i)
		for range 8 {
			fp = (fp >> 1) ^ (empty & -(fp & 1))
		}
		table[i] = fp
	}
	fp := uint64(empty)
	for _, b := range data {
		fp = (fp >> 8) ^ table[byte(fp)^b]
	}
	return fp
}

func TestFingerprint(t *testing.T) {
	// The specification's algorithm against a published value: the
	// fingerprint of "null" (Avro test suite, hamba's tests).
	assert.Equal(t, uint64(0x63dd24e7cc258f8a), crc64Avro([]byte(`"null"`)))

	set, err := schema.Load(schemas.FS)
	require.NoError(t, err)
	seen := map[uint64]bool{}
	for _, s := range set.All() {
		fp, err := s.Avro.FingerprintUsing(avro.CRC64Avro)
		require.NoError(t, err)
		assert.Equal(t, binary.BigEndian.Uint64(fp), s.Fingerprint, "%s: hamba's CRC-64-AVRO", s.Name)
		assert.Equal(t, crc64Avro([]byte(s.Avro.String())), s.Fingerprint, "%s: CRC-64-AVRO of the canonical form", s.Name)
		assert.False(t, seen[s.Fingerprint])
		seen[s.Fingerprint] = true
		got, ok := set.ByFingerprint(s.Fingerprint)
		require.True(t, ok)
		assert.Same(t, s, got)
		assert.Equal(t, gateway.SchemaRef{Name: s.Name, EventType: s.EventType, Fingerprint: s.Fingerprint}, s.Ref())
	}
	// Annotations and docs are not part of the canonical form: the
	// fingerprint changes only with the shape.
	a, err := schema.Parse("a.avsc", []byte(event("", `{"name": "x", "type": "string", "category": "travel", "doc": "one"}`)))
	require.NoError(t, err)
	b, err := schema.Parse("b.avsc", []byte(event("", `{"name": "x", "type": "string", "category": "identity", "doc": "two"}`)))
	require.NoError(t, err)
	c, err := schema.Parse("c.avsc", []byte(event("", `{"name": "x", "type": "long", "category": "travel"}`)))
	require.NoError(t, err)
	assert.Equal(t, a.Fingerprint, b.Fingerprint)
	assert.NotEqual(t, a.Fingerprint, c.Fingerprint)
}

func TestCatalogue(t *testing.T) {
	set, err := schema.Load(schemas.FS)
	require.NoError(t, err)
	booking, ok := set.ByEventType("booking")
	require.True(t, ok)
	tests := []gateway.Field{
		{Path: "event_id", Category: "technical", Role: "event_id", Kind: "string", Leaf: true},
		{Path: "occurred_at", Category: "technical", Role: "occurred_at", Kind: "timestamp", Leaf: true},
		{Path: "purpose", Category: "travel", Context: "event.purpose", Kind: "enum", Leaf: true},
		{Path: "agency_code", Category: "travel", Context: "event.agency_code", Kind: "string", Leaf: true},
		{Path: "employer_paid", Category: "employment", Context: "event.employer_paid", Kind: "boolean", Leaf: true},
		{Path: "passenger", Category: "identity", Kind: "record"},
		{Path: "passenger.birth_date", Category: "identity", Role: "birth_date", Kind: "date", Leaf: true},
		{Path: "passenger.passenger_type", Category: "travel", Role: "passenger_type", Kind: "enum", Leaf: true},
		{Path: "passenger.citizenship", Category: "identity", Context: "subject.citizenship", Kind: "string", Leaf: true},
		{Path: "contact", Category: "contact", Kind: "record"},
		{Path: "contact.email", Category: "contact", Format: "email", Kind: "string", Leaf: true},
		{Path: "contact.address", Category: "contact", Kind: "record"},
		{Path: "contact.address.line1", Category: "contact", Kind: "string", Leaf: true},
		{Path: "itinerary", Category: "travel", Kind: "record"},
		{Path: "itinerary.segments", Category: "travel", Kind: "record", Repeated: true},
		{Path: "itinerary.segments.flight_number", Category: "travel", Kind: "string", Leaf: true, Repeated: true},
		{Path: "itinerary.segments.departure_country", Category: "travel", Context: "event.route", Kind: "string", Leaf: true, Repeated: true},
		{Path: "itinerary.segments.departure_time", Category: "travel", Kind: "timestamp", Leaf: true, Repeated: true},
		{Path: "special_service_requests.free_text", Category: "sensitive", Kind: "string", Leaf: true, Repeated: true},
		{Path: "companions", Category: "identity", Kind: "string", Leaf: true, Repeated: true},
		{Path: "fare.amount", Category: "payment", Kind: "decimal", Leaf: true},
	}
	for _, want := range tests {
		got, ok := booking.Field(want.Path)
		if assert.True(t, ok, want.Path) {
			assert.Equal(t, want, got)
		}
	}
	_, ok = booking.Field("itinerary.segments.nope")
	assert.False(t, ok)
	_, ok = booking.Field("itinerary.segments[0].seat")
	assert.False(t, ok, "arrays are transparent: no indexes in paths")

	other := map[string]gateway.Field{
		"payment":    {Path: "card.security_code", Category: "payment", Format: "card_security_code", Kind: "string", Leaf: true},
		"checkin":    {Path: "bag_tags", Category: "travel", Kind: "string", Leaf: true, Repeated: true},
		"assistance": {Path: "explicit_consent", Category: "health", Context: "subject.consent.health_data", Kind: "boolean", Leaf: true},
		"websession": {Path: "location.latitude", Category: "technical", Kind: "double", Leaf: true},
		"loyalty":    {Path: "survey_answers.answer", Category: "shared", Kind: "string", Leaf: true, Repeated: true},
		"corporate":  {Path: "employee.birth_date", Category: "identity", Role: "birth_date", Kind: "date", Leaf: true},
	}
	for typ, want := range other {
		s, ok := set.ByEventType(typ)
		require.True(t, ok)
		got, ok := s.Field(want.Path)
		require.True(t, ok, "%s %s", typ, want.Path)
		assert.Equal(t, want, got, typ)
	}

	// Every path is unique and every parent is listed before its children.
	for _, s := range set.All() {
		seen := map[string]bool{}
		for _, f := range s.Fields {
			assert.False(t, seen[f.Path], "%s %s twice", s.EventType, f.Path)
			seen[f.Path] = true
			if i := strings.LastIndexByte(f.Path, '.'); i >= 0 {
				parent, ok := s.Field(f.Path[:i])
				assert.True(t, ok && seen[parent.Path] && !parent.Leaf && parent.Kind == "record", "%s %s has a record parent", s.EventType, f.Path)
				assert.True(t, !parent.Repeated || f.Repeated, "%s %s inherits repetition", s.EventType, f.Path)
			}
		}
	}
}

func TestChildren(t *testing.T) {
	set, err := schema.Load(schemas.FS)
	require.NoError(t, err)
	booking, _ := set.ByEventType("booking")
	assert.Equal(t, []string{"event_id", "occurred_at", "source_system", "purpose", "point_of_sale", "booking_channel",
		"agency_code", "corporate_account", "employer_paid", "record_locator", "booked_at", "passenger_id", "passenger",
		"contact", "itinerary", "ticket_number", "frequent_flyer_number", "meal_code", "special_service_requests",
		"companions", "fare"}, booking.Children(""), "schema order")
	assert.Equal(t, []string{"segments"}, booking.Children("itinerary"))
	assert.Equal(t, []string{"code", "free_text"}, booking.Children("special_service_requests"))
	assert.Nil(t, booking.Children("companions"), "a leaf has no children")

	assert.Equal(t, []string{"event_id", "occurred_at", "purpose", "point_of_sale", "booking_channel", "agency_code",
		"corporate_account", "employer_paid", "passenger_id", "passenger", "itinerary"}, booking.AnnotatedChildren(""),
		"only subtrees with a context or role")
	assert.Equal(t, []string{"birth_date", "passenger_type", "citizenship", "residence_country"}, booking.AnnotatedChildren("passenger"))
	assert.Equal(t, []string{"departure_country", "arrival_country"}, booking.AnnotatedChildren("itinerary.segments"))
	assert.Empty(t, booking.AnnotatedChildren("contact"))
}

func TestSet(t *testing.T) {
	set, err := schema.Load(schemas.FS)
	require.NoError(t, err)
	b, ok := set.ByEventType("booking")
	require.True(t, ok)
	byName, ok := set.ByName("dgw.events.booking.Booking")
	require.True(t, ok)
	assert.Same(t, b, byName)
	_, ok = set.ByEventType("nope")
	assert.False(t, ok)
	_, ok = set.ByName("Booking")
	assert.False(t, ok, "full names only")

	cat := set.Catalogue()
	assert.Len(t, cat, len(set.All()))
	assert.Equal(t, b.Fields, cat["booking"])
	cat["booking"][0].Path = "changed"
	assert.Equal(t, "event_id", b.Fields[0].Path, "the catalogue is a copy")
	all := set.All()
	all[0] = nil
	assert.NotNil(t, set.All()[0], "All returns a copy")

	_, err = schema.NewSet(b, b)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "used twice")
	other, err := schema.Parse("x.avsc", []byte(strings.Replace(event(`"dgw.event_type": "booking"`, ""), `"name": "T"`, `"name": "X"`, 1)))
	require.NoError(t, err)
	_, err = schema.NewSet(b, other)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "event type booking used twice")
	sameName, err := schema.Parse("y.avsc", []byte(strings.Replace(event(`"dgw.event_type": "y"`, ""),
		`"name": "T", "namespace": "dgw.test"`, `"name": "Booking", "namespace": "dgw.events.booking"`, 1)))
	require.NoError(t, err)
	_, err = schema.NewSet(b, sameName)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "defined twice")
}

// TestNestedNamesPerFile checks that files may reuse nested type names
// (Flight, Passenger) with different shapes.
func TestNestedNamesPerFile(t *testing.T) {
	nested := func(field string) string {
		return event("", `{"name": "flight", "category": "travel", "type": {"type": "record", "name": "Flight", "fields": [
			{"name": "`+field+`", "type": "string", "category": "travel"}]}}`)
	}
	fsys := fstest.MapFS{
		"a.avsc": {Data: []byte(strings.Replace(nested("carrier"), `"dgw.event_type": "t"`, `"dgw.event_type": "a"`, 1))},
		"b.avsc": {Data: []byte(strings.Replace(strings.Replace(nested("number"), `"dgw.event_type": "t"`, `"dgw.event_type": "b"`, 1), `"name": "T"`, `"name": "B"`, 1))},
	}
	require.Empty(t, schema.Lint(fsys))
	set, err := schema.Load(fsys)
	require.NoError(t, err)
	b, _ := set.ByEventType("b")
	_, ok := b.Field("flight.number")
	assert.True(t, ok)
}

// A non-event record (the audit entry) is linted like an event schema but
// never joins the set: no decoding as a source event, no catalogue entry.
func TestNonEventKinds(t *testing.T) {
	event := `{"type":"record","name":"E","namespace":"t","dgw.event_type":"e","fields":[
	  {"name":"event_id","type":"string","category":"technical","role":"event_id"},
	  {"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-millis"},"category":"technical","role":"occurred_at"},
	  {"name":"passenger_id","type":"string","category":"identity","role":"subject_id"}]}`
	audit := `{"type":"record","name":"A","namespace":"t","dgw.kind":"audit","fields":[
	  {"name":"subject","type":"string","category":"identity"}]}`
	tests := []struct {
		name      string
		files     map[string]string
		wantNames []string
		problem   string
	}{
		{name: "audit record kept out of the set", files: map[string]string{"e.avsc": event, "a.avsc": audit},
			wantNames: []string{"t.E"}},
		{name: "audit record is linted", files: map[string]string{"e.avsc": event,
			"a.avsc": `{"type":"record","name":"A","dgw.kind":"audit","fields":[{"name":"x","type":"string"}]}`},
			problem: "a.avsc: x: no category"},
		{name: "unknown kind", files: map[string]string{"e.avsc": event,
			"a.avsc": `{"type":"record","name":"A","dgw.kind":"ledger","fields":[{"name":"x","type":"string","category":"technical"}]}`},
			problem: `unknown dgw.kind ledger`},
		{name: "explicit event kind is an event", files: map[string]string{
			"e.avsc": strings.Replace(event, `"dgw.event_type":"e"`, `"dgw.event_type":"e","dgw.kind":"event"`, 1)},
			wantNames: []string{"t.E"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, text := range tt.files {
				fsys[name] = &fstest.MapFile{Data: []byte(text)}
			}
			set, err := schema.Load(fsys)
			if tt.problem != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.problem)
				require.NotEmpty(t, schema.Lint(fsys))
				return
			}
			require.NoError(t, err)
			assert.Empty(t, schema.Lint(fsys))
			var names []string
			for _, s := range set.All() {
				names = append(names, s.Name)
			}
			assert.Equal(t, tt.wantNames, names)
			assert.NotContains(t, set.Catalogue(), "")
		})
	}
	b, err := fs.ReadFile(schemas.FS, "audit.avsc")
	require.NoError(t, err)
	a, err := schema.Parse("audit.avsc", b)
	require.NoError(t, err)
	assert.Equal(t, schema.KindAudit, a.Kind)
	assert.Empty(t, a.EventType)
	set, err := schema.Load(schemas.FS)
	require.NoError(t, err)
	_, ok := set.ByFingerprint(a.Fingerprint)
	assert.False(t, ok, "an audit entry on a source topic is never decoded as an event")
}
