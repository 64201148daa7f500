package policy

import (
	"testing"

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
	_, ok := readSet(t.Context(), nil, nil, nil, true)
	assert.False(t, ok)
	// Views unknown: nothing to evaluate with.
	sets := readSets(t.Context(), nil, nil, d.recipients, map[string]recipientView{}, d.proj)
	for i := range sets {
		assert.Equal(t, setOf(d.proj.members[:d.proj.split]), sets[i], d.recipients[i].ID)
	}
}
