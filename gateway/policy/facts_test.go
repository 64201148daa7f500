package policy_test

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway/policy"
)

// TestFactsThatCannotBeUsed: facts that read the recipient would key a
// recipient's decision by another's facts, so the decider keys decisions
// without them, says so, and still decides right.
func TestFactsThatCannotBeUsed(t *testing.T) {
	var log bytes.Buffer
	fsys := policyFS(t, replace("regime.rego", `"route_type": type_name(input.event.route),`,
		`"route_type": type_name(input.event.route),
	"recipient_type": input.recipient.type,`))
	d, err := policy.New(t.Context(), fsys, policy.WithCatalogue(catalogue(t)),
		policy.WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	require.NoError(t, err)
	assert.Contains(t, log.String(), "decisions are keyed without the policy's event facts")
	assert.Contains(t, log.String(), "data.dgw.facts reads the recipient")

	r := recipient(t, d, "ala-airport")
	dc := decisionContext("assistance", "service", "KZ")
	first, err := d.Decide(t.Context(), dc, r)
	require.NoError(t, err)
	again, err := d.Decide(t.Context(), decisionContext("assistance", "service", "KZ"), r)
	require.NoError(t, err)
	assert.True(t, again.Cached, "decisions are still cached, by the context members")
	assert.Equal(t, first.Fields, again.Fields)
}

// TestFactsErrorHoldsTheEvent: when the facts cannot be evaluated the
// decision is an error (the pipeline holds the event), never a decision
// made without them; other events are decided as usual.
func TestFactsErrorHoldsTheEvent(t *testing.T) {
	// Two definitions of facts that disagree for one purpose: a conflict
	// at evaluation time.
	fsys := policyFS(t, replace("regime.rego", "facts := {\n", "facts := {} if input.event.purpose == \"marketing_campaign\"\n\nfacts := {\n"))
	d, err := policy.New(t.Context(), fsys, policy.WithCatalogue(catalogue(t)))
	require.NoError(t, err)
	r := recipient(t, d, "ala-airport")

	bad := decisionContext("assistance", "marketing_campaign", "KZ")
	_, err = d.Decide(t.Context(), bad, r)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "data.dgw.facts")
	_, err = d.Snapshot().Decide(t.Context(), bad, r)
	require.Error(t, err, "through a snapshot too")

	ok, err := d.Decide(t.Context(), decisionContext("assistance", "service", "KZ"), r)
	require.NoError(t, err)
	assert.True(t, ok.Allow)
}
