package policy

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/dgwproject/dgw/gateway"
)

// Event facts. A policy may define data.dgw.facts: what it derives from the
// event and the passenger alone, whoever the recipient (the shipped policy:
// the regimes that apply and the registry's countries the trip touches).
// The decider then evaluates data.dgw.facts once per event and decides each
// recipient with data.dgw.facts replaced by that value, and keys the
// decision by the facts instead of the context members only facts read. A
// trip through France and Poland and one through Italy, sold in Germany,
// are different keys for a policy that reads the route, and one key for
// recipients that see only "the GDPR applies": this is what brings the
// decision cache's hit ratio near 100% on a diverse stream.
//
// It stays exact by construction: which members the rules outside facts
// read is found in the compiled policy (reachability from data.dgw.decision
// that does not pass through data.dgw.facts), and those members and the
// facts' value together are the key. Facts are evaluated on the canonical
// context (canon.go) like the decisions, and cached per event key.
//
// The policy's facts are used only when they can be: facts that read the
// recipient, a policy that reads input.facts itself, or one that reads the
// whole input are decided without them (a warning at load says why).

// FactsDocument is the optional per-event document of the policy.
const FactsDocument = "data.dgw.facts"

// queryWithFacts decides with the event's facts given in input.facts.
const queryWithFacts = Query + " with " + FactsDocument + " as input.facts"

// factsMember is the input member that carries an event's facts.
const factsMember = "facts"

// facts evaluates and caches a policy revision's event facts.
type facts struct {
	query    preparedQuery // data.dgw.facts, with its own constants
	decision preparedQuery // queryWithFacts
	cache    *lru.Cache[uint64, factsEntry]
	seed     maphash.Seed

	// values shares one Rego value and text among the entries with equal
	// facts: there are few distinct facts (the shipped policy: dozens) for
	// many event keys.
	mu     sync.Mutex
	values map[string]factsEntry // by text; key unset

	// views are the parts of the facts that recipients' decisions read
	// (readset.go): views[0] the whole document, the others sets of its
	// fields. A decision is keyed by the text of its recipient's view, so a
	// recipient that never reads the countries a trip serves, say, shares
	// one entry among trips that differ only there. Set before use.
	views [][]string
}

// maxFactsValues bounds values; past it, it starts again.
const maxFactsValues = 4096

// factsEntry is an event key's facts: the value, and its text, which the
// decision keys hold.
type factsEntry struct {
	key  string // the event key it answers, compared in full on a hit
	term *ast.Term
	text string
	// texts are the text of each of the views (facts.views); texts[0] is
	// text.
	texts []string
}

// setViews records the facts' fields each recipient reads (nil: the whole
// document) and returns, per recipient, its view's index.
func (f *facts) setViews(fields [][]string) []int {
	f.views = [][]string{nil}
	byName := map[string]int{}
	out := make([]int, len(fields))
	for i, fs := range fields {
		if fs == nil {
			continue
		}
		name := strings.Join(fs, "\x00")
		v, ok := byName[name]
		if !ok {
			v = len(f.views)
			byName[name] = v
			f.views = append(f.views, fs)
		}
		out[i] = v
	}
	return out
}

// viewTexts are the texts of t's views: the whole of t, then t with only
// the fields of each other view. A value that is not an object is whole
// in every view.
func (f *facts) viewTexts(t *ast.Term, text string) []string {
	out := make([]string, len(f.views))
	out[0] = text
	obj, isObj := t.Value.(ast.Object)
	for i, fields := range f.views[1:] {
		if !isObj {
			out[i+1] = text
			continue
		}
		items := make([][2]*ast.Term, 0, len(fields))
		for _, name := range fields {
			if v := obj.Get(ast.StringTerm(name)); v != nil {
				items = append(items, ast.Item(ast.StringTerm(name), v))
			}
		}
		out[i+1] = ast.NewObject(items...).String()
	}
	return out
}

// splitProjection narrows p, the members the whole policy reads, to those
// the rules outside data.dgw.facts read (first, in context order) and those
// only facts read (after them), when the policy defines facts that may be
// used. It returns why facts are not used, "" when they are, and "" with p
// unchanged for a policy without facts.
func splitProjection(c *ast.Compiler, p *projection) string {
	factsRules := withElse(c.GetRules(ast.MustParseRef(FactsDocument)))
	if len(factsRules) == 0 {
		return ""
	}
	stop := make(map[*ast.Rule]bool, len(factsRules))
	for _, r := range factsRules {
		stop[r] = true
	}
	inDecision := reachable(c, withElse(c.GetRules(ast.MustParseRef(Query))), stop)
	inFacts := reachable(c, factsRules, nil)
	used := false
	for r := range inDecision {
		for dep := range c.Graph.Dependencies(r) {
			used = used || stop[dep.(*ast.Rule)]
		}
	}
	if !used {
		return "data.dgw.decision does not read " + FactsDocument
	}
	// Conservative on the decision side: every rule is taken to be read
	// but those only facts reach.
	var outside, only []*ast.Rule
	for _, name := range sortedKeys(c.Modules) {
		for _, r := range c.Modules[name].Rules {
			if inFacts[r] && !inDecision[r] {
				only = append(only, r)
			} else {
				outside = append(outside, r)
			}
		}
	}
	pd, pf := projectionOf(outside), projectionOf(only)
	switch {
	case pd.all || pf.all:
		return "the policy reads the whole input"
	case pd.reads(factsMember) || pf.reads(factsMember):
		return "the policy reads input." + factsMember + " itself"
	case pf.reads("recipient"):
		return FactsDocument + " reads the recipient"
	}
	p.read, p.factsRead = pd.read, pf.read
	p.members = append(pd.members[:0:0], pd.members...)
	p.split = len(p.members)
	for _, m := range pf.members {
		if !pd.readsMember(m) {
			p.members = append(p.members, m)
		}
	}
	p.facts = true
	return ""
}

// withElse is rules with the rules of their else chains.
func withElse(rules []*ast.Rule) []*ast.Rule {
	var out []*ast.Rule
	for _, r := range rules {
		for x := r; x != nil; x = x.Else {
			out = append(out, x)
		}
	}
	return out
}

// reachable is the set of rules that roots depend on, directly or not,
// roots included, not going into the rules of stop.
func reachable(c *ast.Compiler, roots []*ast.Rule, stop map[*ast.Rule]bool) map[*ast.Rule]bool {
	seen := map[*ast.Rule]bool{}
	var todo []*ast.Rule
	add := func(r *ast.Rule) {
		for x := r; x != nil; x = x.Else {
			if !seen[x] && !stop[x] {
				seen[x] = true
				todo = append(todo, x)
			}
		}
	}
	for _, r := range roots {
		add(r)
	}
	for len(todo) > 0 {
		r := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for dep := range c.Graph.Dependencies(r) {
			add(dep.(*ast.Rule))
		}
	}
	return seen
}

// newFacts prepares the facts and the decision-with-facts queries.
func newFacts(ctx context.Context, c *ast.Compiler, st storage.Store, consts *constants, size int) (*facts, error) {
	// The facts are kept as a Rego value: converted to Go, a set would come
	// back as an array.
	asTerm := func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }
	q, err := rego.New(rego.Query(FactsDocument), rego.Compiler(c), rego.Store(st), rego.GenerateJSON(asTerm)).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", FactsDocument, err)
	}
	factsConsts, err := findConstants(ctx, c, st, ast.MustParseRef(FactsDocument))
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", FactsDocument, err)
	}
	dq, err := rego.New(rego.Query(queryWithFacts), rego.Compiler(c), rego.Store(st)).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", queryWithFacts, err)
	}
	direct, err := newDirectQuery(c, st, queryWithFacts)
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", queryWithFacts, err)
	}
	cache, err := lru.New[uint64, factsEntry](max(size, 1))
	if err != nil {
		return nil, fmt.Errorf("facts cache: %w", err)
	}
	decision := preparedQuery{PreparedEvalQuery: dq, consts: consts, withs: 1, direct: direct}
	return &facts{query: preparedQuery{PreparedEvalQuery: q, consts: factsConsts}, decision: decision, cache: cache, seed: maphash.MakeSeed(), values: map[string]factsEntry{}, views: [][]string{nil}}, nil
}

// of returns the facts of the event whose key (every member the policy
// reads, renamed) is key, evaluated on canonical(), the context as the key
// sees it. ok is false when the policy leaves them undefined.
func (f *facts) of(ctx context.Context, key []byte, canonical func() gateway.DecisionContext) (e factsEntry, ok bool, err error) {
	h := maphash.Bytes(f.seed, key)
	if e, hit := f.cache.Get(h); hit && e.key == string(key) {
		return e, true, nil
	}
	c := canonical()
	in, err := input(&c, nil, noRecipient)
	if err != nil {
		return factsEntry{}, false, err
	}
	planOn := f.query.planOn()
	rs, err := f.query.eval(ctx, in, nil)
	if err != nil {
		return factsEntry{}, false, fmt.Errorf("evaluate %s: %w", FactsDocument, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) == 0 {
		return factsEntry{}, false, nil
	}
	t, isTerm := rs[0].Expressions[0].Value.(*ast.Term)
	if !isTerm {
		return factsEntry{}, false, fmt.Errorf("evaluate %s: result is a %T", FactsDocument, rs[0].Expressions[0].Value)
	}
	// A Rego value's text is canonical: object keys and set members sorted.
	e = factsEntry{key: string(key), term: t, text: t.String()}
	f.mu.Lock()
	if seen, ok := f.values[e.text]; ok {
		e.term, e.text, e.texts = seen.term, seen.text, seen.texts
	} else {
		if len(f.values) >= maxFactsValues {
			clear(f.values)
		}
		e.texts = f.viewTexts(e.term, e.text)
		f.values[e.text] = factsEntry{term: e.term, text: e.text, texts: e.texts}
	}
	f.mu.Unlock()
	if f.query.stillOn(planOn) {
		f.cache.Add(h, e)
	}
	return e, true, nil
}

// purge empties the facts cache.
func (f *facts) purge() {
	f.cache.Purge()
	f.mu.Lock()
	clear(f.values)
	f.mu.Unlock()
}

// noRecipient is the recipient member of a facts evaluation's input:
// facts do not read it.
var noRecipient ast.Value = ast.NewObject()

// appendFacts appends the text of the facts, or of a view of them, to a
// decision key.
func appendFacts(dst []byte, text string) []byte {
	dst = append(dst, 0xff) // after the members, whose tags are smaller
	dst = binary.AppendUvarint(dst, uint64(len(text)))
	return append(dst, text...)
}
