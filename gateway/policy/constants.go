package policy

import (
	"context"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// constants are the values of the rules data.dgw.decision depends on that
// read no input: the country lists, the recipient classes, the class
// grants, the operator ranks and the like. OPA remembers a rule's value
// within one evaluation only, so without them every decision would rebuild
// each of these documents from the data files and the rule bodies (the EEA
// set alone is a comprehension over 30 countries). They are computed once
// per policy revision, when the query is prepared, and every evaluation
// starts with them in its virtual-document cache (constCache): evaluation
// is otherwise the same, so a decision is the same as without them.
//
// A rule counts as constant when neither it nor any rule it refers to, up
// to the data files, reads input, uses `with`, prints, or calls a
// non-deterministic built-in. Functions are not cached (their values
// depend on their arguments).
type constants struct {
	// byLast finds a constant by the last element of its reference
	// (data.dgw.eea: "eea"): a lookup compares only the few references
	// that end alike.
	byLast map[string][]constant
	n      int
}

type constant struct {
	ref   ast.Ref
	value *ast.Term
}

// Len is the number of constant documents.
func (k *constants) Len() int {
	if k == nil {
		return 0
	}
	return k.n
}

// findConstants evaluates, once, every constant document the query refers
// to, directly or through other rules. A document whose evaluation fails
// or is undefined is left out: evaluation then computes it as before.
func findConstants(ctx context.Context, c *ast.Compiler, st storage.Store, query ast.Ref) (*constants, error) {
	a := constAnalysis{c: c, dependent: map[*ast.Rule]bool{}, docs: map[string]ast.Ref{}}
	for _, r := range c.GetRulesDynamicWithOpts(query, ast.RulesOptions{}) {
		a.isDependent(r)
	}
	k := &constants{byLast: map[string][]constant{}}
	if len(a.docs) == 0 {
		return k, nil
	}
	txn, err := st.NewTransaction(ctx)
	if err != nil {
		return nil, fmt.Errorf("constant documents: %w", err)
	}
	defer st.Abort(ctx, txn)
	for _, ref := range sortedKeys(a.docs) {
		doc := a.docs[ref]
		if !a.constantDoc(doc) {
			continue
		}
		x := ast.VarTerm("x")
		rs, err := topdown.NewQuery(ast.NewBody(ast.Equality.Expr(x, ast.NewTerm(doc)))).
			WithCompiler(c).WithStore(st).WithTransaction(txn).Run(ctx)
		if err != nil || len(rs) != 1 {
			continue
		}
		last, ok := doc[len(doc)-1].Value.(ast.String)
		if !ok {
			continue
		}
		k.byLast[string(last)] = append(k.byLast[string(last)], constant{ref: doc, value: rs[0][x.Value.(ast.Var)]})
		k.n++
	}
	return k, nil
}

// get is the constant document ref names, if it is one.
func (k *constants) get(ref ast.Ref) *ast.Term {
	if k == nil || len(ref) == 0 {
		return nil
	}
	last, ok := ref[len(ref)-1].Value.(ast.String)
	if !ok {
		return nil
	}
	for _, c := range k.byLast[string(last)] {
		if c.ref.Equal(ref) {
			return c.value
		}
	}
	return nil
}

// cache is a virtual-document cache for one evaluation that starts with
// the constants.
func (k *constants) cache() topdown.VirtualCache {
	return &constCache{k: k, VirtualCache: topdown.NewVirtualCache()}
}

// constCache answers the constants from k and everything else from the
// evaluation's own cache. Inside a `with` (a pushed frame) it answers
// nothing from k: `with` may replace the data a constant was computed from.
type constCache struct {
	topdown.VirtualCache
	k      *constants
	frames int
}

func (c *constCache) Push() { c.frames++; c.VirtualCache.Push() }

func (c *constCache) Pop() { c.frames--; c.VirtualCache.Pop() }

func (c *constCache) Get(ref ast.Ref) (*ast.Term, bool) {
	if c.frames == 0 {
		if v := c.k.get(ref); v != nil {
			return v, false
		}
	}
	return c.VirtualCache.Get(ref)
}

// constAnalysis finds which rules read input (dependent) and the documents
// (rule paths) that may be constant.
type constAnalysis struct {
	c         *ast.Compiler
	dependent map[*ast.Rule]bool
	docs      map[string]ast.Ref // rule path (ground prefix) -> path
}

// constantDoc: every rule at, under or above the path is constant.
func (a *constAnalysis) constantDoc(doc ast.Ref) bool {
	rules := a.c.GetRulesDynamicWithOpts(doc, ast.RulesOptions{})
	if len(rules) == 0 {
		return false
	}
	for _, r := range rules {
		if len(r.Head.Args) > 0 || a.isDependent(r) {
			return false
		}
	}
	return true
}

// isDependent reports whether r, or a rule it refers to, may give a
// different value from one evaluation to the next.
func (a *constAnalysis) isDependent(r *ast.Rule) bool {
	if d, seen := a.dependent[r]; seen {
		return d
	}
	a.dependent[r] = true // a rule cannot refer to itself; fail safe if it did
	if len(r.Head.Args) == 0 {
		doc := r.Ref().GroundPrefix()
		a.docs[doc.String()] = doc
	}
	dep := false
	var refs []ast.Ref
	visit := func(x any) {
		ast.WalkExprs(x, func(e *ast.Expr) bool {
			if len(e.With) > 0 {
				dep = true
			}
			return false
		})
		var term func(t *ast.Term) bool
		term = func(t *ast.Term) bool {
			switch v := t.Value.(type) {
			case ast.Var:
				if v.Equal(ast.InputRootDocument.Value) || v.Equal(ast.DefaultRootDocument.Value) {
					dep = true // input, or data as a whole
				}
			case ast.Ref:
				switch {
				case v.HasPrefix(ast.InputRootRef):
					dep = true
				case v.HasPrefix(ast.DefaultRootRef):
					refs = append(refs, v)
				default:
					if b, ok := ast.BuiltinMap[v.String()]; ok && (b.Nondeterministic || b.Name == ast.Print.Name ||
						b.Name == ast.InternalPrint.Name || b.Name == ast.Trace.Name) {
						dep = true
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
	for _, ref := range refs {
		for _, o := range a.c.GetRulesDynamicWithOpts(ref, ast.RulesOptions{}) {
			if o != r && a.isDependent(o) {
				dep = true
			}
		}
	}
	a.dependent[r] = dep
	return dep
}

// preparedQuery is the prepared data.dgw.decision with the constants of
// its revision.
type preparedQuery struct {
	rego.PreparedEvalQuery
	consts *constants
}

// eval evaluates the query for one input.
func (q preparedQuery) eval(ctx context.Context, in ast.Value) (rego.ResultSet, error) {
	if q.consts.Len() == 0 {
		return q.Eval(ctx, rego.EvalParsedInput(in))
	}
	return q.Eval(ctx, rego.EvalParsedInput(in), rego.EvalVirtualCache(q.consts.cache()))
}
