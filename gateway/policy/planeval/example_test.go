package planeval_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	opacompile "github.com/open-policy-agent/opa/v1/compile"
	"github.com/open-policy-agent/opa/v1/ir"

	"github.com/dgwproject/dgw/gateway/policy/planeval"
)

// Plan a module with OPA's compile package, then evaluate the plan of one
// rule on an input.
func Example() {
	const module = `package auth

default allow := false

allow if input.role in {"admin", "auditor"}
`
	m := ast.MustParseModuleWithOpts(module, ast.ParserOptions{RegoVersion: ast.RegoV1})
	b := &bundle.Bundle{Data: map[string]any{}, Manifest: bundle.Manifest{Roots: &[]string{""}},
		Modules: []bundle.ModuleFile{{URL: "auth.rego", Path: "auth.rego", Raw: []byte(module), Parsed: m}}}
	c := opacompile.New().WithTarget(opacompile.TargetPlan).WithBundle(b).WithEntrypoints("auth/allow").WithRegoVersion(ast.RegoV1)
	if err := c.Build(context.Background()); err != nil {
		panic(err)
	}
	var pol ir.Policy
	if err := json.Unmarshal(c.Bundle().PlanModules[0].Raw, &pol); err != nil {
		panic(err)
	}
	prog, err := planeval.Compile(&pol, "auth/allow")
	if err != nil {
		panic(err)
	}
	for _, role := range []string{"admin", "guest"} {
		in := ast.NewTerm(ast.MustInterfaceToValue(map[string]any{"role": role}))
		res, err := prog.Eval(context.Background(), in, ast.NewTerm(ast.NewObject()), planeval.Options{})
		if err != nil {
			panic(err)
		}
		fmt.Println(role, res[0].Value.(ast.Object).Get(ast.StringTerm("result")))
	}
	// Output:
	// admin true
	// guest false
}
