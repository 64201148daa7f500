package policy

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/policies"
)

// TestReadSets: each recipient's decisions are keyed by what its own
// decision reads, found by partial evaluation, so agency codes split the
// travel agency's entries only, and corporate accounts the employer's.
func TestReadSets(t *testing.T) {
	d, err := New(t.Context(), policies.FS)
	require.NoError(t, err)
	reads := func(id string) memberSet { return d.reads[d.views[id].index] }
	for _, id := range []string{"silkroad-travel", "steppe-energy", "ala-airport", "kz-police", "fraudshield"} {
		for _, name := range []string{"event.type", "event.purpose", "subject.consents", "subject.objections", "subject.erased", "subject.minor"} {
			assert.True(t, reads(id).has(memberOf(t, name)), "%s reads %s", id, name)
		}
		assert.Equal(t, id == "silkroad-travel", reads(id).has(memberOf(t, "event.agency_code")), "%s and the agency code", id)
		assert.Equal(t, id == "steppe-energy", reads(id).has(memberOf(t, "event.corporate_account")), "%s and the corporate account", id)
		assert.Equal(t, id == "steppe-energy", reads(id).has(memberOf(t, "event.employer_paid")), "%s and who paid", id)
		assert.False(t, reads(id).has(memberOf(t, "event.route")), "%s: the route is read through the facts", id)
	}

	booking := func(agency string) *gateway.DecisionContext {
		return &gateway.DecisionContext{
			Event: gateway.EventContext{Type: "booking", Purpose: "contract", PointOfSale: "KZ", OriginCountry: "KZ",
				DestinationCountry: "TR", Route: []string{"KZ", "TR"}, AgencyCode: agency, BookingChannel: "agency"},
			Subject: gateway.SubjectContext{Consents: map[string]bool{"cross_border": true}},
		}
	}
	agency := d.views["silkroad-travel"].r.AgencyCode
	require.NotEmpty(t, agency)
	for _, id := range []string{"silkroad-travel", "kzpay-processor", "ist-lounge"} {
		r := d.views[id].r
		first, err := d.Decide(t.Context(), booking(agency), r)
		require.NoError(t, err)
		other := booking("ZZ-OTHER")
		second, err := d.Decide(t.Context(), other, r)
		require.NoError(t, err)
		want, err := evaluate(t.Context(), d.query, other, r)
		require.NoError(t, err)
		assert.True(t, sameDecision(want, second), id)
		assert.Equal(t, id != "silkroad-travel", second.Cached, "%s: another agency's booking is another key only for the agency", id)
		if id == "silkroad-travel" {
			assert.True(t, first.Allow)
			assert.False(t, second.Allow, "another agency's booking is refused to the agency")
		}
	}
}

// TestReadSetFallsBack: a recipient partial evaluation cannot look at
// keeps the whole projection.
func TestReadSetFallsBack(t *testing.T) {
	d, err := New(t.Context(), policies.FS)
	require.NoError(t, err)
	_, _, ok := readSet(t.Context(), nil, nil, newGuards(nil), nil, true)
	assert.False(t, ok)
	// Views unknown: nothing to evaluate with.
	sets, fields := readSets(t.Context(), nil, nil, d.recipients, map[string]recipientView{}, d.proj)
	for i := range sets {
		assert.Equal(t, setOf(d.proj.members[:d.proj.split]), sets[i], d.recipients[i].ID)
		assert.Nil(t, fields[i], "%s reads the whole facts", d.recipients[i].ID)
	}
}

// TestReadSetsFactsFields: each recipient's decisions are keyed by the
// fields of the event's facts its decision reads. Only the classes served
// where the trip goes (and border authorities) read the countries a trip
// serves, so the others share one entry among trips that differ there;
// a policy that reads the facts as a whole keys everyone by all of them.
func TestReadSetsFactsFields(t *testing.T) {
	d, err := New(t.Context(), policies.FS)
	require.NoError(t, err)
	require.NotNil(t, d.facts)
	fields := func(d *Decider, id string) []string { return d.facts.views[d.factsViews[d.views[id].index]] }
	for _, id := range []string{"ala-airport", "ist-lounge", "kz-border-api", "astana-transfers"} {
		assert.Contains(t, fields(d, id), "served_countries", id)
	}
	for _, id := range []string{"kzpay-processor", "legal-partners", "kz-police", "silkroad-travel", "pulse-research"} {
		assert.Equal(t, []string{"regimes", "route_type"}, fields(d, id), id)
	}

	// Two trips from Kazakhstan that touch no other regime: one to Turkey,
	// one to the United States (both registry countries).
	trip := func(to string) *gateway.DecisionContext {
		return &gateway.DecisionContext{
			Event: gateway.EventContext{Type: "booking", Purpose: "contract", PointOfSale: "KZ", OriginCountry: "KZ",
				DestinationCountry: to, Route: []string{"KZ", to}, BookingChannel: "website"},
			Subject: gateway.SubjectContext{Residence: "KZ", Consents: map[string]bool{"cross_border": true}, Objections: []string{}},
		}
	}
	for _, id := range []string{"kzpay-processor", "ist-lounge"} {
		r := d.views[id].r
		_, err := d.Decide(t.Context(), trip("TR"), r)
		require.NoError(t, err)
		got, err := d.Decide(t.Context(), trip("US"), r)
		require.NoError(t, err)
		want, err := evaluate(t.Context(), d.query, trip("US"), r)
		require.NoError(t, err)
		assert.True(t, sameDecision(want, got), id)
		assert.Equal(t, id == "kzpay-processor", got.Cached, "%s: a trip that serves other countries is the same key only for who does not read them", id)
	}
	lounge := d.views["ist-lounge"].r
	toTR, err := d.Decide(t.Context(), trip("TR"), lounge)
	require.NoError(t, err)
	require.True(t, toTR.Cached)
	toUS, err := d.Decide(t.Context(), trip("US"), lounge)
	require.NoError(t, err)
	const notServed = "receives data only for trips to, from or through its own country (TR)"
	assert.NotContains(t, strings.Join(toTR.Reasons, "\n"), notServed)
	assert.Contains(t, strings.Join(toUS.Reasons, "\n"), notServed, "the Istanbul lounge's decisions tell the two trips apart")

	whole := policyWith(t, "extra.rego", "package dgw\n\nrefusal contains \"never\" if count(facts) == 99\n")
	d, err = New(t.Context(), whole)
	require.NoError(t, err)
	require.NotNil(t, d.facts)
	for _, r := range d.recipients {
		assert.Nil(t, fields(d, r.ID), "%s: the policy reads the facts as a whole", r.ID)
	}
}

// TestFactsFieldsNote: what a reference reads of the facts document.
func TestFactsFieldsNote(t *testing.T) {
	doc := ast.MustParseRef(FactsDocument)
	tests := []struct {
		ref    string
		all    bool
		fields []string
	}{
		{ref: "data.dgw.facts.regimes", fields: []string{"regimes"}},
		{ref: "data.dgw.facts.regimes[0]", fields: []string{"regimes"}},
		{ref: "data.dgw.facts", all: true},
		{ref: "data.dgw.facts[x]", all: true},
		{ref: "data.dgw", all: true},
		{ref: "data.dgw[x].regimes", all: true},
		{ref: "data[x]", all: true},
		{ref: "data.dgw.fact.regimes"},
		{ref: "data.other.facts.regimes"},
		{ref: "x.regimes"},
		{ref: "input.facts.regimes"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			f := factsFields{fields: map[string]bool{}}
			f.note(ast.MustParseRef(tt.ref), doc)
			assert.Equal(t, tt.all, f.all)
			if tt.fields == nil {
				assert.Empty(t, f.fields)
			} else {
				assert.Equal(t, tt.fields, sortedKeys(f.fields))
			}
		})
	}
}

// TestGuards: the rules that cannot apply to a recipient, whatever the
// event, are those whose expressions that read only the recipient (and the
// variables such expressions bind) are false for it; an expression that
// reads anything else, or may change between evaluations, never rules a
// rule out.
func TestGuards(t *testing.T) {
	const module = `package g

import rego.v1

classes := {"a", "b"}

by_type := input.event.type

recipient_class := input.recipient.type

r_eq if input.recipient.type == "a"

r_in if input.recipient.type in classes

r_doc if recipient_class == "a"

r_not if not input.recipient.type == "b"

r_event if input.event.type == "x"

r_mixed if input.recipient.type == input.event.type

r_event_doc if by_type == "a"

r_bound if {
	t := input.recipient.type
	t == "a"
}

r_event_bound if {
	t := input.event.type
	t == "a"
}

r_time if time.now_ns() < 0

r_fn if f(input.recipient.type)

f(x) if x == "a"
`
	c, err := ast.CompileModules(map[string]string{"g.rego": module})
	require.NoError(t, err)
	st := inmem.New()
	g := newGuards(c)
	never := func(class string) map[string]bool {
		view := ast.MustParseTerm(`{"recipient": {"type": "` + class + `"}}`).Value
		skip, err := g.neverApplies(t.Context(), st, view)
		require.NoError(t, err)
		out := map[string]bool{}
		for r := range skip {
			out[r.Head.Name.String()] = true
		}
		return out
	}
	assert.Empty(t, never("a"), "every rule may apply to class a")
	assert.Equal(t, map[string]bool{"r_eq": true, "r_doc": true, "r_not": true, "r_bound": true}, never("b"))
	assert.Equal(t, map[string]bool{"r_eq": true, "r_in": true, "r_doc": true, "r_bound": true}, never("c"))
}

// policyWith is the shipped policy directory with one more file.
func policyWith(t *testing.T, name, content string) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	require.NoError(t, fs.WalkDir(policies.FS, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := fs.ReadFile(policies.FS, p)
		m[p] = &fstest.MapFile{Data: b}
		return err
	}))
	m[name] = &fstest.MapFile{Data: []byte(content)}
	return m
}
