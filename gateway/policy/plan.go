package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	opacompile "github.com/open-policy-agent/opa/v1/compile"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/policy/planeval"
)

// Decisions from the policy's plan. OPA's interpreter (topdown) evaluates
// about 120 expressions for one decision of the shipped policy, at 1.5 to
// 2 µs each: a decision the cache does not hold cost 150 to 250 µs. The
// same policy compiled to OPA's intermediate representation (the "plan"
// target of `opa build`) and evaluated by planeval costs under a third of that,
// with the same constants (constants.go) and facts (facts.go).
//
// OPA's interpreter stays the reference. A revision's plan is used only
// if it decides a sample of contexts (planSamples: every registry
// recipient, every event type of the registry, the purposes, routes and
// subject states of sampleContexts and more) exactly as the interpreter
// does; otherwise, or if the policy uses what planeval does not evaluate,
// the revision is decided by the interpreter and the log says why. While
// serving, one plan decision in planCheckEvery is also decided by the
// interpreter: a difference turns the plan off for the revision, empties
// the decision cache and is logged as an error; the interpreter's decision
// is the one returned. An evaluation error of the plan is answered by the
// interpreter too.

// planEntry is the plan of the decision (Query, as a path); planFacts that
// of the event facts (FactsDocument).
const (
	planEntry = "dgw/decision"
	planFacts = "dgw/facts"
)

// planCheckEvery is how often a plan decision is checked against the
// interpreter while serving: one in planCheckEvery.
const planCheckEvery = 32

// Evaluator names how a Decider evaluates the policy on a cache miss.
type Evaluator string

const (
	// EvaluatorPlan evaluates the policy compiled to OPA's plan, when the
	// plan decides the sample contexts as OPA's interpreter does (the
	// default); else the interpreter.
	EvaluatorPlan Evaluator = "plan"
	// EvaluatorInterpreter evaluates with OPA's interpreter only.
	EvaluatorInterpreter Evaluator = "interpreter"
)

// WithEvaluator chooses how decisions the cache does not hold are
// evaluated (default EvaluatorPlan).
func WithEvaluator(e Evaluator) Option { return optionFunc(func(c *config) { c.evaluator = e }) }

// compiledPlan is a policy revision compiled to OPA's plan.
type compiledPlan struct {
	pol  *ir.Policy
	data *ast.Term // the data documents
}

// buildPlan compiles the policy of src to OPA's intermediate representation
// (`opa build -t plan`).
//
// The modules are parsed again with the `not` future keyword: with it, the
// planner plans a negation with a success flag, as it plans `not { ... }`;
// without it, a negated reference that dispatches on a variable
// (`not grants[input.recipient.type][input.event.type]`) is planned so that
// its undefined case counts as defined. Every rule is an entry point, so
// that every rule is planned as a function: the planner dispatches
// `grants[t][e]` on grants[t] and leaves rules whose heads are deeper
// (grants.airport_operator.checkin) unplanned; planeval evaluates their
// subtree.
func buildPlan(ctx context.Context, src *source) (*compiledPlan, error) {
	b := &bundle.Bundle{Data: src.docs, Manifest: bundle.Manifest{Roots: &[]string{""}}}
	entries := []string{planEntry}
	for _, name := range slices.Sorted(maps.Keys(src.policy)) {
		m, err := ast.ParseModuleWithOpts(name, string(src.files[name]), ast.ParserOptions{
			RegoVersion: ast.RegoV1, FutureKeywords: []string{"not"}, ProcessAnnotation: true,
		})
		if err != nil {
			return nil, fmt.Errorf("parse %s for the plan: %w", name, err)
		}
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: name, Path: name, Raw: src.files[name], Parsed: m})
		for _, r := range m.Rules {
			if len(r.Head.Args) > 0 {
				continue
			}
			p, err := m.Package.Path.Extend(r.Head.Ref().GroundPrefix()).Ptr()
			if err == nil && !slices.Contains(entries, p) {
				entries = append(entries, p)
			}
		}
	}
	c := opacompile.New().
		WithTarget(opacompile.TargetPlan).
		WithBundle(b).
		WithEntrypoints(entries...).
		WithPruneUnused(true).
		WithRegoVersion(ast.RegoV1).
		WithCapabilities(ast.CapabilitiesForThisVersion())
	if err := c.Build(ctx); err != nil {
		return nil, fmt.Errorf("plan the policy: %w", err)
	}
	out := c.Bundle()
	if len(out.PlanModules) != 1 {
		return nil, fmt.Errorf("plan the policy: %d plans", len(out.PlanModules))
	}
	var pol ir.Policy
	if err := json.Unmarshal(out.PlanModules[0].Raw, &pol); err != nil {
		return nil, fmt.Errorf("read the policy's plan: %w", err)
	}
	data, err := ast.InterfaceToValue(src.docs)
	if err != nil {
		return nil, fmt.Errorf("data documents: %w", err)
	}
	return &compiledPlan{pol: &pol, data: ast.NewTerm(data)}, nil
}

// planQuery evaluates a prepared query from the plan instead of with
// OPA's interpreter, with the query's constants.
type planQuery struct {
	prog   *planeval.Program
	data   *ast.Term
	asTerm bool // results as Rego values (the facts), not as JSON

	fixed []*ast.Term // by function: documents that read no input
	keyed []bool      // by function: documents kept per keyKey
	kept  sync.Map    // keyKey -> []*ast.Term (by function), never modified once stored
	nKept atomic.Int64
	mu    sync.Mutex // serialises keep

	// facts are the functions of data.dgw.facts (and its parts) for a
	// decision given the facts in input.facts; nil when the plan computes
	// them.
	facts []factsPart

	guard *planGuard
}

type factsPart struct {
	fn  int
	rel []*ast.Term // the part's path below data.dgw.facts
}

// planGuard is what the queries of one revision's plan share: whether the
// plan is still trusted, and the sampled check.
type planGuard struct {
	off   atomic.Bool
	evals atomic.Int64
	// stats counts checks, differences and fallbacks (evaluation errors
	// answered by the interpreter), for every revision of a Live decider.
	stats *counters
	// mismatch is called once, on the first difference found while
	// serving (the decider empties its cache and logs); failed once, on
	// the first evaluation error of the plan (the decider logs).
	once       sync.Once
	mismatch   func(why string)
	failedOnce sync.Once
	failed     func(err error)
}

// newPlanQuery prepares the plan entry of cp with the constants of q; with
// factsGiven, data.dgw.facts is read from input.facts (queryWithFacts).
func newPlanQuery(cp *compiledPlan, entry string, consts *constants, factsGiven, asTerm bool, guard *planGuard) (*planQuery, error) {
	prog, err := planeval.Compile(cp.pol, entry)
	if err != nil {
		return nil, err
	}
	n := prog.Funcs()
	p := &planQuery{prog: prog, data: cp.data, asTerm: asTerm, fixed: make([]*ast.Term, n), keyed: make([]bool, n), guard: guard}
	factsRef := ast.MustParseRef(FactsDocument)
	for fn := range n {
		path := prog.FuncPath(fn)
		if len(path) < 2 || !prog.Memoised(fn) {
			continue
		}
		ref := ast.Ref{ast.DefaultRootDocument}
		for _, s := range path[1:] {
			ref = append(ref, ast.StringTerm(s))
		}
		if factsGiven && ref.HasPrefix(factsRef) {
			p.facts = append(p.facts, factsPart{fn: fn, rel: ref[len(factsRef):]})
			continue
		}
		if consts == nil {
			continue
		}
		if d, ok := consts.fixed.get(ref); ok {
			p.fixed[fn] = d.value
			if d.undefined {
				p.fixed[fn] = planeval.Undefined
			}
		}
		if _, ok := consts.isKeyed.get(ref); ok {
			p.keyed[fn] = true
		}
	}
	if factsGiven && len(p.facts) == 0 {
		return nil, fmt.Errorf("plan: %w: no function computes %s", planeval.ErrUnsupported, FactsDocument)
	}
	return p, nil
}

// keptFor is the kept keyed documents of key, or nil.
func (p *planQuery) keptFor(key keyKey) []*ast.Term {
	if v, ok := p.kept.Load(key); ok {
		return v.([]*ast.Term)
	}
	return nil
}

// keep adds the keyed documents a successful evaluation for key computed.
func (p *planQuery) keep(key keyKey, computed []*ast.Term) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.keptFor(key)
	if old == nil && p.nKept.Load() >= maxKeyed {
		return
	}
	v := slices.Clone(computed)
	for fn, t := range old {
		if v[fn] == nil {
			v[fn] = t
		}
	}
	p.kept.Store(key, v)
	if old == nil {
		p.nKept.Add(1)
	}
}

// eval evaluates the plan for one input; key is its registered recipient,
// event type and purpose, or nil. The results are rego's.
func (p *planQuery) eval(ctx context.Context, in ast.Value, key *keyKey) (rego.ResultSet, error) {
	var given *ast.Term
	if p.facts != nil {
		obj, ok := in.(ast.Object)
		if ok {
			given = obj.Get(ast.InternedTerm(factsMember))
		}
		if given == nil {
			// `with data.dgw.facts as input.facts` with no input.facts:
			// the query is undefined.
			return nil, nil
		}
	}
	var ks, computed []*ast.Term
	if key != nil {
		ks = p.keptFor(*key)
	}
	opts := planeval.Options{Known: func(fn int) *ast.Term {
		if v := p.fixed[fn]; v != nil {
			return v
		}
		if ks != nil && ks[fn] != nil {
			return ks[fn]
		}
		for _, f := range p.facts {
			if f.fn == fn {
				return factsPartValue(given, f.rel)
			}
		}
		return nil
	}}
	if key != nil {
		opts.Computed = func(fn int, v *ast.Term) {
			if p.keyed[fn] && (ks == nil || ks[fn] == nil) {
				if computed == nil {
					computed = make([]*ast.Term, len(p.keyed))
				}
				computed[fn] = v
			}
		}
	}
	res, err := p.prog.Eval(ctx, ast.NewTerm(in), p.data, opts)
	if err != nil {
		return nil, err
	}
	if computed != nil {
		p.keep(*key, computed)
	}
	var rs rego.ResultSet
	for _, r := range res {
		obj, ok := r.Value.(ast.Object)
		if !ok {
			return nil, fmt.Errorf("plan result is a %T", r.Value)
		}
		t := obj.Get(ast.InternedTerm("result"))
		if t == nil {
			return nil, errors.New("plan result without a value")
		}
		var v any = t
		if !p.asTerm {
			if v, err = ast.JSONWithOpt(t.Value, ast.JSONOpt{}); err != nil {
				return nil, err
			}
		}
		rs = append(rs, rego.Result{Expressions: []*rego.ExpressionValue{{Value: v}}})
	}
	return rs, nil
}

// factsPartValue is the part of the facts at rel (planeval.Undefined when
// there is none).
func factsPartValue(facts *ast.Term, rel []*ast.Term) *ast.Term {
	t := facts
	for _, k := range rel {
		obj, ok := t.Value.(ast.Object)
		if !ok {
			return planeval.Undefined
		}
		if t = obj.Get(k); t == nil {
			return planeval.Undefined
		}
	}
	return t
}

// sameResults reports whether two result sets of a decision (or facts)
// query are equal.
func sameResults(a, b rego.ResultSet) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i].Expressions) != len(b[i].Expressions) {
			return false
		}
		for j := range a[i].Expressions {
			x, y := a[i].Expressions[j].Value, b[i].Expressions[j].Value
			if tx, ok := x.(*ast.Term); ok {
				ty, ok := y.(*ast.Term)
				if !ok || !tx.Equal(ty) {
					return false
				}
				continue
			}
			if !reflect.DeepEqual(x, y) {
				return false
			}
		}
	}
	return true
}

// planOn reports whether q evaluates from its plan now. A caller that
// caches what q computed takes it before the evaluation and caches only if
// stillOn holds after it: a plan turned off meanwhile (its caches emptied)
// must leave nothing it computed behind.
func (q preparedQuery) planOn() bool { return q.plan != nil && !q.plan.guard.off.Load() }

// stillOn reports whether a result computed when on was reported may be
// cached: from the interpreter, or from a plan still on.
func (q preparedQuery) stillOn(on bool) bool { return !on || q.planOn() }

// evalWithPlan evaluates q from its plan, checking one evaluation in
// planCheckEvery against the interpreter; the interpreter answers when
// the plan fails or is off.
func (q preparedQuery) evalWithPlan(ctx context.Context, in ast.Value, key *keyKey) (rego.ResultSet, error) {
	g := q.plan.guard
	rs, err := q.plan.eval(ctx, in, key)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		g.stats.fallbacks.Add(1)
		g.failedOnce.Do(func() {
			if g.failed != nil {
				g.failed(err)
			}
		})
		return q.evalInterpreter(ctx, in, key)
	}
	if g.evals.Add(1)%planCheckEvery != 0 {
		return rs, nil
	}
	g.stats.checks.Add(1)
	want, err := q.evalInterpreter(ctx, in, key)
	if err != nil {
		return nil, err
	}
	if !sameResults(rs, want) {
		g.stats.differences.Add(1)
		g.off.Store(true)
		g.once.Do(func() {
			if g.mismatch != nil {
				g.mismatch(describeInput(in))
			}
		})
	}
	return want, nil
}

// describeInput names the recipient, event type and purpose of a decision
// input (no personal data: the input holds none).
func describeInput(in ast.Value) string {
	get := func(path ...string) string {
		ref := make(ast.Ref, len(path))
		for i, k := range path {
			ref[i] = ast.StringTerm(k)
		}
		if v, err := in.Find(ref); err == nil {
			if s, ok := v.(ast.String); ok {
				return string(s)
			}
		}
		return "?"
	}
	return fmt.Sprintf("recipient %s, %s events, purpose %s", get("recipient", "id"), get("event", "type"), get("event", "purpose"))
}

// planSamples are the decision contexts a plan must decide as the
// interpreter does before it is used: for every registry recipient and
// event type of its scope, the sample contexts of sampleContexts (every
// purpose, a domestic and an EU trip, every consent) and subjects without
// consents, with withdrawn ones, minors, erased, objecting, in vital
// interest, on trips through an unlisted country, the EU, the UK and the
// United States; and one context of every other event type the registry
// names (a refusal).
func planSamples(recipients []*gateway.Recipient) []sample {
	types := map[string]bool{}
	for _, r := range recipients {
		for et := range r.Scope {
			types[et] = true
		}
	}
	var out []sample
	for _, r := range recipients {
		for _, et := range slices.Sorted(maps.Keys(types)) {
			if _, ok := r.Scope[et]; !ok {
				out = append(out, sample{r, sampleContexts(r, et)[0], true})
				continue
			}
			for _, dc := range sampleContexts(r, et) {
				out = append(out, sample{r, dc, false})
			}
			for i, v := range subjectVariants() {
				purpose := [...]string{"contract", "research", "border_control"}[i%3]
				dc := &gateway.DecisionContext{
					Event: gateway.EventContext{Type: et, Purpose: purpose, PointOfSale: v.route[0], Route: v.route,
						OriginCountry: v.route[0], DestinationCountry: v.route[len(v.route)-1], BookingChannel: "travel_agency",
						AgencyCode: r.AgencyCode, CorporateAccount: r.CorporateAccount, EmployerPaid: v.employerPaid},
					Subject: v.subject,
					Schema:  gateway.SchemaContext{Name: "dgw.sample." + et},
				}
				if v.purposeConsent {
					dc.Subject.Consents = maps.Clone(dc.Subject.Consents)
					dc.Subject.Consents[purpose] = true
				}
				out = append(out, sample{r, dc, true})
			}
		}
	}
	return out
}

type sample struct {
	r  *gateway.Recipient
	dc *gateway.DecisionContext
	// plain: decided without the event's facts too, when the decider has
	// them (it decides so only contexts it cannot key).
	plain bool
}

type subjectVariant struct {
	subject        gateway.SubjectContext
	route          []string
	employerPaid   bool
	purposeConsent bool // the subject consents to the purpose too
}

func subjectVariants() []subjectVariant {
	all := map[string]bool{"health_data": true, "cross_border": true, "marketing": true}
	withdrawn := map[string]bool{"health_data": false, "cross_border": false, "marketing": false,
		"contract": false, "research": false, "border_control": false}
	var out []subjectVariant
	add := func(route []string, paid, consent bool, f func(s *gateway.SubjectContext)) {
		s := gateway.SubjectContext{Citizenship: "KZ", Residence: "KZ", Consents: all, Objections: []string{}}
		f(&s)
		out = append(out, subjectVariant{subject: s, route: route, employerPaid: paid, purposeConsent: consent})
	}
	add([]string{"KZ", "DE"}, false, false, func(s *gateway.SubjectContext) { s.Consents = map[string]bool{} })
	add([]string{"KZ", "DE"}, true, false, func(s *gateway.SubjectContext) { s.Consents = withdrawn })
	add([]string{"KZ", "TR"}, false, true, func(s *gateway.SubjectContext) { s.Minor = true })
	add([]string{"KZ"}, false, true, func(s *gateway.SubjectContext) { s.Erased = true })
	add([]string{"KZ", "GB"}, true, true, func(s *gateway.SubjectContext) {
		s.Objections = []string{"contract", "research", "border_control", "marketing", "profiling"}
	})
	add([]string{"KZ", "US"}, false, true, func(s *gateway.SubjectContext) { s.VitalInterest = true })
	add([]string{"ZX", "KZ"}, true, true, func(s *gateway.SubjectContext) { s.Citizenship, s.Residence = "ZX", "ZX" })
	add([]string{"FR", "KZ", "GB"}, false, true, func(s *gateway.SubjectContext) { s.Residence = "FR" })
	add([]string{"KZ", "AE", "US"}, true, false, func(s *gateway.SubjectContext) {
		s.Consents = map[string]bool{"cross_border": true}
	})
	return out
}

// planVerifier decides samples with the interpreter and the plan.
type planVerifier struct {
	decision, withFacts preparedQuery // the interpreter's queries (withFacts: zero when unused)
	factsQuery          preparedQuery
	plan, planWithFacts *planQuery
	planFactsQuery      *planQuery
	views               map[string]recipientView
	facts               sync.Map // facts input text -> facts (the interpreter's)
}

// verify returns why the plan's decisions differ from the interpreter's
// ("" when they agree on every sample).
func (v *planVerifier) verify(ctx context.Context, samples []sample) (string, error) {
	return smallestReason(ctx, samples, func(s sample) string { return v.one(ctx, s) })
}

// one compares the decisions of one sample (and its facts).
func (v *planVerifier) one(ctx context.Context, s sample) string {
	view := v.views[s.r.ID]
	name := fmt.Sprintf("recipient %s, %s events, purpose %s, route %v", s.r.ID, s.dc.Event.Type, s.dc.Event.Purpose, s.dc.Event.Route)
	key := &keyKey{recipient: view.index, typ: s.dc.Event.Type, purpose: s.dc.Event.Purpose}
	in, err := input(s.dc, s.r, view.val)
	if err != nil {
		return name + ": " + err.Error()
	}
	compare := func(what string, interp preparedQuery, plan *planQuery, in ast.Value, key *keyKey) (rego.ResultSet, string) {
		want, werr := interp.evalInterpreter(ctx, in, key)
		got, gerr := plan.eval(ctx, in, key)
		switch {
		case werr != nil && gerr != nil:
			return nil, ""
		case werr != nil || gerr != nil:
			return nil, fmt.Sprintf("%s: %s: the interpreter's error %v, the plan's %v", name, what, werr, gerr)
		case !sameResults(want, got):
			return nil, fmt.Sprintf("%s: %s: the plan decides otherwise", name, what)
		}
		return want, ""
	}
	if v.planWithFacts == nil || s.plain {
		if _, msg := compare("decision", v.decision, v.plan, in, key); msg != "" || v.planWithFacts == nil {
			return msg
		}
	}
	fin, err := input(s.dc, nil, noRecipient)
	if err != nil {
		return name + ": " + err.Error()
	}
	// Facts read the event alone: each event's once.
	var facts *ast.Term
	if f, ok := v.facts.Load(fin.String()); ok {
		facts = f.(*ast.Term)
	} else {
		rs, msg := compare("facts", v.factsQuery, v.planFactsQuery, fin, nil)
		if msg != "" || len(rs) != 1 {
			return msg
		}
		if facts, ok = rs[0].Expressions[0].Value.(*ast.Term); !ok {
			return name + ": facts are not a Rego value"
		}
		v.facts.Store(fin.String(), facts)
	}
	in.(ast.Object).Insert(ast.InternedTerm(factsMember), facts)
	_, msg := compare("decision with the event's facts", v.withFacts, v.planWithFacts, in, key)
	return msg
}

// usePlan compiles the revision's plan for the decider's queries and
// verifies it on the samples; it sets the queries' plans if they agree,
// and reports what it did.
func (d *Decider) usePlan(ctx context.Context, a *analysis, log *slog.Logger) error {
	why, n, err := d.preparePlan(ctx, a)
	if err != nil {
		return err
	}
	if why != "" {
		d.planNote = "evaluated by OPA's interpreter: the policy's plan cannot be used: " + why
		log.Warn("policy decisions are evaluated by OPA's interpreter: the policy's plan cannot be used",
			"revision", d.revision, "why", why)
		return nil
	}
	d.planNote = fmt.Sprintf("evaluated from the policy's plan, which decided %d sample contexts as OPA's interpreter does", n)
	log.Info("policy decisions are evaluated from the policy's plan", "revision", d.revision, "verified_decisions", n)
	return nil
}

// preparePlan builds and verifies the plan; why is set when it cannot be
// used.
func (d *Decider) preparePlan(ctx context.Context, a *analysis) (why string, samples int, err error) {
	key := planKey{revision: d.revision, facts: d.facts != nil}
	known, seen := plans.get(key)
	if seen && known.why != "" {
		return known.why, known.samples, nil
	}
	cp := known.plan
	if !seen {
		if cp, err = buildPlan(ctx, a.src); err != nil {
			plans.put(key, planResult{why: err.Error()})
			return err.Error(), 0, nil
		}
	}
	guard := &planGuard{stats: d.stats}
	v := &planVerifier{decision: d.query, views: d.views}
	if v.plan, err = newPlanQuery(cp, planEntry, d.query.consts, false, false, guard); err != nil {
		return err.Error(), 0, nil
	}
	if d.facts != nil {
		v.withFacts, v.factsQuery = d.facts.decision, d.facts.query
		if v.planWithFacts, err = newPlanQuery(cp, planEntry, d.facts.decision.consts, true, false, guard); err != nil {
			return err.Error(), 0, nil
		}
		if v.planFactsQuery, err = newPlanQuery(cp, planFacts, d.facts.query.consts, false, true, guard); err != nil {
			return err.Error(), 0, nil
		}
	}
	samples = known.samples
	if !seen {
		ss := planSamples(d.recipients)
		if why, err = v.verify(ctx, ss); err != nil {
			return "", 0, err
		}
		plans.put(key, planResult{plan: cp, why: why, samples: len(ss)})
		if why != "" {
			return why, len(ss), nil
		}
		samples = len(ss)
	}
	guard.mismatch = func(why string) {
		plans.put(key, planResult{why: "the plan decided otherwise than the interpreter while serving: " + why})
		if d.cache != nil {
			d.cache.purge()
		}
		if d.facts != nil {
			d.facts.purge() // the plan computed them too
		}
		d.cfg.log.Error("the policy's plan decided otherwise than OPA's interpreter: decisions are evaluated by the interpreter from now on, and the decision and facts caches were emptied",
			"revision", d.revision, "decision", why)
	}
	guard.failed = func(err error) {
		d.cfg.log.Warn("the policy's plan failed an evaluation: OPA's interpreter answered it, as it answers every one the plan fails",
			"revision", d.revision, "error", err.Error())
	}
	d.query.plan = v.plan
	if d.facts != nil {
		d.facts.decision.plan = v.planWithFacts
		d.facts.query.plan = v.planFactsQuery
	}
	return "", samples, nil
}

// plans remembers, per revision, the plan and whether it decided the
// samples as the interpreter does: the answer is the same for the same
// files (the revision is their hash) with the same OPA, so a revision
// loaded again (a test suite, a policy reverted while serving) is not
// verified again. Bounded: cleared when full.
var plans = &planMemo{m: map[planKey]planResult{}}

type planKey struct {
	revision string
	facts    bool // decided with the event's facts (a decision cache)
}

type planResult struct {
	plan    *compiledPlan
	why     string
	samples int
}

type planMemo struct {
	mu sync.Mutex
	m  map[planKey]planResult
}

const maxPlanMemo = 64

func (p *planMemo) get(k planKey) (planResult, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.m[k]
	return r, ok
}

func (p *planMemo) put(k planKey, r planResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.m) >= maxPlanMemo {
		clear(p.m)
	}
	p.m[k] = r
}
