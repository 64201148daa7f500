package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/redact"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/gateway/synth"
	"github.com/dgwproject/dgw/policies"
)

// regoCase is one decision of a Rego test (policies/*_test.rego) asked
// again through `dgw eval`: an event whose decoded context is the Rego
// test's input, and the Rego test's own assertions.
type regoCase struct {
	test      string // the Rego test it mirrors, data.dgw_test.<name>
	recipient string
	typ       string
	purpose   string
	route     []string
	agency    string
	corporate string
	paid      bool
	consents  []string // given in subject requests (eval --consent)
	recorded  []string // recorded in the event itself (explicit_consent, cookie consent)

	allow     bool
	basis     string
	mechanism string
	fields    map[string]gateway.Operator // released with this operator
	absent    []string                    // never released
	reason    string                      // some reason says this
}

// regoCases mirror at least one Rego test of every recipient class.
var regoCases = []regoCase{
	{test: "test_airport_checkin_and_baggage", recipient: "ala-airport", typ: "checkin", purpose: "contract", route: []string{"KZ", "DE"},
		allow: true, fields: map[string]gateway.Operator{"bag_tags": "keep"}},
	{test: "test_airport_checkin_and_baggage", recipient: "ala-airport", typ: "baggage", purpose: "baggage", route: []string{"KZ"},
		allow: true, fields: map[string]gateway.Operator{"claim.reference": "keep"}, absent: []string{"claimant.email"}},
	{test: "test_airport_trip_elsewhere_refused", recipient: "ala-airport", typ: "checkin", purpose: "contract", route: []string{"TR", "DE"},
		reason: "its own country (KZ)"},
	{test: "test_airport_assistance_with_consent", recipient: "ala-airport", typ: "assistance", purpose: "service", route: []string{"KZ", "TR"},
		recorded: []string{"health_data"}, consents: []string{"cross_border"},
		allow: true, basis: "contract", mechanism: "domestic",
		fields: map[string]gateway.Operator{"ssr_codes": "keep", "mobility_aid.kind": "keep", "passenger.family_name": "keep"},
		absent: []string{"medical.condition", "medical.physician_contact"}},
	{test: "test_lounge_with_transfer_consent", recipient: "ist-lounge", typ: "checkin", purpose: "contract", route: []string{"KZ", "TR"},
		consents: []string{"cross_border"}, allow: true, mechanism: "kz_consent",
		fields: map[string]gateway.Operator{"passenger.family_name": "keep"}},
	{test: "test_lounge_without_transfer_ground_refused", recipient: "ist-lounge", typ: "checkin", purpose: "contract", route: []string{"KZ", "TR"},
		reason: "Law 94-V Art 16"},
	{test: "test_kz_border_api_checkin", recipient: "kz-border-api", typ: "checkin", purpose: "border_control", route: []string{"DE", "KZ"},
		consents: []string{"health_data"}, allow: true, basis: "legal_obligation",
		fields: map[string]gateway.Operator{"document.number": "keep", "passenger.nationality": "keep"},
		absent: []string{"meal_code", "ssr_codes", "contact_phone"}},
	{test: "test_de_border_pnr_booking", recipient: "de-border-pnr", typ: "booking", purpose: "contract", route: []string{"KZ", "DE"},
		consents: []string{"health_data"}, allow: true, basis: "legal_obligation", mechanism: "kz_treaty",
		fields: map[string]gateway.Operator{"companions": "keep", "contact.email": "keep", "frequent_flyer_number": "keep"},
		absent: []string{"meal_code", "special_service_requests.free_text"}},
	{test: "test_police_legal_obligation", recipient: "kz-police", typ: "booking", purpose: "legal_obligation", route: []string{"KZ"},
		allow: true, basis: "legal_obligation", fields: map[string]gateway.Operator{"passenger.birth_date": "keep"}},
	{test: "test_police_legal_obligation", recipient: "kz-police", typ: "payment", purpose: "crime_prevention",
		allow: true, fields: map[string]gateway.Operator{"card.number": "mask"}, absent: []string{"card.security_code"}},
	{test: "test_police_not_for_contract", recipient: "kz-police", typ: "booking", purpose: "contract", route: []string{"KZ"},
		reason: "only for the purposes crime_prevention, legal_obligation"},
	{test: "test_agency_own_booking", recipient: "silkroad-travel", typ: "booking", purpose: "contract", route: []string{"KZ", "TR"},
		agency: "96123456", allow: true, fields: map[string]gateway.Operator{"ticket_number": "keep"},
		absent: []string{"passenger.birth_date", "meal_code"}},
	{test: "test_agency_other_booking_refused", recipient: "silkroad-travel", typ: "booking", purpose: "contract", route: []string{"KZ"},
		agency: "11111111", reason: "only bookings made through it"},
	{test: "test_transfer_provider_booking", recipient: "astana-transfers", typ: "booking", purpose: "service", route: []string{"DE", "KZ"},
		allow: true, mechanism: "art49_contract", // regimes.eu_gdpr == "art49_contract", the only regime abroad
		fields: map[string]gateway.Operator{"contact.phone": "keep", "itinerary.segments.arrival_airport": "keep"},
		absent: []string{"meal_code"}},
	{test: "test_caterer_without_consent_gets_no_meal_code", recipient: "skychef-catering", typ: "booking", purpose: "service", route: []string{"KZ"},
		allow: true, fields: map[string]gateway.Operator{"itinerary.segments.seat": "keep"}, absent: []string{"meal_code"},
		reason: "withheld without explicit consent"},
	{test: "test_market_research_pseudonymised", recipient: "pulse-research", typ: "booking", purpose: "research", route: []string{"KZ"},
		consents: []string{"research", "cross_border"}, allow: true, basis: "consent", mechanism: "kz_consent",
		fields: map[string]gateway.Operator{"passenger_id": "hash", "passenger.birth_date": "generalise", "booked_at": "generalise"},
		absent: []string{"passenger.family_name", "contact.email", "record_locator"}},
	{test: "test_it_provider_payment", recipient: "cloudnest-it", typ: "payment", purpose: "contract",
		consents: []string{"cross_border"}, allow: true, mechanism: "kz_consent",
		fields: map[string]gateway.Operator{"card.number": "hash", "card.holder_name": "keep"}, absent: []string{"card.security_code"}},
	{test: "test_it_provider_without_transfer_ground_refused", recipient: "cloudnest-it", typ: "booking", purpose: "contract", route: []string{"KZ"},
		reason: "transfer to DE under Law 94-V Art 16"},
	{test: "test_investigator_baggage_dispute", recipient: "claimfix-investigations", typ: "baggage", purpose: "baggage", route: []string{"KZ", "TR"},
		allow: true, fields: map[string]gateway.Operator{"claim.statement": "keep", "claimant.email": "keep"}},
	{test: "test_investigator_baggage_dispute", recipient: "claimfix-investigations", typ: "booking", purpose: "legal_claim", route: []string{"KZ"},
		allow: true, basis: "legitimate_interest"},
	{test: "test_employer_paid_trip", recipient: "steppe-energy", typ: "corporate", purpose: "contract", route: []string{"KZ", "DE"},
		corporate: "CORP-STEPPE-ENERGY", paid: true, consents: []string{"health_data"},
		allow: true, basis: "contract", mechanism: "art49_contract", // regimes.eu_gdpr == "art49_contract"
		fields: map[string]gateway.Operator{"incident.summary": "keep", "segments.flight_number": "keep"},
		absent: []string{"incident.medical_details", "meal_code", "employee.birth_date", "fare.amount"}},
	{test: "test_employer_other_account_refused", recipient: "steppe-energy", typ: "corporate", purpose: "contract", route: []string{"KZ", "DE"},
		corporate: "CORP-OTHER", paid: true, reason: "only trips it paid for"},
	{test: "test_payment_processor", recipient: "kzpay-processor", typ: "payment", purpose: "contract",
		allow: true, mechanism: "domestic", fields: map[string]gateway.Operator{"card.number": "keep", "card.expiry": "keep"},
		absent: []string{"card.security_code"}},
	{test: "test_anti_fraud", recipient: "fraudshield", typ: "payment", purpose: "crime_prevention", consents: []string{"cross_border"},
		allow: true, basis: "legitimate_interest", fields: map[string]gateway.Operator{"card.number": "hash", "risk.ip_address": "keep"},
		absent: []string{"card.holder_name", "card.security_code"}},
	{test: "test_law_firm_legal_claim", recipient: "legal-partners", typ: "payment", purpose: "legal_claim", consents: []string{"cross_border"},
		allow: true, basis: "legitimate_interest", mechanism: "kz_consent", fields: map[string]gateway.Operator{"card.number": "mask"}},
	{test: "test_web_analytics_statistics_only", recipient: "webstats-analytics", typ: "websession", purpose: "research",
		recorded: []string{"analytics_cookies"}, consents: []string{"cross_border"}, allow: true,
		fields: map[string]gateway.Operator{"pages.url": "keep", "banner_clicks": "keep"},
		absent: []string{"ip_address", "session_id", "device_id", "passenger_id", "user_agent", "location.latitude"}},
}

// TestEvalMatchesRegoTests: what `dgw eval` answers (decode, context,
// decide, through the production decoder) is what the Rego tests assert,
// for a sample of every recipient class.
func TestEvalMatchesRegoTests(t *testing.T) {
	// Loading the policy runs every Rego test and fails if one fails, so
	// a mirrored test that exists passes.
	p, err := buildParts(t.Context(), "", "", redact.DevKeyring("eval"), 1<<20, discardLogger())
	require.NoError(t, err)
	regoTests := map[string]bool{}
	testFiles, err := fs.Glob(policies.FS, "*_test.rego")
	require.NoError(t, err)
	for _, f := range testFiles {
		b, err := fs.ReadFile(policies.FS, f)
		require.NoError(t, err)
		for _, m := range regexp.MustCompile(`(?m)^(test_\w+) if`).FindAllSubmatch(b, -1) {
			regoTests[string(m[1])] = true
		}
	}
	require.NotEmpty(t, regoTests)
	classes := map[string]bool{}
	cmd := &cobra.Command{}
	cmd.SetContext(t.Context())
	for i, c := range regoCases {
		t.Run(c.test+"/"+c.recipient+"/"+c.typ, func(t *testing.T) {
			require.True(t, regoTests[c.test], "the Rego test %s exists", c.test)
			line := contextEvent(t, p.set, c, int64(i))
			r := registered(t, p, c.recipient)
			classes[r.Type] = true

			// What eval does with --event and --consent.
			ev := decodeEvalLine(t, p, line)
			for _, k := range c.consents {
				ev.Context.Subject.Consents[k] = true
			}
			res, err := evaluate(cmd, p, ev, r)
			require.NoError(t, err)
			checkRegoCase(t, c, res.Decision)
		})
	}
	assert.Len(t, classes, 14, "every recipient class of §9.1 is sampled")

	// And once through the command line itself: the law firm needs the
	// passenger's consent to the transfer, which --consent gives.
	i := slices.IndexFunc(regoCases, func(c regoCase) bool { return c.test == "test_law_firm_legal_claim" })
	c := regoCases[i]
	line := contextEvent(t, p.set, c, int64(i))
	file := filepath.Join(t.TempDir(), "event.json")
	require.NoError(t, os.WriteFile(file, line, 0o600))
	out, stderr, code := runCLI(t, nil, "eval", "--recipient", c.recipient, "--event", file, "--consent", strings.Join(c.consents, ","))
	require.Equal(t, 0, code, stderr)
	var res struct {
		Decision gateway.Decision `json:"decision"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	checkRegoCase(t, c, res.Decision)

	without, err := evaluate(cmd, p, decodeEvalLine(t, p, line), registered(t, p, c.recipient))
	require.NoError(t, err)
	assert.False(t, without.Decision.Allow, "without the consent the transfer has no ground")
	assert.True(t, slices.ContainsFunc(without.Decision.Reasons, func(r string) bool { return strings.Contains(r, "Law 94-V Art 16") }),
		"%v", without.Decision.Reasons)
}

func checkRegoCase(t *testing.T, c regoCase, d gateway.Decision) {
	t.Helper()
	assert.Equal(t, c.allow, d.Allow, "allow; reasons %v", d.Reasons)
	if c.basis != "" {
		assert.Equal(t, c.basis, d.Basis)
	}
	if c.mechanism != "" {
		assert.Equal(t, c.mechanism, d.Transfer.Mechanism)
	}
	for path, op := range c.fields {
		assert.Equal(t, op, d.Fields[path], "field %s", path)
	}
	for _, path := range c.absent {
		assert.NotContains(t, d.Fields, path)
	}
	if !c.allow {
		assert.Empty(t, d.Released())
	}
	if c.reason != "" {
		assert.True(t, slices.ContainsFunc(d.Reasons, func(r string) bool { return strings.Contains(r, c.reason) }),
			"no reason says %q: %v", c.reason, d.Reasons)
	}
}

func registered(t *testing.T, p *parts, id string) *gateway.Recipient {
	t.Helper()
	for _, r := range p.recipients {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no recipient %s", id)
	return nil
}

// contextEvent is a `dgw gen` line of a generated event of the case's type
// whose decision context is the Rego test's input: its annotated fields
// (purpose, point of sale, route, agency, corporate account, residence,
// recorded consents) set, an adult passenger, one segment where the event
// has several.
func contextEvent(t *testing.T, set *schema.Set, c regoCase, seed int64) []byte {
	t.Helper()
	s, ok := set.ByEventType(c.typ)
	require.True(t, ok, c.typ)
	g := synth.New(synth.Options{Seed: 1000 + seed})
	var v map[string]any
	for range 5000 {
		if ev := g.Next(); ev.Type == c.typ {
			v = ev.Value
			break
		}
	}
	require.NotNil(t, v, "no generated %s event", c.typ)
	for _, f := range s.Fields {
		if !f.Leaf {
			continue
		}
		var x any
		switch {
		case f.Context == "event.purpose":
			x = c.purpose
		case f.Context == "event.point_of_sale", f.Context == "subject.residence", f.Context == "subject.citizenship":
			x = "KZ"
		case f.Context == "event.agency_code":
			x = c.agency
		case f.Context == "event.corporate_account":
			x = c.corporate
		case f.Context == "event.employer_paid":
			x = c.paid
		case f.Context == "event.route" && strings.HasSuffix(f.Path, "departure_country"):
			require.NotEmpty(t, c.route, "%s has a route", c.typ)
			x = c.route[0]
		case f.Context == "event.route":
			x = c.route[len(c.route)-1]
		case strings.HasPrefix(f.Context, schema.ConsentPrefix):
			x = slices.Contains(c.recorded, strings.TrimPrefix(f.Context, schema.ConsentPrefix))
		case f.Role == "birth_date":
			x = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
		case f.Role == "passenger_type":
			x = "ADT"
		default:
			continue
		}
		setLeaf(t, v, strings.Split(f.Path, "."), x)
	}
	dc, err := codec.Context(s, v)
	require.NoError(t, err)
	route := c.route
	if route == nil {
		route = []string{}
	}
	require.Equal(t, route, dc.Event.Route, "the event's route is the Rego test's")
	require.Equal(t, c.purpose, dc.Event.Purpose)
	require.False(t, dc.Subject.Minor, "an adult, as in the Rego tests")
	require.Equal(t, c.agency, dc.Event.AgencyCode)
	require.Equal(t, c.corporate, dc.Event.CorporateAccount)
	for _, k := range c.recorded {
		require.True(t, dc.Subject.Consents[k], "consent %s recorded in the event", k)
	}
	j, err := codec.ToJSON(s, v)
	require.NoError(t, err)
	line, err := json.Marshal(jsonEvent{Type: c.typ, Value: j})
	require.NoError(t, err)
	return line
}

// setLeaf sets a leaf of a normalised value; an array of records on the
// way is cut to its first element.
func setLeaf(t *testing.T, v map[string]any, path []string, x any) {
	t.Helper()
	cur := v
	for _, name := range path[:len(path)-1] {
		switch next := cur[name].(type) {
		case map[string]any:
			cur = next
		case []any:
			if len(next) == 0 {
				return // no element: nothing of it reaches the context
			}
			cur[name] = next[:1]
			m, ok := next[0].(map[string]any)
			require.True(t, ok, "%s", strings.Join(path, "."))
			cur = m
		default:
			return // an absent optional record
		}
	}
	cur[path[len(path)-1]] = x
}

// decodeEvalLine decodes a JSON event line the way dgw eval reads --event.
func decodeEvalLine(t *testing.T, p *parts, line []byte) *gateway.Event {
	t.Helper()
	s, value, err := parseEvent(p.set, line, "")
	require.NoError(t, err)
	bin, err := codec.Encode(s, value)
	require.NoError(t, err)
	ev, err := p.decoder.Decode(gateway.Message{Topic: "eval", Value: bin, Time: time.Now()})
	require.NoError(t, err)
	return ev
}
