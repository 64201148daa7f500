package policy

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/util"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/policies"
)

// TestEvaluateShape: an undefined decision is a refusal, a malformed one an
// error the gateway holds the event for.
func TestEvaluateShape(t *testing.T) {
	const ok = `"transfer": {"cross_border": false, "mechanism": "domestic"}, "reasons": []`
	tests := []struct {
		name    string
		body    string // the decision rule
		want    gateway.Decision
		wantErr string
	}{
		{
			name: "allowed",
			body: `decision := {"allow": true, "fields": {"amount": "keep", "card.number": "mask"}, "basis": "contract", ` + ok + `}`,
			want: gateway.Decision{Allow: true, Basis: "contract", Transfer: gateway.Transfer{Mechanism: "domestic"}, Reasons: []string{},
				Fields: map[string]gateway.Operator{"amount": gateway.OpKeep, "card.number": gateway.OpMask}},
		},
		{
			name: "undefined is a refusal",
			body: `decision := {"allow": true} if input.event.type == "none"`,
			want: gateway.Decision{Fields: map[string]gateway.Operator{}, Reasons: []string{"policy decision undefined"}},
		},
		{
			name: "cross-border with mechanism",
			body: `decision := {"allow": true, "fields": {"amount": "hash"}, "transfer": {"cross_border": true, "mechanism": "scc"}, "reasons": ["x"]}`,
			want: gateway.Decision{Allow: true, Transfer: gateway.Transfer{CrossBorder: true, Mechanism: "scc"}, Reasons: []string{"x"},
				Fields: map[string]gateway.Operator{"amount": gateway.OpHash}},
		},
		{name: "not an object", body: `decision := true`, wantErr: "not an object"},
		{name: "allow not a boolean", body: `decision := {"allow": "yes", "fields": {}, ` + ok + `}`, wantErr: "allow is not a boolean"},
		{name: "fields not an object", body: `decision := {"allow": true, "fields": ["amount"], ` + ok + `}`, wantErr: "fields is not an object"},
		{name: "unknown operator", body: `decision := {"allow": true, "fields": {"amount": "show"}, ` + ok + `}`, wantErr: `field amount: unknown operator show`},
		{name: "operator not a string", body: `decision := {"allow": true, "fields": {"amount": 1}, ` + ok + `}`, wantErr: "field amount: unknown operator"},
		{name: "basis not a string", body: `decision := {"allow": true, "fields": {}, "basis": 1, ` + ok + `}`, wantErr: "basis is not a string"},
		{name: "transfer not an object", body: `decision := {"allow": true, "fields": {}, "transfer": "none"}`, wantErr: "transfer is not an object"},
		{name: "cross_border not a boolean", body: `decision := {"allow": true, "fields": {}, "transfer": {"cross_border": "no"}}`, wantErr: "cross_border is not a boolean"},
		{name: "mechanism not a string", body: `decision := {"allow": true, "fields": {}, "transfer": {"cross_border": true, "mechanism": 1}}`, wantErr: "mechanism is not a string"},
		{name: "reasons not an array", body: `decision := {"allow": false, "fields": {}, "reasons": "no"}`, wantErr: "reasons is not an array"},
		{name: "reason not a string", body: `decision := {"allow": false, "fields": {}, "reasons": [1]}`, wantErr: "a reason is not a string"},
		{
			name:    "cross-border allow without mechanism",
			body:    `decision := {"allow": true, "fields": {"amount": "keep"}, "transfer": {"cross_border": true, "mechanism": ""}}`,
			wantErr: "cross-border disclosure allowed without a transfer mechanism",
		},
		{
			name:    "conflict",
			body:    "decision := {\"allow\": true} if input.event.type == \"payment\"\n\ndecision := {\"allow\": false} if input.event.purpose == \"contract\"",
			wantErr: "eval_conflict_error",
		},
	}
	dc := &gateway.DecisionContext{Event: gateway.EventContext{Type: "payment", Purpose: "contract"}}
	r := &gateway.Recipient{ID: "kzpay-processor", Type: "payment_processor", Country: "KZ"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := rego.New(rego.Query(Query), rego.Module("test.rego", "package dgw\n\n"+tt.body+"\n")).PrepareForEval(t.Context())
			require.NoError(t, err)
			got, err := evaluate(t.Context(), preparedQuery{PreparedEvalQuery: q}, dc, r)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				if tt.name != "conflict" {
					assert.True(t, errors.Is(err, errMalformed))
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestInput: the policy sees the context as JSON plus the recipient view,
// with nil collections as empty ones.
func TestInput(t *testing.T) {
	q, err := rego.New(rego.Query("input"), rego.Module("x.rego", "package x\n")).PrepareForEval(t.Context())
	require.NoError(t, err)
	dc := &gateway.DecisionContext{Event: gateway.EventContext{Type: "booking", Purpose: "contract", EmployerPaid: true}}
	r := &gateway.Recipient{ID: "a", Type: "employer", Country: "KZ", CorporateAccount: "C", Scope: gateway.Scope{"booking": {"x": {gateway.OpKeep}}}}
	in, err := input(dc, r, nil)
	require.NoError(t, err)
	rs, err := q.Eval(t.Context(), rego.EvalParsedInput(in))
	require.NoError(t, err)
	got := rs[0].Expressions[0].Value.(map[string]any)
	assert.Equal(t, map[string]any{"type": "booking", "purpose": "contract", "route": []any{}, "employer_paid": true}, got["event"])
	assert.Equal(t, map[string]any{"minor": false, "consents": map[string]any{}, "objections": []any{}, "erased": false, "vital_interest": false}, got["subject"])
	assert.Equal(t, map[string]any{"id": "a", "type": "employer", "country": "KZ", "safeguards": []any{},
		"agency_code": "", "corporate_account": "C"}, got["recipient"], "no scope in the policy's view")
	assert.Equal(t, map[string]any{"name": ""}, got["schema"])
	assert.Nil(t, dc.Event.Route, "the caller's context is not modified")
}

// TestInputIsJSON: the input built as a Rego value is the JSON of the
// context plus the recipient view, for the contexts of the generated
// stream (every member set somewhere, empty and nil collections) and every
// registry recipient.
func TestInputIsJSON(t *testing.T) {
	viaJSON := func(dc *gateway.DecisionContext, r *gateway.Recipient) ast.Value {
		c := normalised(dc)
		b, err := json.Marshal(&c)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, util.UnmarshalJSON(b, &m))
		view := r.PolicyView()
		b, err = json.Marshal(view)
		require.NoError(t, err)
		var v any
		require.NoError(t, util.UnmarshalJSON(b, &v))
		m["recipient"] = v
		val, err := ast.InterfaceToValue(m)
		require.NoError(t, err)
		return val
	}
	views := recipientViews(shippedRecipients(t))
	dcs := append(streamContexts(t, 3, 300), gateway.DecisionContext{},
		gateway.DecisionContext{Event: gateway.EventContext{AgencyCode: "A", CorporateAccount: "C", BookingChannel: "web", EmployerPaid: true},
			Subject: gateway.SubjectContext{Minor: true, Erased: true, VitalInterest: true, Citizenship: "X", Residence: "Y",
				Consents: map[string]bool{"b": false, "a": true}, Objections: []string{"p", "q"}}})
	for i := range dcs {
		for _, v := range views {
			got, err := input(&dcs[i], v.r, v.val)
			require.NoError(t, err)
			require.Equal(t, 0, viaJSON(&dcs[i], v.r).Compare(got), "%s", dcs[i].Key())
			alone, err := input(&dcs[i], v.r, nil)
			require.NoError(t, err)
			require.Equal(t, 0, got.Compare(alone))
		}
	}
}

func shippedRecipients(t *testing.T) []*gateway.Recipient {
	t.Helper()
	d, err := New(t.Context(), policies.FS, WithCacheSize(0))
	require.NoError(t, err)
	return d.recipients
}
