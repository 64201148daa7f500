package gateway_test

import (
	"encoding/json"
	"fmt"
	oldrand "math/rand"
	"math/rand/v2"
	"reflect"
	"testing"
	"testing/quick"

	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
)

func jsonKey(t testing.TB, c *gateway.DecisionContext) string {
	t.Helper()
	b, err := json.Marshal(c)
	require.NoError(t, err)
	return string(b)
}

// TestKeyIsJSON holds the hand-written key to encoding/json on random
// contexts: testing/quick fills every exported field, so a field added to
// the context and forgotten by AppendKey fails here instead of making two
// different contexts share a cached decision.
func TestKeyIsJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	typ := reflect.TypeFor[gateway.DecisionContext]()
	words := []string{"", "KZ", "DE", "contract", "<b>&", "\"q\"", "back\\slash", "tab\t", "nl\n", "\x00\x1f",
		"ü", "日本", "\u2028\u2029", "\xff\xfe", "a\u007fb", "consent.health_data"}
	for i := range 20_000 {
		var c gateway.DecisionContext
		if i%2 == 0 {
			v, ok := quick.Value(typ, oldrand.New(oldrand.NewSource(int64(i))))
			require.True(t, ok)
			c = v.Interface().(gateway.DecisionContext)
		} else {
			// Mostly the short codes real contexts hold, and the
			// characters encoding/json escapes.
			pick := func() string { return words[r.IntN(len(words))] }
			c.Event = gateway.EventContext{Type: pick(), Purpose: pick(), PointOfSale: pick(), OriginCountry: pick(),
				DestinationCountry: pick(), BookingChannel: pick(), AgencyCode: pick(), CorporateAccount: pick(),
				EmployerPaid: r.IntN(2) == 0}
			if r.IntN(4) > 0 {
				c.Event.Route = []string{}
				for range r.IntN(4) {
					c.Event.Route = append(c.Event.Route, pick())
				}
			}
			c.Subject = gateway.SubjectContext{Minor: r.IntN(2) == 0, Citizenship: pick(), Residence: pick(), Erased: r.IntN(2) == 0}
			if r.IntN(4) > 0 {
				c.Subject.Consents = map[string]bool{}
				for range r.IntN(20) {
					c.Subject.Consents[pick()+fmt.Sprint(r.IntN(30))] = r.IntN(2) == 0
				}
			}
			if r.IntN(4) > 0 {
				c.Subject.Objections = []string{pick()}
			}
			c.Schema.Name = pick()
		}
		if want, got := jsonKey(t, &c), c.Key(); want != got {
			at := 0
			for at < min(len(want), len(got)) && want[at] == got[at] {
				at++
			}
			t.Fatalf("context %d: the key differs from encoding/json from byte %d: want …%.60q, got …%.60q",
				i, at, want[at:], got[at:])
		}
	}
}

func TestKeyTellsContextsApart(t *testing.T) {
	base := func() *gateway.DecisionContext {
		return &gateway.DecisionContext{
			Event: gateway.EventContext{Type: "booking", Purpose: "contract", Route: []string{"KZ", "DE"},
				OriginCountry: "KZ", DestinationCountry: "DE"},
			Subject: gateway.SubjectContext{Consents: map[string]bool{"research": false}, Objections: []string{}},
			Schema:  gateway.SchemaContext{Name: "dgw.events.Booking"},
		}
	}
	seen := map[string]string{base().Key(): "base"}
	for name, change := range map[string]func(c *gateway.DecisionContext){
		"purpose":        func(c *gateway.DecisionContext) { c.Event.Purpose = "campaign" },
		"route order":    func(c *gateway.DecisionContext) { c.Event.Route = []string{"DE", "KZ"} },
		"route split":    func(c *gateway.DecisionContext) { c.Event.Route = []string{"KZDE"} },
		"consent value":  func(c *gateway.DecisionContext) { c.Subject.Consents["research"] = true },
		"consent added":  func(c *gateway.DecisionContext) { c.Subject.Consents["survey"] = false },
		"minor":          func(c *gateway.DecisionContext) { c.Subject.Minor = true },
		"erased":         func(c *gateway.DecisionContext) { c.Subject.Erased = true },
		"vital interest": func(c *gateway.DecisionContext) { c.Subject.VitalInterest = true },
		"objection":      func(c *gateway.DecisionContext) { c.Subject.Objections = []string{"research"} },
		"employer paid":  func(c *gateway.DecisionContext) { c.Event.EmployerPaid = true },
		"schema":         func(c *gateway.DecisionContext) { c.Schema.Name = "dgw.events.Checkin" },
		"agency quoting": func(c *gateway.DecisionContext) { c.Event.AgencyCode = `","purpose":"campaign` },
	} {
		c := base()
		change(c)
		k := c.Key()
		require.NotContains(t, seen, k, "%s gives the key of %s", name, seen[k])
		seen[k] = name
	}
}

func BenchmarkKey(b *testing.B) {
	c := &gateway.DecisionContext{
		Event: gateway.EventContext{Type: "booking", Purpose: "contract", PointOfSale: "KZ", Route: []string{"KZ", "DE"},
			OriginCountry: "KZ", DestinationCountry: "DE", BookingChannel: "website"},
		Subject: gateway.SubjectContext{Citizenship: "KZ", Residence: "KZ", Consents: map[string]bool{"research": true, "marketing": false},
			Objections: []string{}},
		Schema: gateway.SchemaContext{Name: "dgw.events.Booking"},
	}
	b.Run("append", func(b *testing.B) {
		buf := make([]byte, 0, 512)
		b.ReportAllocs()
		for b.Loop() {
			buf = c.AppendKey(buf[:0])
		}
	})
	b.Run("string", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = c.Key()
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(c)
		}
	})
}
