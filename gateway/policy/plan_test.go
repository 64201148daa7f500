package policy_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/policy"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/gateway/synth"
	"github.com/dgwproject/dgw/policies"
	"github.com/dgwproject/dgw/schemas"
)

// TestPlanDecidesAsInterpreter: the shipped policy's plan is in use, and
// decides the generated stream for every recipient as OPA's interpreter
// does, through the cache and the event facts (as the pipeline asks) and
// without a cache (every decision evaluated, without facts).
func TestPlanDecidesAsInterpreter(t *testing.T) {
	set, err := schema.Load(schemas.FS)
	require.NoError(t, err)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		size   int
		events int
	}{
		{"cached, with facts", policy.DefaultCacheSize, 1500},
		{"uncached", 0, 150},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := policy.New(ctx, policies.FS, policy.WithCatalogue(set.Catalogue()), policy.WithCacheSize(tc.size))
			require.NoError(t, err)
			require.Equal(t, policy.EvaluatorPlan, plan.Evaluator())
			interp, err := policy.New(ctx, policies.FS, policy.WithCatalogue(set.Catalogue()), policy.WithCacheSize(tc.size),
				policy.WithEvaluator(policy.EvaluatorInterpreter))
			require.NoError(t, err)
			require.Equal(t, policy.EvaluatorInterpreter, interp.Evaluator())

			g := synth.New(synth.Options{Seed: 7})
			allowed, decisions := 0, 0
			for range tc.events {
				ev := g.Next()
				s, ok := set.ByEventType(ev.Type)
				require.True(t, ok)
				dc, err := codec.Context(s, ev.Value)
				require.NoError(t, err)
				ps, is := plan.Snapshot(), interp.Snapshot()
				for _, r := range plan.Recipients() {
					got, err := ps.Decide(ctx, &dc, r)
					require.NoError(t, err)
					want, err := is.Decide(ctx, &dc, r)
					require.NoError(t, err)
					require.Truef(t, sameDecision(want, got), "event %s, recipient %s:\n got %+v\nwant %+v", ev.Type, r.ID, got, want)
					decisions++
					if got.Allow {
						allowed++
					}
				}
			}
			// Both kinds of decision were compared, and the plan stayed on.
			assert.Greater(t, allowed, decisions/20)
			assert.Less(t, allowed, decisions)
			assert.Equal(t, policy.EvaluatorPlan, plan.Evaluator())
		})
	}
}

func sameDecision(a, b gateway.Decision) bool {
	a.Cached, b.Cached = false, false
	return assert.ObjectsAreEqual(a, b)
}

// TestPlanLeftForUnsupportedBuiltins: a decision that reads a
// non-deterministic built-in is decided by OPA's interpreter, and the log
// says why; such a rule that the decision does not read leaves the plan in
// use.
func TestPlanLeftForUnsupportedBuiltins(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		edits []func(*testing.T, fstest.MapFS)
		want  policy.Evaluator
	}{
		{"read by the decision", []func(*testing.T, fstest.MapFS){
			addFile("stamp.rego", "package dgw\n\nrefusal contains \"the clock is wrong\" if time.now_ns() < 0\n"),
		}, policy.EvaluatorInterpreter},
		{"not read", []func(*testing.T, fstest.MapFS){
			addFile("stamp.rego", "package dgw\n\nstamp := time.now_ns()\n"),
		}, policy.EvaluatorPlan},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			d, err := policy.New(ctx, policyFS(t, tc.edits...), policy.WithLogger(log))
			require.NoError(t, err)
			assert.Equal(t, tc.want, d.Evaluator())
			if tc.want == policy.EvaluatorInterpreter {
				assert.Contains(t, logs.String(), "time.now_ns")
				assert.Contains(t, logs.String(), "evaluated by OPA's interpreter")
			} else {
				assert.Contains(t, logs.String(), "evaluated from the policy's plan")
			}
			// Either way it decides.
			r := d.Recipients()[0]
			dec, err := d.Decide(ctx, &gateway.DecisionContext{Event: gateway.EventContext{Type: "booking", Purpose: "contract"}}, r)
			require.NoError(t, err)
			assert.Equal(t, d.Revision(), dec.Revision)
		})
	}
}

func TestWithEvaluatorValidates(t *testing.T) {
	_, err := policy.New(context.Background(), policies.FS, policy.WithEvaluator("wasm"))
	assert.ErrorContains(t, err, `evaluator "wasm"`)
}
