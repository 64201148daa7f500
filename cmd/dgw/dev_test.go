package main

import (
	"context"
	"encoding/json"
	"io"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/synth"
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
		Evaluator  string         `json:"policy_evaluator"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &s), out)
	assert.Equal(t, "plan", s.Evaluator, "misses are evaluated from the policy's plan")
	delivered := recipientsDelivered(s.Recipients)
	for _, id := range consentAbroad {
		assert.Zero(t, delivered[id], "%s received without anyone's cross-border consent", id)
	}
	assert.Positive(t, delivered["kz-border-api"])
	assert.Positive(t, delivered["ala-airport"])
	assert.NotContains(t, stderr, "synthetic subject requests published")
}

// TestDevPublishesRequestsInOrder runs the dev publisher with a gateway on
// a test broker and reads the audit trail: the recipients abroad receive
// on the synthetic consents, and no withdrawal, objection or erasure
// reaches an event its passenger had before the request (the publisher
// holds such requests back until the gateway has handled those events).
func TestDevPublishesRequestsInOrder(t *testing.T) {
	const events = 400
	tb := newTestBed(t)
	// The stream as the publisher will make it: each passenger's events
	// before their first withdrawal, objection or erasure.
	before := map[string]string{} // event id → passenger, for events before a later request
	seenEvents := map[string][]string{}
	later := map[string]bool{}
	g := synth.New(synth.Options{Seed: 3, SubjectRequests: true})
	for n := 0; n < events; {
		ev := g.Next()
		switch {
		case ev.Type != synth.RequestType:
			n++
			seenEvents[ev.Key] = append(seenEvents[ev.Key], ev.Value["event_id"].(string))
		case ev.Value["kind"] != "consent_given" && !later[ev.Key]:
			later[ev.Key] = true
			for _, id := range seenEvents[ev.Key] {
				before[id] = ev.Key
			}
		}
	}
	require.NotEmpty(t, before, "passengers with a later request and earlier events")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	track := newUnhandled()
	var handled atomic.Int64
	all := make(chan struct{})
	gwErr := make(chan error, 1)
	go func() {
		gwErr <- runGateway(ctx, gatewayOptions{brokers: tb.brokers, clientID: "dev-order", group: "dev-order", topics: tb.sources,
			deadLetter: testDeadLetter, held: testHeld, workers: 4, queue: 16, parts: tb.parts, log: discardLogger(), acct: tb.acct,
			observers: []gateway.Observer{gateway.ObserverFunc(track.handled), gateway.ObserverFunc(func(*gateway.EventResult) {
				if handled.Add(1) == events {
					close(all)
				}
			})}})
	}()
	a := &app{stdout: io.Discard, stderr: io.Discard}
	var published atomic.Int64
	prodErr := make(chan error, 1)
	go func() {
		prodErr <- a.produce(ctx, tb.brokers, tb.parts, devOptions{events: events, seed: 3, requests: true},
			publishedRequests{acct: tb.acct, count: &published, track: track})
	}()
	select {
	case <-all:
	case err := <-gwErr:
		t.Fatalf("gateway stopped: %v", err)
	}
	require.NoError(t, <-prodErr, "the publisher released every request once the gateway had handled the stream")
	cancel()
	require.NoError(t, <-gwErr)
	assert.Positive(t, published.Load())

	got := readAll(t, tb.brokers, append([]string{defaultAuditTopic}, recipientTopics(tb.parts.recipients)...)...)
	c, err := auditCodec()
	require.NoError(t, err)
	checked := 0
	for _, r := range got[defaultAuditTopic] {
		e, err := c.Decode(r.Value)
		require.NoError(t, err)
		if _, ok := before[e.EventID]; !ok {
			continue
		}
		checked++
		for _, d := range e.Decisions {
			for _, reason := range d.Reasons {
				// What an erasure, objection or withdrawn marketing or
				// research consent says (policies/subject.rego); a cookie
				// consent the web session itself records as refused says
				// "withdrawn" too, rightly.
				assert.NotRegexp(t, `data was erased|objected to the purpose|withdrew consent for the purpose|the consent "(campaign|advertising|survey|research)" was withdrawn`,
					reason, "event %s for %s refused by a request its passenger made after it", e.EventID, d.RecipientID)
			}
		}
	}
	assert.Equal(t, len(before), checked, "every such event is in the trail")
	delivered := map[string]int64{}
	for _, r := range tb.parts.recipients {
		delivered[r.ID] = int64(len(got[r.Topic]))
	}
	assert.Positive(t, delivered["cloudnest-it"])
	assert.Positive(t, delivered["fraudshield"])
}
