package synth_test

import (
	"fmt"
	"math"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/gateway/synth"
	"github.com/dgwproject/dgw/schemas"
)

func loadSet(t testing.TB) *schema.Set {
	t.Helper()
	set, err := schema.Load(schemas.FS)
	require.NoError(t, err)
	return set
}

// stream returns the first n events of a generator as JSON lines.
func stream(t *testing.T, set *schema.Set, o synth.Options, n int) []string {
	t.Helper()
	g := synth.New(o)
	out := make([]string, n)
	for i := range out {
		ev := g.Next()
		s, ok := set.ByEventType(ev.Type)
		require.True(t, ok, ev.Type)
		j, err := codec.ToJSON(s, ev.Value)
		require.NoError(t, err)
		out[i] = ev.Type + " " + ev.Key + " " + string(j)
	}
	return out
}

func TestDeterministic(t *testing.T) {
	set := loadSet(t)
	a := stream(t, set, synth.Options{Seed: 7}, 1500)
	b := stream(t, set, synth.Options{Seed: 7}, 1500)
	require.Equal(t, a, b, "the same seed gives the same stream")

	c := stream(t, set, synth.Options{Seed: 8}, 1500)
	same := 0
	for i := range a {
		if a[i] == c[i] {
			same++
		}
	}
	assert.Zero(t, same, "a different seed gives different events")

	d := stream(t, set, synth.Options{Seed: 7, Start: synth.DefaultStart()}, 1500)
	assert.Equal(t, a, d, "a zero Start means DefaultStart")
}

func TestStart(t *testing.T) {
	start := time.Date(2031, 3, 1, 12, 0, 0, 0, time.UTC)
	g := synth.New(synth.Options{Seed: 3, Start: start, Types: []string{"booking"}})
	for range 200 {
		ev := g.Next()
		booked := ev.Value["booked_at"].(time.Time)
		require.False(t, booked.Before(start), "bookings start at Options.Start")
		require.True(t, booked.Before(start.AddDate(0, 0, 30)), "200 bookings fit in a month")
	}
}

func TestTypesFilter(t *testing.T) {
	set := loadSet(t)
	all := synth.New(synth.Options{Seed: 11})
	only := synth.New(synth.Options{Seed: 11, Types: []string{"baggage", "assistance"}})
	var want []string
	for len(want) < 60 {
		ev := all.Next()
		if ev.Type == "baggage" || ev.Type == "assistance" {
			s, _ := set.ByEventType(ev.Type)
			j, err := codec.ToJSON(s, ev.Value)
			require.NoError(t, err)
			want = append(want, string(j))
		}
	}
	for i := range want {
		ev := only.Next()
		require.Contains(t, []string{"baggage", "assistance"}, ev.Type)
		s, _ := set.ByEventType(ev.Type)
		j, err := codec.ToJSON(s, ev.Value)
		require.NoError(t, err)
		require.Equal(t, want[i], string(j), "a filtered stream is the unfiltered one without the other types, ids included")
	}
}

func TestOptionsValidate(t *testing.T) {
	require.NoError(t, synth.Options{}.Validate())
	require.NoError(t, synth.Options{Types: synth.EventTypes()}.Validate())
	err := synth.Options{Types: []string{"booking", "subject_request"}}.Validate()
	require.ErrorIs(t, err, synth.ErrUnknownType)
	assert.Contains(t, err.Error(), "subject_request")
	assert.Panics(t, func() { synth.New(synth.Options{Types: []string{"nope"}}) })
}

func TestEveryTypeHasASchema(t *testing.T) {
	set := loadSet(t)
	for _, typ := range synth.EventTypes() {
		_, ok := set.ByEventType(typ)
		assert.True(t, ok, typ)
	}
	assert.NotContains(t, synth.EventTypes(), "subject_request")
}

// TestEncodeRoundTrip proves every event of every type is valid for its
// schema: it encodes, and decodes back to an equal value.
func TestEncodeRoundTrip(t *testing.T) {
	set := loadSet(t)
	dec := codec.NewDecoder(set)
	n := 1000
	if testing.Short() {
		n = 200
	}
	for _, typ := range synth.EventTypes() {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			g := synth.New(synth.Options{Seed: 42, Types: []string{typ}})
			s, _ := set.ByEventType(typ)
			for i := range n {
				ev := g.Next()
				require.Equal(t, typ, ev.Type)
				raw, err := codec.Encode(s, ev.Value)
				require.NoError(t, err, "event %d", i)
				got, err := dec.Decode(gateway.Message{Value: raw})
				require.NoError(t, err, "event %d", i)
				_, v, err := codec.Decode(set, raw)
				require.NoError(t, err, "event %d", i)
				if d := diff(ev.Value, v, ""); d != "" {
					t.Fatalf("event %d of %s does not round-trip: %s", i, typ, d)
				}
				require.Equal(t, ev.Key, got.SubjectID, "the key is the passenger id")
				require.Equal(t, ev.Value["event_id"], got.ID)
			}
		})
	}
}

// diff returns the first difference between two normalised values, or "".
func diff(a, b any, path string) string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return fmt.Sprintf("%s: record %v vs %T with %d fields", path, len(x), b, len(y))
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok {
				return path + "." + k + ": missing"
			}
			if d := diff(v, w, path+"."+k); d != "" {
				return d
			}
		}
		return ""
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return fmt.Sprintf("%s: array of %d vs %T", path, len(x), b)
		}
		for i := range x {
			if d := diff(x[i], y[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	case *big.Rat:
		y, ok := b.(*big.Rat)
		if !ok || x.Cmp(y) != 0 {
			return fmt.Sprintf("%s: decimal %s vs %v", path, x.RatString(), b)
		}
		return ""
	case time.Time:
		y, ok := b.(time.Time)
		if !ok || !x.Equal(y) || y.Location() != time.UTC {
			return fmt.Sprintf("%s: time %v vs %v", path, x, b)
		}
		return ""
	case float64:
		y, ok := b.(float64)
		if !ok || math.Float64bits(x) != math.Float64bits(y) {
			return fmt.Sprintf("%s: %v vs %v", path, x, b)
		}
		return ""
	}
	if a != b {
		return fmt.Sprintf("%s: %#v (%T) vs %#v (%T)", path, a, a, b, b)
	}
	return ""
}

// sample holds what the distribution tests look at.
type sample struct {
	events   []synth.Event
	contexts []gateway.DecisionContext
}

func generate(t *testing.T, seed int64, n int) sample {
	t.Helper()
	set := loadSet(t)
	g := synth.New(synth.Options{Seed: seed})
	var s sample
	for range n {
		ev := g.Next()
		sc, _ := set.ByEventType(ev.Type)
		dc, err := codec.Context(sc, ev.Value)
		require.NoError(t, err)
		s.events = append(s.events, ev)
		s.contexts = append(s.contexts, dc)
	}
	return s
}

func TestDistribution(t *testing.T) {
	s := generate(t, 1, 5000)
	types := map[string]int{}
	purposes := map[string]bool{}
	minors, steppe, agency, nationalities := 0, 0, 0, map[string]bool{}
	paxTypes := map[string]bool{}
	routes := map[string]bool{} // foreign country reached from or to KZ
	connectionUS := false
	consents := map[string]map[bool]bool{}
	for i, ev := range s.events {
		dc := s.contexts[i]
		types[ev.Type]++
		purposes[dc.Event.Purpose] = true
		if dc.Subject.Minor {
			minors++
		}
		if dc.Event.CorporateAccount == "CORP-STEPPE-ENERGY" && dc.Event.EmployerPaid {
			steppe++
		}
		if dc.Event.AgencyCode == "96123456" {
			agency++
		}
		if dc.Subject.Citizenship != "" {
			nationalities[dc.Subject.Citizenship] = true
		}
		if slices.Contains(dc.Event.Route, "KZ") {
			for _, c := range dc.Event.Route {
				routes[c] = true
			}
			if slices.Contains(dc.Event.Route, "US") && len(dc.Event.Route) >= 3 {
				connectionUS = true
			}
		}
		for k, v := range dc.Subject.Consents {
			if consents[k] == nil {
				consents[k] = map[bool]bool{}
			}
			consents[k][v] = true
		}
		if p, ok := ev.Value["passenger"].(map[string]any); ok {
			if pt, ok := p["passenger_type"].(string); ok {
				paxTypes[pt] = true
			}
		}
	}
	for _, typ := range synth.EventTypes() {
		assert.Positive(t, types[typ], "event type %s appears", typ)
	}
	for _, p := range []string{"contract", "border_control", "baggage", "service", "campaign", "advertising",
		"survey", "research", "legal_obligation", "crime_prevention", "legal_claim"} {
		assert.True(t, purposes[p], "purpose %s appears", p)
	}
	assert.Greater(t, minors, 100, "minors appear")
	for _, pt := range []string{"ADT", "CHD", "INF", "UMNR"} {
		assert.True(t, paxTypes[pt], "passenger type %s appears", pt)
	}
	assert.Greater(t, steppe, 20, "employer-paid CORP-STEPPE-ENERGY trips appear")
	assert.Greater(t, agency, 20, "bookings of agency 96123456 appear")
	for _, c := range []string{"DE", "GB", "TR", "AE", "CN", "US", "FR", "IN", "UZ", "KG", "RU"} {
		assert.True(t, routes[c], "cross-border route KZ-%s appears", c)
	}
	assert.True(t, connectionUS, "US is reached by connection")
	for _, c := range []string{"KZ", "DE", "GB", "FR", "US", "TR", "AE", "CN", "RU", "IN", "UZ", "KG"} {
		assert.True(t, nationalities[c], "nationality %s appears", c)
	}
	for _, k := range []string{"health_data", "analytics_cookies", "marketing_cookies"} {
		assert.True(t, consents[k][true] && consents[k][false], "consent %s both given and refused", k)
	}
}

func TestCodesAndValues(t *testing.T) {
	s := generate(t, 2, 5000)
	meals, ssrs, methods, channels, corporates := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	var agencyCodes []string
	for _, ev := range s.events {
		v := ev.Value
		if m, ok := v["meal_code"].(string); ok {
			meals[m] = true
		}
		for _, list := range []string{"ssr_codes"} {
			if xs, ok := v[list].([]any); ok {
				for _, x := range xs {
					ssrs[x.(string)] = true
				}
			}
		}
		if xs, ok := v["special_service_requests"].([]any); ok {
			for _, x := range xs {
				ssrs[x.(map[string]any)["code"].(string)] = true
			}
		}
		switch ev.Type {
		case "payment":
			methods[v["method"].(string)] = true
			if c, ok := v["card"].(map[string]any); ok {
				assert.True(t, luhn(c["number"].(string)), "card numbers are Luhn-valid")
				assert.Contains(t, synth.TestPANs(), c["number"])
			}
		case "booking":
			channels[v["booking_channel"].(string)] = true
			if a, ok := v["agency_code"].(string); ok && !slices.Contains(agencyCodes, a) {
				agencyCodes = append(agencyCodes, a)
			}
		case "corporate":
			corporates[v["corporate_account"].(string)] = true
		}
	}
	for _, m := range []string{"MOML", "KSML", "HNML", "VGML", "DBML", "GFML", "BBML", "CHML"} {
		assert.True(t, meals[m], "meal code %s appears", m)
	}
	for _, c := range []string{"WCHR", "WCHS", "WCHC", "MEDA", "BLND", "DEAF", "DPNA", "UMNR", "INFT", "CHLD", "DOCS"} {
		assert.True(t, ssrs[c], "SSR %s appears", c)
	}
	for _, m := range []string{"card", "invoice", "wallet", "bank_transfer", "voucher", "miles"} {
		assert.True(t, methods[m], "payment method %s appears", m)
	}
	for _, c := range []string{"website", "mobile_app", "contact_centre", "airport_desk", "travel_agency", "other_airline", "corporate_tool"} {
		assert.True(t, channels[c], "booking channel %s appears", c)
	}
	assert.True(t, corporates["CORP-STEPPE-ENERGY"])
	assert.GreaterOrEqual(t, len(corporates), 3, "other corporate accounts appear too")
	assert.Contains(t, agencyCodes, "96123456")
	assert.GreaterOrEqual(t, len(agencyCodes), 3, "other agencies appear too")
}

func luhn(pan string) bool {
	sum := 0
	for i := range len(pan) {
		d := int(pan[len(pan)-1-i] - '0')
		if d < 0 || d > 9 {
			return false
		}
		if i%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return len(pan) >= 13 && sum%10 == 0
}

func TestTestPANsAreLuhnValid(t *testing.T) {
	pans := synth.TestPANs()
	require.NotEmpty(t, pans)
	for _, p := range pans {
		assert.True(t, luhn(p), p)
	}
	assert.False(t, luhn("4111111111111112"), "the check can fail")
}

// TestAirports checks airport → country and that segments chain.
func TestAirports(t *testing.T) {
	want := map[string]string{"ALA": "KZ", "NQZ": "KZ", "CIT": "KZ", "SCO": "KZ", "GUW": "KZ", "FRA": "DE", "MUC": "DE",
		"LHR": "GB", "IST": "TR", "DXB": "AE", "PEK": "CN", "URC": "CN", "JFK": "US", "IAH": "US", "CDG": "FR",
		"DEL": "IN", "TAS": "UZ", "FRU": "KG", "SVO": "RU"}
	s := generate(t, 4, 5000)
	seen := map[string]bool{}
	check := func(f map[string]any) {
		for _, end := range []string{"departure", "arrival"} {
			ap, c := f[end+"_airport"].(string), f[end+"_country"].(string)
			seen[ap] = true
			if w, ok := want[ap]; ok {
				assert.Equal(t, w, c, "country of %s", ap)
			}
		}
		assert.NotEqual(t, f["departure_airport"], f["arrival_airport"])
	}
	for _, ev := range s.events {
		switch ev.Type {
		case "booking":
			segs := ev.Value["itinerary"].(map[string]any)["segments"].([]any)
			for i, x := range segs {
				check(x.(map[string]any))
				if i > 0 {
					prev := segs[i-1].(map[string]any)
					assert.True(t, x.(map[string]any)["departure_time"].(time.Time).After(prev["departure_time"].(time.Time)), "segments in time order")
				}
			}
		case "corporate":
			for _, x := range ev.Value["segments"].([]any) {
				check(x.(map[string]any))
			}
		case "checkin", "baggage", "assistance":
			check(ev.Value["flight"].(map[string]any))
		}
	}
	for _, ap := range []string{"ALA", "NQZ", "CIT", "SCO", "FRA", "MUC", "LHR", "IST", "DXB", "PEK", "JFK"} {
		assert.True(t, seen[ap], "airport %s is flown", ap)
	}
}

// TestStories checks the relations between events: one passenger per
// booking event with a shared locator, and each passenger's events in
// order.
func TestStories(t *testing.T) {
	s := generate(t, 5, 5000)
	paxByLocator := map[string]map[string]bool{}
	first := map[string]map[string]int{} // key → type → first index
	for i, ev := range s.events {
		assert.Equal(t, ev.Key, ev.Value["passenger_id"], "the key is the passenger id")
		if loc, ok := ev.Value["record_locator"].(string); ok && ev.Type == "booking" {
			if paxByLocator[loc] == nil {
				paxByLocator[loc] = map[string]bool{}
			}
			paxByLocator[loc][ev.Key] = true
			for _, c := range ev.Value["companions"].([]any) {
				p := ev.Value["passenger"].(map[string]any)
				assert.NotEqual(t, p["given_name"].(string)+" "+p["family_name"].(string), c, "companions are the others")
			}
		}
		if first[ev.Key] == nil {
			first[ev.Key] = map[string]int{}
		}
		if _, ok := first[ev.Key][ev.Type]; !ok {
			first[ev.Key][ev.Type] = i
		}
	}
	multi := 0
	for _, pax := range paxByLocator {
		if len(pax) > 1 {
			multi++
		}
	}
	assert.Greater(t, multi, 50, "multi-passenger bookings share a record locator")

	related := 0
	for key, f := range first {
		b, okB := f["booking"]
		c, okC := f["checkin"]
		if okB && okC {
			related++
			assert.Less(t, b, c, "%s is booked before checking in", key)
		}
		if p, ok := f["payment"]; ok && okB {
			assert.Less(t, b, p, "%s is booked before paying", key)
		}
	}
	assert.Greater(t, related, 200, "passengers are booked and then check in")
}

// TestMinors checks that minor passenger types have under-18 birth dates
// and that minors travelling as adults (teenagers) exist.
func TestMinors(t *testing.T) {
	s := generate(t, 6, 5000)
	teens := 0
	for _, ev := range s.events {
		var p map[string]any
		switch ev.Type {
		case "booking", "checkin":
			p = ev.Value["passenger"].(map[string]any)
		default:
			continue
		}
		at := ev.Value["occurred_at"].(time.Time)
		age := codec.AgeAt(p["birth_date"].(time.Time), at)
		switch p["passenger_type"] {
		case "CHD", "UMNR":
			assert.Less(t, age, 18)
			assert.GreaterOrEqual(t, age, 2)
		case "INF":
			assert.Less(t, age, 3)
		case "ADT":
			if age < 18 {
				teens++
				assert.GreaterOrEqual(t, age, 12)
			}
		}
		assert.GreaterOrEqual(t, age, 0)
		assert.Less(t, age, 90)
	}
	assert.Positive(t, teens, "teenagers travel as adults")
}

func BenchmarkNext(b *testing.B) {
	g := synth.New(synth.Options{Seed: 1})
	b.ReportAllocs()
	for b.Loop() {
		g.Next()
	}
}

func BenchmarkNextEncode(b *testing.B) {
	set := loadSet(b)
	g := synth.New(synth.Options{Seed: 1})
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		ev := g.Next()
		s, _ := set.ByEventType(ev.Type)
		var err error
		if buf, err = codec.AppendEncode(buf[:0], s, ev.Value); err != nil {
			b.Fatal(err)
		}
	}
}
