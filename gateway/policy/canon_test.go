package policy_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway/policy"
)

func tinyCountries(t *testing.T, reasons string) *policy.Decider {
	t.Helper()
	rules := `package dgw

recipient_classes := {"payment_processor"}

sensitive_fields := {}

eea := {c | some c in data.data.countries.eea}

decision := {
	"allow": true,
	"fields": {"amount": "keep"},
	"basis": "contract",
	"transfer": {"cross_border": false, "mechanism": "domestic"},
	"reasons": reasons,
}

` + reasons + "\n"
	fsys := tinyPolicy(tinyMasked, "decision.rego", rules,
		"data/countries.json", `{"countries": {"eea": ["AT", "BE", "FR", "IT"]}}`)
	d, err := policy.New(t.Context(), fsys, policy.WithCatalogue(tinyCatalogue))
	require.NoError(t, err)
	return d
}

// TestCacheCountriesNamed: countries the policy cannot tell apart share a
// decision, unless the decision names one; then each context gets its
// own.
func TestCacheCountriesNamed(t *testing.T) {
	d := tinyCountries(t, `reasons := [sprintf("sold in %s", [input.event.point_of_sale])] if input.event.point_of_sale in eea

else := []`)
	r := d.Recipients()[0]
	decide := func(pos string) ([]string, bool) {
		dc := tinyPayment()
		dc.Event.PointOfSale = pos
		got, err := d.Decide(t.Context(), dc, r)
		require.NoError(t, err)
		return got.Reasons, got.Cached
	}
	reasons, _ := decide("FR")
	assert.Equal(t, []string{"sold in FR"}, reasons)
	reasons, cached := decide("IT")
	assert.Equal(t, []string{"sold in IT"}, reasons)
	assert.False(t, cached, "a decision naming a country is not shared with another country")
	reasons, _ = decide("US")
	assert.Empty(t, reasons)
	reasons, cached = decide("CN")
	assert.Empty(t, reasons)
	assert.True(t, cached, "two countries no list names share a decision that names neither")
}

// TestCacheCountriesSpelt: a policy that tells countries of one list apart
// by their spelling keeps them apart in the cache (the load-time check
// turns the abstraction off).
func TestCacheCountriesSpelt(t *testing.T) {
	d := tinyCountries(t, `reasons := ["an I country"] if startswith(input.event.point_of_sale, "I")

else := []`)
	r := d.Recipients()[0]
	for _, c := range []struct {
		pos  string
		want []string
	}{{"IT", []string{"an I country"}}, {"AT", []string{}}, {"FR", []string{}}, {"IT", []string{"an I country"}}} {
		dc := tinyPayment()
		dc.Event.PointOfSale = c.pos
		got, err := d.Decide(t.Context(), dc, r)
		require.NoError(t, err)
		assert.Equal(t, c.want, got.Reasons, c.pos)
	}
}
