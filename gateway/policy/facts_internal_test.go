package policy

import (
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/policies"
)

// TestFactsKeying: the shipped policy's decisions are keyed by its event
// facts, so trips that differ only in what the facts summarise share
// decisions, and those decisions are each trip's own.
func TestFactsKeying(t *testing.T) {
	d, err := New(t.Context(), policies.FS)
	require.NoError(t, err)
	require.NotNil(t, d.facts, "the shipped policy's facts are used")
	require.True(t, d.proj.facts)
	for _, name := range []string{"event.route", "event.point_of_sale", "event.origin_country", "event.destination_country", "subject.residence"} {
		assert.False(t, d.proj.readsMember(memberOf(t, name)), "only the facts read %s", name)
		assert.Contains(t, d.proj.members[d.proj.split:], memberOf(t, name), "%s keys the facts", name)
	}
	for _, name := range []string{"event.purpose", "subject.consents", "event.agency_code"} {
		assert.Contains(t, d.proj.members[:d.proj.split], memberOf(t, name), "the rules outside the facts read %s", name)
	}

	trip := func(pos string, route ...string) *gateway.DecisionContext {
		return &gateway.DecisionContext{
			Event: gateway.EventContext{Type: "booking", Purpose: "contract", PointOfSale: pos,
				OriginCountry: route[0], DestinationCountry: route[len(route)-1], Route: route},
			Subject: gateway.SubjectContext{Consents: map[string]bool{"cross_border": true}},
		}
	}
	// The EEA through France and Poland, or Italy, sold in Germany or in
	// Kazakhstan: the same regimes and no registry country but KZ on the way.
	first, second := trip("KZ", "KZ", "FR", "PL"), trip("DE", "KZ", "IT")
	third := trip("KZ", "KZ", "TR") // the trip touches Türkiye: another fact
	steps := []struct {
		dc     *gateway.DecisionContext
		cached *bool // nil: either
		why    string
	}{
		{first, nil, ""},
		{second, new(true), "the second trip has the first one's facts"},
		{third, new(false), "a trip through Türkiye has other facts"},
	}
	for _, r := range d.recipients {
		for _, step := range steps {
			want, err := evaluate(t.Context(), d.query, step.dc, r)
			require.NoError(t, err)
			got, err := d.Decide(t.Context(), step.dc, r)
			require.NoError(t, err)
			if step.cached != nil {
				assert.Equal(t, *step.cached, got.Cached, "%s: %s", r.ID, step.why)
			}
			assert.True(t, sameDecision(want, got), r.ID)
		}
	}
	_, f1, err := d.eventKey(t.Context(), first, nil)
	require.NoError(t, err)
	_, f2, err := d.eventKey(t.Context(), second, nil)
	require.NoError(t, err)
	assert.NotEqual(t, f1.key, f2.key, "two event keys")
	assert.Same(t, f1.term, f2.term, "equal facts share one value")

	ist := d.views["ist-lounge"].r
	dec, err := d.Decide(t.Context(), third, ist)
	require.NoError(t, err)
	assert.NotContains(t, dec.Reasons, "recipient class lounge_operator receives data only for trips to, from or through its own country (TR), which this trip does not touch")
	dec, err = d.Decide(t.Context(), first, ist)
	require.NoError(t, err)
	assert.Contains(t, dec.Reasons, "recipient class lounge_operator receives data only for trips to, from or through its own country (TR), which this trip does not touch")
}

func memberOf(t *testing.T, name string) member {
	t.Helper()
	for m, n := range memberNames {
		if n == name {
			return member(m)
		}
	}
	t.Fatalf("no context member %s", name)
	return 0
}

// TestFactsDecisionServesConstants: the decision with the event's facts
// given opens a `with` frame of its own; the documents computed once per
// revision (constants.go) are still served inside it, since they are
// computed without the facts. (The interpreter's way; the plan's is
// TestPlanServesConstants.)
func TestFactsDecisionServesConstants(t *testing.T) {
	d, err := New(t.Context(), policies.FS, WithEvaluator(EvaluatorInterpreter))
	require.NoError(t, err)
	consts := d.facts.decision.consts
	require.NotNil(t, consts)
	eea := ast.MustParseRef("data.dgw.eea")
	_, ok := consts.fixed.get(eea)
	require.True(t, ok, "the EEA list is computed once per revision")

	v := d.views["cloudnest-it"] // in Germany
	dc := tripToFrance()
	_, f, err := d.eventKey(t.Context(), dc, nil)
	require.NoError(t, err)
	decide := func() gateway.Decision {
		dec, err := evaluateInput(t.Context(), d.facts.decision, dc, v.r, &v, f.term)
		require.NoError(t, err)
		return dec
	}
	before := decide()
	want, err := evaluate(t.Context(), d.query, dc, v.r)
	require.NoError(t, err)
	require.True(t, sameDecision(want, before))
	require.Contains(t, before.Transfer.Mechanism, "kz_", "no GDPR transfer to Germany")

	// Served, a wrong constant shows: Germany outside the EEA.
	for i, x := range consts.fixed.byLast["eea"] {
		if x.ref.Equal(eea) {
			consts.fixed.byLast["eea"][i].value = ast.SetTerm()
		}
	}
	after := decide()
	assert.NotEqual(t, before.Transfer.Mechanism, after.Transfer.Mechanism, "the decision read the constant EEA list")
}

// tripToFrance is a booking of a trip from Kazakhstan to France by a
// French resident who consented to transfers abroad: the GDPR applies, and
// a transfer to Germany is none under it (the EEA), one under Law 94-V.
func tripToFrance() *gateway.DecisionContext {
	return &gateway.DecisionContext{
		Event: gateway.EventContext{Type: "booking", Purpose: "contract", PointOfSale: "FR", OriginCountry: "KZ",
			DestinationCountry: "FR", Route: []string{"KZ", "FR"}},
		Subject: gateway.SubjectContext{Residence: "FR", Consents: map[string]bool{"cross_border": true}},
	}
}
