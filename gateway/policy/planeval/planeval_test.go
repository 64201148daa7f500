package planeval_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	opacompile "github.com/open-policy-agent/opa/v1/compile"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway/policy/planeval"
)

// plan compiles module (with the `not` future keyword) to a plan of entry
// and every rule, as the policy package does, and the same module for
// topdown.
func plan(t *testing.T, module, entry string) (*planeval.Program, rego.PreparedEvalQuery) {
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
		entries = append(entries, p)
	}
	b := &bundle.Bundle{Data: map[string]any{}, Manifest: bundle.Manifest{Roots: &[]string{""}},
		Modules: []bundle.ModuleFile{{URL: "t.rego", Path: "t.rego", Raw: []byte(module), Parsed: m}}}
	c := opacompile.New().WithTarget("plan").WithBundle(b).WithEntrypoints(dedup(entries)...).WithPruneUnused(true).WithRegoVersion(ast.RegoV1)
	require.NoError(t, c.Build(context.Background()))
	var pol ir.Policy
	require.NoError(t, json.Unmarshal(c.Bundle().PlanModules[0].Raw, &pol))
	prog, err := planeval.Compile(&pol, entry)
	require.NoError(t, err)
	pq, err := rego.New(rego.Query("data."+entryRef(entry)), rego.Module("t.rego", module)).PrepareForEval(context.Background())
	require.NoError(t, err)
	return prog, pq
}

func dedup(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func entryRef(e string) string {
	out := []byte(e)
	for i, c := range out {
		if c == '/' {
			out[i] = '.'
		}
	}
	return string(out)
}

// same checks that the plan decides every input as topdown does.
func same(t *testing.T, prog *planeval.Program, pq rego.PreparedEvalQuery, inputs ...any) {
	t.Helper()
	ctx := context.Background()
	data := ast.NewTerm(ast.NewObject())
	for _, x := range inputs {
		in := ast.NewTerm(ast.MustInterfaceToValue(x))
		rs, err := pq.Eval(ctx, rego.EvalParsedInput(in.Value))
		require.NoError(t, err)
		var want any
		if len(rs) > 0 {
			want = rs[0].Expressions[0].Value
		}
		res, err := prog.Eval(ctx, in, data, planeval.Options{})
		require.NoError(t, err)
		var got any
		if len(res) == 1 {
			if r := res[0].Value.(ast.Object).Get(ast.StringTerm("result")); r != nil {
				got, err = ast.JSON(r.Value)
				require.NoError(t, err)
			}
		}
		assert.Equal(t, want, got, "input %v", in)
	}
}

func TestNegatedDispatch(t *testing.T) {
	prog, pq := plan(t, `package t
p.a[x] := 1 if x := "k"
p.b.c := 2
q if { input.a in {"a", "b", "c"}; not p[input.a][input.b] }
`, "t/q")
	var ins []any
	for _, a := range []string{"a", "b", "c"} {
		for _, b := range []string{"k", "c", "z"} {
			ins = append(ins, map[string]any{"a": a, "b": b})
		}
	}
	same(t, prog, pq, ins...)
}

func TestNegationInIteration(t *testing.T) {
	prog, pq := plan(t, `package t
f(x) if x == "a"
s contains k if { some k in input.ks; not f(k) }
`, "t/s")
	same(t, prog, pq, map[string]any{"ks": []string{"a", "b"}}, map[string]any{"ks": []string{"b", "a", "c"}}, map[string]any{"ks": []string{}})
}
