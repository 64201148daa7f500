package policy

import (
	"context"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/dgwproject/dgw/gateway"
)

// Per-recipient read sets. The projection (key.go) is what the policy as a
// whole reads; a recipient's decision may read less: only a travel agency's
// decision compares agency codes, only an employer's the corporate
// account. Keying every recipient's decision by the members some other
// recipient's rules read splits the cache for nothing, so each registry
// recipient's key holds only the members its own decision can read.
//
// Those are found at load by partial evaluation: the policy is partially
// evaluated with the recipient's policy view known and the event, the
// passenger and the schema unknown, and the members the residual policy
// refers to are the recipient's read set. The residual answers exactly as
// the policy does for every context with that recipient, so two contexts
// that agree on its members (and facts) get the same decision. The facts
// are not inlined (they are given to every decision, and keyed, as a
// value), so what only they read stays out. When partial evaluation fails
// or leaves something it cannot narrow down, the recipient keeps the
// policy's whole projection.
//
// The same walk finds which fields of the facts the recipient's decision
// reads (data.dgw.facts.regimes, say): its decisions are keyed by those
// fields of the event's facts only (facts.go), so a payment processor,
// which never reads the registry countries a trip serves, shares one entry
// among trips that differ only there. A reference to the facts as a whole,
// or by a computed key, keys by all of them.
//
// Partial evaluation leaves a rule with an else chain as it was, and the
// walk then follows every rule it refers to, for any recipient: the Art 49
// derogations refer to the border authority's public-interest rule, which
// reads the countries a trip serves. So the walk does not follow a rule
// that cannot apply to the recipient (guards): one whose expressions that
// read only the recipient are false for it, whatever the event. A
// conjunction with a false part is false, so what such a rule reads cannot
// change the decision.

// memberSet is a set of context members.
type memberSet uint32

var _ = [1]struct{}{}[len(memberNames)/32] // a memberSet holds every member

func (s memberSet) has(m member) bool { return s&(1<<m) != 0 }

// setOf is the members of p.
func setOf(ms []member) memberSet {
	var s memberSet
	for _, m := range ms {
		s |= 1 << m
	}
	return s
}

// readSets returns, for each recipient, the members of the decision part
// of p's key (p.members[:p.split]) that its decision can read, and the
// fields of the event's facts it can read (nil: all of them, or no facts).
func readSets(ctx context.Context, c *ast.Compiler, st storage.Store, recipients []*gateway.Recipient,
	views map[string]recipientView, p *projection) ([]memberSet, [][]string) {
	all := setOf(p.members[:p.split])
	out := make([]memberSet, len(recipients))
	fields := make([][]string, len(recipients))
	g := newGuards(c)
	for i, r := range recipients {
		out[i] = all
		if p.all {
			continue
		}
		if s, f, ok := readSet(ctx, c, st, g, views[r.ID].val, p.facts); ok {
			out[i] = s & all
			fields[i] = f
		}
	}
	return out, fields
}

// partialRoot is where partial evaluation puts its support rules.
const partialRoot = "data.partial"

// readSet partially evaluates the decision for the recipient view and
// collects the members the residual reads and, with facts, the fields of
// the facts it reads (sorted; nil when it may read the whole document);
// false when it cannot tell.
func readSet(ctx context.Context, c *ast.Compiler, st storage.Store, g *guards, view ast.Value, facts bool) (memberSet, []string, bool) {
	if view == nil {
		return 0, nil, false
	}
	known := ast.NewObject(ast.Item(ast.InternedTerm("recipient"), ast.NewTerm(view)))
	opts := []func(*rego.Rego){
		rego.Query(Query), rego.Compiler(c), rego.Store(st),
		rego.ParsedInput(known),
		rego.Unknowns([]string{"input.event", "input.subject", "input.schema"}),
	}
	if facts {
		opts = append(opts, rego.DisableInlining([]string{FactsDocument}))
	}
	pq, err := rego.New(opts...).Partial(ctx)
	if err != nil {
		return 0, nil, false
	}

	// The support rules, by the ground prefix of their path.
	type support struct {
		path  ast.Ref
		rules []*ast.Rule
	}
	var supports []support
	for _, m := range pq.Support {
		for _, r := range m.Rules {
			path := m.Package.Path.Extend(r.Head.Ref().GroundPrefix())
			supports = append(supports, support{path: path, rules: withElse([]*ast.Rule{r})})
		}
	}
	factsSupport := ast.MustParseRef(partialRoot + strings.TrimPrefix(FactsDocument, "data"))
	factsRules := map[*ast.Rule]bool{}
	if facts {
		for _, r := range withElse(c.GetRules(ast.MustParseRef(FactsDocument))) {
			factsRules[r] = true
		}
	}

	// Walk from the residual queries through the rules they refer to: the
	// support rules, and the policy's own rules partial evaluation left
	// as they were; not into the facts.
	var (
		visited   = map[*ast.Rule]bool{}
		originals []*ast.Rule
		read      []*ast.Rule
		todo      []ast.Ref
	)
	noteRefs := func(x any) {
		ast.WalkRefs(x, func(ref ast.Ref) bool {
			if ref[0].Equal(ast.DefaultRootDocument) {
				todo = append(todo, ref.GroundPrefix())
			}
			return false
		})
	}
	for _, q := range pq.Queries {
		noteRefs(q)
	}
	for len(todo) > 0 {
		ref := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if ref.HasPrefix(ast.MustParseRef(partialRoot)) {
			if ref.HasPrefix(factsSupport) {
				continue
			}
			for _, s := range supports {
				if !(ref.HasPrefix(s.path) || s.path.HasPrefix(ref)) {
					continue
				}
				for _, r := range s.rules {
					if !visited[r] {
						visited[r] = true
						read = append(read, r)
						noteRefs(r)
					}
				}
			}
			continue
		}
		originals = append(originals, c.GetRules(ref)...)
	}
	// Partial evaluation leaves a rule with an else chain as it was (and
	// the rules it refers to), recipient or not; the rules that cannot
	// apply to this recipient are not followed.
	skip, err := g.neverApplies(ctx, st, known)
	if err != nil {
		return 0, nil, false
	}
	for r := range factsRules {
		skip[r] = true
	}
	for r := range reachable(c, withElse(originals), skip) {
		read = append(read, r)
	}
	p := projectionOf(read)
	for _, q := range pq.Queries {
		// The queries are rules' bodies as far as reading goes.
		p2 := projectionOf([]*ast.Rule{{Head: ast.NewHead(ast.Var("q")), Body: q}})
		p.all = p.all || p2.all
		for k := range p2.read {
			p.read[k] = true
		}
	}
	if p.all {
		return 0, nil, false
	}
	var s memberSet
	for _, m := range allMembers {
		if p.readsMember(m) {
			s |= 1 << m
		}
	}
	if !facts {
		return s, nil, true
	}
	// The facts are read through references to them: in the residual's
	// queries and support rules (as data.partial.dgw.facts) and in the
	// policy's own rules it refers to (as data.dgw.facts).
	f := factsFields{fields: map[string]bool{}}
	factsDoc := ast.MustParseRef(FactsDocument)
	for _, q := range pq.Queries {
		f.noteAll(q, factsSupport, factsDoc)
	}
	for _, r := range read {
		f.noteAll(r, factsSupport, factsDoc)
	}
	if f.all {
		return s, nil, true
	}
	return s, sortedKeys(f.fields), true
}

// factsFields are the fields of the facts document that references read.
type factsFields struct {
	all    bool // a reference may read the document as a whole
	fields map[string]bool
}

// noteAll notes the references in x to any of docs.
func (f *factsFields) noteAll(x any, docs ...ast.Ref) {
	ast.WalkRefs(x, func(ref ast.Ref) bool {
		for _, doc := range docs {
			f.note(ref, doc)
		}
		return false
	})
}

// note notes what ref reads of doc: a field when it names one
// (data.dgw.facts.regimes), the whole document when it is doc itself, a
// document above it (data.dgw), or may be either (data.dgw[x],
// data.dgw.facts[x]); nothing when it is another document or a reference
// into a local value (a local bound to the document is noted where it is
// bound: x := data.dgw.facts reads it whole).
func (f *factsFields) note(ref, doc ast.Ref) {
	if len(ref) == 0 || !ref[0].Equal(doc[0]) {
		return
	}
	for i := 1; i < len(doc); i++ {
		switch {
		case i >= len(ref), !ref[i].IsGround():
			f.all = true
			return
		case !ref[i].Equal(doc[i]):
			return
		}
	}
	if len(ref) == len(doc) {
		f.all = true
		return
	}
	field, ok := ref[len(doc)].Value.(ast.String)
	if !ok {
		f.all = true
		return
	}
	f.fields[string(field)] = true
}

// guards finds the policy's rules that cannot apply to a recipient, whatever
// the event: a rule whose body has expressions that read nothing of the
// input but the recipient and nothing that changes between evaluations,
// and that are false together for that recipient
// (input.recipient.type == "border_authority", for every other class).
// What such a rule reads cannot change the recipient's decisions.
type guards struct {
	c      *ast.Compiler
	levels constAnalysis
	rules  []*ast.Rule            // every rule, else branches included
	bodies map[*ast.Rule]ast.Body // the recipient-only expressions of each rule, in order
	docs   map[string]bool        // documents that read the recipient only, by path
}

func newGuards(c *ast.Compiler) *guards {
	g := &guards{c: c, bodies: map[*ast.Rule]ast.Body{}, docs: map[string]bool{},
		levels: constAnalysis{c: c, level: map[*ast.Rule]inputLevel{}, docs: map[string]ast.Ref{}, deps: map[*ast.Rule][]*ast.Rule{}}}
	if c == nil {
		return g
	}
	for _, name := range sortedKeys(c.Modules) {
		g.rules = append(g.rules, withElse(c.Modules[name].Rules)...)
	}
	for _, r := range g.rules {
		if b := g.recipientOnly(r.Body); len(b) > 0 {
			g.bodies[r] = b
		}
	}
	return g
}

// neverApplies evaluates the recipient-only expressions of every rule with
// known (the input with the recipient only) and returns the rules whose
// expressions have no solution for it.
func (g *guards) neverApplies(ctx context.Context, st storage.Store, known ast.Value) (map[*ast.Rule]bool, error) {
	out := map[*ast.Rule]bool{}
	if len(g.bodies) == 0 {
		return out, nil
	}
	txn, err := st.NewTransaction(ctx)
	if err != nil {
		return nil, err
	}
	defer st.Abort(ctx, txn)
	in := ast.NewTerm(known)
	for _, r := range g.rules {
		b, ok := g.bodies[r]
		if !ok {
			continue
		}
		rs, err := topdown.NewQuery(b).WithCompiler(g.c).WithStore(st).WithTransaction(txn).WithInput(in).Run(ctx)
		if err == nil && len(rs) == 0 {
			out[r] = true
		} // an error cannot tell: the rule may apply
	}
	return out, nil
}

// recipientOnly returns the expressions of body whose values are the same
// for every input with the same recipient, in order: those that bind no
// variable but a new one (the compiler's locals: __local0__ =
// input.recipient.type), have no `with`, call only deterministic built-ins,
// and refer to constants, the recipient's members, documents that read only
// the recipient, and variables such expressions bound.
func (g *guards) recipientOnly(body ast.Body) ast.Body {
	var out ast.Body
	bound := map[ast.Var]bool{} // by an expression of out
	seen := map[ast.Var]bool{}  // in any expression so far
	for _, e := range body {
		if v, t, ok := assignment(e); ok && !seen[v] && g.closed(t, bound) {
			bound[v] = true
			out = append(out, e.Copy())
		} else if g.closedExpr(e, bound) {
			out = append(out, e.Copy())
		}
		for v := range e.Vars(ast.VarVisitorParams{SkipRefCallHead: true}) {
			seen[v] = true
		}
	}
	return ast.NewBody(out...)
}

// assignment returns v and t for an expression v = t (or t = v) that may
// bind the variable v.
func assignment(e *ast.Expr) (ast.Var, *ast.Term, bool) {
	if e.Negated || len(e.With) > 0 || !e.IsEquality() {
		return "", nil, false
	}
	a, b := e.Operand(0), e.Operand(1)
	if v, ok := a.Value.(ast.Var); ok && !v.IsWildcard() {
		return v, b, true
	}
	if v, ok := b.Value.(ast.Var); ok && !v.IsWildcard() {
		return v, a, true
	}
	return "", nil, false
}

// closedExpr reports whether e's value depends on the recipient only
// (bound: the variables known to).
func (g *guards) closedExpr(e *ast.Expr, bound map[ast.Var]bool) bool {
	if len(e.With) > 0 {
		return false
	}
	switch t := e.Terms.(type) {
	case *ast.Term:
		return g.closed(t, bound)
	case []*ast.Term:
		b, ok := ast.BuiltinMap[e.Operator().String()]
		if !ok || b.Nondeterministic || b.Name == ast.Print.Name || b.Name == ast.InternalPrint.Name || b.Name == ast.Trace.Name {
			return false // a function of the policy, or a built-in whose value may change
		}
		if len(b.Decl.FuncArgs().Args) != len(t)-1 && !e.IsEquality() {
			return false // its output is bound to a variable
		}
		for _, x := range t[1:] {
			if !g.closed(x, bound) {
				return false
			}
		}
		return true
	}
	return false // some, every
}

// closed reports whether t's value depends on the recipient only.
func (g *guards) closed(t *ast.Term, bound map[ast.Var]bool) bool {
	ok := true
	ast.WalkTerms(t, func(x *ast.Term) bool {
		switch v := x.Value.(type) {
		case ast.Var:
			ok = ok && bound[v] // not input or data as a whole, nor an unbound local
		case ast.Ref:
			for _, k := range v[1:] {
				ok = ok && g.closed(k, bound)
			}
			switch {
			case !ok:
			case v.HasPrefix(ast.InputRootRef):
				ok = len(v) >= 2 && v[1].Value.Compare(ast.String("recipient")) == 0
			case v.HasPrefix(ast.DefaultRootRef):
				ok = g.readsRecipientOnly(v)
			default:
				head, isVar := v[0].Value.(ast.Var)
				ok = isVar && bound[head]
			}
			return true
		case *ast.ArrayComprehension, *ast.SetComprehension, *ast.ObjectComprehension:
			ok = false
			return true
		}
		return false
	})
	return ok
}

// readsRecipientOnly reports whether the document ref reads nothing of the
// input but the recipient, and nothing that changes between evaluations.
func (g *guards) readsRecipientOnly(ref ast.Ref) bool {
	key := ref.String()
	if v, ok := g.docs[key]; ok {
		return v
	}
	g.docs[key] = false // a cycle (which the compiler rejects) stays false
	ok := true
	rules := g.c.GetRulesDynamicWithOpts(ref, ast.RulesOptions{})
	for _, r := range rules {
		// readsRecipient allows the event's type and purpose too; the
		// projection below rules them out.
		ok = ok && len(r.Head.Args) == 0 && g.levels.ruleLevel(r) <= readsRecipient
	}
	if ok {
		var reached []*ast.Rule
		for r := range reachable(g.c, rules, nil) {
			reached = append(reached, r)
		}
		p := projectionOf(reached)
		ok = !p.all
		for part := range p.read {
			ok = ok && (part == "recipient" || strings.HasPrefix(part, "recipient."))
		}
	}
	g.docs[key] = ok
	return ok
}
