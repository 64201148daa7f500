package policy_test

import (
	"context"
	"fmt"
	"log"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/policy"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/policies"
	"github.com/dgwproject/dgw/schemas"
)

// A payment event for the card acquirer: the full card number, never the
// security code, no cross-border transfer.
func ExampleDecider() {
	ctx := context.Background()
	set, err := schema.Load(schemas.FS)
	if err != nil {
		log.Fatal(err)
	}
	d, err := policy.New(ctx, policies.FS, policy.WithCatalogue(set.Catalogue()))
	if err != nil {
		log.Fatal(err)
	}
	var acquirer *gateway.Recipient
	for _, r := range d.Recipients() {
		if r.ID == "kzpay-processor" {
			acquirer = r
		}
	}
	dc := &gateway.DecisionContext{
		Event:   gateway.EventContext{Type: "payment", Purpose: "contract", PointOfSale: "KZ", Route: []string{}},
		Subject: gateway.SubjectContext{Consents: map[string]bool{}, Objections: []string{}},
	}
	dec, err := d.Decide(ctx, dc, acquirer)
	if err != nil {
		log.Fatal(err)
	}
	_, cvv := dec.Fields["card.security_code"]
	fmt.Println("allow:", dec.Allow, "basis:", dec.Basis, "transfer:", dec.Transfer.Mechanism)
	fmt.Println("card.number:", dec.Fields["card.number"], "card.security_code released:", cvv)
	again, err := d.Decide(ctx, dc, acquirer)
	if err != nil {
		log.Fatal(err)
	}
	hits, misses := d.Stats()
	fmt.Println("cached:", again.Cached, "hits:", hits, "misses:", misses)
	// Output:
	// allow: true basis: contract transfer: domestic
	// card.number: keep card.security_code released: false
	// cached: true hits: 1 misses: 1
}

func ExampleTest() {
	rep, err := policy.Test(context.Background(), policies.FS)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("failed:", rep.Failed(), "coverage at least 90%:", rep.Coverage >= 90)
	// Output: failed: false coverage at least 90%: true
}

func ExampleCheck() {
	set, err := schema.Load(schemas.FS)
	if err != nil {
		log.Fatal(err)
	}
	problems := policy.Check(context.Background(), policies.FS, set.Catalogue())
	for _, p := range problems {
		fmt.Println(p) // file:line: message
	}
	fmt.Println(len(problems), "problems")
	// Output: 0 problems
}

// Decisions the cache does not hold are evaluated from the policy's plan
// once the plan decides the sample contexts as OPA's interpreter does;
// WithEvaluator(policy.EvaluatorInterpreter) keeps the interpreter.
func ExampleWithEvaluator() {
	ctx := context.Background()
	for _, e := range []policy.Evaluator{policy.EvaluatorPlan, policy.EvaluatorInterpreter} {
		d, err := policy.New(ctx, policies.FS, policy.WithEvaluator(e))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(d.Evaluator()+":", d.EvaluatorNote())
	}
	// Output:
	// plan: evaluated from the policy's plan, which decided 1238 sample contexts as OPA's interpreter does
	// interpreter: evaluated by OPA's interpreter (policy_evaluator: interpreter)
}
