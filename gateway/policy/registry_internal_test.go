package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/policies"
	"github.com/dgwproject/dgw/schemas"
)

var testClasses = []string{"payment_processor", "travel_agency", "employer"}

// FuzzRegistry: any registry bytes give recipients or problems, never a
// panic; a registry without problems has unique ids and topics and only
// scope paths of the catalogue.
func FuzzRegistry(f *testing.F) {
	set, err := schema.Load(schemas.FS)
	require.NoError(f, err)
	cat := set.Catalogue()
	shipped, err := policies.FS.ReadFile("data/recipients.json")
	require.NoError(f, err)
	f.Add(shipped)
	index := fieldIndex(cat)
	classes := slices.Concat(testClasses, []string{"border_authority", "it_provider", "law_enforcement", "airport_operator",
		"lounge_operator", "service_provider", "market_research", "investigator", "anti_fraud", "law_firm", "web_analytics"})
	f.Add([]byte(`{"recipients": [{"id": "a", "name": "A", "type": "payment_processor", "country": "KZ", "topic": "t",
		"safeguards": [], "scope": {"payment": {"amount": ["keep"]}}}]}`))
	f.Add([]byte(`{"recipients": [null, {"id": ""}]}`))
	f.Add([]byte(`{"recipients": [{"id": "a", "scope": {"payment": {"card.security_code": ["keep"]}}}]}`))
	f.Add([]byte(`{"recipients": `))
	f.Fuzz(func(t *testing.T, raw []byte) {
		rs, problems := registry(raw, classes, cat)
		for _, p := range problems {
			assert.Equal(t, registryFile, p.File)
			assert.GreaterOrEqual(t, p.Line, 0)
		}
		if len(problems) > 0 {
			return
		}
		ids, topics := map[string]bool{}, map[string]bool{}
		for _, r := range rs {
			assert.False(t, ids[r.ID], "duplicate id %s", r.ID)
			assert.False(t, topics[r.Topic], "duplicate topic %s", r.Topic)
			ids[r.ID], topics[r.Topic] = true, true
			for et, paths := range r.Scope {
				for p := range paths {
					f, ok := index[et][p]
					assert.True(t, ok && f.Leaf && f.Format != formatCardSecurityCode, "%s %s", et, p)
				}
			}
		}
	})
}

func TestRegistryProblems(t *testing.T) {
	set, err := schema.Load(schemas.FS)
	require.NoError(t, err)
	cat := set.Catalogue()
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{"missing", "", "missing: the recipients registry is required"},
		{"syntax", "{\n\"recipients\": [\n}", "decode registry"},
		{"unknown member", `{"recipients": [{"id": "a", "scopes": {}}]}`, `unknown field "scopes"`},
		{"empty", `{"recipients": []}`, "no recipients"},
		{"null entry", `{"recipients": [null]}`, "recipient 0 is null"},
		{"no id", `{"recipients": [{"name": "x"}]}`, "recipient 0 has no id"},
		{"no name", `{"recipients": [{"id": "a", "type": "payment_processor", "country": "KZ", "topic": "t", "scope": {"payment": {"amount": ["keep"]}}}]}`, "recipient a: no name"},
		{"bad country", `{"recipients": [{"id": "a", "name": "A", "type": "payment_processor", "country": "kz", "topic": "t", "scope": {"payment": {"amount": ["keep"]}}}]}`, `country "kz" is not an ISO 3166-1 alpha-2 code`},
		{"no topic", `{"recipients": [{"id": "a", "name": "A", "type": "payment_processor", "country": "KZ", "scope": {"payment": {"amount": ["keep"]}}}]}`, "recipient a: no topic"},
		{"agency without code", `{"recipients": [{"id": "a", "name": "A", "type": "travel_agency", "country": "KZ", "topic": "t", "scope": {"payment": {"amount": ["keep"]}}}]}`, "needs its agency_code"},
		{"employer without account", `{"recipients": [{"id": "a", "name": "A", "type": "employer", "country": "KZ", "topic": "t", "scope": {"payment": {"amount": ["keep"]}}}]}`, "needs its corporate_account"},
		{"empty scope", `{"recipients": [{"id": "a", "name": "A", "type": "payment_processor", "country": "KZ", "topic": "t"}]}`, "empty contract scope"},
		{"unknown event type", `{"recipients": [{"id": "a", "name": "A", "type": "payment_processor", "country": "KZ", "topic": "t", "scope": {"invoice": {"amount": ["keep"]}}}]}`, `scope names event type "invoice"`},
		{"no operators", `{"recipients": [{"id": "a", "name": "A", "type": "payment_processor", "country": "KZ", "topic": "t", "scope": {"payment": {"amount": []}}}]}`, "payment field amount: no operators"},
		{"generalise a string", `{"recipients": [{"id": "a", "name": "A", "type": "payment_processor", "country": "KZ", "topic": "t", "scope": {"payment": {"currency": ["generalise"]}}}]}`, "generalise applies to dates and timestamps"},
		{"mixed types", `{"recipients": [{"id": "a", "name": "A", "type": "payment_processor", "country": "KZ", "topic": "t", "scope": {"payment": {"passenger_birth_date": ["keep", "generalise"]}}}]}`, "operators keep, generalise give different types"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw []byte
			if tt.raw != "" {
				raw = []byte(tt.raw)
			}
			_, problems := registry(raw, testClasses, cat)
			var msgs []string
			for _, p := range problems {
				msgs = append(msgs, p.String())
			}
			assert.Contains(t, strings.Join(msgs, "\n"), tt.want)
		})
	}
}

// TestRegistryWithoutCatalogue: without a catalogue, paths are not checked
// but operators are.
func TestRegistryWithoutCatalogue(t *testing.T) {
	raw := `{"recipients": [{"id": "a", "name": "A", "type": "payment_processor", "country": "KZ", "topic": "t",
		"scope": {"invoice": {"nowhere": ["keep"], "amount": ["show"]}}}]}`
	rs, problems := registry([]byte(raw), testClasses, nil)
	require.Len(t, rs, 1)
	require.Len(t, problems, 1)
	assert.Equal(t, `data/recipients.json:2: recipient a, invoice field amount: unknown operator "show" (keep, generalise, mask, hash, drop)`, problems[0].String())
	assert.Equal(t, gateway.Scope{"invoice": {"nowhere": {gateway.OpKeep}, "amount": {"show"}}}, rs[0].Scope)
}
