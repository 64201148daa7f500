package codec_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/gateway/synth"
)

func TestContextOfABooking(t *testing.T) {
	set := loadSet(t)
	dc, err := codec.Context(schemaOf(t, set, "booking"), bookingValue())
	require.NoError(t, err)
	assert.Equal(t, gateway.DecisionContext{
		Event: gateway.EventContext{
			Type: "booking", Purpose: "contract", PointOfSale: "KZ",
			OriginCountry: "KZ", DestinationCountry: "KZ",
			Route:          []string{"KZ", "DE", "US", "DE", "KZ"},
			BookingChannel: "travel_agency", AgencyCode: "96123456",
		},
		Subject: gateway.SubjectContext{Citizenship: "KZ", Residence: "DE", Consents: map[string]bool{}, Objections: []string{}},
		Schema:  gateway.SchemaContext{Name: "dgw.events.booking.Booking"},
	}, dc)
}

func TestContextRoute(t *testing.T) {
	set := loadSet(t)
	s := schemaOf(t, set, "booking")
	seg := func(from, to string) any {
		return map[string]any{"departure_country": from, "arrival_country": to}
	}
	tests := []struct {
		name     string
		segments []any
		route    []string
		from, to string
	}{
		{"no segments", []any{}, []string{}, "", ""},
		{"domestic", []any{seg("KZ", "KZ")}, []string{"KZ"}, "KZ", "KZ"},
		{"one way", []any{seg("KZ", "DE")}, []string{"KZ", "DE"}, "KZ", "DE"},
		{"connection", []any{seg("KZ", "DE"), seg("DE", "US")}, []string{"KZ", "DE", "US"}, "KZ", "US"},
		{"feeder then abroad", []any{seg("KZ", "KZ"), seg("KZ", "GB")}, []string{"KZ", "GB"}, "KZ", "GB"},
		{"round trip", []any{seg("KZ", "TR"), seg("TR", "KZ")}, []string{"KZ", "TR", "KZ"}, "KZ", "KZ"},
		{"open jaw keeps order", []any{seg("KZ", "DE"), seg("FR", "KZ")}, []string{"KZ", "DE", "FR", "KZ"}, "KZ", "KZ"},
		{"empty country skipped", []any{seg("KZ", ""), seg("", "AE")}, []string{"KZ", "AE"}, "KZ", "AE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := bookingValue()
			v["itinerary"] = map[string]any{"segments": tt.segments}
			dc, err := codec.Context(s, v)
			require.NoError(t, err)
			assert.Equal(t, tt.route, dc.Event.Route)
			assert.Equal(t, tt.from, dc.Event.OriginCountry)
			assert.Equal(t, tt.to, dc.Event.DestinationCountry)
		})
	}
}

func TestContextMinor(t *testing.T) {
	set := loadSet(t)
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		birth   time.Time
		paxType string
		minor   bool
	}{
		{"adult", day(1984, 3, 14), "ADT", false},
		{"18 today", day(2008, 11, 2), "ADT", false},
		{"18 tomorrow", day(2008, 11, 3), "ADT", true},
		{"teenager on an adult fare", day(2012, 1, 1), "ADT", true},
		{"child by type", day(1984, 3, 14), "CHD", true},
		{"infant", day(2026, 1, 5), "INF", true},
		{"unaccompanied minor", day(2017, 6, 1), "UMNR", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := bookingValue()
			v["occurred_at"] = at
			p := v["passenger"].(map[string]any)
			p["birth_date"], p["passenger_type"] = tt.birth, tt.paxType
			dc, err := codec.Context(schemaOf(t, set, "booking"), v)
			require.NoError(t, err)
			assert.Equal(t, tt.minor, dc.Subject.Minor)
		})
	}
	// An optional birth date that is null says nothing.
	pay := synth.New(synth.Options{Seed: 1, Types: []string{"payment"}}).Next().Value
	pay["passenger_birth_date"] = nil
	dc, err := codec.Context(schemaOf(t, set, "payment"), pay)
	require.NoError(t, err)
	assert.False(t, dc.Subject.Minor)
	pay["passenger_birth_date"] = day(2015, 5, 5)
	dc, err = codec.Context(schemaOf(t, set, "payment"), pay)
	require.NoError(t, err)
	assert.True(t, dc.Subject.Minor)
}

func TestContextConsents(t *testing.T) {
	set := loadSet(t)
	for _, consent := range []bool{true, false} {
		v := synth.New(synth.Options{Seed: 1, Types: []string{"assistance"}}).Next().Value
		v["explicit_consent"] = consent
		dc, err := codec.Context(schemaOf(t, set, "assistance"), v)
		require.NoError(t, err)
		assert.Equal(t, map[string]bool{"health_data": consent}, dc.Subject.Consents)

		w := synth.New(synth.Options{Seed: 1, Types: []string{"websession"}}).Next().Value
		w["cookie_consent"] = map[string]any{"analytics": consent, "marketing": !consent, "given_at": nil}
		dc, err = codec.Context(schemaOf(t, set, "websession"), w)
		require.NoError(t, err)
		assert.Equal(t, map[string]bool{"analytics_cookies": consent, "marketing_cookies": !consent}, dc.Subject.Consents)
	}
	v := synth.New(synth.Options{Seed: 1, Types: []string{"assistance"}}).Next().Value
	v["explicit_consent"] = "yes CANARY"
	_, err := codec.Context(schemaOf(t, set, "assistance"), v)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "field explicit_consent: consent context needs a boolean")
	assert.NotContains(t, err.Error(), "CANARY")
}

func TestContextEmployer(t *testing.T) {
	set := loadSet(t)
	g := synth.New(synth.Options{Seed: 3, Types: []string{"corporate"}})
	v := g.Next().Value
	v["corporate_account"], v["employer_paid"], v["agency_code"] = "CORP-STEPPE-ENERGY", true, nil
	dc, err := codec.Context(schemaOf(t, set, "corporate"), v)
	require.NoError(t, err)
	assert.Equal(t, "CORP-STEPPE-ENERGY", dc.Event.CorporateAccount)
	assert.True(t, dc.Event.EmployerPaid)
	assert.Empty(t, dc.Event.AgencyCode)
}

// TestContextReadsOnlyAnnotatedFields replaces every value that is not
// annotated with a context or role by a canary: the context is unchanged,
// and no synthetic event's context holds a personal value.
func TestContextReadsOnlyAnnotatedFields(t *testing.T) {
	set := loadSet(t)
	g := synth.New(synth.Options{Seed: 8})
	for range 3000 {
		ev := g.Next()
		s := schemaOf(t, set, ev.Type)
		want, err := codec.Context(s, ev.Value)
		require.NoError(t, err)
		require.False(t, synth.ContainsCanary([]byte(want.Key())), "%s context holds a personal value: %s", ev.Type, want.Key())

		poisoned := poison(s, ev.Value, "")
		got, err := codec.Context(s, poisoned)
		require.NoError(t, err)
		require.Equal(t, want, got, "%s context depends on a field without annotation", ev.Type)
	}
}

// poison copies v with every leaf that has no context or role annotation
// replaced by a canary string, and every record without annotated fields
// by one.
func poison(s *schema.Schema, v map[string]any, prefix string) map[string]any {
	out := map[string]any{}
	for k, x := range v {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		f, _ := s.Field(p)
		annotated := f.Context != "" || f.Role != ""
		switch y := x.(type) {
		case map[string]any:
			if len(s.AnnotatedChildren(p)) == 0 {
				out[k] = "CANARY record"
			} else {
				out[k] = poison(s, y, p)
			}
		case []any:
			if f.Leaf {
				out[k] = []any{"CANARY item"}
				continue
			}
			items := make([]any, len(y))
			for i, e := range y {
				items[i] = poison(s, e.(map[string]any), p)
			}
			out[k] = items
		default:
			if annotated {
				out[k] = x
			} else {
				out[k] = "CANARY " + strings.ToUpper(k)
			}
		}
	}
	return out
}
