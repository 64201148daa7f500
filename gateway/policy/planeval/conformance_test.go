package planeval_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	opacompile "github.com/open-policy-agent/opa/v1/compile"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/test/cases"
	"github.com/open-policy-agent/opa/v1/test/cases/testdata"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/dgwproject/dgw/gateway/policy/planeval"
)

var refQuery = regexp.MustCompile(`^data\.([a-z_][a-z0-9_.]*) = x$`)

// TestOPAConformance runs OPA's own conformance cases (the YAML files of
// github.com/open-policy-agent/opa/v1/test/cases/testdata, embedded in the
// module) whose query is one document: each planned as the policy package
// plans (the `not` keyword, every rule an entry point) and evaluated by
// planeval must give what OPA's interpreter gives, or an error (dgw then
// asks the interpreter). A difference fails the test.
func TestOPAConformance(t *testing.T) {
	var all []cases.TestCase
	require := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	require(fs.WalkDir(testdata.V1, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		b, err := fs.ReadFile(testdata.V1, p)
		if err != nil {
			return err
		}
		var s cases.Set
		if err := util.Unmarshal(b, &s); err != nil {
			return nil
		}
		for i := range s.Cases {
			s.Cases[i].Filename = p
		}
		all = append(all, s.Cases...)
		return nil
	}))
	var same, unsupported, planFail, skipped, diff int
	for _, tc := range all {
		m := refQuery.FindStringSubmatch(tc.Query)
		if m == nil || tc.InputTerm != nil || tc.StrictError || len(tc.Env) > 0 || tc.ExperimentalKeywords {
			skipped++
			continue
		}
		entry := strings.ReplaceAll(m[1], ".", "/")
		ctx := context.Background()
		data := map[string]any{}
		if tc.Data != nil {
			data = *tc.Data
		}
		ro := []func(*rego.Rego){rego.Query("data." + m[1]), rego.Store(inmem.NewFromObject(data))}
		var mods []bundle.ModuleFile
		ok := true
		for i, src := range tc.Modules {
			name := "m" + string(rune('a'+i)) + ".rego"
			ro = append(ro, rego.Module(name, src))
			mod, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1, FutureKeywords: []string{"not"}})
			if err != nil {
				ok = false
				break
			}
			mods = append(mods, bundle.ModuleFile{URL: name, Path: name, Raw: []byte(src), Parsed: mod})
		}
		if !ok {
			skipped++
			continue
		}
		pq, err := rego.New(ro...).PrepareForEval(ctx)
		if err != nil {
			skipped++
			continue
		}
		var opts []rego.EvalOption
		var in *ast.Term
		if tc.Input != nil {
			v, err := ast.InterfaceToValue(*tc.Input)
			if err != nil {
				skipped++
				continue
			}
			in = ast.NewTerm(v)
			opts = append(opts, rego.EvalParsedInput(v))
		}
		rs, werr := pq.Eval(ctx, opts...)
		entries := []string{entry}
		for _, mf := range mods {
			for _, r := range mf.Parsed.Rules {
				if len(r.Head.Args) > 0 {
					continue
				}
				if p, err := mf.Parsed.Package.Path.Extend(r.Head.Ref().GroundPrefix()).Ptr(); err == nil && !slices.Contains(entries, p) {
					entries = append(entries, p)
				}
			}
		}
		b := &bundle.Bundle{Data: data, Manifest: bundle.Manifest{Roots: &[]string{""}}, Modules: mods}
		c := opacompile.New().WithTarget(opacompile.TargetPlan).WithBundle(b).WithEntrypoints(entries...).WithPruneUnused(true).WithRegoVersion(ast.RegoV1)
		if err := c.Build(ctx); err != nil {
			planFail++
			continue
		}
		var pol ir.Policy
		if err := json.Unmarshal(c.Bundle().PlanModules[0].Raw, &pol); err != nil {
			planFail++
			continue
		}
		prog, err := planeval.Compile(&pol, entry)
		if err != nil {
			unsupported++
			continue
		}
		dv, err := ast.InterfaceToValue(data)
		if err != nil {
			skipped++
			continue
		}
		res, gerr := prog.Eval(ctx, in, ast.NewTerm(dv), planeval.Options{})
		if gerr != nil {
			if werr == nil {
				unsupported++ // answered by the interpreter in dgw
			} else {
				same++
			}
			continue
		}
		var got, want any
		if len(res) == 1 {
			if r := res[0].Value.(ast.Object).Get(ast.StringTerm("result")); r != nil {
				got, _ = ast.JSON(r.Value)
			}
		}
		if werr == nil && len(rs) > 0 {
			want = rs[0].Expressions[0].Value
		}
		if werr != nil || !jsonEqual(got, want) {
			diff++
			t.Errorf("%s %q: the plan gives %v, the interpreter %v (error %v)", tc.Filename, tc.Note, got, want, werr)
			continue
		}
		same++
	}
	t.Logf("cases %d: same %d, plan error or unsupported (the interpreter answers) %d, planner failed %d, not applicable %d, differ %d",
		len(all), same, unsupported, planFail, skipped, diff)
	// The corpus is OPA v1.22's: most of it must keep applying.
	if same < 1800 {
		t.Errorf("only %d cases decided alike: the corpus or the harness changed", same)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
