// Package policy is dgw's OPA-backed Decider: it loads a policy directory
// (Rego modules, Rego tests, data files, laid out as `opa test DIR` sees
// them), compiles it strictly, runs its Rego tests and refuses to start if
// any fails, validates the recipients registry against the schema
// catalogue, and prepares data.dgw.decision once. Decide then evaluates the
// prepared query per (decision context, recipient), with a bounded cache
// keyed by the parts of the context the policy reads, countries and party
// codes abstracted to what the policy can tell apart (canon.go), and what
// the policy derives from the event alone (data.dgw.facts) evaluated once
// per event and keyed by its value instead (facts.go). A miss is evaluated
// from the policy compiled to OPA's plan (planeval, plan.go) once the plan
// decides a sample of contexts as OPA's interpreter does. It and planeval
// are the only packages that import OPA.
//
// Live serves one revision at a time and replaces it, atomically, only with
// a revision that passes every check of Check; Watch follows a policy
// directory (file events and a periodic rescan) or an OPA bundle URL
// (signature verified when a key is given). The pipeline takes one
// Snapshot per event, so an event is decided by exactly one revision.
//
// The contract with the Rego (policies/README.md): the query
// data.dgw.decision returns {allow, fields, basis, transfer, reasons};
// data.dgw.recipient_classes lists the recipient types the registry may
// use; data.dgw.sensitive_fields lists the special-category fields per
// event type. The registry is data/recipients.json (data.data.recipients).
package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/dgwproject/dgw/gateway"
)

// DefaultCacheSize is the number of decisions a Decider keeps by default
// (and a quarter as many event facts). On the generated stream (gateway/synth,
// seed 1) the cache answers 90.9% of the (event, recipient) decisions over
// the first 5,000 events, 99.0% over 100,000, and 99.8% over the last
// 5,000 of those; the 100,000 events make 15,776 distinct keys, so the
// cache never fills there. Entries with equal decisions share them.
const DefaultCacheSize = 100_000

// Option configures New.
type Option interface{ apply(*config) }

type config struct {
	catalogue map[string][]gateway.Field
	log       *slog.Logger
	cacheSize int
	evaluator Evaluator
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithCatalogue gives the field catalogue (event type → fields, from
// schema.Set.Catalogue) the registry and the Rego are checked against.
// Without it those checks are skipped.
func WithCatalogue(c map[string][]gateway.Field) Option {
	return optionFunc(func(cfg *config) { cfg.catalogue = c })
}

// WithLogger sets the logger (default: discard). Nothing personal is logged.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(cfg *config) { cfg.log = l })
}

// WithCacheSize bounds the decision cache (default DefaultCacheSize); 0
// disables caching.
func WithCacheSize(n int) Option {
	return optionFunc(func(cfg *config) { cfg.cacheSize = n })
}

func (c *config) validate() error {
	if c.cacheSize < 0 {
		return fmt.Errorf("cache size %d: must not be negative", c.cacheSize)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	switch c.evaluator {
	case "":
		c.evaluator = EvaluatorPlan
	case EvaluatorPlan, EvaluatorInterpreter:
	default:
		return fmt.Errorf("evaluator %q: want %q or %q", c.evaluator, EvaluatorPlan, EvaluatorInterpreter)
	}
	return nil
}

// Decider answers what a recipient may receive, from one loaded policy
// revision. It is safe for concurrent use.
type Decider struct {
	query      preparedQuery
	revision   string
	recipients []*gateway.Recipient
	// views are the registry's recipients as the policy sees them, with
	// their cache key part, by id.
	views map[string]recipientView
	// proj is which parts of the decision context the policy reads: the
	// cache key holds exactly those.
	proj  *projection
	cache *decisionCache // nil when disabled
	facts *facts         // nil: decided without event facts (facts.go)
	// reads are the members each registry recipient's decision reads
	// (readset.go), by registry index; factsViews the view of the event's
	// facts it reads (facts.views), when decided with facts.
	reads      []memberSet
	factsViews []int
	seed       maphash.Seed // of the context hashes in cache keys
	seen       *interner    // decisions shared by cache entries
	planNote   string       // how misses are evaluated, and why (EvaluatorNote)
	stats      *counters
	cfg        config // for the revisions that replace this one (Live)
}

// counters are the decision cache statistics and the plan's checks; the
// revisions of one Live decider share them.
type counters struct {
	hits, misses                   atomic.Int64
	checks, differences, fallbacks atomic.Int64
}

var (
	_ gateway.Decider         = (*Decider)(nil)
	_ gateway.DeciderSnapshot = (*Decider)(nil)
)

// New loads the policy directory fsys, compiles it in strict mode, runs its
// Rego tests, validates the recipients registry (and, with WithCatalogue,
// the field paths of the registry and the Rego), and prepares
// data.dgw.decision. It fails, listing every problem in a *ProblemsError,
// when any check fails: dgw never starts with a policy that fails its own
// tests.
func New(ctx context.Context, fsys fs.FS, opts ...Option) (*Decider, error) {
	cfg := config{cacheSize: DefaultCacheSize}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return build(ctx, fsys, cfg, &counters{}, nil)
}

// build loads, checks and prepares one revision. With running set (a
// reload) the checks are those of Check too: the sample decisions must stay
// inside the contract scopes, and the registry must be the running one's.
func build(ctx context.Context, fsys fs.FS, cfg config, stats *counters, running []*gateway.Recipient) (*Decider, error) {
	o := analyseOptions{catalogue: cfg.catalogue, failFast: true}
	if running != nil {
		o.samples, o.running = true, running
	}
	a, problems, err := analyse(ctx, fsys, o)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	problems = append(problems, a.testProblems()...)
	if a == nil || len(problems) > 0 || !a.prepared {
		pe := &ProblemsError{Problems: sortProblems(problems)}
		if a != nil {
			pe.Revision = a.src.revision
		}
		return nil, pe
	}
	d := &Decider{query: a.query, revision: a.src.revision, recipients: a.recipients,
		views: recipientViews(a.recipients), proj: inputProjection(a.compiler), seed: maphash.MakeSeed(),
		stats: stats, cfg: cfg}
	if cfg.cacheSize > 0 {
		if d.cache, err = newDecisionCache(cfg.cacheSize); err != nil {
			return nil, err
		}
		d.seen = newInterner(cfg.cacheSize)
	}
	if cfg.cacheSize > 0 {
		// Key decisions by the event's facts instead of what only they
		// read, when the policy has facts that can be used (facts.go).
		st := a.src.store()
		if why := splitProjection(a.compiler, d.proj); why != "" {
			cfg.log.Warn("decisions are keyed without the policy's event facts", "revision", d.revision, "why", why)
		} else if d.proj.facts {
			if d.facts, err = newFacts(ctx, a.compiler, st, a.query.consts, max(cfg.cacheSize/4, 1)); err != nil {
				return nil, fmt.Errorf("policy: %w", err)
			}
		}
		// Key each recipient's decisions by what its decision reads.
		var fields [][]string
		d.reads, fields = readSets(ctx, a.compiler, st, d.recipients, d.views, d.proj)
		d.factsViews = make([]int, len(d.recipients))
		if d.facts != nil {
			d.factsViews = d.facts.setViews(fields)
		}
		// Key countries and codes by what the policy can tell apart, if the
		// sample decisions show it cannot tell more (canon.go).
		k := newCanon(a.compiler, a.src.docs)
		if why, err := checkCanon(ctx, a.query, a.recipients, d.proj.members, k); err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		} else if why != "" {
			cfg.log.Warn("decision cache keys countries and codes as spelt: the policy tells apart values the abstraction would merge",
				"revision", d.revision, "sample", why)
		} else {
			d.proj.canon = k
		}
	}
	if cfg.evaluator == EvaluatorPlan {
		if err := d.usePlan(ctx, a, cfg.log); err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
	}
	if cfg.catalogue == nil {
		cfg.log.Warn("policy loaded without a field catalogue: registry and Rego field paths were not checked against the schemas")
	}
	if running == nil {
		cfg.log.Info("policy loaded", "revision", d.revision, "modules", len(a.src.policy),
			"rego_tests", len(a.tests), "recipients", len(d.recipients), "context_read", d.proj.String())
	}
	return d, nil
}

// Evaluator is how this revision evaluates the decisions its cache does
// not hold: EvaluatorPlan when its plan is in use (and has not been turned
// off by a difference from the interpreter), else EvaluatorInterpreter.
func (d *Decider) Evaluator() Evaluator {
	if !d.query.planOn() {
		return EvaluatorInterpreter
	}
	return EvaluatorPlan
}

// EvaluatorNote says, for people, how this revision evaluates decision
// misses and why: the plan and how many samples verified it, or why the
// interpreter decides.
func (d *Decider) EvaluatorNote() string {
	switch {
	case d.query.plan != nil && !d.query.planOn():
		return "evaluated by OPA's interpreter: the policy's plan decided otherwise while serving"
	case d.planNote == "":
		return "evaluated by OPA's interpreter (policy_evaluator: interpreter)"
	}
	return d.planNote
}

// Evaluation reports the evaluator in use and the plan's checks against
// OPA's interpreter, for the pipeline's metrics (gateway.EvaluationReporter);
// the counts are those of every revision of a Live decider.
func (d *Decider) Evaluation() gateway.EvaluationStats {
	return gateway.EvaluationStats{Evaluator: string(d.Evaluator()), Checks: d.stats.checks.Load(),
		Differences: d.stats.differences.Load(), Fallbacks: d.stats.fallbacks.Load()}
}

// Revision is the short hex hash of every module and data file of the
// loaded policy.
func (d *Decider) Revision() string { return d.revision }

// Recipients returns the registry, in file order. The slice is a copy; the
// recipients are shared and must not be modified.
func (d *Decider) Recipients() []*gateway.Recipient { return slices.Clone(d.recipients) }

// Stats returns the decision cache hits and misses so far (of every
// revision, for the revisions of a Live decider).
func (d *Decider) Stats() (hits, misses int64) { return d.stats.hits.Load(), d.stats.misses.Load() }

// Decide evaluates data.dgw.decision for the context and recipient. An
// undefined result is a refusal with the reason "policy decision
// undefined"; an evaluation error or a malformed result (allow not a
// boolean, fields not an object of known operators, a cross-border allow
// without a mechanism) is an error, and the gateway holds the event.
//
// Decisions are cached per (recipient, the parts of the context the policy
// reads); a cached decision has Cached set. The Fields map of a decision
// is shared with the cache and other callers: read it, never modify it.
// Reasons has no spare capacity, so appending to it copies.
func (d *Decider) Decide(ctx context.Context, dc *gateway.DecisionContext, r *gateway.Recipient) (gateway.Decision, error) {
	if dc == nil || r == nil {
		return gateway.Decision{}, errors.New("policy: decide needs a decision context and a recipient")
	}
	if d.cache == nil {
		return d.decide(ctx, dc, r, &eventKey{}, nil)
	}
	var buf [512]byte
	k, f, err := d.eventKey(ctx, dc, buf[:0])
	if err != nil {
		return gateway.Decision{}, err
	}
	return d.decide(ctx, dc, r, &k, f.term)
}

// eventKey is what a decision's cache key holds of the event.
type eventKey struct {
	// context is the key of the event's context: the members the policy
	// reads outside the facts, then the facts' text; nil when the context
	// is not cached.
	context []byte
	offs    memberOffsets // where each member's part of context starts
	facts   []string      // the texts of the facts' views (facts.views), with facts
}

// forRecipient is the context's key for a recipient whose decision reads
// the members of set and the view of the facts numbered view: their parts
// of k.context, and the view's text.
func (k *eventKey) forRecipient(p *projection, set memberSet, view int, buf []byte) []byte {
	ms := p.members[:p.split]
	if k.context == nil || (set == setOf(ms) && view == 0) {
		return k.context
	}
	for i, m := range ms {
		if set.has(m) {
			buf = append(buf, k.context[k.offs[i]:k.offs[i+1]]...)
		}
	}
	if view == 0 {
		return append(buf, k.context[k.offs[len(ms)]:]...)
	}
	return appendFacts(buf, k.facts[view])
}

// eventKey computes the key of dc (into buf) and, with facts, its facts.
// The facts are returned apart from the key: a key whose buffer is on the
// caller's stack would otherwise follow them to the heap.
func (d *Decider) eventKey(ctx context.Context, dc *gateway.DecisionContext, buf []byte) (eventKey, factsEntry, error) {
	var ek eventKey
	key, split := d.proj.appendKeySplit(buf, dc, &ek.offs)
	if d.facts == nil || key == nil {
		ek.context = key
		return ek, factsEntry{}, nil
	}
	f, ok, err := d.facts.of(ctx, key, func() gateway.DecisionContext { c, _ := d.canonical(dc); return c })
	if err != nil {
		return eventKey{}, factsEntry{}, fmt.Errorf("policy %s: %w", d.revision, err)
	}
	if !ok {
		// Undefined facts: decided without them, not cached.
		return eventKey{}, factsEntry{}, nil
	}
	// The facts-only members are no longer needed: the facts replace them.
	ek.context = appendFacts(key[:split], f.text)
	ek.facts = f.texts
	return ek, f, nil
}

// canonical is dc as its key sees it: its abstracted members renamed, or
// dc itself without the abstraction.
func (d *Decider) canonical(dc *gateway.DecisionContext) (gateway.DecisionContext, *renamer) {
	if d.proj.canon == nil {
		return normalised(dc), &renamer{}
	}
	return d.proj.canon.canonical(dc, d.proj.members)
}

// Snapshot returns a Decider for one event (gateway.DeciderSnapshot): it
// decides with this revision and computes the context's cache key once for
// all the event's recipients.
func (d *Decider) Snapshot() gateway.Decider { return &eventDecider{d: d} }

// decide answers from the cache or evaluates. ek is the event's key
// (eventKey; empty without a cache), from which each recipient's key is cut
// by its read set; facts are the event's facts, nil without.
func (d *Decider) decide(ctx context.Context, dc *gateway.DecisionContext, r *gateway.Recipient, ek *eventKey, facts *ast.Term) (gateway.Decision, error) {
	var buf [256]byte
	var key cacheKey
	// Only the registry's recipients are cached: the abstraction of the
	// key knows the registry's strings, not those of another recipient
	// (one that claims a registered id with another class, say, which must
	// never be answered from the registered one's entry either).
	v, registered := d.views[r.ID]
	registered = registered && samePolicyView(v.r, r)
	var ctxKey []byte
	if registered && d.cache != nil {
		ctxKey = ek.forRecipient(d.proj, d.reads[v.index], d.factsViews[v.index], buf[:0])
	}
	cached := ctxKey != nil
	if cached {
		key = cacheKey{recipient: v.index, context: maphash.Bytes(d.seed, ctxKey)}
		// The hash finds the entry; the entry's own key bytes make the
		// answer exact whatever the hash.
		if dec, ok := d.cache.get(key, ctxKey); ok {
			d.stats.hits.Add(1)
			dec.Cached = true
			return dec, nil
		}
	}
	d.stats.misses.Add(1)
	var (
		dec       gateway.Decision
		err       error
		shareable = cached
		// A decision from the plan is not cached once the plan has been
		// turned off (and the cache emptied) while it was evaluated.
		planOn = d.query.planOn()
	)
	var view *recipientView
	if registered {
		view = &v
	}
	switch {
	case cached && d.facts != nil:
		dec, shareable, err = d.evaluateWithFacts(ctx, dc, r, view, facts)
	case cached && d.proj.canon != nil:
		dec, shareable, err = evaluateCanonical(ctx, d.query, d.proj.canon, d.proj.members, dc, r, view)
	default:
		dec, err = evaluateView(ctx, d.query, dc, r, view)
	}
	if err != nil {
		return gateway.Decision{}, fmt.Errorf("policy %s, recipient %s: %w", d.revision, r.ID, err)
	}
	dec.Revision = d.revision
	dec.Reasons = slices.Clip(dec.Reasons)
	if shareable && d.query.stillOn(planOn) {
		dec = d.seen.intern(dec)
		d.cache.add(key, string(ctxKey), dec)
	}
	return dec, nil
}

// evaluateCanonical decides dc as the cache key sees it: with its
// countries and codes renamed (canon.go). The decision may be shared by
// every context with the same key (the bool) unless it names a renamed
// value; then the real context is evaluated and its decision is not
// shared. view is r's registry view (r is the registered recipient), or nil.
func evaluateCanonical(ctx context.Context, q preparedQuery, k *canon, members []member,
	dc *gateway.DecisionContext, r *gateway.Recipient, view *recipientView) (gateway.Decision, bool, error) {
	c, rn := k.canonical(dc, members)
	if !rn.overflow {
		dec, err := evaluateView(ctx, q, &c, r, view)
		if err == nil && !rn.names(&dec) {
			return dec, true, nil
		}
	}
	dec, err := evaluateView(ctx, q, dc, r, view)
	return dec, false, err
}

// evaluateWithFacts decides dc as its key sees it, with the event's facts
// (evaluated on that context too), like evaluateCanonical.
func (d *Decider) evaluateWithFacts(ctx context.Context, dc *gateway.DecisionContext, r *gateway.Recipient,
	view *recipientView, f *ast.Term) (gateway.Decision, bool, error) {
	c, rn := d.canonical(dc)
	dec, err := evaluateInput(ctx, d.facts.decision, &c, r, view, f)
	if err == nil && !rn.names(&dec) {
		return dec, true, nil
	}
	dec, err = evaluateView(ctx, d.query, dc, r, view)
	return dec, false, err
}

// eventDecider is a Decider's snapshot for one event: the context key is
// computed for the first recipient and reused for the others.
type eventDecider struct {
	d    *Decider
	memo atomic.Pointer[memo]
}

type memo struct {
	dc    *gateway.DecisionContext
	key   eventKey
	facts factsEntry
	err   error
}

func (e *eventDecider) Decide(ctx context.Context, dc *gateway.DecisionContext, r *gateway.Recipient) (gateway.Decision, error) {
	if dc == nil || r == nil || e.d.cache == nil {
		return e.d.Decide(ctx, dc, r)
	}
	m := e.memo.Load()
	if m == nil || m.dc != dc {
		m = &memo{dc: dc}
		m.key, m.facts, m.err = e.d.eventKey(ctx, dc, make([]byte, 0, 256))
		e.memo.Store(m)
	}
	if m.err != nil {
		return gateway.Decision{}, m.err
	}
	return e.d.decide(ctx, dc, r, &m.key, m.facts.term)
}

// recipientView is a registry recipient's policy view and its key part.
type recipientView struct {
	r     *gateway.Recipient
	index int       // in the registry: the recipient's part of a cache key
	val   ast.Value // the view as a Rego value
}

func recipientViews(rs []*gateway.Recipient) map[string]recipientView {
	out := make(map[string]recipientView, len(rs))
	for i, r := range rs {
		v, err := viewValue(r)
		if err != nil {
			panic("policy: " + err.Error()) // strings only: cannot fail
		}
		out[r.ID] = recipientView{r: r, index: i, val: v}
	}
	return out
}

func samePolicyView(a, b *gateway.Recipient) bool {
	return a.ID == b.ID && a.Type == b.Type && a.Country == b.Country && a.AgencyCode == b.AgencyCode &&
		a.CorporateAccount == b.CorporateAccount && slices.Equal(a.Safeguards, b.Safeguards)
}

// interner makes the cache entries with equal decisions share one Fields
// map and one Reasons slice: a few hundred distinct decisions serve many
// thousands of (recipient, context) entries. It forgets everything when it
// holds max decisions; entries keep what they share.
type interner struct {
	mu  sync.Mutex
	max int
	m   map[string]gateway.Decision
}

func newInterner(max int) *interner { return &interner{max: max, m: map[string]gateway.Decision{}} }

func (in *interner) intern(d gateway.Decision) gateway.Decision {
	b, err := json.Marshal(&d)
	if err != nil {
		return d
	}
	k := string(b)
	in.mu.Lock()
	defer in.mu.Unlock()
	if seen, ok := in.m[k]; ok {
		d.Fields, d.Reasons = seen.Fields, seen.Reasons
		return d
	}
	if len(in.m) >= in.max {
		clear(in.m)
	}
	in.m[k] = d
	return d
}

// input is the decision context plus the recipient's policy view, as the
// JSON of gateway.DecisionContext (omitempty honoured, nil collections
// empty) built directly as a Rego value: view is the recipient's, or nil
// to convert it here. TestInputIsJSON holds it to the JSON route.
func input(dc *gateway.DecisionContext, r *gateway.Recipient, view ast.Value) (ast.Value, error) {
	if view == nil {
		var err error
		if view, err = viewValue(r); err != nil {
			return nil, err
		}
	}
	e, s := &dc.Event, &dc.Subject
	str := func(k, v string) [2]*ast.Term { return ast.Item(ast.InternedTerm(k), ast.StringTerm(v)) }
	boolean := func(k string, v bool) [2]*ast.Term { return ast.Item(ast.InternedTerm(k), ast.InternedTerm(v)) }
	strings := func(vs []string) *ast.Term {
		ts := make([]*ast.Term, len(vs))
		for i, v := range vs {
			ts[i] = ast.StringTerm(v)
		}
		return ast.ArrayTerm(ts...)
	}
	ev := make([][2]*ast.Term, 0, 10)
	ev = append(ev, str("type", e.Type), str("purpose", e.Purpose))
	for _, m := range [...]struct{ k, v string }{{"point_of_sale", e.PointOfSale}, {"origin_country", e.OriginCountry},
		{"destination_country", e.DestinationCountry}} {
		if m.v != "" {
			ev = append(ev, str(m.k, m.v))
		}
	}
	ev = append(ev, ast.Item(ast.InternedTerm("route"), strings(e.Route)))
	for _, m := range [...]struct{ k, v string }{{"booking_channel", e.BookingChannel}, {"agency_code", e.AgencyCode},
		{"corporate_account", e.CorporateAccount}} {
		if m.v != "" {
			ev = append(ev, str(m.k, m.v))
		}
	}
	ev = append(ev, boolean("employer_paid", e.EmployerPaid))

	consents := make([][2]*ast.Term, 0, len(s.Consents))
	for k, v := range s.Consents {
		consents = append(consents, boolean(k, v))
	}
	sub := make([][2]*ast.Term, 0, 7)
	sub = append(sub, boolean("minor", s.Minor))
	if s.Citizenship != "" {
		sub = append(sub, str("citizenship", s.Citizenship))
	}
	if s.Residence != "" {
		sub = append(sub, str("residence", s.Residence))
	}
	sub = append(sub, ast.Item(ast.InternedTerm("consents"), ast.ObjectTerm(consents...)),
		ast.Item(ast.InternedTerm("objections"), strings(s.Objections)),
		boolean("erased", s.Erased), boolean("vital_interest", s.VitalInterest))

	return ast.NewObject(
		ast.Item(ast.InternedTerm("event"), ast.ObjectTerm(ev...)),
		ast.Item(ast.InternedTerm("subject"), ast.ObjectTerm(sub...)),
		ast.Item(ast.InternedTerm("schema"), ast.ObjectTerm(str("name", dc.Schema.Name))),
		ast.Item(ast.InternedTerm("recipient"), ast.NewTerm(view)),
	), nil
}

// viewValue is the recipient's policy view as a Rego value.
func viewValue(r *gateway.Recipient) (ast.Value, error) {
	view := r.PolicyView()
	if sg, ok := view["safeguards"].([]string); ok {
		items := make([]any, len(sg))
		for i, s := range sg {
			items[i] = s
		}
		view["safeguards"] = items
	}
	v, err := ast.InterfaceToValue(view)
	if err != nil {
		return nil, fmt.Errorf("encode recipient view: %w", err)
	}
	return v, nil
}

// errMalformed marks a decision the gateway cannot use.
var errMalformed = errors.New("malformed policy decision")

// evaluate runs the prepared query and checks the shape of the result.
func evaluate(ctx context.Context, q preparedQuery, dc *gateway.DecisionContext, r *gateway.Recipient) (gateway.Decision, error) {
	return evaluateView(ctx, q, dc, r, nil)
}

// evaluateView is evaluate for a registered recipient: view is r's
// registry view (nil: r is not known to be registered; convert it). A
// registered recipient's decisions reuse what the policy computes from the
// recipient, event type and purpose alone (constants.go).
func evaluateView(ctx context.Context, q preparedQuery, dc *gateway.DecisionContext, r *gateway.Recipient, view *recipientView) (gateway.Decision, error) {
	return evaluateInput(ctx, q, dc, r, view, nil)
}

// evaluateInput is evaluateView with the event's facts given in the input
// (facts.go), for queryWithFacts; nil for none.
func evaluateInput(ctx context.Context, q preparedQuery, dc *gateway.DecisionContext, r *gateway.Recipient,
	view *recipientView, facts *ast.Term) (gateway.Decision, error) {
	var (
		val ast.Value
		key *keyKey
	)
	if view != nil {
		val = view.val
		key = &keyKey{recipient: view.index, typ: dc.Event.Type, purpose: dc.Event.Purpose}
	}
	in, err := input(dc, r, val)
	if err != nil {
		return gateway.Decision{}, err
	}
	if facts != nil {
		in.(ast.Object).Insert(ast.InternedTerm(factsMember), facts)
	}
	return evalDecision(ctx, q, in, key)
}

// evalDecision evaluates a decision query on in (key: its registered
// recipient, event type and purpose, or nil) and checks the result.
func evalDecision(ctx context.Context, q preparedQuery, in ast.Value, key *keyKey) (gateway.Decision, error) {
	rs, err := q.eval(ctx, in, key)
	if err != nil {
		return gateway.Decision{}, fmt.Errorf("evaluate %s: %w", Query, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return gateway.Decision{Fields: map[string]gateway.Operator{}, Reasons: []string{gateway.ErrUndefined.Error()}}, nil
	}
	if len(rs) > 1 {
		return gateway.Decision{}, fmt.Errorf("%w: %d results", errMalformed, len(rs))
	}
	return decode(rs[0].Expressions[0].Value)
}

// decode checks and converts the Rego decision document.
func decode(v any) (gateway.Decision, error) {
	doc, ok := v.(map[string]any)
	if !ok {
		return gateway.Decision{}, fmt.Errorf("%w: not an object", errMalformed)
	}
	var d gateway.Decision
	if d.Allow, ok = doc["allow"].(bool); !ok {
		return gateway.Decision{}, fmt.Errorf("%w: allow is not a boolean", errMalformed)
	}
	fields, ok := doc["fields"].(map[string]any)
	if !ok && doc["fields"] != nil {
		return gateway.Decision{}, fmt.Errorf("%w: fields is not an object", errMalformed)
	}
	d.Fields = make(map[string]gateway.Operator, len(fields))
	for p, x := range fields {
		s, _ := x.(string)
		op := gateway.Operator(s)
		if !op.Valid() {
			return gateway.Decision{}, fmt.Errorf("%w: field %s: unknown operator %v", errMalformed, p, x)
		}
		d.Fields[p] = op
	}
	if b, present := doc["basis"]; present {
		if d.Basis, ok = b.(string); !ok {
			return gateway.Decision{}, fmt.Errorf("%w: basis is not a string", errMalformed)
		}
	}
	if t, present := doc["transfer"]; present {
		tm, ok := t.(map[string]any)
		if !ok {
			return gateway.Decision{}, fmt.Errorf("%w: transfer is not an object", errMalformed)
		}
		if cb, present := tm["cross_border"]; present {
			if d.Transfer.CrossBorder, ok = cb.(bool); !ok {
				return gateway.Decision{}, fmt.Errorf("%w: transfer.cross_border is not a boolean", errMalformed)
			}
		}
		if m, present := tm["mechanism"]; present {
			if d.Transfer.Mechanism, ok = m.(string); !ok {
				return gateway.Decision{}, fmt.Errorf("%w: transfer.mechanism is not a string", errMalformed)
			}
		}
	}
	d.Reasons = []string{}
	if rs, present := doc["reasons"]; present {
		items, ok := rs.([]any)
		if !ok {
			return gateway.Decision{}, fmt.Errorf("%w: reasons is not an array", errMalformed)
		}
		for _, x := range items {
			s, ok := x.(string)
			if !ok {
				return gateway.Decision{}, fmt.Errorf("%w: a reason is not a string", errMalformed)
			}
			d.Reasons = append(d.Reasons, s)
		}
	}
	if d.Allow && d.Transfer.CrossBorder && d.Transfer.Mechanism == "" {
		return gateway.Decision{}, fmt.Errorf("%w: cross-border disclosure allowed without a transfer mechanism", errMalformed)
	}
	return d, nil
}
