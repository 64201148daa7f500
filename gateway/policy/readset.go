package policy

import (
	"context"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"

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
// of p's key (p.members[:p.split]) that its decision can read.
func readSets(ctx context.Context, c *ast.Compiler, st storage.Store, recipients []*gateway.Recipient,
	views map[string]recipientView, p *projection) []memberSet {
	all := setOf(p.members[:p.split])
	out := make([]memberSet, len(recipients))
	for i, r := range recipients {
		out[i] = all
		if p.all {
			continue
		}
		if s, ok := readSet(ctx, c, st, views[r.ID].val, p.facts); ok {
			out[i] = s & all
		}
	}
	return out
}

// partialRoot is where partial evaluation puts its support rules.
const partialRoot = "data.partial"

// readSet partially evaluates the decision for the recipient view and
// collects the members the residual reads; false when it cannot tell.
func readSet(ctx context.Context, c *ast.Compiler, st storage.Store, view ast.Value, facts bool) (memberSet, bool) {
	if view == nil {
		return 0, false
	}
	opts := []func(*rego.Rego){
		rego.Query(Query), rego.Compiler(c), rego.Store(st),
		rego.ParsedInput(ast.NewObject(ast.Item(ast.InternedTerm("recipient"), ast.NewTerm(view)))),
		rego.Unknowns([]string{"input.event", "input.subject", "input.schema"}),
	}
	if facts {
		opts = append(opts, rego.DisableInlining([]string{FactsDocument}))
	}
	pq, err := rego.New(opts...).Partial(ctx)
	if err != nil {
		return 0, false
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
	for r := range reachable(c, withElse(originals), factsRules) {
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
		return 0, false
	}
	var s memberSet
	for _, m := range allMembers {
		if p.readsMember(m) {
			s |= 1 << m
		}
	}
	return s, true
}
