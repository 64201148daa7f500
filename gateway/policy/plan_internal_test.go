package policy

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/policies"
)

// spoil replaces the plan's constant value of ref, on both decision
// queries of d, with v: a plan that decides otherwise than the
// interpreter.
func spoil(t *testing.T, d *Decider, ref string, v *ast.Term) {
	t.Helper()
	// A difference found while serving marks the revision's plan as not
	// to be used again (plans); this one is the test's doing.
	key := planKey{revision: d.revision, facts: d.facts != nil}
	if was, ok := plans.get(key); ok {
		t.Cleanup(func() { plans.put(key, was) })
	}
	r := ast.MustParseRef(ref)
	n := 0
	for _, q := range []*planQuery{d.query.plan, d.facts.decision.plan} {
		require.NotNil(t, q)
		for fn := range q.fixed {
			path := q.prog.FuncPath(fn)
			if len(path) == len(r) && path[len(path)-1] == string(r[len(r)-1].Value.(ast.String)) {
				q.fixed[fn] = v
				n++
			}
		}
		// Documents kept per recipient were computed from the old value.
		q.kept.Clear()
	}
	require.Equal(t, 2, n, "%s is a constant of both queries", ref)
}

func TestPlanServesConstants(t *testing.T) {
	d, err := New(t.Context(), policies.FS)
	require.NoError(t, err)
	require.Equal(t, EvaluatorPlan, d.Evaluator())
	v := d.views["cloudnest-it"] // in Germany
	dc := tripToFrance()
	_, f, err := d.eventKey(t.Context(), dc, nil)
	require.NoError(t, err)
	decide := func() gateway.Decision {
		// The plan only: the sampled check would answer with the
		// interpreter.
		rs, err := d.facts.decision.plan.eval(t.Context(), withFacts(t, dc, v, f.term), &keyKey{recipient: v.index, typ: "booking", purpose: "contract"})
		require.NoError(t, err)
		require.Len(t, rs, 1)
		dec, err := decode(rs[0].Expressions[0].Value)
		require.NoError(t, err)
		return dec
	}
	before := decide()
	require.Contains(t, before.Transfer.Mechanism, "kz_", "no GDPR transfer to Germany")
	spoil(t, d, "data.dgw.eea", ast.SetTerm())
	after := decide()
	assert.NotEqual(t, before.Transfer.Mechanism, after.Transfer.Mechanism, "the plan read the constant EEA list")
}

func withFacts(t *testing.T, dc *gateway.DecisionContext, v recipientView, facts *ast.Term) ast.Value {
	t.Helper()
	in, err := input(dc, v.r, v.val)
	require.NoError(t, err)
	in.(ast.Object).Insert(ast.InternedTerm(factsMember), facts)
	return in
}

// TestPlanTurnedOffOnDifference: the sampled check finds a plan that
// decides otherwise, answers with the interpreter, turns the plan off,
// empties the cache and logs; every decision after it is the
// interpreter's.
func TestPlanTurnedOffOnDifference(t *testing.T) {
	var logs bytes.Buffer
	d, err := New(t.Context(), policies.FS, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	require.NoError(t, err)
	ref, err := New(t.Context(), policies.FS, WithEvaluator(EvaluatorInterpreter))
	require.NoError(t, err)
	require.Equal(t, EvaluatorPlan, d.Evaluator())
	// No recipient class is one of the policy's: every decision refuses.
	spoil(t, d, "data.dgw.recipient_classes", ast.SetTerm())

	ctx := context.Background()
	decide := func(i int, r *gateway.Recipient) (got, want gateway.Decision) {
		dc := &gateway.DecisionContext{
			Event: gateway.EventContext{Type: "checkin", Purpose: "border_control", PointOfSale: "KZ", OriginCountry: "KZ",
				DestinationCountry: r.Country, Route: []string{"KZ", r.Country}},
			Subject: gateway.SubjectContext{Citizenship: "KZ", Residence: "KZ", Consents: map[string]bool{"n": i%2 == 0},
				Objections: []string{}},
		}
		// A new context for every call: each is a miss.
		dc.Subject.Consents[string(rune('a'+i%26))+string(rune('a'+i/26%26))] = true
		got, err := d.Decide(ctx, dc, r)
		require.NoError(t, err)
		want, err = ref.Decide(ctx, dc, r)
		require.NoError(t, err)
		return got, want
	}
	r := d.Recipients()[0]
	differ, i := 0, 0
	for ; d.Evaluator() == EvaluatorPlan && i < 4*planCheckEvery; i++ {
		got, want := decide(i, r)
		if !sameDecision(got, want) {
			differ++
		}
	}
	require.Equal(t, EvaluatorInterpreter, d.Evaluator(), "the check turned the plan off")
	assert.Equal(t, gateway.EvaluationStats{Evaluator: "interpreter", Checks: 1, Differences: 1}, d.Evaluation())
	// A miss evaluates the event's facts and the decision from the plan:
	// the first check is on the planCheckEvery/2-th.
	assert.Equal(t, planCheckEvery/2, i, "turned off on the first checked decision")
	assert.Equal(t, i-1, differ, "the spoilt plan decided every unchecked miss, the check answered with the interpreter")
	assert.Zero(t, d.cache.lru.Len(), "the cache was emptied")
	assert.Zero(t, d.facts.cache.Len(), "and the facts the plan computed")
	assert.Contains(t, logs.String(), "decided otherwise than OPA's interpreter")
	assert.Contains(t, logs.String(), "recipient "+r.ID+", checkin events, purpose border_control")
	for j := range 20 {
		got, want := decide(i+j, r)
		assert.True(t, sameDecision(got, want))
	}
	// The revision, loaded again, is not given its plan again.
	logs.Reset()
	again, err := New(t.Context(), policies.FS, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	require.NoError(t, err)
	assert.Equal(t, EvaluatorInterpreter, again.Evaluator())
	assert.Contains(t, logs.String(), "decided otherwise than the interpreter while serving")
}

// TestPlanVerifyFindsDifferences: a plan that decides a sample otherwise
// is not used.
func TestPlanVerifyFindsDifferences(t *testing.T) {
	d, err := New(t.Context(), policies.FS, WithEvaluator(EvaluatorInterpreter))
	require.NoError(t, err)
	a := &analysis{}
	src, problems := read(policies.FS)
	require.Empty(t, problems)
	a.src = src
	why, n, err := d.preparePlan(t.Context(), a)
	require.NoError(t, err)
	require.Empty(t, why)
	assert.Greater(t, n, 1000, "samples")
	require.Equal(t, EvaluatorPlan, d.Evaluator())

	// The same verification with a spoilt plan.
	v := &planVerifier{decision: d.query, views: d.views, plan: d.query.plan,
		withFacts: d.facts.decision, factsQuery: d.facts.query, planWithFacts: d.facts.decision.plan, planFactsQuery: d.facts.query.plan}
	spoil(t, d, "data.dgw.recipient_classes", ast.SetTerm())
	why, err = v.verify(t.Context(), planSamples(d.recipients))
	require.NoError(t, err)
	assert.Contains(t, why, "the plan decides otherwise")
}

// TestPlanFailureAnsweredByInterpreter: an evaluation the plan fails (here:
// data documents under a path its rules dispatch on, which planeval does
// not merge) is answered by the interpreter, and logged once.
func TestPlanFailureAnsweredByInterpreter(t *testing.T) {
	var logs bytes.Buffer
	d, err := New(t.Context(), policies.FS, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	require.NoError(t, err)
	ref, err := New(t.Context(), policies.FS, WithEvaluator(EvaluatorInterpreter))
	require.NoError(t, err)
	data := ast.MustParseTerm(`{"dgw": {"grants": {"airport_operator": {}, "border_authority": {}}}}`)
	for _, q := range []*planQuery{d.query.plan, d.facts.decision.plan} {
		obj := q.data.Value.(ast.Object).Copy()
		obj.Insert(ast.StringTerm("dgw"), data.Value.(ast.Object).Get(ast.StringTerm("dgw")))
		q.data = ast.NewTerm(obj)
		q.kept.Clear() // the grants are computed again
	}
	ctx := context.Background()
	for _, id := range []string{"ala-airport", "kz-border-api"} {
		r := d.views[id].r
		dc := &gateway.DecisionContext{Event: gateway.EventContext{Type: "checkin", Purpose: "border_control",
			PointOfSale: "KZ", OriginCountry: "KZ", DestinationCountry: "KZ", Route: []string{"KZ"}},
			Subject: gateway.SubjectContext{Citizenship: "KZ", Residence: "KZ", Consents: map[string]bool{}, Objections: []string{}}}
		got, err := d.Decide(ctx, dc, r)
		require.NoError(t, err)
		want, err := ref.Decide(ctx, dc, r)
		require.NoError(t, err)
		assert.True(t, sameDecision(got, want), "%s: %+v, want %+v", id, got, want)
	}
	assert.Equal(t, gateway.EvaluationStats{Evaluator: "plan", Fallbacks: 2}, d.Evaluation())
	assert.Equal(t, EvaluatorPlan, d.Evaluator(), "a failure is not a difference")
	assert.Equal(t, 1, bytes.Count(logs.Bytes(), []byte("the policy's plan failed an evaluation")), logs.String())
	assert.Contains(t, logs.String(), "rules and data documents under one path")
}

var fuzzDecider = sync.OnceValues(func() (*Decider, error) { return New(context.Background(), policies.FS) })

// FuzzPlanMatchesInterpreter: for any decision context and registry
// recipient, the plan decides as OPA's interpreter does, without and with
// the event's facts (and computes the same facts).
func FuzzPlanMatchesInterpreter(f *testing.F) {
	f.Add([]byte("booking contract KZ DE"), uint8(0))
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, uint8(5))
	f.Add([]byte{0xff, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90}, uint8(11))
	f.Fuzz(func(t *testing.T, b []byte, ri uint8) {
		d, err := fuzzDecider()
		require.NoError(t, err)
		require.Equal(t, EvaluatorPlan, d.Evaluator())
		r := d.recipients[int(ri)%len(d.recipients)]
		view := d.views[r.ID]
		dc := fuzzContext(b, r)
		key := &keyKey{recipient: view.index, typ: dc.Event.Type, purpose: dc.Event.Purpose}
		in, err := input(dc, r, view.val)
		require.NoError(t, err)
		same := func(what string, q preparedQuery, in ast.Value, key *keyKey) rego.ResultSet {
			want, werr := q.evalInterpreter(t.Context(), in, key)
			got, gerr := q.plan.eval(t.Context(), in, key)
			require.Equal(t, werr == nil, gerr == nil, "%s of %+v for %s: errors %v, %v", what, dc, r.ID, werr, gerr)
			require.True(t, sameResults(want, got), "%s of %+v for %s:\n got %v\nwant %v", what, dc, r.ID, got, want)
			return want
		}
		same("decision", d.query, in, key)
		fin, err := input(dc, nil, noRecipient)
		require.NoError(t, err)
		rs := same("facts", d.facts.query, fin, nil)
		if len(rs) != 1 {
			return
		}
		in.(ast.Object).Insert(ast.InternedTerm(factsMember), rs[0].Expressions[0].Value.(*ast.Term))
		same("decision with facts", d.facts.decision, in, key)
	})
}

// fuzzContext reads a decision context for r from b, with values the
// policy tells apart (and some it does not know).
func fuzzContext(b []byte, r *gateway.Recipient) *gateway.DecisionContext {
	i := 0
	next := func() int {
		if i >= len(b) {
			return 0
		}
		i++
		return int(b[i-1])
	}
	pick := func(xs []string) string { return xs[next()%len(xs)] }
	countries := []string{"KZ", "DE", "FR", "GB", "US", "TR", "AE", "RU", "CN", "ZX", "CH", ""}
	types := []string{"booking", "checkin", "payment", "baggage", "loyalty", "assistance", "websession", "corporate"}
	purposes := append(slices.Clone(samplePurposes), "marketing", "profiling", "unknown")
	dc := &gateway.DecisionContext{
		Event: gateway.EventContext{Type: pick(types), Purpose: pick(purposes), PointOfSale: pick(countries),
			OriginCountry: pick(countries), DestinationCountry: pick(countries),
			BookingChannel: pick([]string{"website", "travel_agency", "corporate", ""})},
		Subject: gateway.SubjectContext{Citizenship: pick(countries), Residence: pick(countries),
			Consents: map[string]bool{}, Objections: []string{}},
		Schema: gateway.SchemaContext{Name: "dgw.fuzz"},
	}
	for range next() % 4 {
		dc.Event.Route = append(dc.Event.Route, pick(countries[:len(countries)-1]))
	}
	flags := next()
	dc.Event.EmployerPaid = flags&1 != 0
	dc.Subject.Minor = flags&2 != 0
	dc.Subject.Erased = flags&4 != 0
	dc.Subject.VitalInterest = flags&8 != 0
	if flags&16 != 0 {
		dc.Event.AgencyCode = r.AgencyCode
	}
	if flags&32 != 0 {
		dc.Event.CorporateAccount = r.CorporateAccount
	}
	consents := []string{"cross_border", "health_data", "marketing", "research", "analytics_cookies", "marketing_cookies", dc.Event.Purpose}
	for _, c := range consents {
		switch next() % 3 {
		case 1:
			dc.Subject.Consents[c] = true
		case 2:
			dc.Subject.Consents[c] = false
		}
	}
	for range next() % 3 {
		dc.Subject.Objections = append(dc.Subject.Objections, pick(purposes))
	}
	return dc
}

// TestCachingAfterPlanTurnedOff: what a query computed while its plan was
// on is not cached once the plan is off (the caches were emptied then); the
// interpreter's results always are.
func TestCachingAfterPlanTurnedOff(t *testing.T) {
	q := preparedQuery{plan: &planQuery{guard: &planGuard{}}}
	on := q.planOn()
	require.True(t, on)
	assert.True(t, q.stillOn(on))
	q.plan.guard.off.Store(true)
	assert.False(t, q.stillOn(on), "computed from the plan, which is off now")
	assert.True(t, q.stillOn(q.planOn()), "computed by the interpreter")
	assert.True(t, preparedQuery{}.stillOn(preparedQuery{}.planOn()), "no plan at all")
}
