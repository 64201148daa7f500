package planeval_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	opacompile "github.com/open-policy-agent/opa/v1/compile"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway/policy/planeval"
)

// compiled is one module planned (with the `not` future keyword, every rule
// an entry point, as the policy package plans) and prepared for OPA's
// interpreter, with the same data.
type compiled struct {
	prog *planeval.Program
	pq   rego.PreparedEvalQuery
	data *ast.Term
}

func plan(t testing.TB, module, entry string, data map[string]any) compiled {
	t.Helper()
	m, err := ast.ParseModuleWithOpts("t.rego", module, ast.ParserOptions{RegoVersion: ast.RegoV1, FutureKeywords: []string{"not"}})
	require.NoError(t, err)
	entries := []string{entry}
	for _, r := range m.Rules {
		if len(r.Head.Args) > 0 {
			continue
		}
		p, err := m.Package.Path.Extend(r.Head.Ref().GroundPrefix()).Ptr()
		require.NoError(t, err)
		if !slices.Contains(entries, p) {
			entries = append(entries, p)
		}
	}
	if data == nil {
		data = map[string]any{}
	}
	b := &bundle.Bundle{Data: data, Manifest: bundle.Manifest{Roots: &[]string{""}},
		Modules: []bundle.ModuleFile{{URL: "t.rego", Path: "t.rego", Raw: []byte(module), Parsed: m}}}
	c := opacompile.New().WithTarget(opacompile.TargetPlan).WithBundle(b).WithEntrypoints(entries...).
		WithPruneUnused(true).WithRegoVersion(ast.RegoV1)
	require.NoError(t, c.Build(context.Background()))
	var pol ir.Policy
	require.NoError(t, json.Unmarshal(c.Bundle().PlanModules[0].Raw, &pol))
	prog, err := planeval.Compile(&pol, entry)
	require.NoError(t, err)
	pq, err := rego.New(rego.Query("data."+strings.ReplaceAll(entry, "/", ".")), rego.Module("t.rego", module),
		rego.Store(inmem.NewFromObject(data))).PrepareForEval(context.Background())
	require.NoError(t, err)
	dv, err := ast.InterfaceToValue(data)
	require.NoError(t, err)
	return compiled{prog: prog, pq: pq, data: ast.NewTerm(dv)}
}

// decide evaluates input with both: values as JSON (nil: undefined) and
// errors.
func (c compiled) decide(t testing.TB, input any) (want, got any, werr, gerr error) {
	t.Helper()
	ctx := context.Background()
	var opts []rego.EvalOption
	var in *ast.Term
	if input != nil {
		v, err := ast.InterfaceToValue(input)
		require.NoError(t, err)
		in = ast.NewTerm(v)
		opts = append(opts, rego.EvalParsedInput(v))
	}
	rs, werr := c.pq.Eval(ctx, opts...)
	if werr == nil && len(rs) > 0 {
		want = rs[0].Expressions[0].Value
	}
	res, gerr := c.prog.Eval(ctx, in, c.data, planeval.Options{})
	if gerr == nil && len(res) == 1 {
		if r := res[0].Value.(ast.Object).Get(ast.StringTerm("result")); r != nil {
			got, gerr = ast.JSON(r.Value)
		}
	}
	return want, got, werr, gerr
}

// same checks that the plan decides every input as the interpreter does.
func (c compiled) same(t *testing.T, inputs ...any) {
	t.Helper()
	for _, in := range inputs {
		want, got, werr, gerr := c.decide(t, in)
		require.NoError(t, werr, "input %v", in)
		require.NoError(t, gerr, "input %v", in)
		assert.Equal(t, want, got, "input %v", in)
	}
}

func TestPlanMatchesInterpreter(t *testing.T) {
	for _, tc := range []struct {
		name, module, entry string
		data                map[string]any
		inputs              []any
	}{
		{
			// OPA's planner dispatches p[a] on p.a only and leaves p.b.c
			// unplanned; planeval evaluates the subtree. A negation parsed
			// with the `not` keyword holds only where its body is undefined.
			name: "negated dispatch over rules of uneven depth",
			module: `package t
p.a[x] := 1 if x := "k"
p.b.c := 2
q if { input.a in {"a", "b", "c"}; not p[input.a][input.b] }
r := p[input.a][input.b]`,
			entry:  "t/q",
			inputs: cross(map[string][]any{"a": {"a", "b", "c"}, "b": {"k", "c", "z"}}),
		},
		{
			name: "dispatch value",
			module: `package t
p.a[x] := 1 if x := "k"
p.b.c := 2
r := p[input.a][input.b]`,
			entry:  "t/r",
			inputs: cross(map[string][]any{"a": {"a", "b", "c"}, "b": {"k", "c", "z"}}),
		},
		{
			// The planner reuses locals across a function's blocks and
			// does not reset a negation's success flag.
			name: "negation in iteration and after another rule body",
			module: `package t
f(x) if x == "a"
s contains "first" if { input.ks[0] == "a" }
s contains k if { some k in input.ks; not f(k) }`,
			entry:  "t/s",
			inputs: []any{map[string]any{"ks": []any{"a", "b"}}, map[string]any{"ks": []any{"b", "a", "c"}}, map[string]any{"ks": []any{}}},
		},
		{
			// The rule bodies of one function share its locals: here the
			// second negation's success flag is a local the first one's
			// body sets (the shape of classes.rego's recipient_refusal).
			name: "negations in successive rule bodies",
			module: `package t
classes := {"a", "b"}
g.a[x] := 1 if x := "k"
g.b.c := 2
s contains "unknown class" if { not input.t in classes }
s contains "no grant" if { input.t in classes; not g[input.t][input.e] }`,
			entry:  "t/s",
			inputs: cross(map[string][]any{"t": {"a", "b", "z"}, "e": {"k", "c", "x"}}),
		},
		{
			name: "partial sets and objects, defaults, else",
			module: `package t
default level := "none"
level := "high" if input.n > 10
else := "low" if input.n > 0
tags contains t if { some t in input.tags; startswith(t, "x") }
by_len[t] := count(t) if some t in input.tags
out := {"level": level, "tags": tags, "by_len": by_len}`,
			entry: "t/out",
			inputs: []any{
				map[string]any{"n": 0, "tags": []any{}},
				map[string]any{"n": 5, "tags": []any{"xa", "b", "xyz"}},
				map[string]any{"n": 50, "tags": []any{"x"}},
				map[string]any{"tags": []any{"y"}},
			},
		},
		{
			name: "comprehensions, every, functions",
			module: `package t
double(x) := 2 * x
small(x) if x < 3
arr := [double(x) | some x in input.xs]
set := {x | some x in input.xs; small(x)}
obj := {k: v | some k, v in input.o; v != null}
all_small if every x in input.xs { small(x) }
out := {"arr": arr, "set": set, "obj": obj, "all_small": all_small} if true
out := {"arr": arr, "set": set, "obj": obj} if not all_small`,
			entry: "t/out",
			inputs: []any{
				map[string]any{"xs": []any{1, 2}, "o": map[string]any{"a": 1, "b": nil}},
				map[string]any{"xs": []any{1, 5, 2.5}, "o": map[string]any{}},
				map[string]any{"xs": []any{}, "o": map[string]any{"z": "y"}},
			},
		},
		{
			// Arrays built by iterating objects and sets keep the
			// interpreter's order.
			name: "iteration order",
			module: `package t
s := {x | some x in input.xs}
from_set := [x | some x in s]
from_obj := [[k, v] | some k, v in input.o]
out := [from_set, from_obj, concat(",", [k | some k, _ in input.o])]`,
			entry: "t/out",
			inputs: []any{
				map[string]any{"xs": []any{"b", "c", "a", 3, 1}, "o": map[string]any{"z": 1, "a": 2, "m": 3}},
				map[string]any{"xs": []any{}, "o": map[string]any{}},
			},
		},
		{
			name: "with on input and data",
			module: `package t
inner := input.a + data.base.k
with_input := x if { x := inner with input.a as 100 }
with_data := x if { x := inner with data.base.k as 1000 }
out := [inner, with_input, with_data]`,
			entry:  "t/out",
			data:   map[string]any{"base": map[string]any{"k": 1}},
			inputs: []any{map[string]any{"a": 1}, map[string]any{"a": -3}},
		},
		{
			name: "data documents and scans",
			module: `package t
names contains n if { some e in data.people; e.age >= input.min; n := e.name }
ids := [k | some k, _ in data.index]
first := data.people[0].name
total := sum([e.age | some e in data.people])
out := {"names": names, "ids": ids, "first": first, "total": total, "n": count(data.people)}`,
			entry: "t/out",
			data: map[string]any{
				"people": []any{map[string]any{"name": "a", "age": 30}, map[string]any{"name": "b", "age": 12}},
				"index":  map[string]any{"x": 1, "y": 2},
			},
			inputs: []any{map[string]any{"min": 18}, map[string]any{"min": 0}, map[string]any{"min": 99}},
		},
		{
			name: "built-ins",
			module: `package t
out := {
	"s": sprintf("%s-%d", [input.s, count(input.xs)]),
	"sorted": sort(input.xs),
	"cat": concat(",", input.ss),
	"rm": object.remove(input.o, ["a"]),
	"un": object.union_n([input.o, {"z": 1}]),
	"member": input.s in input.ss,
	"num": to_number("3.5") + 1,
	"len": count(input.s),
	"get": object.get(input.o, "missing", "dflt"),
	"lower": lower(input.s),
}`,
			entry: "t/out",
			inputs: []any{
				map[string]any{"s": "Ab", "xs": []any{3, 1, 2}, "ss": []any{"Ab", "c"}, "o": map[string]any{"a": 1, "b": 2}},
				map[string]any{"s": "ÄÖ", "xs": []any{}, "ss": []any{}, "o": map[string]any{}},
			},
		},
		{
			// A built-in's error makes it undefined (no strict built-in
			// errors), as in the interpreter.
			name: "built-in errors are undefined",
			module: `package t
default n := "none"
n := to_number(input.s)`,
			entry:  "t/n",
			inputs: []any{map[string]any{"s": "12"}, map[string]any{"s": "twelve"}},
		},
		{
			name: "undefined input",
			module: `package t
default allow := false
allow if input.user == "a"`,
			entry:  "t/allow",
			inputs: []any{nil, map[string]any{"user": "a"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan(t, tc.module, tc.entry, tc.data).same(t, tc.inputs...)
		})
	}
}

// cross is every input object with one of the values of each key.
func cross(values map[string][]any) []any {
	out := []map[string]any{{}}
	for _, k := range slices.Sorted(mapsKeys(values)) {
		var next []map[string]any
		for _, o := range out {
			for _, v := range values[k] {
				c := map[string]any{k: v}
				for ok, ov := range o {
					c[ok] = ov
				}
				next = append(next, c)
			}
		}
		out = next
	}
	res := make([]any, len(out))
	for i, o := range out {
		res[i] = o
	}
	return res
}

func mapsKeys(m map[string][]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestConflicts: a rule with two values is an error in both.
func TestConflicts(t *testing.T) {
	c := plan(t, `package t
p := 1 if input.a
p := 2 if input.b
o[k] := v if { some k, v in input.kv }
o["x"] := 0 if input.c
out := [p, o]`, "t/out", nil)
	for _, tc := range []struct {
		input    map[string]any
		conflict bool
	}{
		{map[string]any{"a": true, "kv": map[string]any{}}, false},
		{map[string]any{"a": true, "b": true, "kv": map[string]any{}}, true},
		{map[string]any{"a": true, "c": true, "kv": map[string]any{"x": 1}}, true},
		{map[string]any{"a": true, "c": true, "kv": map[string]any{"x": 0}}, false},
	} {
		want, got, werr, gerr := c.decide(t, tc.input)
		if !tc.conflict {
			require.NoError(t, werr)
			require.NoError(t, gerr)
			assert.Equal(t, want, got)
			continue
		}
		assert.ErrorContains(t, werr, "conflict", "interpreter, input %v", tc.input)
		var ce *planeval.ConflictError
		assert.ErrorAs(t, gerr, &ce, "plan, input %v", tc.input)
	}
}

// TestUnsupported: what planeval does not evaluate is an error at Compile,
// never a silent difference.
func TestUnsupported(t *testing.T) {
	for _, module := range []string{
		"package t\nnow := time.now_ns()",
		"package t\nr := rand.intn(\"k\", 10)",
		"package t\nu := uuid.rfc4122(\"k\")",
	} {
		m, err := ast.ParseModuleWithOpts("t.rego", module, ast.ParserOptions{RegoVersion: ast.RegoV1})
		require.NoError(t, err)
		entry, err := m.Package.Path.Extend(m.Rules[0].Head.Ref()).Ptr()
		require.NoError(t, err)
		b := &bundle.Bundle{Data: map[string]any{}, Manifest: bundle.Manifest{Roots: &[]string{""}},
			Modules: []bundle.ModuleFile{{URL: "t.rego", Path: "t.rego", Raw: []byte(module), Parsed: m}}}
		c := opacompile.New().WithTarget(opacompile.TargetPlan).WithBundle(b).WithEntrypoints(entry).WithRegoVersion(ast.RegoV1)
		require.NoError(t, c.Build(context.Background()))
		var pol ir.Policy
		require.NoError(t, json.Unmarshal(c.Bundle().PlanModules[0].Raw, &pol))
		_, err = planeval.Compile(&pol, entry)
		assert.ErrorIs(t, err, planeval.ErrUnsupported, module)
	}
}

// TestKnownAndComputed: Known answers documents before they are computed
// (outside `with`), Computed reports what an evaluation computed.
func TestKnownAndComputed(t *testing.T) {
	c := plan(t, `package t
base := input.a * 10
more := base + 1
scoped := x if { x := more with input.a as 7 }
out := [more, scoped]`, "t/out", nil)
	base, ok := c.prog.Func("g0", "t", "base")
	require.True(t, ok)
	require.True(t, c.prog.Memoised(base))
	in := ast.NewTerm(ast.MustInterfaceToValue(map[string]any{"a": 2}))
	computed := map[string]string{}
	res, err := c.prog.Eval(context.Background(), in, c.data, planeval.Options{
		Known: func(fn int) *ast.Term {
			if fn == base {
				return ast.IntNumberTerm(1000)
			}
			return nil
		},
		Computed: func(fn int, v *ast.Term) { computed[strings.Join(c.prog.FuncPath(fn), ".")] = v.String() },
	})
	require.NoError(t, err)
	require.Len(t, res, 1)
	// more reads the known base; under `with`, base is computed (71).
	assert.Equal(t, `[1001, 71]`, res[0].Value.(ast.Object).Get(ast.StringTerm("result")).String())
	assert.Equal(t, "1001", computed["g0.t.more"])
	assert.NotContains(t, computed, "g0.t.base", "a known document is not computed")

	// Known undefined.
	res, err = c.prog.Eval(context.Background(), in, c.data, planeval.Options{Known: func(fn int) *ast.Term {
		if fn == base {
			return planeval.Undefined
		}
		return nil
	}})
	require.NoError(t, err)
	assert.Empty(t, res, "out is undefined when more is")
}

// TestCancelled: a cancelled context stops an evaluation.
func TestCancelled(t *testing.T) {
	c := plan(t, "package t\nallow if input.a", "t/allow", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.prog.Eval(ctx, ast.BooleanTerm(true), c.data, planeval.Options{})
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
}

// TestConcurrentEvaluations: a Program is shared by goroutines (each
// evaluation has its own state from a pool); run with -race.
func TestConcurrentEvaluations(t *testing.T) {
	c := plan(t, `package t
f(x) := y if y := x * 2
out := {k: f(v) | some k, v in input}`, "t/out", nil)
	done := make(chan error)
	for g := range 4 {
		go func() {
			var err error
			for i := range 200 {
				in := ast.NewTerm(ast.MustInterfaceToValue(map[string]any{"a": g, "b": i}))
				res, e := c.prog.Eval(context.Background(), in, c.data, planeval.Options{})
				if e != nil {
					err = e
					break
				}
				want := fmt.Sprintf(`{"a": %d, "b": %d}`, 2*g, 2*i)
				if got := res[0].Value.(ast.Object).Get(ast.StringTerm("result")).String(); got != want {
					err = fmt.Errorf("got %s, want %s", got, want)
					break
				}
			}
			done <- err
		}()
	}
	for range 4 {
		assert.NoError(t, <-done)
	}
}

// TestPanicIsAnError: a panic during an evaluation (here: a known value
// that is no Rego value) is an error, and the program keeps evaluating.
func TestPanicIsAnError(t *testing.T) {
	c := plan(t, "package t\nx := data.a.b", "t/x", map[string]any{"a": map[string]any{"b": 1}})
	_, err := c.prog.Eval(context.Background(), nil, c.data, planeval.Options{Known: func(int) *ast.Term { return &ast.Term{} }})
	assert.ErrorIs(t, err, planeval.ErrUnsupported)
	assert.ErrorContains(t, err, "panicked")
	res, err := c.prog.Eval(context.Background(), nil, c.data, planeval.Options{})
	require.NoError(t, err)
	assert.Equal(t, "1", res[0].Value.(ast.Object).Get(ast.StringTerm("result")).String())
}
