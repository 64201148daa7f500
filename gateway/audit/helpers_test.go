package audit_test

import (
	"fmt"
	"hash/fnv"
	"io/fs"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/audit"
	"github.com/dgwproject/dgw/schemas"
)

const testTopic = "dgw.audit"

func codec(t testing.TB) *audit.Codec {
	t.Helper()
	b, err := fs.ReadFile(schemas.FS, "audit.avsc")
	require.NoError(t, err)
	c, err := audit.NewCodec(b)
	require.NoError(t, err)
	return c
}

func testKey(seed string) audit.Key { return audit.DevKey(seed) }

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newAuditor(t testing.TB, c *audit.Codec, key audit.Key, instance string) *audit.Auditor {
	t.Helper()
	a, err := audit.New(c, key, testTopic, audit.WithInstance(instance), audit.WithClock(func() time.Time { return fixedNow }))
	require.NoError(t, err)
	return a
}

var (
	border = &gateway.Recipient{ID: "kz-border-api", Name: "Border Service", Type: "border_authority", Country: "KZ",
		Topic: "dgw.out.kz-border-api", Scope: gateway.Scope{"checkin": {
			"passenger.surname": {gateway.OpKeep}, "document.number": {gateway.OpKeep, gateway.OpMask}, "flight.number": {gateway.OpKeep}}}}
	research = &gateway.Recipient{ID: "pulse-research", Name: "Pulse Research", Type: "market_research", Country: "GB",
		Topic: "dgw.out.pulse-research", Scope: gateway.Scope{"checkin": {"passenger_id": {gateway.OpHash}, "flight.number": {gateway.OpKeep}}}}
	lounge = &gateway.Recipient{ID: "ist-lounge", Name: "IST lounge", Type: "lounge_operator", Country: "TR",
		Topic: "dgw.out.ist-lounge", Scope: gateway.Scope{"checkin": {"passenger.surname": {gateway.OpKeep}}}}
)

// event returns a check-in event about passenger with canary values in its
// payload: none of them may ever reach the audit trail.
func event(id, passenger string, offset int64) *gateway.Event {
	return &gateway.Event{
		Msg: gateway.Message{Topic: "pax.checkin", Partition: 2, Offset: offset, Key: []byte(passenger)},
		ID:  id, SubjectID: passenger, OccurredAt: fixedNow.Add(-time.Hour),
		Schema: gateway.SchemaRef{Name: "dgw.events.Checkin", EventType: "checkin", Fingerprint: 1},
		Value: map[string]any{"passenger_id": passenger, "passenger": map[string]any{"surname": "CANARYSURNAME"},
			"document": map[string]any{"number": "CANARYDOC123"}},
		Context: gateway.DecisionContext{Event: gateway.EventContext{Type: "checkin", Purpose: "border_control"}},
	}
}

// results is a typical outcome: border delivered, research refused, lounge held.
func results() []gateway.RecipientResult {
	return []gateway.RecipientResult{
		{Recipient: border, Outcome: gateway.OutcomeDelivered, Decision: gateway.Decision{Allow: true,
			Fields: map[string]gateway.Operator{"passenger.surname": gateway.OpKeep, "document.number": gateway.OpMask, "flight.number": gateway.OpDrop},
			Basis:  "legal_obligation", Revision: "rev-1", Reasons: []string{"API data for a flight to KZ"}}},
		{Recipient: research, Outcome: gateway.OutcomeRefused, Decision: gateway.Decision{Basis: "consent",
			Transfer: gateway.Transfer{CrossBorder: true, Mechanism: "adequacy"}, Revision: "rev-1",
			Reasons: []string{`the consent "research" was withdrawn (§16; GDPR Art 7(3))`}}},
		{Recipient: lounge, Outcome: gateway.OutcomeHeld, Reason: gateway.ReasonPolicy, Err: fmt.Errorf("eval failed")},
	}
}

// trail is a list of audit topic records as a broker would hold them.
type trail []audit.Record

// build writes events entries from workers chains and places each record
// on the partition its key hashes to, with increasing offsets.
func build(t testing.TB, a *audit.Auditor, partitions, workers, events int) trail {
	t.Helper()
	var out trail
	next := map[int]int64{}
	for i := range events {
		w := i % workers
		ds, err := a.Records(&gateway.AuditInput{Worker: w, Event: event(fmt.Sprintf("ev-%03d", i), fmt.Sprintf("P%d", i%5), int64(i)),
			Results: results()})
		require.NoError(t, err)
		for _, d := range ds {
			p := partitionOf(d.Key, partitions)
			out = append(out, audit.Record{Topic: d.Topic, Partition: p, Offset: next[p], Key: d.Key, Value: d.Value})
			next[p]++
		}
	}
	return out
}

func partitionOf(key []byte, n int) int {
	h := fnv.New32a()
	_, _ = h.Write(key)
	return int(h.Sum32() % uint32(n))
}

// partition returns the records of p in offset order, renumbered from 0.
func (tr trail) partition(p int) trail {
	var out trail
	for _, r := range tr {
		if r.Partition == p {
			r.Offset = int64(len(out))
			out = append(out, r)
		}
	}
	return out
}

func verify(t testing.TB, c *audit.Codec, recs trail, logStart int64, opts ...audit.VerifyOption) *audit.Report {
	t.Helper()
	v, err := audit.NewVerifier(c, testTopic, opts...)
	require.NoError(t, err)
	parts := map[int]bool{}
	for _, r := range recs {
		if !parts[r.Partition] {
			parts[r.Partition] = true
			v.Partition(r.Partition, logStart)
		}
		v.Add(r)
	}
	return v.Finish()
}
