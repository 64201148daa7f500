package policy

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/dgwproject/dgw/gateway"
)

// projection is which parts of the decision context a policy revision can
// observe, found in its compiled modules: every reference to input.<part>
// or input.<part>.<member>. The decision cache keys a decision by those
// parts only, so contexts that differ in what the policy never reads (the
// passenger's citizenship, the booking channel, the schema name, for the
// shipped policy) share one entry, and the cache stays exact: two contexts
// with the same key give the policy the same input.
//
// A reference the analysis cannot narrow down (input itself, input[x],
// input.event[x]) keeps the whole input or the whole part.
type projection struct {
	all  bool            // the policy may read any part: key the whole context
	read map[string]bool // "event", "subject.consents", ...: parts and members read
	// zero lists the members of the context the key leaves out, as
	// reflect field index paths of gateway.DecisionContext.
	zero [][]int
}

// inputProjection analyses the compiled policy modules.
func inputProjection(c *ast.Compiler) *projection {
	p := &projection{read: map[string]bool{}}
	var visit func(t *ast.Term) bool
	visit = func(t *ast.Term) bool {
		switch v := t.Value.(type) {
		case ast.Var:
			if v.Equal(ast.InputRootDocument.Value) {
				p.all = true // input as a whole
			}
		case ast.Ref:
			if len(v) == 0 || !v[0].Equal(ast.InputRootDocument) {
				return false
			}
			p.note(v)
			for _, x := range v[1:] {
				ast.WalkTerms(x, visit)
			}
			return true
		}
		return false
	}
	for _, name := range sortedKeys(c.Modules) {
		m := c.Modules[name]
		// The package and imports are not evaluated; rules are.
		for _, r := range m.Rules {
			ast.WalkTerms(r, visit)
			for x := r; x != nil; x = x.Else {
				for _, t := range x.Head.Ref() {
					ast.WalkTerms(t, visit)
				}
			}
		}
	}
	if !p.all {
		p.zero = zeroPaths(reflect.TypeFor[gateway.DecisionContext](), p.read)
	}
	return p
}

// note records what a reference to input reads.
func (p *projection) note(ref ast.Ref) {
	if len(ref) < 2 {
		p.all = true
		return
	}
	part, ok := ref[1].Value.(ast.String)
	if !ok {
		p.all = true
		return
	}
	if len(ref) < 3 {
		p.read[string(part)] = true
		return
	}
	member, ok := ref[2].Value.(ast.String)
	if !ok {
		p.read[string(part)] = true
		return
	}
	p.read[string(part)+"."+string(member)] = true
}

// zeroPaths lists the members of the context (two levels of JSON names, as
// the policy sees them) that read does not name, nor their part.
func zeroPaths(t reflect.Type, read map[string]bool) [][]int {
	var out [][]int
	for i := range t.NumField() {
		f := t.Field(i)
		name, ok := jsonName(f)
		switch {
		case !ok:
			out = append(out, []int{i}) // not in the input at all
		case read[name]:
		case f.Type.Kind() != reflect.Struct:
			out = append(out, []int{i})
		default:
			for j := range f.Type.NumField() {
				g := f.Type.Field(j)
				member, ok := jsonName(g)
				if !ok || !read[name+"."+member] {
					out = append(out, []int{i, j})
				}
			}
		}
	}
	return out
}

// jsonName is the name encoding/json gives a struct field; false when it
// is not encoded.
func jsonName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch tag {
	case "-":
		return "", false
	case "":
		return f.Name, true
	}
	return tag, true
}

// key is the canonical JSON of the parts of dc the policy reads, with nil
// and empty collections alike (the policy sees both as empty).
func (p *projection) key(dc *gateway.DecisionContext) string {
	c := normalised(dc)
	if len(p.zero) > 0 {
		v := reflect.ValueOf(&c).Elem()
		for _, idx := range p.zero {
			v.FieldByIndex(idx).SetZero()
		}
	}
	b, err := json.Marshal(&c)
	if err != nil {
		// Only strings, bools, slices and maps of them: cannot fail.
		panic("policy: marshal decision context: " + err.Error())
	}
	return string(b)
}

// String lists what the policy reads, for the load log.
func (p *projection) String() string {
	if p.all {
		return "all"
	}
	names := make([]string, 0, len(p.read))
	for n := range p.read {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}

// normalised is dc with empty collections where it has none, as the policy
// receives it.
func normalised(dc *gateway.DecisionContext) gateway.DecisionContext {
	c := *dc
	if c.Event.Route == nil {
		c.Event.Route = []string{}
	}
	if c.Subject.Consents == nil {
		c.Subject.Consents = map[string]bool{}
	}
	if c.Subject.Objections == nil {
		c.Subject.Objections = []string{}
	}
	return c
}
