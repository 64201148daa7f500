package policy

import (
	"context"
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
//     event's type and purpose (the registry entry, the contract scope, the
//     grant, ...) are computed once per registered recipient, event type
//     and purpose, the first time a decision needs them, and kept with the
//     revision (at most maxKeyed such triples).
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
	// purpose only; byKey holds their values per keyKey.
	keyed []ast.Ref
	// keyedQuery evaluates them all at once: xN = [v | v = keyed[N]], so
	// that an undefined document is an empty array.
	keyedQuery ast.Body
	byKey      sync.Map // keyKey -> *docValues
	nKey       atomic.Int64
	c          *ast.Compiler
	st         storage.Store
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
	k := &constants{c: c, st: st}
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
			}
		}
	}
	for i, doc := range k.keyed {
		v := ast.VarTerm(fmt.Sprintf("v%d", i))
		k.keyedQuery = append(k.keyedQuery, ast.Equality.Expr(keyedVar(i),
			ast.ArrayComprehensionTerm(v, ast.NewBody(ast.Equality.Expr(v, ast.NewTerm(doc))))))
	}
	txn, err := st.NewTransaction(ctx)
	if err != nil {
		return nil, fmt.Errorf("constant documents: %w", err)
	}
	defer st.Abort(ctx, txn)
	for _, doc := range fixed {
		if v, ok := evalDoc(ctx, c, st, txn, doc, nil, nil); ok && v != nil {
			k.fixed.add(doc, v)
		}
	}
	return k, nil
}

// evalDoc evaluates one document: its value, nil when undefined; false
// when the evaluation failed.
func evalDoc(ctx context.Context, c *ast.Compiler, st storage.Store, txn storage.Transaction, doc ast.Ref,
	in *ast.Term, vc topdown.VirtualCache) (*ast.Term, bool) {
	x := ast.VarTerm("x")
	q := topdown.NewQuery(ast.NewBody(ast.Equality.Expr(x, ast.NewTerm(doc)))).
		WithCompiler(c).WithStore(st).WithTransaction(txn).WithInput(in)
	if vc != nil {
		q = q.WithVirtualCache(vc)
	}
	rs, err := q.Run(ctx)
	switch {
	case err != nil || len(rs) > 1:
		return nil, false
	case len(rs) == 0:
		return nil, true
	}
	return rs[0][x.Value.(ast.Var)], true
}

// forKey returns the values of the keyed documents for a registered
// recipient (its position and policy view) and an event type and purpose,
// computing them the first time; nil when there are none to keep.
func (k *constants) forKey(ctx context.Context, key keyKey, view ast.Value) *docValues {
	if k == nil || len(k.keyed) == 0 {
		return nil
	}
	if v, ok := k.byKey.Load(key); ok {
		return v.(*docValues)
	}
	if k.nKey.Load() >= maxKeyed {
		return nil
	}
	// Exactly the members these documents read.
	in := ast.NewObject(
		ast.Item(ast.InternedTerm("recipient"), ast.NewTerm(view)),
		ast.Item(ast.InternedTerm("event"), ast.ObjectTerm(
			ast.Item(ast.InternedTerm("type"), ast.StringTerm(key.typ)),
			ast.Item(ast.InternedTerm("purpose"), ast.StringTerm(key.purpose)))),
	)
	txn, err := k.st.NewTransaction(ctx)
	if err != nil {
		return nil
	}
	defer k.st.Abort(ctx, txn)
	v := &docValues{}
	rs, err := topdown.NewQuery(k.keyedQuery).WithCompiler(k.c).WithStore(k.st).WithTransaction(txn).
		WithInput(ast.NewTerm(in)).WithVirtualCache(k.cache(nil)).Run(ctx)
	if err == nil && len(rs) == 1 {
		for i, doc := range k.keyed {
			if a, ok := rs[0][keyedVar(i).Value.(ast.Var)].Value.(*ast.Array); ok && a.Len() <= 1 {
				var val *ast.Term
				if a.Len() == 1 {
					val = a.Elem(0)
				}
				v.add(doc, val)
			}
		}
	} else {
		// One of them fails (a conflict, say): keep the others, each
		// evaluated on its own (a failed evaluation may leave values in its
		// cache that it would not have confirmed).
		for _, doc := range k.keyed {
			if val, ok := evalDoc(ctx, k.c, k.st, txn, doc, ast.NewTerm(in), k.cache(nil)); ok {
				v.add(doc, val)
			}
		}
	}
	if prev, loaded := k.byKey.LoadOrStore(key, v); loaded {
		return prev.(*docValues)
	}
	k.nKey.Add(1)
	return v
}

func keyedVar(i int) *ast.Term { return ast.VarTerm(fmt.Sprintf("x%d", i)) }

// cache is a virtual-document cache for one evaluation that starts with
// the documents that read no input and those of keyed (nil: none).
func (k *constants) cache(keyed *docValues) topdown.VirtualCache {
	return &constCache{k: k, keyed: keyed, VirtualCache: topdown.NewVirtualCache()}
}

// constCache answers the constants from k and keyed, and everything else
// from the evaluation's own cache. Inside a `with` (a pushed frame) it
// answers nothing from them: `with` may replace what they were computed
// from.
type constCache struct {
	topdown.VirtualCache
	k      *constants
	keyed  *docValues
	frames int
}

func (c *constCache) Push() { c.frames++; c.VirtualCache.Push() }

func (c *constCache) Pop() { c.frames--; c.VirtualCache.Pop() }

func (c *constCache) Get(ref ast.Ref) (*ast.Term, bool) {
	if c.frames == 0 {
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
}

// eval evaluates the query for one input; keyed are the values of the
// keyed documents for its recipient, event type and purpose, or nil.
func (q preparedQuery) eval(ctx context.Context, in ast.Value, keyed *docValues) (rego.ResultSet, error) {
	if q.consts.Len() == 0 && keyed == nil {
		return q.Eval(ctx, rego.EvalParsedInput(in))
	}
	return q.Eval(ctx, rego.EvalParsedInput(in), rego.EvalVirtualCache(q.consts.cache(keyed)))
}
