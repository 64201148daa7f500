package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// consentAbroad are the recipients abroad that no Law 94-V Art 16 ground
// but the passenger's cross-border consent covers: no country is listed as
// ensuring protection, and no treaty or Kazakh law provides for their
// transfers (policies/transfer.rego). de-border-pnr is abroad too, but
// receives under a treaty.
var consentAbroad = []string{"cloudnest-it", "fraudshield", "ist-lounge", "legal-partners", "pulse-research", "webstats-analytics"}

// devRecipient is a recipient row of the `dgw dev --json` summary.
type devRecipient = struct {
	ID        string `json:"id"`
	Delivered int64  `json:"delivered"`
}

func recipientsDelivered(rs []devRecipient) map[string]int64 {
	out := map[string]int64{}
	for _, r := range rs {
		out[r.ID] = r.Delivered
	}
	return out
}

// assertForeignReceive: the recipients abroad receive, as they can only
// with the consents of the synthetic subject requests. One of the rare
// ones (a lounge in Istanbul, a law firm in London) may miss its few
// events when a consent loses the race between the subject topic and the
// event topics, so five of six must receive, and the two that get most of
// the traffic always do.
func assertForeignReceive(t *testing.T, delivered map[string]int64) {
	t.Helper()
	receiving := 0
	for _, id := range consentAbroad {
		if delivered[id] > 0 {
			receiving++
		}
	}
	assert.GreaterOrEqual(t, receiving, len(consentAbroad)-1, "recipients abroad that receive: %v", delivered)
	assert.Positive(t, delivered["cloudnest-it"], "the IT provider in Germany (SCC) receives with the cross-border consent")
	assert.Positive(t, delivered["fraudshield"], "the US anti-fraud provider (DPF) receives with the cross-border consent")
}

// TestDevWithoutSubjectRequests is the control of TestDevRunsToCompletion:
// without subject requests no passenger consented to a transfer abroad,
// so the recipients abroad receive nothing while the domestic ones do.
func TestDevWithoutSubjectRequests(t *testing.T) {
	out, stderr, code := runCLI(t, nil, "dev", "--addr", "127.0.0.1:0", "--admin-addr", "", "--events", "150", "--rate", "0",
		"--json", "--corrupt-every", "0", "--subject-requests=false")
	require.Equal(t, 0, code, stderr)
	var s struct {
		Recipients []devRecipient `json:"recipients"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &s), out)
	delivered := recipientsDelivered(s.Recipients)
	for _, id := range consentAbroad {
		assert.Zero(t, delivered[id], "%s received without anyone's cross-border consent", id)
	}
	assert.Positive(t, delivered["kz-border-api"])
	assert.Positive(t, delivered["ala-airport"])
	assert.NotContains(t, stderr, "synthetic subject requests published")
}
