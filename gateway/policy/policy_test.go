package policy_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/policy"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/gateway/synth"
	"github.com/dgwproject/dgw/policies"
	"github.com/dgwproject/dgw/schemas"
)

// TestRegoTests runs every Rego test of policies/ from go test, loading the
// directory the way `opa test policies/` does.
func TestRegoTests(t *testing.T) {
	results, err := tester.Run(t.Context(), "../../policies")
	require.NoError(t, err)
	require.Greater(t, len(results), 100, "the policy keeps its Rego tests")
	for _, r := range results {
		t.Run(r.Package+"."+r.Name, func(t *testing.T) {
			assert.True(t, r.Pass(), "%s:%d: %v %s", r.Location.File, r.Location.Row, r.Error, r.Output)
		})
	}
}

// TestNewRejects proves New refuses to start on each kind of broken policy.
func TestNewRejects(t *testing.T) {
	const scopeOf = `"kzpay-processor",`
	tests := []struct {
		name  string
		edits []func(*testing.T, fstest.MapFS)
		file  string   // file of the expected problem
		line  bool     // the problem has a line number
		want  []string // message fragments, each in some problem of file
	}{
		{
			name:  "syntax error",
			edits: []func(*testing.T, fstest.MapFS){addFile("broken.rego", "package dgw\n\nallow if {\n")},
			file:  "broken.rego", line: true,
			want: []string{"rego_parse_error"},
		},
		{
			name:  "strict compile error",
			edits: []func(*testing.T, fstest.MapFS){addFile("unused.rego", "package dgw\n\nunused_var if {\n\tx := 1\n\ttrue\n}\n")},
			file:  "unused.rego", line: true,
			want: []string{"rego_compile_error"},
		},
		{
			name:  "runtime conflict",
			edits: []func(*testing.T, fstest.MapFS){addFile("conflict.rego", "package dgw\n\nmechanism := \"scc\" if input.recipient.id == \"kzpay-processor\"\n")},
			file:  "classes_test.rego", line: true,
			want: []string{"eval_conflict_error"},
		},
		{
			name:  "failing rego test",
			edits: []func(*testing.T, fstest.MapFS){addFile("extra_test.rego", "package dgw_test\n\ntest_always_fails if false\n")},
			file:  "extra_test.rego", line: true,
			want: []string{"rego test data.dgw_test.test_always_fails failed"},
		},
		{
			name: "registry scope violations",
			edits: []func(*testing.T, fstest.MapFS){
				replace("data/recipients.json", `"card.number": ["keep"],`,
					`"card.number": ["keep"], "card.security_code": ["keep"], "card.cvv2": ["keep"], "card": ["keep"], "amount": ["mask"], "risk.device_id": ["show"],`),
			},
			file: "data/recipients.json", line: true,
			want: []string{
				"recipient kzpay-processor, payment field card.security_code: a card security code may never be in a contract scope",
				"recipient kzpay-processor, payment field card.cvv2: not a field of schemas/payment.avsc",
				"recipient kzpay-processor, payment field card: a record, not a leaf",
				"recipient kzpay-processor, payment field amount: mask applies to strings only",
				`recipient kzpay-processor, payment field risk.device_id: unknown operator "show"`,
			},
		},
		{
			name: "registry identity problems",
			edits: []func(*testing.T, fstest.MapFS){
				replace("data/recipients.json", `"id": "fraudshield",`, `"id": "kzpay-processor",`),
				replace("data/recipients.json", `"topic": "dgw.out.legal-partners",`, `"topic": "dgw.out.kz-police",`),
				replace("data/recipients.json", `"type": "web_analytics",`, `"type": "data_broker",`),
				replace("data/recipients.json", `"safeguards": ["scc"],`, `"safeguards": ["SCC"],`),
			},
			file: "data/recipients.json", line: true,
			want: []string{
				`recipient id "kzpay-processor" used twice`,
				`topic "dgw.out.kz-police" is already the topic of kz-police`,
				`type "data_broker" is not a recipient class`,
				`unknown safeguard "SCC"`,
			},
		},
		{
			name:  "unknown field path in the rego",
			edits: []func(*testing.T, fstest.MapFS){replace("fields.rego", `"card.expiry": "keep",`, `"card.expiry_date": "keep",`)},
			file:  "fields.rego", line: true,
			want: []string{`field path "card.expiry_date" is not a leaf of schemas/payment.avsc`},
		},
		{
			name:  "special-category field not listed",
			edits: []func(*testing.T, fstest.MapFS){replace("sensitive.rego", "\t\"incident.medical_details\",\n", "")},
			file:  "sensitive.rego", line: true,
			want: []string{"corporate field incident.medical_details has category health but is not in sensitive_fields"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := policyFS(t, tt.edits...)
			d, err := policy.New(t.Context(), fsys, policy.WithCatalogue(catalogue(t)))
			require.Error(t, err)
			assert.Nil(t, d)
			var pe *policy.ProblemsError
			require.True(t, errors.As(err, &pe), "a *ProblemsError, got %T: %v", err, err)
			for _, want := range tt.want {
				found := slices.ContainsFunc(pe.Problems, func(p policy.Problem) bool {
					return p.File == tt.file && strings.Contains(p.Msg, want) && (!tt.line || p.Line > 0)
				})
				assert.True(t, found, "want a problem in %s containing %q, got:\n%s", tt.file, want, pe.Error())
			}
		})
	}
}

func TestNewAcceptsRealPolicy(t *testing.T) {
	d := sharedDecider(t)
	assert.Len(t, d.Revision(), 12)
	assert.Regexp(t, `^[0-9a-f]{12}$`, d.Revision())
}

func TestNewOptions(t *testing.T) {
	_, err := policy.New(t.Context(), policies.FS, policy.WithCacheSize(-1))
	require.ErrorContains(t, err, "cache size -1")
}

// TestRevision: the same bytes give the same revision, any change another.
func TestRevision(t *testing.T) {
	d := sharedDecider(t)
	edited := policyFS(t, replace("data/countries.json", `"kz_protected": []`, `"kz_protected": [ ]`))
	d2, err := policy.New(t.Context(), edited, policy.WithCatalogue(catalogue(t)))
	require.NoError(t, err)
	assert.NotEqual(t, d.Revision(), d2.Revision())
	d3, err := policy.New(t.Context(), policyFS(t), policy.WithCatalogue(catalogue(t)), policy.WithCacheSize(0))
	require.NoError(t, err)
	assert.Equal(t, d.Revision(), d3.Revision(), "a copy of the same bytes has the same revision")
}

// TestRecipients: the registry has exactly the contract's recipients.
func TestRecipients(t *testing.T) {
	want := map[string][2]string{
		"ala-airport": {"airport_operator", "KZ"}, "ist-lounge": {"lounge_operator", "TR"},
		"kz-border-api": {"border_authority", "KZ"}, "de-border-pnr": {"border_authority", "DE"},
		"kz-police": {"law_enforcement", "KZ"}, "silkroad-travel": {"travel_agency", "KZ"},
		"astana-transfers": {"service_provider", "KZ"}, "skychef-catering": {"service_provider", "KZ"},
		"pulse-research": {"market_research", "GB"}, "cloudnest-it": {"it_provider", "DE"},
		"claimfix-investigations": {"investigator", "KZ"}, "steppe-energy": {"employer", "KZ"},
		"kzpay-processor": {"payment_processor", "KZ"}, "fraudshield": {"anti_fraud", "US"},
		"legal-partners": {"law_firm", "GB"}, "webstats-analytics": {"web_analytics", "US"},
	}
	d := sharedDecider(t)
	got := d.Recipients()
	require.Len(t, got, len(want))
	cat := catalogue(t)
	for _, r := range got {
		w, ok := want[r.ID]
		require.True(t, ok, "unexpected recipient %s", r.ID)
		assert.Equal(t, w, [2]string{r.Type, r.Country}, r.ID)
		assert.Equal(t, "dgw.out."+r.ID, r.Topic)
		assert.NotEmpty(t, r.Name)
		for et := range r.Scope {
			for _, f := range cat[et] {
				if f.Format == "card_security_code" {
					assert.NotContains(t, r.Scope[et], f.Path, r.ID)
				}
			}
		}
	}
	assert.Equal(t, "96123456", recipient(t, d, "silkroad-travel").AgencyCode)
	assert.Equal(t, "CORP-STEPPE-ENERGY", recipient(t, d, "steppe-energy").CorporateAccount)
	assert.Equal(t, []string{"scc"}, recipient(t, d, "cloudnest-it").Safeguards)
	assert.Equal(t, []string{"dpf"}, recipient(t, d, "fraudshield").Safeguards)
	assert.Equal(t, []string{"dpf"}, recipient(t, d, "webstats-analytics").Safeguards)
	// Recipients returns a copy of the slice.
	got[0] = nil
	assert.NotNil(t, d.Recipients()[0])
}

// TestDecide asks the Decider what the Rego tests assert, for a sample of
// every recipient class.
func TestDecide(t *testing.T) {
	d := sharedDecider(t)
	with := func(dc *gateway.DecisionContext, f func(*gateway.DecisionContext)) *gateway.DecisionContext {
		f(dc)
		return dc
	}
	consent := func(keys ...string) func(*gateway.DecisionContext) {
		return func(dc *gateway.DecisionContext) {
			for _, k := range keys {
				dc.Subject.Consents[k] = true
			}
		}
	}
	type want struct {
		allow     bool
		basis     string
		mechanism string
		fields    map[string]gateway.Operator // must be released with this operator
		absent    []string                    // must not be released
		reason    string                      // a fragment of some reason
	}
	tests := []struct {
		name      string
		recipient string
		dc        *gateway.DecisionContext
		want      want
	}{
		{"airport PRM with explicit consent", "ala-airport", with(decisionContext("assistance", "service", "KZ", "TR"), consent("health_data")),
			want{allow: true, basis: "contract", mechanism: "domestic",
				fields: map[string]gateway.Operator{"ssr_codes": gateway.OpKeep, "mobility_aid.kind": gateway.OpKeep},
				absent: []string{"medical.condition", "medical.physician_contact"}}},
		{"airport PRM without consent", "ala-airport", decisionContext("assistance", "service", "KZ"),
			want{allow: true, basis: "contract", mechanism: "domestic",
				fields: map[string]gateway.Operator{"seat": gateway.OpKeep}, absent: []string{"ssr_codes"},
				reason: "withheld without explicit consent"}},
		{"lounge without transfer ground", "ist-lounge", decisionContext("checkin", "contract", "KZ", "TR"),
			want{reason: "Law 94-V Art 16"}},
		{"lounge with transfer consent", "ist-lounge", with(decisionContext("checkin", "contract", "KZ", "TR"), consent("cross_border")),
			want{allow: true, basis: "contract", mechanism: "kz_consent", fields: map[string]gateway.Operator{"passenger.family_name": gateway.OpKeep}}},
		{"kazakh border API", "kz-border-api", with(decisionContext("checkin", "border_control", "DE", "KZ"), consent("health_data")),
			want{allow: true, basis: "legal_obligation", mechanism: "art49_public_interest",
				fields: map[string]gateway.Operator{"document.number": gateway.OpKeep}, absent: []string{"meal_code", "ssr_codes"}}},
		{"german PIU gets the PNR", "de-border-pnr", decisionContext("booking", "contract", "KZ", "DE"),
			want{allow: true, basis: "legal_obligation", mechanism: "kz_treaty",
				fields: map[string]gateway.Operator{"companions": gateway.OpKeep}, absent: []string{"meal_code"}}},
		{"police for a legal obligation", "kz-police", decisionContext("booking", "legal_obligation", "KZ"),
			want{allow: true, basis: "legal_obligation", mechanism: "domestic", fields: map[string]gateway.Operator{"passenger.birth_date": gateway.OpKeep}}},
		{"police not for the contract", "kz-police", decisionContext("booking", "contract", "KZ"),
			want{reason: "only for the purposes crime_prevention, legal_obligation"}},
		{"agency's own booking", "silkroad-travel", with(decisionContext("booking", "contract", "KZ"), func(dc *gateway.DecisionContext) { dc.Event.AgencyCode = "96123456" }),
			want{allow: true, basis: "contract", mechanism: "domestic", fields: map[string]gateway.Operator{"ticket_number": gateway.OpKeep}}},
		{"another agency's booking", "silkroad-travel", with(decisionContext("booking", "contract", "KZ"), func(dc *gateway.DecisionContext) { dc.Event.AgencyCode = "11111111" }),
			want{reason: "only bookings made through it"}},
		{"caterer meal code", "skychef-catering", with(decisionContext("booking", "service", "KZ"), consent("health_data")),
			want{allow: true, basis: "contract", mechanism: "domestic",
				fields: map[string]gateway.Operator{"meal_code": gateway.OpKeep, "itinerary.segments.seat": gateway.OpKeep}, absent: []string{"passenger.family_name"}}},
		{"market research pseudonymised", "pulse-research", with(decisionContext("booking", "research", "KZ"), consent("research", "cross_border")),
			want{allow: true, basis: "consent", mechanism: "kz_consent",
				fields: map[string]gateway.Operator{"passenger_id": gateway.OpHash, "passenger.birth_date": gateway.OpGeneralise}, absent: []string{"passenger.family_name"}}},
		{"market research and a minor", "pulse-research", with(decisionContext("booking", "research", "KZ"), func(dc *gateway.DecisionContext) {
			consent("research", "cross_border")(dc)
			dc.Subject.Minor = true
		}), want{reason: "minor"}},
		{"IT provider hashes the PAN", "cloudnest-it", with(decisionContext("payment", "contract"), consent("cross_border")),
			want{allow: true, basis: "contract", mechanism: "kz_consent",
				fields: map[string]gateway.Operator{"card.number": gateway.OpHash}, absent: []string{"card.security_code"}}},
		{"investigator, baggage dispute", "claimfix-investigations", decisionContext("baggage", "baggage", "KZ", "TR"),
			want{allow: true, basis: "contract", mechanism: "domestic", fields: map[string]gateway.Operator{"claim.statement": gateway.OpKeep}}},
		{"employer, paid trip", "steppe-energy", with(decisionContext("corporate", "contract", "KZ", "DE"), func(dc *gateway.DecisionContext) {
			dc.Event.EmployerPaid, dc.Event.CorporateAccount = true, "CORP-STEPPE-ENERGY"
			consent("health_data")(dc)
		}), want{allow: true, basis: "contract", mechanism: "art49_contract",
			fields: map[string]gateway.Operator{"incident.summary": gateway.OpKeep}, absent: []string{"incident.medical_details", "meal_code"}}},
		{"employer, trip not paid", "steppe-energy", with(decisionContext("corporate", "contract", "KZ"), func(dc *gateway.DecisionContext) {
			dc.Event.CorporateAccount = "CORP-STEPPE-ENERGY"
		}), want{reason: "only trips it paid for"}},
		{"payment processor keeps the PAN", "kzpay-processor", decisionContext("payment", "contract"),
			want{allow: true, basis: "contract", mechanism: "domestic",
				fields: map[string]gateway.Operator{"card.number": gateway.OpKeep}, absent: []string{"card.security_code"}}},
		{"anti-fraud under the GDPR", "fraudshield", with(decisionContext("payment", "crime_prevention"), func(dc *gateway.DecisionContext) {
			dc.Event.PointOfSale = "DE"
			consent("cross_border")(dc)
		}), want{allow: true, basis: "legitimate_interest", mechanism: "kz_consent+dpf",
			fields: map[string]gateway.Operator{"card.number": gateway.OpHash}, absent: []string{"card.holder_name"}}},
		{"law firm, legal claim", "legal-partners", with(decisionContext("payment", "legal_claim"), consent("cross_border")),
			want{allow: true, basis: "legitimate_interest", mechanism: "kz_consent", fields: map[string]gateway.Operator{"card.number": gateway.OpMask}}},
		{"web analytics, statistics only", "webstats-analytics", with(decisionContext("websession", "research"), consent("analytics_cookies", "cross_border")),
			want{allow: true, basis: "consent", mechanism: "kz_consent",
				fields: map[string]gateway.Operator{"pages.url": gateway.OpKeep}, absent: []string{"ip_address", "session_id", "passenger_id"}}},
		{"erased passenger", "ala-airport", with(decisionContext("checkin", "contract", "KZ"), func(dc *gateway.DecisionContext) { dc.Subject.Erased = true }),
			want{reason: "erased"}},
		{"objection", "kzpay-processor", with(decisionContext("payment", "contract"), func(dc *gateway.DecisionContext) { dc.Subject.Objections = []string{"contract"} }),
			want{reason: "objected"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := recipient(t, d, tt.recipient)
			got, err := d.Decide(t.Context(), tt.dc, r)
			require.NoError(t, err)
			assert.Equal(t, d.Revision(), got.Revision)
			assert.Equal(t, tt.want.allow, got.Allow, "reasons: %v", got.Reasons)
			if tt.want.allow {
				assert.Equal(t, tt.want.basis, got.Basis)
				assert.Equal(t, tt.want.mechanism, got.Transfer.Mechanism)
				assert.Equal(t, tt.want.mechanism != "domestic", got.Transfer.CrossBorder)
				require.NoError(t, got.CheckScope(r, tt.dc.Event.Type), "the second fence holds")
			} else {
				assert.Empty(t, got.Fields, "a refusal releases nothing")
			}
			for p, op := range tt.want.fields {
				assert.Equal(t, op, got.Fields[p], "field %s", p)
			}
			for _, p := range tt.want.absent {
				assert.NotContains(t, got.Fields, p)
			}
			if tt.want.reason != "" {
				assert.True(t, slices.ContainsFunc(got.Reasons, func(s string) bool { return strings.Contains(s, tt.want.reason) }),
					"a reason mentions %q: %v", tt.want.reason, got.Reasons)
			}
		})
	}
}

// TestDecideReasonsHoldNoPersonalData: reasons name classes, purposes,
// countries and paths, never values from the event (the context has none,
// but the subject's residence must not leak either).
func TestDecideReasonsHoldNoSubjectValues(t *testing.T) {
	d := sharedDecider(t)
	dc := decisionContext("payment", "crime_prevention")
	dc.Subject.Residence, dc.Subject.Citizenship = "GB", "IE"
	got, err := d.Decide(t.Context(), dc, recipient(t, d, "fraudshield"))
	require.NoError(t, err)
	require.False(t, got.Allow)
	require.NotEmpty(t, got.Reasons)
	for _, r := range got.Reasons {
		assert.NotContains(t, r, "IE")
	}
}

func TestDecideCache(t *testing.T) {
	d, err := policy.New(t.Context(), policies.FS, policy.WithCatalogue(catalogue(t)), policy.WithCacheSize(2))
	require.NoError(t, err)
	r := recipient(t, d, "ala-airport")
	dc := decisionContext("assistance", "service", "KZ")

	first, err := d.Decide(t.Context(), dc, r)
	require.NoError(t, err)
	assert.False(t, first.Cached)
	hits, misses := d.Stats()
	assert.Equal(t, [2]int64{0, 1}, [2]int64{hits, misses})
	require.NotEmpty(t, first.Reasons)

	// An equal context is a hit, answered with the same (shared, read-only)
	// fields; appending to the reasons, as the pipeline does, copies them.
	second, err := d.Decide(t.Context(), decisionContext("assistance", "service", "KZ"), r)
	require.NoError(t, err)
	assert.True(t, second.Cached)
	assert.Equal(t, first.Fields, second.Fields)
	assert.Equal(t, reflect.ValueOf(first.Fields).UnsafePointer(), reflect.ValueOf(second.Fields).UnsafePointer(),
		"a hit shares the cached fields instead of copying them")
	assert.Equal(t, len(second.Reasons), cap(second.Reasons), "reasons have no spare capacity")
	second.Reasons = append(second.Reasons, "no field released") // what the pipeline does
	third, err := d.Decide(t.Context(), dc, r)
	require.NoError(t, err)
	assert.NotContains(t, third.Reasons, "no field released")
	assert.Equal(t, first.Reasons, third.Reasons)
	hits, misses = d.Stats()
	assert.Equal(t, [2]int64{2, 1}, [2]int64{hits, misses})

	// Another recipient or another context is another entry.
	_, err = d.Decide(t.Context(), dc, recipient(t, d, "kzpay-processor"))
	require.NoError(t, err)
	withConsent := decisionContext("assistance", "service", "KZ")
	withConsent.Subject.Consents["health_data"] = true
	c, err := d.Decide(t.Context(), withConsent, r)
	require.NoError(t, err)
	assert.False(t, c.Cached)
	assert.Contains(t, c.Fields, "ssr_codes")
	hits, misses = d.Stats()
	assert.Equal(t, [2]int64{2, 3}, [2]int64{hits, misses})

	// The cache is bounded: with two entries, the oldest is gone.
	again, err := d.Decide(t.Context(), dc, r)
	require.NoError(t, err)
	assert.False(t, again.Cached, "evicted by the two newer entries")
}

// TestDecideCacheKeepsWhatIsUsed: a hit moves its entry to the front, so
// a full cache evicts the entry used least recently, not the oldest.
func TestDecideCacheKeepsWhatIsUsed(t *testing.T) {
	d, err := policy.New(t.Context(), policies.FS, policy.WithCatalogue(catalogue(t)), policy.WithCacheSize(2))
	require.NoError(t, err)
	r := recipient(t, d, "ala-airport")
	ctxs := map[string]func() *gateway.DecisionContext{
		"a": func() *gateway.DecisionContext { return decisionContext("assistance", "service", "KZ") },
		"b": func() *gateway.DecisionContext { return decisionContext("assistance", "contract", "KZ") },
		"c": func() *gateway.DecisionContext { return decisionContext("assistance", "baggage", "KZ") },
	}
	cached := func(name string) bool {
		t.Helper()
		dec, err := d.Decide(t.Context(), ctxs[name](), r)
		require.NoError(t, err)
		return dec.Cached
	}
	require.False(t, cached("a"))
	require.False(t, cached("b"))
	require.True(t, cached("a"), "a is cached, and now used after b")
	require.False(t, cached("c"), "a third entry evicts one")
	assert.True(t, cached("a"), "a, used last but one, stays")
	assert.False(t, cached("b"), "b, used least recently, was evicted")
}

func TestDecideWithoutCache(t *testing.T) {
	d, err := policy.New(t.Context(), policies.FS, policy.WithCacheSize(0))
	require.NoError(t, err)
	r := recipient(t, d, "kzpay-processor")
	for range 3 {
		got, err := d.Decide(t.Context(), decisionContext("payment", "contract"), r)
		require.NoError(t, err)
		assert.True(t, got.Allow)
		assert.False(t, got.Cached)
	}
	hits, misses := d.Stats()
	assert.Equal(t, [2]int64{0, 3}, [2]int64{hits, misses})
}

// TestDecideNilSlices: a hand-built context without route, consents or
// objections is decided like one with empty ones.
func TestDecideNilSlices(t *testing.T) {
	d := sharedDecider(t)
	got, err := d.Decide(t.Context(), &gateway.DecisionContext{Event: gateway.EventContext{Type: "payment", Purpose: "contract"}},
		recipient(t, d, "kzpay-processor"))
	require.NoError(t, err)
	assert.True(t, got.Allow, "%v", got.Reasons)
}

func TestDecideNil(t *testing.T) {
	d := sharedDecider(t)
	_, err := d.Decide(t.Context(), nil, recipient(t, d, "kzpay-processor"))
	require.Error(t, err)
	_, err = d.Decide(t.Context(), decisionContext("payment", "contract"), nil)
	require.Error(t, err)
}

// TestDecideSpoofedRecipient: a recipient claiming a registered id with
// another class is refused, even after the registered one was answered.
func TestDecideSpoofedRecipient(t *testing.T) {
	d := sharedDecider(t)
	registered := recipient(t, d, "kzpay-processor")
	dc := decisionContext("payment", "contract")
	got, err := d.Decide(t.Context(), dc, registered)
	require.NoError(t, err)
	require.True(t, got.Allow)
	spoof := *registered
	spoof.Type = "it_provider"
	got, err = d.Decide(t.Context(), dc, &spoof)
	require.NoError(t, err)
	assert.False(t, got.Allow)
	assert.Contains(t, got.Reasons, `recipient "kzpay-processor": type differs from the registry`)
}

func TestDecideUnknownRecipient(t *testing.T) {
	d := sharedDecider(t)
	r := &gateway.Recipient{ID: "stranger", Type: "payment_processor", Country: "KZ", Topic: "dgw.out.stranger"}
	got, err := d.Decide(t.Context(), decisionContext("payment", "contract"), r)
	require.NoError(t, err)
	assert.False(t, got.Allow)
	assert.Contains(t, got.Reasons, `recipient "stranger" is not in the recipients registry`)
}

func TestDecideConcurrent(t *testing.T) {
	d, err := policy.New(t.Context(), policies.FS, policy.WithCacheSize(64))
	require.NoError(t, err)
	ids := []string{"ala-airport", "kzpay-processor", "kz-border-api", "pulse-research"}
	contexts := []*gateway.DecisionContext{
		decisionContext("checkin", "contract", "KZ", "DE"),
		decisionContext("payment", "contract"),
		decisionContext("booking", "research", "KZ"),
	}
	want := map[string]bool{}
	for _, id := range ids {
		for i, dc := range contexts {
			got, err := d.Decide(t.Context(), dc, recipient(t, d, id))
			require.NoError(t, err)
			want[fmt.Sprint(id, i)] = got.Allow
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for n := range 40 {
				id, i := ids[(g+n)%len(ids)], n%len(contexts)
				got, err := d.Decide(context.Background(), contexts[i], recipient(t, d, id))
				if err != nil {
					errs <- err
					return
				}
				got.Reasons = append(got.Reasons, "appended by a caller")
				if got.Allow != want[fmt.Sprint(id, i)] {
					errs <- fmt.Errorf("%s, context %d: allow %v", id, i, got.Allow)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, id := range ids {
		for _, dc := range contexts {
			got, err := d.Decide(t.Context(), dc, recipient(t, d, id))
			require.NoError(t, err)
			assert.NotContains(t, got.Reasons, "appended by a caller", "a caller's append reached the cache")
		}
	}
	hits, misses := d.Stats()
	assert.Equal(t, int64(8*40+2*len(ids)*len(contexts)), hits+misses)
	assert.Equal(t, int64(len(ids)*len(contexts)), misses, "every context after the first round is a hit")
}

func TestCheck(t *testing.T) {
	cat := catalogue(t)
	// The real policy has no problems: ExampleCheck.
	t.Run("decision outside the contract scope", func(t *testing.T) {
		fsys := policyFS(t, replace("decision.rego", "\top := scope_op(recipient_scope[path], wanted)\n", "\top := wanted\n"))
		problems := policy.Check(t.Context(), fsys, cat)
		found := slices.ContainsFunc(problems, func(p policy.Problem) bool {
			return strings.HasPrefix(p.String(), "data/recipients.json:") && p.Line > 0 &&
				strings.Contains(p.Msg, "recipient astana-transfers, booking events: the policy releases a field outside the contract scope")
		})
		assert.True(t, found, "%v", problems)
		assert.True(t, slices.IsSortedFunc(problems, func(a, b policy.Problem) int {
			return strings.Compare(a.File, b.File)
		}), "problems are sorted by file")
	})
	t.Run("unreadable registry", func(t *testing.T) {
		fsys := policyFS(t, addFile("data/recipients.json", "{\"recipients\": [\n  {\"id\": \"x\",\n}\n"))
		problems := policy.Check(t.Context(), fsys, cat)
		require.NotEmpty(t, problems)
		assert.Equal(t, "data/recipients.json", problems[0].File)
		assert.Positive(t, problems[0].Line)
	})
}

func TestProblemString(t *testing.T) {
	assert.Equal(t, "fields.rego:12: bad", policy.Problem{File: "fields.rego", Line: 12, Msg: "bad"}.String())
	assert.Equal(t, "data/recipients.json: bad", policy.Problem{File: "data/recipients.json", Msg: "bad"}.String())
	err := &policy.ProblemsError{Problems: []policy.Problem{{File: "a.rego", Line: 1, Msg: "x"}, {File: "b", Msg: "y"}}}
	assert.Equal(t, "2 policy problems: a.rego:1: x; b: y", err.Error())
}

func TestTestReport(t *testing.T) {
	rep, err := policy.Test(t.Context(), policies.FS)
	require.NoError(t, err)
	assert.False(t, rep.Failed())
	assert.GreaterOrEqual(t, rep.Coverage, 90.0)
	s := rep.String()
	assert.Contains(t, s, "PASS data.dgw_test.test_payment_processor (classes_test.rego:")
	assert.Regexp(t, `(?m)^\d+ passed, 0 failed$`, s)
	assert.Contains(t, s, "coverage ")

	failing := policyFS(t, addFile("extra_test.rego", "package dgw_test\n\ntest_always_fails if false\n"))
	rep, err = policy.Test(t.Context(), failing)
	require.NoError(t, err)
	assert.True(t, rep.Failed())
	assert.Contains(t, rep.String(), "FAIL data.dgw_test.test_always_fails (extra_test.rego:3")
	assert.Regexp(t, `(?m)^\d+ passed, 1 failed$`, rep.String())

	_, err = policy.Test(t.Context(), policyFS(t, addFile("broken.rego", "package dgw\n\nallow if {\n")))
	var pe *policy.ProblemsError
	require.True(t, errors.As(err, &pe), "%v", err)
	assert.Equal(t, "broken.rego", pe.Problems[0].File)
}

// BenchmarkDecide: hit is one cached decision asked directly (the context
// key computed per call); event-hit is one (event, recipient) decision as
// the pipeline asks it, through a per-event Snapshot that computes the
// context key once for the event's recipients; miss evaluates the Rego.
func BenchmarkDecide(b *testing.B) {
	cat := catalogue(b)
	ctx := context.Background()
	dc := decisionContext("checkin", "border_control", "KZ", "DE")
	d, err := policy.New(ctx, policies.FS, policy.WithCatalogue(cat))
	require.NoError(b, err)
	r := recipient(b, d, "kz-border-api")
	b.Run("hit", func(b *testing.B) {
		_, err := d.Decide(ctx, dc, r)
		require.NoError(b, err)
		b.ReportAllocs()
		for b.Loop() {
			got, err := d.Decide(ctx, dc, r)
			if err != nil || !got.Allow || !got.Cached {
				b.Fatal(err, got.Reasons)
			}
		}
	})
	b.Run("event-hit", func(b *testing.B) {
		rs := d.Recipients()
		for _, r := range rs {
			_, err := d.Decide(ctx, dc, r)
			require.NoError(b, err)
		}
		b.ReportAllocs()
		var snap gateway.Decider
		i := 0
		for b.Loop() {
			if i%len(rs) == 0 {
				snap = d.Snapshot()
			}
			got, err := snap.Decide(ctx, dc, rs[i%len(rs)])
			if err != nil || !got.Cached {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("miss", func(b *testing.B) {
		d, err := policy.New(ctx, policies.FS, policy.WithCatalogue(cat), policy.WithCacheSize(0))
		require.NoError(b, err)
		b.ReportAllocs()
		for b.Loop() {
			got, err := d.Decide(ctx, dc, r)
			if err != nil || !got.Allow {
				b.Fatal(err, got.Reasons)
			}
		}
	})
}

// BenchmarkDecideStream decides the generated stream (gateway/synth, seed
// 1) for every recipient, as the pipeline does, and reports the share of
// decisions answered from the cache: one op is one event.
func BenchmarkDecideStream(b *testing.B) {
	set, err := schema.Load(schemas.FS)
	require.NoError(b, err)
	ctx := context.Background()
	d, err := policy.New(ctx, policies.FS, policy.WithCatalogue(set.Catalogue()))
	require.NoError(b, err)
	rs := d.Recipients()
	g := synth.New(synth.Options{Seed: 1})
	b.ResetTimer()
	for b.Loop() {
		ev := g.Next()
		s, ok := set.ByEventType(ev.Type)
		require.True(b, ok)
		dc, err := codec.Context(s, ev.Value)
		require.NoError(b, err)
		snap := d.Snapshot()
		for _, r := range rs {
			if _, err := snap.Decide(ctx, &dc, r); err != nil {
				b.Fatal(err)
			}
		}
	}
	hits, misses := d.Stats()
	b.ReportMetric(float64(hits)/float64(hits+misses), "hits/decision")
}
