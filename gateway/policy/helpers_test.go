package policy_test

import (
	"context"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/policy"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/policies"
	"github.com/dgwproject/dgw/schemas"
)

// catalogue is the field catalogue of the real schemas.
func catalogue(tb testing.TB) map[string][]gateway.Field {
	tb.Helper()
	set, err := schema.Load(schemas.FS)
	require.NoError(tb, err)
	return set.Catalogue()
}

// shared is one Decider over the real policies for tests that only decide;
// loading runs every Rego test, so it is built once.
var shared = sync.OnceValues(func() (*policy.Decider, error) {
	set, err := schema.Load(schemas.FS)
	if err != nil {
		return nil, err
	}
	return policy.New(context.Background(), policies.FS, policy.WithCatalogue(set.Catalogue()))
})

func sharedDecider(tb testing.TB) *policy.Decider {
	tb.Helper()
	d, err := shared()
	require.NoError(tb, err)
	return d
}

// policyFS copies the real policy directory into a MapFS and applies edits.
func policyFS(t *testing.T, edits ...func(t *testing.T, m fstest.MapFS)) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(policies.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(policies.FS, p)
		m[p] = &fstest.MapFile{Data: b}
		return err
	})
	require.NoError(t, err)
	for _, e := range edits {
		e(t, m)
	}
	return m
}

// addFile adds or replaces a file.
func addFile(name, content string) func(*testing.T, fstest.MapFS) {
	return func(_ *testing.T, m fstest.MapFS) { m[name] = &fstest.MapFile{Data: []byte(content)} }
}

// replace replaces exactly one occurrence of old in a file.
func replace(name, old, with string) func(*testing.T, fstest.MapFS) {
	return func(t *testing.T, m fstest.MapFS) {
		t.Helper()
		f, ok := m[name]
		require.True(t, ok, "no file %s", name)
		s := string(f.Data)
		require.Equal(t, 1, strings.Count(s, old), "%s must contain %q exactly once", name, old)
		m[name] = &fstest.MapFile{Data: []byte(strings.Replace(s, old, with, 1))}
	}
}

func recipient(tb testing.TB, d *policy.Decider, id string) *gateway.Recipient {
	tb.Helper()
	for _, r := range d.Recipients() {
		if r.ID == id {
			return r
		}
	}
	tb.Fatalf("no recipient %s", id)
	return nil
}

// decisionContext builds a context as the codec does.
func decisionContext(eventType, purpose string, route ...string) *gateway.DecisionContext {
	dc := &gateway.DecisionContext{
		Event: gateway.EventContext{Type: eventType, Purpose: purpose, PointOfSale: "KZ", Route: route,
			BookingChannel: "website"},
		Subject: gateway.SubjectContext{Citizenship: "KZ", Residence: "KZ", Consents: map[string]bool{}, Objections: []string{}},
		Schema:  gateway.SchemaContext{Name: "dgw.events.Test"},
	}
	if dc.Event.Route == nil {
		dc.Event.Route = []string{}
	}
	if len(route) > 0 {
		dc.Event.OriginCountry, dc.Event.DestinationCountry = route[0], route[len(route)-1]
	}
	return dc
}

// tinyCatalogue and tinyPolicy are a minimal policy (one recipient, one
// event type, one Rego test) that loads, tests and samples in milliseconds,
// for the reload tests: each variant is one revision.
var tinyCatalogue = map[string][]gateway.Field{"payment": {
	{Path: "amount", Category: "payment", Kind: "string", Leaf: true},
	{Path: "card", Category: "payment", Kind: "record"},
	{Path: "card.number", Category: "payment", Kind: "string", Format: "pan", Leaf: true},
	{Path: "card.holder", Category: "identity", Kind: "string", Leaf: true},
}}

const tinyRegistry = `{"recipients": [
  {"id": "acq", "name": "Acquirer", "type": "payment_processor", "country": "KZ",
   "topic": "dgw.out.acq", "safeguards": [],
   "scope": {"payment": {"amount": ["keep"], "card.number": ["keep", "mask"]}}}
]}
`

// tinyRules is the decision module; fields is the released fields object.
func tinyRules(fields string) string {
	return `package dgw

recipient_classes := {"payment_processor"}

sensitive_fields := {}

default decision := {"allow": false, "fields": {}, "reasons": ["refused"]}

decision := {
	"allow": true,
	"fields": ` + fields + `,
	"basis": "contract",
	"transfer": {"cross_border": false, "mechanism": "domestic"},
	"reasons": [],
} if {
	input.event.type == "payment"
	input.recipient.type == "payment_processor"
}
`
}

const tinyTest = `package dgw_test

import data.dgw

test_payment_allowed if dgw.decision.allow with input as {"event": {"type": "payment"}, "recipient": {"type": "payment_processor"}}
`

// tinyPolicy is a tiny policy directory releasing fields; extra files are
// added or replace the defaults (an empty content removes a file).
func tinyPolicy(fields string, extra ...string) fstest.MapFS {
	m := fstest.MapFS{
		"decision.rego":        {Data: []byte(tinyRules(fields))},
		"decision_test.rego":   {Data: []byte(tinyTest)},
		"data/recipients.json": {Data: []byte(tinyRegistry)},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			delete(m, extra[i])
			continue
		}
		m[extra[i]] = &fstest.MapFile{Data: []byte(extra[i+1])}
	}
	return m
}

const (
	tinyMasked = `{"amount": "keep", "card.number": "mask"}`
	tinyKept   = `{"amount": "keep", "card.number": "keep"}`
)

func tinyPayment() *gateway.DecisionContext { return decisionContext("payment", "contract") }
