package redact

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/schema"
)

const (
	oKeep = gateway.OpKeep
	oMask = gateway.OpMask
	oHash = gateway.OpHash
	oGen  = gateway.OpGeneralise
	oDrop = gateway.OpDrop
)

// partner is a small hand-written recipient over the real schemas.
func partner() *gateway.Recipient {
	return &gateway.Recipient{ID: "test-partner", Name: "Test Partner", Type: "service_provider", Country: "KZ",
		Topic: "dgw.out.test-partner", Scope: gateway.Scope{
			"booking": {
				"purpose":                           ops(oKeep),
				"booked_at":                         ops(oKeep),
				"passenger.given_name":              ops(oKeep, oMask, oHash),
				"passenger.gender":                  ops(oKeep, oDrop),
				"passenger.birth_date":              ops(oGen),
				"contact.email":                     ops(oMask, oHash),
				"contact.address.city":              ops(oKeep),
				"itinerary.segments.flight_number":  ops(oKeep),
				"itinerary.segments.departure_time": ops(oGen),
				"meal_code":                         ops(oDrop),
				"companions":                        ops(oHash),
				"fare.amount":                       ops(oKeep),
			},
			"checkin": {
				"document.number":      ops(oKeep, oMask),
				"document.expiry_date": ops(oGen),
				"ssr_codes":            ops(oMask),
				"checked_bags":         ops(oHash),
			},
		}}
}

func TestDerivedSchemaShape(t *testing.T) {
	set := loadSet(t)
	x, err := New(set, []*gateway.Recipient{partner()}, DevKeyring("test"))
	require.NoError(t, err)

	ds, ok := x.Schema("test-partner", "booking")
	require.True(t, ok)
	assert.Equal(t, "dgw.recipient.test_partner.Booking", ds.Name)
	assert.Empty(t, ds.EventType, "a derived schema is not an event schema")

	type field struct {
		Path, Kind, Category string
		Leaf, Repeated       bool
	}
	var got []field
	for _, f := range ds.Fields {
		got = append(got, field{f.Path, f.Kind, f.Category, f.Leaf, f.Repeated})
	}
	assert.Equal(t, []field{
		{"purpose", "enum", "travel", true, false},
		{"booked_at", "timestamp", "travel", true, false},
		{"passenger", "record", "identity", false, false},
		{"passenger.given_name", "string", "identity", true, false},
		{"passenger.gender", "enum", "identity", true, false},
		{"passenger.birth_date", "string", "identity", true, false}, // age band
		{"contact", "record", "contact", false, false},
		{"contact.email", "string", "contact", true, false},
		{"contact.address", "record", "contact", false, false},
		{"contact.address.city", "string", "contact", true, false},
		{"itinerary", "record", "travel", false, false},
		{"itinerary.segments", "record", "travel", false, true},
		{"itinerary.segments.flight_number", "string", "travel", true, true},
		{"itinerary.segments.departure_time", "date", "travel", true, true}, // timestamp → date
		{"meal_code", "string", "sensitive", true, false},
		{"companions", "string", "identity", true, true}, // hashed per element
		{"fare", "record", "payment", false, false},
		{"fare.amount", "decimal", "payment", true, false},
	}, got)

	// Every field at every level is ["null", T] with default null.
	var check func(rec *avro.RecordSchema, prefix string)
	check = func(rec *avro.RecordSchema, prefix string) {
		for _, f := range rec.Fields() {
			p := prefix + f.Name()
			u, ok := f.Type().(*avro.UnionSchema)
			require.True(t, ok, "%s is not a union", p)
			require.Len(t, u.Types(), 2, p)
			assert.Equal(t, avro.Null, u.Types()[0].Type(), p)
			assert.True(t, f.HasDefault(), p)
			assert.Nil(t, f.Default(), p)
			inner := u.Types()[1]
			if a, ok := inner.(*avro.ArraySchema); ok {
				inner = a.Items()
			}
			if r, ok := inner.(*avro.RecordSchema); ok {
				check(r, p+".")
			}
		}
	}
	check(ds.Avro, "")

	checkin, ok := x.Schema("test-partner", "checkin")
	require.True(t, ok)
	kinds := map[string]string{}
	for _, f := range checkin.Fields {
		kinds[f.Path] = f.Kind
	}
	assert.Equal(t, map[string]string{
		"document": "record", "document.number": "string", "document.expiry_date": "int", // date → year
		"checked_bags": "string", // hash of an int
		"ssr_codes":    "string", // array of strings, masked per element
	}, kinds)
}

func TestDerivedSchemaAnnotations(t *testing.T) {
	set := loadSet(t)
	kzpay := &gateway.Recipient{ID: "kzpay-processor", Scope: gateway.Scope{"payment": {
		"card.number": ops(oKeep), "risk.ip_address": ops(oMask)}}}
	fraud := &gateway.Recipient{ID: "fraudshield", Scope: gateway.Scope{"payment": {
		"card.number": ops(oMask, oHash), "risk.ip_address": ops(oKeep)}}}
	x, err := New(set, []*gateway.Recipient{kzpay, fraud}, DevKeyring("test"))
	require.NoError(t, err)

	field := func(recipient, path string) *avro.Field {
		ds, ok := x.Schema(recipient, "payment")
		require.True(t, ok)
		rec := ds.Avro
		parts := strings.Split(path, ".")
		for i, p := range parts {
			for _, f := range rec.Fields() {
				if f.Name() != p {
					continue
				}
				if i == len(parts)-1 {
					return f
				}
				rec = f.Type().(*avro.UnionSchema).Types()[1].(*avro.RecordSchema)
			}
		}
		t.Fatalf("%s: no field %s", recipient, path)
		return nil
	}
	tests := []struct {
		recipient, path string
		category        string
		format          any
		operators       []any
		docHas          string
	}{
		{"kzpay-processor", "card.number", "payment", "pan", []any{"keep"}, "Primary account number (PAN). Sent as recorded."},
		{"kzpay-processor", "risk.ip_address", "technical", nil, []any{"mask"}, "/24"},
		{"fraudshield", "card.number", "payment", nil, []any{"mask", "hash"}, "last four digits"},
		{"fraudshield", "risk.ip_address", "technical", "ip", []any{"keep"}, "as recorded"},
	}
	for _, tt := range tests {
		t.Run(tt.recipient+"/"+tt.path, func(t *testing.T) {
			f := field(tt.recipient, tt.path)
			assert.Equal(t, tt.format, f.Prop("format"), "format is carried only when the value may be kept")
			assert.Equal(t, tt.operators, f.Prop("dgw.operators"))
			assert.Equal(t, tt.category, f.Prop("category"))
			assert.Contains(t, f.Doc(), tt.docHas)
		})
	}
	// Records carry their category too.
	assert.Equal(t, "payment", field("fraudshield", "card").Prop("category"))
	assert.Equal(t, "technical", field("fraudshield", "risk").Prop("category"))
}

func TestDerivedSchemaParsesAndIsStable(t *testing.T) {
	set := loadSet(t)
	x1, err := New(set, []*gateway.Recipient{partner()}, DevKeyring("a"))
	require.NoError(t, err)
	// Same scope, operators listed in another order, another key: same schemas.
	p := partner()
	p.Scope["booking"]["passenger.given_name"] = ops(oHash, oKeep, oMask)
	x2, err := New(set, []*gateway.Recipient{p}, DevKeyring("b"))
	require.NoError(t, err)

	all1, all2 := x1.Schemas(), x2.Schemas()
	require.Len(t, all1, 2)
	require.Len(t, all2, 2)
	for i, d := range all1 {
		assert.Equal(t, string(d.JSON), string(all2[i].JSON))
		assert.Equal(t, d.Schema.Fingerprint, all2[i].Schema.Fingerprint)

		// Plain hamba/avro reads the text and agrees on the fingerprint.
		plain, err := avro.ParseBytesWithCache(d.JSON, "", &avro.SchemaCache{})
		require.NoError(t, err)
		fp, err := plain.FingerprintUsing(avro.CRC64Avro)
		require.NoError(t, err)
		assert.Equal(t, d.Schema.Fingerprint, binary.BigEndian.Uint64(fp), d.EventType)

		// And so does schema.ParseDerived.
		again, err := schema.ParseDerived("x.avsc", d.JSON)
		require.NoError(t, err)
		assert.Equal(t, d.Schema.Fingerprint, again.Fingerprint)
		assert.NotEqual(t, d.Schema.Fingerprint, func() uint64 { s, _ := set.ByEventType(d.EventType); return s.Fingerprint }())
	}
	assert.Equal(t, "booking", all1[0].EventType)
	assert.Equal(t, "checkin", all1[1].EventType)

	// A different recipient with the same scope gets its own namespace and fingerprint.
	other := partner()
	other.ID = "other-partner"
	x3, err := New(set, []*gateway.Recipient{other}, DevKeyring("a"))
	require.NoError(t, err)
	s3, _ := x3.Schema("other-partner", "booking")
	s1, _ := x1.Schema("test-partner", "booking")
	assert.Equal(t, "dgw.recipient.other_partner.Booking", s3.Name)
	assert.NotEqual(t, s1.Fingerprint, s3.Fingerprint)
}

func TestSchemasSortedAndExport(t *testing.T) {
	set := loadSet(t)
	b := &gateway.Recipient{ID: "b-recipient", Scope: gateway.Scope{"payment": {"currency": ops(oKeep)}, "booking": {"purpose": ops(oKeep)}}}
	a := &gateway.Recipient{ID: "a-recipient", Scope: gateway.Scope{"websession": {"ip_address": ops(oMask)}}}
	x, err := New(set, []*gateway.Recipient{b, a}, Keyring{})
	require.NoError(t, err)
	all := x.Schemas()
	var names []string
	for _, d := range all {
		names = append(names, d.Recipient+"/"+d.EventType)
	}
	assert.Equal(t, []string{"a-recipient/websession", "b-recipient/booking", "b-recipient/payment"}, names)

	dir := t.TempDir()
	require.NoError(t, Export(dir, all))
	for _, d := range all {
		text, err := os.ReadFile(filepath.Join(dir, d.Recipient, d.EventType+".avsc"))
		require.NoError(t, err)
		assert.Equal(t, d.JSON, text)
		s, err := schema.ParseDerived("f", text)
		require.NoError(t, err)
		assert.Equal(t, d.Schema.Fingerprint, s.Fingerprint)
	}

	bad := []Derived{{Recipient: "../evil", EventType: "booking", JSON: all[0].JSON}}
	assert.Error(t, Export(dir, bad), "recipient ids must not escape the directory")
	assert.Error(t, Export(dir, []Derived{all[0], all[0]}), "duplicates")
}

func TestNewRejects(t *testing.T) {
	set := loadSet(t)
	tests := []struct {
		name  string
		scope gateway.Scope
		keys  Keyring
		want  []string // substrings of the error
	}{
		{"unknown event type", gateway.Scope{"boarding": {"seat": ops(oKeep)}}, Keyring{},
			[]string{"r-1", "boarding", "no schema defines it"}},
		{"unknown path", gateway.Scope{"booking": {"passenger.shoe_size": ops(oKeep)}}, Keyring{},
			[]string{"r-1", "booking", "passenger.shoe_size", "no such field"}},
		{"record, not a leaf", gateway.Scope{"booking": {"passenger": ops(oKeep)}}, Keyring{},
			[]string{"booking", "field passenger", "not a leaf"}},
		{"array of records, not a leaf", gateway.Scope{"booking": {"itinerary.segments": ops(oKeep)}}, Keyring{},
			[]string{"itinerary.segments", "not a leaf"}},
		{"card security code kept", gateway.Scope{"payment": {"card.security_code": ops(oKeep)}}, Keyring{},
			[]string{"payment", "card.security_code", "PCI DSS 3.3.1"}},
		{"card security code even hashed or dropped", gateway.Scope{"payment": {"card.security_code": ops(oHash, oDrop)}}, DevKeyring("x"),
			[]string{"card.security_code", "PCI DSS 3.3.1"}},
		{"unknown operator", gateway.Scope{"booking": {"purpose": ops("encrypt")}}, Keyring{},
			[]string{"purpose", `unknown operator "encrypt"`}},
		{"no operators", gateway.Scope{"booking": {"purpose": nil}}, Keyring{},
			[]string{"purpose", "no operators"}},
		{"empty event scope", gateway.Scope{"booking": {}}, Keyring{},
			[]string{"booking", "names no field"}},
		{"mask on a date", gateway.Scope{"booking": {"passenger.birth_date": ops(oMask)}}, Keyring{},
			[]string{"passenger.birth_date", "mask applies to strings only", "date"}},
		{"mask on an enum", gateway.Scope{"booking": {"passenger.gender": ops(oMask)}}, Keyring{},
			[]string{"passenger.gender", "mask applies to strings only"}},
		{"mask on a number", gateway.Scope{"checkin": {"checked_bags": ops(oMask)}}, Keyring{},
			[]string{"checked_bags", "mask applies to strings only"}},
		{"generalise on a string", gateway.Scope{"booking": {"passenger.given_name": ops(oGen)}}, Keyring{},
			[]string{"passenger.given_name", "generalise applies to dates"}},
		{"generalise on a decimal", gateway.Scope{"booking": {"fare.amount": ops(oGen)}}, Keyring{},
			[]string{"fare.amount", "generalise applies to dates"}},
		{"keep and generalise on a date", gateway.Scope{"checkin": {"document.expiry_date": ops(oKeep, oGen)}}, Keyring{},
			[]string{"r-1", "checkin", "document.expiry_date", "different types", "keep", "generalise"}},
		{"keep and hash on an int", gateway.Scope{"checkin": {"checked_bags": ops(oKeep, oHash)}}, DevKeyring("x"),
			[]string{"checked_bags", "different types"}},
		{"keep and hash on an enum", gateway.Scope{"booking": {"purpose": ops(oHash, oKeep)}}, DevKeyring("x"),
			[]string{"purpose", "different types"}},
		{"hash without a key", gateway.Scope{"booking": {"contact.email": ops(oMask, oHash)}}, Keyring{},
			[]string{"r-1", "no hash key", "DGW_HASH_KEY_R_1"}},
		{"hash without a key in the env keyring", gateway.Scope{"booking": {"contact.email": ops(oHash)}},
			mustEnv(t, "DGW_HASH_KEY_OTHER="+strings.Repeat("k", 32)), []string{"r-1", "no hash key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &gateway.Recipient{ID: "r-1", Scope: tt.scope}
			x, err := New(set, []*gateway.Recipient{r}, tt.keys)
			require.Error(t, err)
			assert.Nil(t, x, "never a partial redactor")
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func mustEnv(t *testing.T, environ ...string) Keyring {
	t.Helper()
	k, err := KeyringFromEnv(environ)
	require.NoError(t, err)
	return k
}

func TestNewListsEveryProblemAndChecksRecipients(t *testing.T) {
	set := loadSet(t)
	good := &gateway.Recipient{ID: "good", Scope: gateway.Scope{"booking": {"purpose": ops(oKeep)}}}
	bad1 := &gateway.Recipient{ID: "bad-one", Scope: gateway.Scope{"payment": {"card.security_code": ops(oDrop)}}}
	bad2 := &gateway.Recipient{ID: "bad-two", Scope: gateway.Scope{"nope": {"x": ops(oKeep)}}}
	_, err := New(set, []*gateway.Recipient{good, bad1, bad2}, Keyring{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad-one")
	assert.Contains(t, err.Error(), "bad-two")
	assert.NotContains(t, err.Error(), "good")

	_, err = New(set, []*gateway.Recipient{good, good}, Keyring{})
	require.ErrorContains(t, err, "good is registered twice")
	_, err = New(set, []*gateway.Recipient{nil}, Keyring{})
	require.ErrorContains(t, err, "no id")
	_, err = New(nil, nil, Keyring{})
	require.Error(t, err)

	// A recipient without any scope gets no schemas, and that is fine.
	x, err := New(set, []*gateway.Recipient{{ID: "nothing"}}, Keyring{})
	require.NoError(t, err)
	assert.Empty(t, x.Schemas())
}

func TestEveryEventTypeDerives(t *testing.T) {
	// A recipient scoped to every leaf of every schema with keep (and hash
	// where it also yields string) derives schemas that parse everywhere.
	set := loadSet(t)
	r := &gateway.Recipient{ID: "all-fields", Scope: gateway.Scope{}}
	for _, s := range set.All() {
		m := map[string][]gateway.Operator{}
		for _, f := range s.Fields {
			if f.Leaf && f.Format != FormatCardSecurityCode {
				m[f.Path] = ops(oKeep, oDrop)
				if f.Kind == "string" {
					m[f.Path] = ops(oKeep, oMask, oHash, oDrop)
				}
			}
		}
		r.Scope[s.EventType] = m
	}
	x, err := New(set, []*gateway.Recipient{r}, DevKeyring("x"))
	require.NoError(t, err)
	require.Len(t, x.Schemas(), len(set.All()))
	for _, d := range x.Schemas() {
		src, _ := set.ByEventType(d.EventType)
		leaves := 0
		for _, f := range src.Fields {
			if f.Leaf && f.Format != FormatCardSecurityCode {
				leaves++
				df, ok := d.Schema.Field(f.Path)
				if assert.True(t, ok, "%s %s", d.EventType, f.Path) {
					assert.Equal(t, f.Kind, df.Kind, "%s %s keeps its type", d.EventType, f.Path)
					assert.Equal(t, f.Repeated, df.Repeated, "%s %s", d.EventType, f.Path)
				}
			}
		}
		n := 0
		for _, f := range d.Schema.Fields {
			if f.Leaf {
				n++
			}
		}
		assert.Equal(t, leaves, n, d.EventType)
		_, err := avro.ParseBytesWithCache(d.JSON, "", &avro.SchemaCache{})
		require.NoError(t, err, d.EventType)
	}
}
