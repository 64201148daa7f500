package policy

import (
	"context"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/policies"
)

// The constants change how fast a decision is evaluated, never what it is.
func TestConstantsDecisionsUnchanged(t *testing.T) {
	d, err := New(t.Context(), policies.FS, WithCacheSize(0))
	require.NoError(t, err)
	require.Positive(t, d.query.consts.Len())
	require.NotEmpty(t, d.query.consts.keyed)
	plain := preparedQuery{PreparedEvalQuery: d.query.PreparedEvalQuery}
	dcs := streamContexts(t, 11, 150)
	for i := range dcs {
		for _, r := range d.recipients {
			want, err := evaluate(t.Context(), plain, &dcs[i], r)
			require.NoError(t, err)
			v := d.views[r.ID]
			got, err := evaluateView(t.Context(), d.query, &dcs[i], r, &v)
			require.NoError(t, err)
			require.Equal(t, want, got, "recipient %s, context %d", r.ID, i)
		}
	}
	assert.Positive(t, d.query.consts.nKey.Load())
}

const constantsModule = `package dgw

list := {x | some x in data.data.list}

size := count(list) + 1

grants.a.b := {"n": size}

grants.c[k] := v if {
	some k, v in data.data.obj
	input.c
}

label[k] := v if some k, v in data.data.obj

from_input := input.x

keyed := data.data.obj[input.k]

guarded := list if input.y

now := time.now_ns()

replaced := x if {
	x := list with data.data.list as ["z"]
}

noisy := 1 if print("evaluated")

recipient := data.data.obj[input.recipient.id]

typed := {"t": input.event.type, "p": input.event.purpose, "n": size, "r": recipient}

routed := {"t": typed, "route": input.event.route, "missing": [x | x := missing_type]}

whole_event := count(input.event)

missing_type := 1 if not input.event.type

default has_type := true

has_type := false if missing_type

add(x) := x + size

decision := {
	"list": list, "size": size, "grants": grants.a.b, "c": grants.c, "label": label,
	"from_input": from_input, "keyed": keyed, "guarded": guarded, "now": now,
	"replaced": replaced, "noisy": noisy, "add": add(1),
	"typed": typed, "routed": routed, "whole_event": whole_event, "has_type": has_type,
}
`

func TestConstantsAnalysis(t *testing.T) {
	c, problems := compile(map[string]*ast.Module{"p.rego": ast.MustParseModule(constantsModule)}, true)
	require.Empty(t, problems)
	st := inmem.NewFromObject(map[string]any{"data": map[string]any{
		"list": []any{"x", "y"}, "obj": map[string]any{"p": "q"},
	}})
	k, err := findConstants(t.Context(), c, st, ast.MustParseRef(Query))
	require.NoError(t, err)
	var got []string
	for _, cs := range k.fixed.byLast {
		for _, x := range cs {
			got = append(got, x.ref.String())
		}
	}
	assert.ElementsMatch(t, []string{"data.dgw.list", "data.dgw.size", "data.dgw.grants.a.b", "data.dgw.label"}, got,
		"rules reading input (directly, in a key, through another rule), clocks, prints, `with` and functions are not constant")
	var keyed []string
	for _, ref := range k.keyed {
		keyed = append(keyed, ref.String())
	}
	assert.ElementsMatch(t, []string{"data.dgw.typed", "data.dgw.missing_type", "data.dgw.has_type"}, keyed,
		"only the recipient, the event type and purpose: not another member, nor the event as a whole; "+
			"only those a decision looks up (recipient is looked up by typed only)")
	value := func(v *docValues, ref string) ast.Value {
		d, ok := v.get(ast.MustParseRef(ref))
		if !ok || d.value == nil {
			return nil
		}
		return d.value.Value
	}
	assert.Equal(t, 0, ast.MustParseTerm(`{"x", "y"}`).Value.Compare(value(&k.fixed, "data.dgw.list")))
	assert.Equal(t, 0, ast.MustParseTerm(`{"n": 3}`).Value.Compare(value(&k.fixed, "data.dgw.grants.a.b")))
	assert.Nil(t, value(&k.fixed, "data.dgw.grants.c"))
	assert.Nil(t, value(&k.fixed, "data.dgw.grants.a"))

	q, err := rego.New(rego.Query(Query), rego.Compiler(c), rego.Store(st)).PrepareForEval(t.Context())
	require.NoError(t, err)
	in := ast.MustParseTerm(`{"c": true, "x": 1, "k": "p", "y": true, "recipient": {"id": "p"},
		"event": {"type": "booking", "purpose": "contract", "route": ["KZ"]}}`).Value
	want, err := q.Eval(t.Context(), rego.EvalParsedInput(in))
	require.NoError(t, err)
	pq := preparedQuery{PreparedEvalQuery: q, consts: k}
	key := keyKey{recipient: 0, typ: "booking", purpose: "contract"}
	require.Nil(t, k.kept(key))
	got2, err := pq.eval(t.Context(), in, &key)
	require.NoError(t, err)
	kv := k.kept(key)
	require.NotNil(t, kv, "kept after the first evaluation")
	assert.Equal(t, 0, ast.MustParseTerm(`{"t": "booking", "p": "contract", "n": 3, "r": "q"}`).Value.Compare(value(kv, "data.dgw.typed")))
	und, ok := kv.get(ast.MustParseRef("data.dgw.missing_type"))
	assert.True(t, ok && und.undefined, "an undefined document is kept as undefined")
	got3, err := pq.eval(t.Context(), in, &key)
	require.NoError(t, err)
	assert.Same(t, kv, k.kept(key), "nothing left to keep")
	require.Len(t, got2, 1)
	res := got2[0].Expressions[0].Value.(map[string]any)
	delete(res, "now")
	delete(want[0].Expressions[0].Value.(map[string]any), "now")
	delete(got3[0].Expressions[0].Value.(map[string]any), "now")
	assert.Equal(t, want[0].Expressions[0].Value, res)
	assert.Equal(t, res, got3[0].Expressions[0].Value, "with the kept values")
	assert.Equal(t, []any{"z"}, res["replaced"], "inside `with` the constant is computed again")
	assert.Equal(t, map[string]any{"p": "q"}, res["c"])
}

// Evaluations share the constants' values: they only read them.
func TestConstantsConcurrent(t *testing.T) {
	d, err := New(t.Context(), policies.FS, WithCacheSize(0))
	require.NoError(t, err)
	dcs := streamContexts(t, 13, 20)
	want := make([][]gateway.Decision, len(dcs))
	for i := range dcs {
		for _, r := range d.recipients {
			dec, err := evaluate(t.Context(), d.query, &dcs[i], r)
			require.NoError(t, err)
			want[i] = append(want[i], dec)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range dcs {
				for j, r := range d.recipients {
					v := d.views[r.ID]
					dec, err := evaluateView(context.Background(), d.query, &dcs[(i+g)%len(dcs)], r, &v)
					assert.NoError(t, err)
					assert.Equal(t, want[(i+g)%len(dcs)][j], dec)
				}
			}
		})
	}
	wg.Wait()
}

// A failed evaluation keeps nothing: the values in its cache may be ones it
// would not have confirmed (here clash is 1 until its second rule conflicts).
func TestConstantsKeyedConflict(t *testing.T) {
	const module = `package dgw

typed := {"t": input.event.type}

clash := 1 if input.recipient.id == "p"

clash := 2 if input.event.type == "booking"

decision := {"typed": typed, "clash": clash, "route": input.event.route}
`
	c, problems := compile(map[string]*ast.Module{"p.rego": ast.MustParseModule(module)}, true)
	require.Empty(t, problems)
	st := inmem.New()
	k, err := findConstants(t.Context(), c, st, ast.MustParseRef(Query))
	require.NoError(t, err)
	require.Len(t, k.keyed, 2) // typed, clash
	q, err := rego.New(rego.Query(Query), rego.Compiler(c), rego.Store(st)).PrepareForEval(t.Context())
	require.NoError(t, err)
	in := ast.MustParseTerm(`{"recipient": {"id": "p"}, "event": {"type": "booking", "purpose": "contract", "route": []}}`).Value
	key := keyKey{typ: "booking", purpose: "contract"}
	for range 2 {
		_, err = preparedQuery{PreparedEvalQuery: q, consts: k}.eval(t.Context(), in, &key)
		require.ErrorContains(t, err, "conflict")
		assert.Nil(t, k.kept(key), "a failed evaluation keeps nothing")
	}
}
