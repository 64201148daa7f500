package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"runtime"
	"slices"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/dgwproject/dgw/gateway"
)

// Check returns every problem of the policy directory fsys, each with its
// file and line, sorted:
//   - load and parse errors and strict compile errors (OPA's locations);
//   - failing Rego tests;
//   - registry problems (data/recipients.json): duplicate ids or topics,
//     unknown recipient types, safeguards or operators, scope paths that
//     are not leaves of the catalogue, card security codes in a scope;
//   - field paths named in the Rego (keys of "fields" objects, paths with
//     an operator, sensitive_fields) that no schema has;
//   - special-category fields of the catalogue the policy does not list in
//     data.dgw.sensitive_fields;
//   - from a built-in sample of decision contexts for every recipient, event
//     type of its scope and purpose: evaluation errors (such as conflicts),
//     malformed decisions, and released fields outside the catalogue or the
//     recipient's contract scope.
//
// An empty result means New accepts the directory.
func Check(ctx context.Context, fsys fs.FS, catalogue map[string][]gateway.Field) []Problem {
	a, problems, err := analyse(ctx, fsys, analyseOptions{catalogue: catalogue, samples: true})
	problems = append(problems, a.testProblems()...)
	if err != nil {
		problems = append(problems, Problem{File: ".", Msg: err.Error()})
	}
	return sortProblems(problems)
}

// analysis is a loaded, compiled and checked policy directory.
type analysis struct {
	src        *source
	compiler   *ast.Compiler // the policy modules, tests excluded
	recipients []*gateway.Recipient
	query      preparedQuery
	prepared   bool
	tests      []*tester.Result
	testsRan   bool
}

type analyseOptions struct {
	catalogue map[string][]gateway.Field
	cover     *cover.Cover // collect coverage of the Rego tests
	samples   bool         // evaluate the sample contexts
	failFast  bool         // skip the Rego tests once a static check failed, the samples once a test failed
	// running is the registry of the revision serving now (a reload): the
	// new revision must have the same one.
	running []*gateway.Recipient
}

// analyse loads fsys and checks it. Problems are findings about the policy
// directory, failing Rego tests excepted (see analysis.testProblems); the
// error reports a failure to run the checks (a cancelled context). The
// analysis is nil when the directory did not load or compile.
func analyse(ctx context.Context, fsys fs.FS, o analyseOptions) (*analysis, []Problem, error) {
	src, problems := read(fsys)
	if len(problems) > 0 {
		return nil, problems, nil
	}
	if _, problems := compile(src.modules, true); len(problems) > 0 {
		return nil, problems, nil
	}
	c, problems := compile(src.policy, false)
	if len(problems) > 0 {
		return nil, append(problems, Problem{File: ".", Msg: "the policy modules do not compile without the *_test.rego files"}), nil
	}
	a := &analysis{src: src, compiler: c}

	// Static checks: the registry, the field paths, the special categories.
	st := src.store()
	classesValue, ok, err := evalData(ctx, c, st, queryClasses)
	if err != nil || !ok {
		file, line := ruleLocation(c, queryClasses)
		problems = append(problems, Problem{File: file, Line: line, Msg: queryClasses + " must be a set of recipient types" + errSuffix(err)})
	}
	recipients, regProblems := registry(registryBytes(src.files), stringSet(classesValue), o.catalogue)
	if o.running != nil && len(regProblems) == 0 {
		regProblems = registryChanges(registryBytes(src.files), o.running, recipients)
	}
	problems = append(problems, regProblems...)
	a.recipients = recipients
	if o.catalogue != nil {
		problems = append(problems, scanFieldPaths(src.policy, o.catalogue)...)
		problems = append(problems, sensitiveProblems(ctx, c, st, o.catalogue)...)
	}
	if o.failFast && len(problems) > 0 {
		return a, problems, nil
	}

	tests, err := src.runTests(ctx, o.cover)
	if err != nil {
		var pe *ProblemsError
		if errors.As(err, &pe) {
			return nil, append(problems, pe.Problems...), nil
		}
		return nil, nil, err
	}
	a.tests, a.testsRan = tests, true

	q, err := rego.New(rego.Query(Query), rego.Compiler(c), rego.Store(st)).PrepareForEval(ctx)
	if err != nil {
		return a, append(problems, Problem{File: ".", Msg: "prepare " + Query + ": " + err.Error()}), nil
	}
	consts, err := findConstants(ctx, c, st, ast.MustParseRef(Query))
	if err != nil {
		return nil, nil, err
	}
	a.query, a.prepared = preparedQuery{PreparedEvalQuery: q, consts: consts}, true
	if o.failFast && len(a.testProblems()) > 0 {
		return a, problems, nil
	}
	if o.samples && len(regProblems) == 0 {
		problems = append(problems, a.sampleProblems(ctx, o.catalogue)...)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	return a, problems, nil
}

// testProblems lists the failing Rego tests, if they ran.
func (a *analysis) testProblems() []Problem {
	if a == nil || !a.testsRan {
		return nil
	}
	return testProblems(a.tests)
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return ": " + err.Error()
}

// pathPattern is what a leaf path looks like: dotted snake_case names.
var pathPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$`)

// scanFieldPaths reports field paths named in the Rego that the catalogue
// does not have as leaves: the keys of every "fields" object, every string
// key whose value is an operator, and the members of a set that is the
// value of an event-type key (sensitive_fields). A path under a rule whose
// head names an event type (grants.employer.corporate) must be a leaf of
// that event type; elsewhere a leaf of some event type.
func scanFieldPaths(modules map[string]*ast.Module, catalogue map[string][]gateway.Field) []Problem {
	leaves := map[string]map[string]bool{}
	anyLeaf := map[string]bool{}
	for et, fs := range catalogue {
		leaves[et] = map[string]bool{}
		for _, f := range fs {
			if f.Leaf {
				leaves[et][f.Path] = true
				anyLeaf[f.Path] = true
			}
		}
	}
	var out []Problem
	report := func(path, et string, loc *ast.Location) {
		var msg string
		switch {
		case !pathPattern.MatchString(path):
			msg = fmt.Sprintf("%q is not a field path", path)
		case et != "" && !leaves[et][path]:
			msg = fmt.Sprintf("field path %q is not a leaf of schemas/%s.avsc", path, et)
		case et == "" && !anyLeaf[path]:
			msg = fmt.Sprintf("field path %q is a leaf of no schema", path)
		default:
			return
		}
		p := Problem{File: ".", Msg: msg}
		if loc != nil {
			p.File, p.Line = loc.File, loc.Row
		}
		out = append(out, p)
	}
	badOp := func(path, op string, loc *ast.Location) {
		p := Problem{File: ".", Msg: fmt.Sprintf("field %s: unknown operator %q (keep, generalise, mask, hash, drop)", path, op)}
		if loc != nil {
			p.File, p.Line = loc.File, loc.Row
		}
		out = append(out, p)
	}
	var walk func(t *ast.Term, et string)
	walkObject := func(obj ast.Object, et string) {
		obj.Foreach(func(k, v *ast.Term) {
			key, isStr := k.Value.(ast.String)
			if !isStr {
				walk(v, et)
				return
			}
			name := string(key)
			switch {
			case name == "fields":
				if fields, ok := v.Value.(ast.Object); ok {
					fields.Foreach(func(fk, fv *ast.Term) {
						path, ok := fk.Value.(ast.String)
						if !ok {
							return
						}
						report(string(path), et, fk.Location)
						if op, ok := fv.Value.(ast.String); ok && !gateway.Operator(op).Valid() {
							badOp(string(path), string(op), fv.Location)
						}
					})
					return
				}
			case isOperator(v):
				report(name, et, k.Location)
				return
			case leaves[name] != nil:
				if set, ok := v.Value.(ast.Set); ok {
					set.Foreach(func(e *ast.Term) {
						if s, ok := e.Value.(ast.String); ok {
							report(string(s), name, e.Location)
						}
					})
					return
				}
				walk(v, name)
				return
			}
			walk(v, et)
		})
	}
	walk = func(t *ast.Term, et string) {
		ast.WalkTerms(t, func(x *ast.Term) bool {
			if obj, ok := x.Value.(ast.Object); ok {
				walkObject(obj, et)
				return true
			}
			return false
		})
	}
	for _, name := range sortedKeys(modules) {
		for _, rule := range modules[name].Rules {
			et := ""
			for _, t := range rule.Head.Ref() {
				if s, ok := t.Value.(ast.String); ok && leaves[string(s)] != nil {
					et = string(s)
				}
			}
			for r := rule; r != nil; r = r.Else {
				if r.Head.Value != nil {
					walk(r.Head.Value, et)
				}
				for _, expr := range r.Body {
					ast.WalkTerms(expr, func(x *ast.Term) bool {
						if obj, ok := x.Value.(ast.Object); ok {
							walkObject(obj, et)
							return true
						}
						return false
					})
				}
			}
		}
	}
	return out
}

func isOperator(t *ast.Term) bool {
	s, ok := t.Value.(ast.String)
	return ok && gateway.Operator(s).Valid()
}

// sensitiveProblems reports special-category fields of the catalogue
// (category health or sensitive) that data.dgw.sensitive_fields does not
// list: the policy would treat them as ordinary data.
func sensitiveProblems(ctx context.Context, c *ast.Compiler, st storage.Store, catalogue map[string][]gateway.Field) []Problem {
	file, line := ruleLocation(c, querySensitive)
	v, ok, err := evalData(ctx, c, st, querySensitive)
	listed, isObj := v.(map[string]any)
	if err != nil || !ok || !isObj {
		return []Problem{{File: file, Line: line, Msg: querySensitive + " must be an object of event type to sets of field paths" + errSuffix(err)}}
	}
	var out []Problem
	for _, et := range sortedKeys(catalogue) {
		have := stringSet(listed[et])
		for _, f := range catalogue[et] {
			if f.Leaf && (f.Category == "health" || f.Category == "sensitive") && !slices.Contains(have, f.Path) {
				out = append(out, Problem{File: file, Line: line, Msg: fmt.Sprintf(
					"%s field %s has category %s but is not in sensitive_fields: the policy would treat it as ordinary data", et, f.Path, f.Category)})
			}
		}
	}
	return out
}

// samplePurposes are the symbols of the schemas' Purpose enum (§7.1.1).
var samplePurposes = []string{"contract", "border_control", "baggage", "service", "campaign", "advertising",
	"survey", "research", "legal_obligation", "crime_prevention", "legal_claim"}

// sampleContexts are decision contexts meant to make the policy release as
// much as it ever does to r for event type et: every consent given, the
// recipient's own agency code and corporate account, a trip through its
// country; once under Kazakh law only and once under the EU and UK GDPR too.
func sampleContexts(r *gateway.Recipient, et string) []*gateway.DecisionContext {
	consents := map[string]bool{"health_data": true, "cross_border": true, "analytics_cookies": true, "marketing_cookies": true}
	for _, p := range samplePurposes {
		consents[p] = true
	}
	route := func(cs ...string) []string {
		var out []string
		for _, c := range cs {
			if c != "" && (len(out) == 0 || out[len(out)-1] != c) {
				out = append(out, c)
			}
		}
		return out
	}
	var out []*gateway.DecisionContext
	for _, v := range []struct {
		pos, residence string
		route          []string
	}{
		{"KZ", "KZ", route("KZ", r.Country)},
		{"DE", "GB", route("KZ", "DE", r.Country)},
	} {
		for _, p := range samplePurposes {
			dc := &gateway.DecisionContext{
				Event: gateway.EventContext{Type: et, Purpose: p, PointOfSale: v.pos, Route: v.route,
					OriginCountry: v.route[0], DestinationCountry: v.route[len(v.route)-1], BookingChannel: "website",
					AgencyCode: r.AgencyCode, CorporateAccount: r.CorporateAccount, EmployerPaid: true},
				Subject: gateway.SubjectContext{Citizenship: "KZ", Residence: v.residence, Consents: consents, Objections: []string{}},
				Schema:  gateway.SchemaContext{Name: "dgw.sample." + et},
			}
			out = append(out, dc)
		}
	}
	return out
}

// sampleProblems evaluates the decision over the sample contexts of every
// recipient and event type of its scope, on every CPU.
func (a *analysis) sampleProblems(ctx context.Context, catalogue map[string][]gateway.Field) []Problem {
	type job struct {
		r    *gateway.Recipient
		et   string
		dc   *gateway.DecisionContext
		line int
	}
	index := fieldIndex(catalogue)
	loc := locator{registryBytes(a.src.files)}
	jobs := make(chan job)
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
		out  []Problem
		wg   sync.WaitGroup
	)
	add := func(line int, msg string) {
		mu.Lock()
		defer mu.Unlock()
		if !seen[msg] {
			seen[msg] = true
			out = append(out, Problem{File: registryFile, Line: line, Msg: msg})
		}
	}
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range jobs {
				d, err := evaluate(ctx, a.query, j.dc, j.r)
				if err != nil {
					if ctx.Err() == nil {
						add(j.line, fmt.Sprintf("recipient %s, %s events: the policy fails: %v", j.r.ID, j.et, err))
					}
					continue
				}
				if !d.Allow {
					continue
				}
				for _, p := range d.Released() {
					if f, ok := index[j.et][p]; catalogue != nil && (!ok || !f.Leaf) {
						add(j.line, fmt.Sprintf("recipient %s, %s events: the policy releases %s, which is not a leaf of schemas/%s.avsc", j.r.ID, j.et, p, j.et))
					}
				}
				if err := d.CheckScope(j.r, j.et); err != nil {
					add(j.line, fmt.Sprintf("recipient %s, %s events: the policy releases a field outside the contract scope: %v", j.r.ID, j.et, err))
				}
			}
		})
	}
feed:
	for _, r := range a.recipients {
		line := loc.line(`"id"\s*:\s*` + regexp.QuoteMeta(jsonString(r.ID)))
		for _, et := range sortedKeys(r.Scope) {
			for _, dc := range sampleContexts(r, et) {
				select {
				case jobs <- job{r, et, dc, line}:
				case <-ctx.Done():
					break feed
				}
			}
		}
	}
	close(jobs)
	wg.Wait()
	return out
}
