package synth_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/synth"
)

func TestContainsCanary(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"", false},
		{"decision allow for kz-border-api", false},
		{"canar", false},
		{"Aigerim Canary", true},
		{"NURLANOVA-CANARY", true},
		{"x@cAnArY.example", true},
		{"CNRY12345", true},
		{"cnry12345", false},
		{"+447700900123", true},
		{"+4477009", false},
		{"ip=192.0.2.17", true},
		{"ip=192.0.20.1", false},
		{"198.51.100.4", true},
		{"203.0.113.250", true},
		{"2001:db8:1:2::3", true},
		{"00:00:5e:00:53:af", true},
		{"4111111111111111", true},
		{"pan 411111******1111", false},
		{"378282246310005", true},
		{"\x00\x02Canary\xff", true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, synth.ContainsCanary([]byte(tt.in)), "%q", tt.in)
	}
	for _, m := range synth.CanaryMarkers() {
		assert.True(t, synth.ContainsCanary([]byte("<"+m+">")), "marker %q is found", m)
	}
	for _, p := range synth.TestPANs() {
		assert.True(t, synth.ContainsCanary([]byte(p)), "PAN %s is found", p)
	}
}

// TestCanaries checks the canary contract on every event type: each value
// Canaries returns is in the encoded record and recognisable, each
// personal value is covered, and no other value looks like a canary.
func TestCanaries(t *testing.T) {
	set := loadSet(t)
	g := synth.New(synth.Options{Seed: 9})
	byPath := map[string]int{} // personal path → values seen
	for range 6000 {
		ev := g.Next()
		s, _ := set.ByEventType(ev.Type)
		raw, err := codec.Encode(s, ev.Value)
		require.NoError(t, err)

		cs := synth.Canaries(ev)
		require.NotEmpty(t, cs)
		assert.Equal(t, ev.Key, cs[0], "the passenger id comes first")
		for _, c := range cs {
			require.GreaterOrEqual(t, len(c), 4)
			require.True(t, bytes.Contains(raw, []byte(c)), "%s canary %q is in the record", ev.Type, c)
			require.True(t, synth.ContainsCanary([]byte(c)), "%s canary %q is recognisable", ev.Type, c)
		}
		assert.Len(t, cs, len(uniq(cs)), "no duplicates")

		personal := synth.PersonalPaths(ev.Type)
		for _, c := range synth.CanaryFields(ev) {
			require.Contains(t, personal, c.Path)
			byPath[ev.Type+" "+c.Path]++
			if c.Path == "card.security_code" {
				assert.NotContains(t, cs, c.Value, "security codes are random digits, not searchable canaries")
				assert.Regexp(t, `^[0-9]{3,4}$`, c.Value)
				continue
			}
			assert.GreaterOrEqual(t, len(c.Value), 4, "%s %s is long enough to search for", ev.Type, c.Path)
			assert.Contains(t, cs, c.Value, "%s %s is in Canaries", ev.Type, c.Path)
		}

		// Nothing outside the personal paths looks like a canary.
		walkStrings(ev.Value, "", func(path, v string) {
			if !slices.Contains(personal, path) {
				assert.False(t, synth.ContainsCanary([]byte(v)), "%s %s = %q is not personal but looks like a canary", ev.Type, path, v)
			}
		})
	}
	for _, typ := range synth.EventTypes() {
		for _, p := range synth.PersonalPaths(typ) {
			assert.Positive(t, byPath[typ+" "+p], "%s %s holds a value in some event", typ, p)
		}
	}
}

// TestPersonalPathsCoverSchemas classifies every string leaf of every
// schema: personal (a canary) or not. A new string field fails the test
// until it is classified here or in PersonalPaths.
func TestPersonalPathsCoverSchemas(t *testing.T) {
	notPersonal := map[string][]string{
		// Envelope and routing, the decision context, booking references,
		// coarse countries and cities, currencies, standard codes.
		"*": {"event_id", "source_system", "point_of_sale", "agency_code", "corporate_account", "record_locator"},
		"booking": {"passenger.title", "passenger.citizenship", "passenger.residence_country", "contact.address.city",
			"contact.address.postal_code", "contact.address.country", "itinerary.segments.marketing_carrier",
			"itinerary.segments.operating_carrier", "itinerary.segments.flight_number", "itinerary.segments.departure_airport",
			"itinerary.segments.departure_country", "itinerary.segments.arrival_airport", "itinerary.segments.arrival_country",
			"itinerary.segments.fare_class", "itinerary.segments.seat", "itinerary.segments.status", "ticket_number",
			"meal_code", "special_service_requests.code", "fare.currency"},
		"checkin": {"flight.carrier", "flight.flight_number", "flight.departure_airport", "flight.departure_country",
			"flight.arrival_airport", "flight.arrival_country", "passenger.nationality", "passenger.residence_country",
			"document.issuing_country", "visa.type", "visa.issuing_country", "destination_address.city",
			"destination_address.country", "seat", "bag_tags", "meal_code", "ssr_codes"},
		"payment": {"payment_id", "currency", "card.expiry", "card.brand", "card.issuing_bank", "billing_address.city",
			"billing_address.postal_code", "billing_address.country", "authorisation_code"},
		"baggage": {"citizenship", "claimant.delivery_address.city", "claimant.delivery_address.postal_code",
			"claimant.delivery_address.country", "flight.carrier", "flight.flight_number", "flight.departure_airport",
			"flight.departure_country", "flight.arrival_airport", "flight.arrival_country", "claim.reference",
			"claim.bag_tags", "claim.currency"},
		"assistance": {"passenger.citizenship", "passenger.language", "flight.carrier", "flight.flight_number",
			"flight.departure_airport", "flight.departure_country", "flight.arrival_airport", "flight.arrival_country",
			"seat", "ssr_codes", "mobility_aid.kind"},
		"loyalty": {"member.residence_country", "member.citizenship", "member.preferences", "activity.partner",
			"activity.flight_number", "activity.departure_country", "activity.arrival_country", "survey_answers.question"},
		"corporate": {"employee.citizenship", "employee.role", "employee.job_type", "employee.cost_center",
			"segments.flight_number", "segments.departure_airport", "segments.departure_country", "segments.arrival_airport",
			"segments.arrival_country", "segments.cabin", "fare.currency", "meal_code"},
		"websession": {"user_agent", "operating_system", "location.country", "referrer", "pages.url", "searches"},
	}
	set := loadSet(t)
	for _, typ := range synth.EventTypes() {
		s, _ := set.ByEventType(typ)
		personal := synth.PersonalPaths(typ)
		for _, p := range personal {
			f, ok := s.Field(p)
			if assert.True(t, ok, "%s %s is a schema field", typ, p) {
				assert.True(t, f.Leaf && f.Kind == "string", "%s %s is a string leaf", typ, p)
			}
		}
		for _, f := range s.Fields {
			if !f.Leaf || f.Kind != "string" {
				continue
			}
			known := slices.Contains(personal, f.Path) || slices.Contains(notPersonal[typ], f.Path) || slices.Contains(notPersonal["*"], f.Path)
			assert.True(t, known, "%s %s (%s) is neither personal nor listed as not personal", typ, f.Path, f.Category)
			assert.False(t, slices.Contains(personal, f.Path) && slices.Contains(notPersonal[typ], f.Path), "%s %s listed twice", typ, f.Path)
		}
	}
}

func TestCanaryFieldsOfAPayment(t *testing.T) {
	g := synth.New(synth.Options{Seed: 1, Types: []string{"payment"}})
	for range 500 {
		ev := g.Next()
		card, ok := ev.Value["card"].(map[string]any)
		if !ok || card["security_code"] == nil {
			continue
		}
		fields := synth.CanaryFields(ev)
		assert.Contains(t, fields, synth.Canary{Path: "card.number", Value: card["number"].(string)})
		assert.Contains(t, fields, synth.Canary{Path: "card.security_code", Value: card["security_code"].(string)})
		assert.Contains(t, fields, synth.Canary{Path: "passenger_id", Value: ev.Key})
		return
	}
	t.Fatal("no card payment with a security code in 500 payments")
}

func uniq(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return slices.Compact(out)
}

// walkStrings calls fn for every string leaf with its dotted path (arrays
// transparent).
func walkStrings(v any, path string, fn func(path, v string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			walkStrings(e, p, fn)
		}
	case []any:
		for _, e := range x {
			walkStrings(e, path, fn)
		}
	case string:
		fn(path, x)
	}
}
