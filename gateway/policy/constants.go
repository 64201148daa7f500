package policy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// constants are the values of documents data.dgw.decision depends on that
// an evaluation need not compute again. OPA remembers a rule's value within
// one evaluation only, so without them every decision would rebuild each of
// these documents from the data files and the rule bodies.
//
//   - Documents that read no input (the country lists, the recipient
//     classes, the class grants, the operator ranks, ...) are computed once
//     per policy revision, when the query is prepared.
//   - Documents whose only input is the recipient (input.recipient) and the
//     event's type and purpose (the contract scope, the grant, the fields
//     it allows, the refusals that follow from them, ...) are kept per
//     registered recipient, event type and purpose once a decision has
//     computed them (at most maxKeyed such triples), if its evaluation
//     succeeded: a failed evaluation (a conflict) may leave values in its
//     cache that it would not have confirmed.
//
// Every evaluation starts with them in its virtual-document cache
// (constCache); evaluation is otherwise the same, so a decision is the same
// as without them. A rule's input is what it and every rule it refers to
// read, up to the data files; a rule that uses `with`, prints or calls a
// non-deterministic built-in is never kept. Functions are not kept (their
// values depend on their arguments).
type constants struct {
	fixed docValues // read no input
	// keyed are the documents that read the recipient, the event type and
	// purpose only (and that a decision looks up); isKeyed indexes them (no
	// values); byKey holds their values per keyKey.
	keyed   []ast.Ref
	isKeyed docValues
	byKey   sync.Map // keyKey -> *docValues, never modified once stored
	nKey    atomic.Int64
	mu      sync.Mutex // serialises keep
}

// maxKeyed bounds the (recipient, event type, purpose) triples kept: event
// types and purposes come from the events.
const maxKeyed = 4096

// keyKey is a registered recipient (its position in the registry) and an
// event type and purpose.
type keyKey struct {
	recipient    int
	typ, purpose string
}

// docValues are documents by reference. byLast finds a document by the last
// element of its reference (data.dgw.eea: "eea"): a lookup compares only
// the few references that end alike.
type docValues struct {
	byLast map[string][]docValue
	n      int
}

type docValue struct {
	ref       ast.Ref
	value     *ast.Term // nil: the document is undefined
	undefined bool
}

func (v *docValues) add(ref ast.Ref, value *ast.Term) {
	last, ok := ref[len(ref)-1].Value.(ast.String)
	if !ok {
		return
	}
	if v.byLast == nil {
		v.byLast = map[string][]docValue{}
	}
	v.byLast[string(last)] = append(v.byLast[string(last)], docValue{ref: ref, value: value, undefined: value == nil})
	v.n++
}

// get is the document ref names: found, its value (nil when undefined).
func (v *docValues) get(ref ast.Ref) (docValue, bool) {
	if v == nil || len(ref) == 0 {
		return docValue{}, false
	}
	last, ok := ref[len(ref)-1].Value.(ast.String)
	if !ok {
		return docValue{}, false
	}
	for _, d := range v.byLast[string(last)] {
		if d.ref.Equal(ref) {
			return d, true
		}
	}
	return docValue{}, false
}

// Len is the number of documents that read no input.
func (k *constants) Len() int {
	if k == nil {
		return 0
	}
	return k.fixed.n
}

// findConstants analyses the documents the query refers to, directly or
// through other rules, and evaluates, once, those that read no input. A
// document whose evaluation fails or is undefined is left out: evaluation
// then computes it as before.
func findConstants(ctx context.Context, c *ast.Compiler, st storage.Store, query ast.Ref) (*constants, error) {
	a := constAnalysis{c: c, level: map[*ast.Rule]inputLevel{}, docs: map[string]ast.Ref{}, deps: map[*ast.Rule][]*ast.Rule{}}
	// The documents a decision looks up: the query's, and those a rule that
	// is evaluated for every decision (a function, or a rule of a document
	// that reads more than the recipient) refers to.
	lookedUp := map[string]bool{}
	for _, r := range c.GetRulesDynamicWithOpts(query, ast.RulesOptions{}) {
		a.ruleLevel(r)
		lookedUp[r.Ref().GroundPrefix().String()] = true
	}
	for r, deps := range a.deps {
		if len(r.Head.Args) > 0 || a.docLevel(r.Ref().GroundPrefix()) == readsMore {
			for _, o := range deps {
				lookedUp[o.Ref().GroundPrefix().String()] = true
			}
		}
	}
	k := &constants{}
	var fixed []ast.Ref
	for _, name := range sortedKeys(a.docs) {
		doc := a.docs[name]
		switch a.docLevel(doc) {
		case readsNothing:
			fixed = append(fixed, doc)
		case readsRecipient:
			// Only those a decision looks up: the others (grants.it_provider,
			// say, for every event type) are computed as a kept one needs
			// them, for its type.
			if lookedUp[name] {
				k.keyed = append(k.keyed, doc)
				k.isKeyed.add(doc, nil)
			}
		}
	}
	txn, err := st.NewTransaction(ctx)
	if err != nil {
		return nil, fmt.Errorf("constant documents: %w", err)
	}
	defer st.Abort(ctx, txn)
	for _, doc := range fixed {
		if v, ok := evalDoc(ctx, c, st, txn, doc); ok && v != nil {
			k.fixed.add(doc, v)
		}
	}
	return k, nil
}

// evalDoc evaluates one document: its value, nil when undefined; false
// when the evaluation failed.
func evalDoc(ctx context.Context, c *ast.Compiler, st storage.Store, txn storage.Transaction, doc ast.Ref) (*ast.Term, bool) {
	x := ast.VarTerm("x")
	rs, err := topdown.NewQuery(ast.NewBody(ast.Equality.Expr(x, ast.NewTerm(doc)))).
		WithCompiler(c).WithStore(st).WithTransaction(txn).Run(ctx)
	switch {
	case err != nil || len(rs) > 1:
		return nil, false
	case len(rs) == 0:
		return nil, true
	}
	return rs[0][x.Value.(ast.Var)], true
}

// kept are the kept values of the keyed documents for a key, or nil.
func (k *constants) kept(key keyKey) *docValues {
	if v, ok := k.byKey.Load(key); ok {
		return v.(*docValues)
	}
	return nil
}

// keep adds the values of keyed documents a successful evaluation for key
// computed.
func (k *constants) keep(key keyKey, computed []docValue) {
	k.mu.Lock()
	defer k.mu.Unlock()
	old := k.kept(key)
	if old == nil && k.nKey.Load() >= maxKeyed {
		return
	}
	v := &docValues{}
	if old != nil {
		for _, ds := range old.byLast {
			for _, d := range ds {
				v.add(d.ref, d.value)
			}
		}
	}
	for _, d := range computed {
		if _, dup := v.get(d.ref); !dup {
			v.add(d.ref, d.value)
		}
	}
	k.byKey.Store(key, v)
	if old == nil {
		k.nKey.Add(1)
	}
}

// cache is a virtual-document cache for one evaluation that starts with
// the documents that read no input and, with a key, those kept for it.
func (k *constants) cache(key *keyKey) *constCache {
	c := &constCache{k: k, key: key, VirtualCache: topdown.NewVirtualCache()}
	if key != nil && len(k.keyed) > 0 {
		c.keyed = k.kept(*key)
	}
	return c
}

// constCache answers the constants from k and keyed, and everything else
// from the evaluation's own cache; with a key, it notes the keyed
// documents the evaluation computes (computed). Inside a `with` (a pushed
// frame) it neither answers nor notes them: `with` may replace what they
// are computed from.
type constCache struct {
	topdown.VirtualCache
	k        *constants
	key      *keyKey
	keyed    *docValues
	computed []docValue
	frames   int
	// base is the depth of the query's own `with` frames: one for the
	// decision with the event's facts given (facts.go), whose `with`
	// replaces only data.dgw.facts, which every document here is computed
	// without (the facts read the event).
	base int
}

func (c *constCache) Put(ref ast.Ref, value *ast.Term) {
	if c.key != nil && c.frames == c.base {
		if d, ok := c.k.isKeyed.get(ref); ok {
			// d.ref, not ref: the evaluator reuses ref's backing array.
			c.computed = append(c.computed, docValue{ref: d.ref, value: value, undefined: value == nil})
		}
	}
	c.VirtualCache.Put(ref, value)
}

// done keeps what a successful evaluation computed.
func (c *constCache) done() {
	if len(c.computed) > 0 {
		c.k.keep(*c.key, c.computed)
	}
}

func (c *constCache) Push() { c.frames++; c.VirtualCache.Push() }

func (c *constCache) Pop() { c.frames--; c.VirtualCache.Pop() }

func (c *constCache) Get(ref ast.Ref) (*ast.Term, bool) {
	if c.frames == c.base {
		if d, ok := c.k.fixed.get(ref); ok {
			return d.value, d.undefined
		}
		if d, ok := c.keyed.get(ref); ok {
			return d.value, d.undefined
		}
	}
	return c.VirtualCache.Get(ref)
}

// inputLevel is what a rule reads of the input.
type inputLevel int

const (
	readsNothing   inputLevel = iota
	readsRecipient            // input.recipient, input.event.type, input.event.purpose only
	readsMore                 // anything else, or cannot be kept at all
)

// constAnalysis finds what each rule reads of the input (level) and the
// documents (rule paths) that may be kept.
type constAnalysis struct {
	c     *ast.Compiler
	level map[*ast.Rule]inputLevel
	docs  map[string]ast.Ref        // rule path (ground prefix) -> path
	deps  map[*ast.Rule][]*ast.Rule // the rules each rule refers to
}

// docLevel is the level of a document: that of its rules (at, under or
// above the path); functions are never kept.
func (a *constAnalysis) docLevel(doc ast.Ref) inputLevel {
	rules := a.c.GetRulesDynamicWithOpts(doc, ast.RulesOptions{})
	if len(rules) == 0 {
		return readsMore
	}
	l := readsNothing
	for _, r := range rules {
		if len(r.Head.Args) > 0 {
			return readsMore
		}
		l = max(l, a.ruleLevel(r))
	}
	return l
}

// inputRefLevel is the level of one reference to input.
func inputRefLevel(ref ast.Ref) inputLevel {
	if len(ref) < 2 {
		return readsMore
	}
	switch part := ref[1].Value; {
	case part.Compare(ast.String("recipient")) == 0:
		return readsRecipient
	case part.Compare(ast.String("event")) == 0 && len(ref) >= 3:
		if m := ref[2].Value; m.Compare(ast.String("type")) == 0 || m.Compare(ast.String("purpose")) == 0 {
			return readsRecipient
		}
	}
	return readsMore
}

// ruleLevel is what r, and the rules it refers to, read of the input.
func (a *constAnalysis) ruleLevel(r *ast.Rule) inputLevel {
	if l, seen := a.level[r]; seen {
		return l
	}
	a.level[r] = readsMore // a rule cannot refer to itself; fail safe if it did
	if len(r.Head.Args) == 0 {
		doc := r.Ref().GroundPrefix()
		a.docs[doc.String()] = doc
	}
	l := readsNothing
	var refs []ast.Ref
	visit := func(x any) {
		ast.WalkExprs(x, func(e *ast.Expr) bool {
			if len(e.With) > 0 {
				l = readsMore
			}
			return false
		})
		var term func(t *ast.Term) bool
		term = func(t *ast.Term) bool {
			switch v := t.Value.(type) {
			case ast.Var:
				if v.Equal(ast.InputRootDocument.Value) || v.Equal(ast.DefaultRootDocument.Value) {
					l = readsMore // input, or data as a whole
				}
			case ast.Ref:
				switch {
				case v.HasPrefix(ast.InputRootRef):
					l = max(l, inputRefLevel(v))
				case v.HasPrefix(ast.DefaultRootRef):
					refs = append(refs, v)
				default:
					if b, ok := ast.BuiltinMap[v.String()]; ok && (b.Nondeterministic || b.Name == ast.Print.Name ||
						b.Name == ast.InternalPrint.Name || b.Name == ast.Trace.Name) {
						l = readsMore
					}
					ast.WalkTerms(v[0], term)
				}
				// The keys of a reference: data.x[input.y] reads input.
				for _, k := range v[1:] {
					ast.WalkTerms(k, term)
				}
				return true
			}
			return false
		}
		ast.WalkTerms(x, term)
	}
	for x := r; x != nil; x = x.Else {
		visit(x.Head)
		for _, t := range x.Head.Ref() {
			visit(t)
		}
		visit(x.Body)
	}
	var deps []*ast.Rule
	for _, ref := range refs {
		for _, o := range a.c.GetRulesDynamicWithOpts(ref, ast.RulesOptions{}) {
			if o != r {
				l = max(l, a.ruleLevel(o))
				deps = append(deps, o)
			}
		}
	}
	a.deps[r] = deps
	a.level[r] = l
	return l
}

// preparedQuery is the prepared data.dgw.decision with the constants of
// its revision.
type preparedQuery struct {
	rego.PreparedEvalQuery
	consts *constants
	// withs is how many `with` frames the query itself opens (queryWithFacts:
	// one); the constants are served at that depth.
	withs int
	// direct, when set, evaluates the query without the rego package (see
	// directQuery).
	direct *directQuery
	// plan, when set, evaluates the query from the policy's plan (plan.go).
	plan *planQuery
}

// directQuery is a decision query compiled for topdown, which it evaluates
// without what rego.PreparedEvalQuery.Eval adds to every evaluation that a
// decision does not use: metrics, an evaluation context, and a goroutine
// that waits for the context's cancellation (a decision takes a fraction
// of a millisecond: the context is checked before it starts). The result
// is converted as rego converts it.
type directQuery struct {
	body     ast.Body
	result   ast.Var
	compiler *ast.Compiler
	qc       ast.QueryCompiler
	store    storage.Store
}

// newDirectQuery compiles query (one expression, whose value is the
// result, with its `with` modifiers) for c and st.
func newDirectQuery(c *ast.Compiler, st storage.Store, query string) (*directQuery, error) {
	body, err := ast.ParseBody(query)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", query, err)
	}
	if len(body) != 1 {
		return nil, fmt.Errorf("query %s: %d expressions, want one", query, len(body))
	}
	term, ok := body[0].Terms.(*ast.Term)
	if !ok {
		return nil, fmt.Errorf("query %s: not a term", query)
	}
	result := ast.Var("__dgw_result__")
	eq := ast.Equality.Expr(ast.NewTerm(result), term)
	eq.With = body[0].With
	qc := c.QueryCompiler()
	compiled, err := qc.Compile(ast.NewBody(eq))
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", query, err)
	}
	return &directQuery{body: compiled, result: result, compiler: c, qc: qc, store: st}, nil
}

// eval evaluates the query on in with cache: its results as rego gives
// them (one expression each).
func (q *directQuery) eval(ctx context.Context, in ast.Value, cache topdown.VirtualCache) (rego.ResultSet, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	txn, err := q.store.NewTransaction(ctx)
	if err != nil {
		return nil, err
	}
	defer q.store.Abort(ctx, txn)
	var rs rego.ResultSet
	err = topdown.NewQuery(q.body).WithQueryCompiler(q.qc).WithCompiler(q.compiler).WithStore(q.store).
		WithTransaction(txn).WithInput(ast.NewTerm(in)).WithVirtualCache(cache).
		Iter(ctx, func(qr topdown.QueryResult) error {
			t, ok := qr[q.result]
			if !ok {
				return errors.New("the query bound no result")
			}
			v, err := ast.JSONWithOpt(t.Value, ast.JSONOpt{})
			if err != nil {
				return err
			}
			rs = append(rs, rego.Result{Expressions: []*rego.ExpressionValue{{Value: v}}})
			return nil
		})
	return rs, err
}

// eval evaluates the query for one input; key is its registered
// recipient, event type and purpose, or nil.
func (q preparedQuery) eval(ctx context.Context, in ast.Value, key *keyKey) (rego.ResultSet, error) {
	if q.plan != nil && !q.plan.guard.off.Load() {
		return q.evalWithPlan(ctx, in, key)
	}
	return q.evalInterpreter(ctx, in, key)
}

// evalInterpreter evaluates the query with OPA's interpreter.
func (q preparedQuery) evalInterpreter(ctx context.Context, in ast.Value, key *keyKey) (rego.ResultSet, error) {
	if q.consts == nil {
		return q.Eval(ctx, rego.EvalParsedInput(in))
	}
	c := q.consts.cache(key)
	c.base = q.withs
	var (
		rs  rego.ResultSet
		err error
	)
	if q.direct != nil {
		rs, err = q.direct.eval(ctx, in, c)
	} else {
		rs, err = q.Eval(ctx, rego.EvalParsedInput(in), rego.EvalVirtualCache(c))
	}
	if err == nil {
		c.done()
	}
	return rs, err
}
