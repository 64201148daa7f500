package audit_test

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/audit"
)

func TestAuditorRecordsEveryDecision(t *testing.T) {
	c := codec(t)
	key := testKey("k")
	a := newAuditor(t, c, key, "i1")
	ev := event("ev-1", "P-CANARY-4711", 42)
	ds, err := a.Records(&gateway.AuditInput{Worker: 3, Event: ev, Results: results(), TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"})
	require.NoError(t, err)
	require.Len(t, ds, 1, "one record per event: the broker appends an event's decisions atomically")
	d := ds[0]
	assert.Equal(t, testTopic, d.Topic)
	assert.Equal(t, "dgw-i1-w3", string(d.Key), "keyed by chain id, so a chain stays on one partition")
	for _, canary := range []string{"P-CANARY-4711", "CANARYSURNAME", "CANARYDOC123", "eval failed"} {
		assert.False(t, bytes.Contains(d.Value, []byte(canary)), "the audit record holds %q", canary)
	}

	e, err := c.Decode(d.Value)
	require.NoError(t, err)
	str := func(s string) *string { return &s }
	want := &audit.Entry{
		ChainID: "dgw-i1-w3", Seq: 1, KeyID: key.ID(), Kind: audit.KindDecision, RecordedAt: fixedNow,
		EventID: "ev-1", EventType: "checkin", OccurredAt: fixedNow.Add(-time.Hour), Purpose: "border_control",
		SourceTopic: "pax.checkin", SourcePartition: 2, SourceOffset: 42,
		Subject: key.Pseudonym("P-CANARY-4711"), TraceID: str("4bf92f3577b34da6a3ce929d0e0e4736"),
		Decisions: []audit.Decision{
			{RecipientID: "kz-border-api", RecipientName: "Border Service", RecipientType: "border_authority", RecipientCountry: "KZ",
				Outcome: "delivered", PolicyRevision: "rev-1", Basis: str("legal_obligation"),
				Disclosed: []audit.DisclosedField{{Path: "document.number", Operator: "mask"}, {Path: "passenger.surname", Operator: "keep"}},
				Withheld:  []string{"flight.number"}, Reasons: []string{"API data for a flight to KZ"}},
			{RecipientID: "pulse-research", RecipientName: "Pulse Research", RecipientType: "market_research", RecipientCountry: "GB",
				Outcome: "refused", PolicyRevision: "rev-1", Basis: str("consent"), CrossBorder: true, Mechanism: str("adequacy"),
				Disclosed: []audit.DisclosedField{}, Withheld: []string{"flight.number", "passenger_id"},
				Reasons: []string{`the consent "research" was withdrawn (§16; GDPR Art 7(3))`}},
			{RecipientID: "ist-lounge", RecipientName: "IST lounge", RecipientType: "lounge_operator", RecipientCountry: "TR",
				Outcome: "held", Reason: str("policy-error"), Disclosed: []audit.DisclosedField{},
				Withheld: []string{"passenger.surname"}, Reasons: []string{}},
		},
	}
	want.Hash, want.MAC = e.Hash, e.MAC
	assert.Equal(t, want, e)
	assert.Equal(t, [32]byte{}, e.PrevHash, "seq 1 starts the chain")
}

func TestAuditorChainsPerWorker(t *testing.T) {
	c := codec(t)
	a := newAuditor(t, c, testKey("k"), "i1")
	var got [][]*audit.Entry
	for w := range 2 {
		var chain []*audit.Entry
		for i := range 3 {
			ds, err := a.Records(&gateway.AuditInput{Worker: w, Event: event(fmt.Sprintf("e%d%d", w, i), "P1", 0), Results: results()})
			require.NoError(t, err)
			e, err := c.Decode(ds[0].Value)
			require.NoError(t, err)
			chain = append(chain, e)
		}
		got = append(got, chain)
	}
	for w, chain := range got {
		for i, e := range chain {
			assert.Equal(t, fmt.Sprintf("dgw-i1-w%d", w), e.ChainID)
			assert.Equal(t, int64(i+1), e.Seq)
			if i > 0 {
				assert.Equal(t, chain[i-1].Hash, e.PrevHash, "each entry links to the previous one of its chain")
			}
		}
	}
	b := newAuditor(t, c, testKey("k"), "i2")
	ds, err := b.Records(&gateway.AuditInput{Worker: 0, Event: event("x", "P1", 0), Results: results()})
	require.NoError(t, err)
	assert.Equal(t, "dgw-i2-w0", string(ds[0].Key), "another process starts its own chains")
}

func TestAuditorCorrection(t *testing.T) {
	c := codec(t)
	a := newAuditor(t, c, testKey("k"), "i1")
	ev := event("ev-1", "P1", 0)
	_, err := a.Records(&gateway.AuditInput{Worker: 0, Event: ev, Results: results()})
	require.NoError(t, err)
	held := results()[0]
	held.Outcome, held.Reason = gateway.OutcomeHeld, gateway.ReasonSink
	ds, err := a.Records(&gateway.AuditInput{Worker: 0, Event: ev, Results: []gateway.RecipientResult{held}, Correction: true})
	require.NoError(t, err)
	e, err := c.Decode(ds[0].Value)
	require.NoError(t, err)
	assert.Equal(t, audit.KindCorrection, e.Kind)
	require.NotNil(t, e.CorrectsSeq)
	assert.Equal(t, int64(1), *e.CorrectsSeq)
	assert.Equal(t, int64(2), e.Seq)
	require.Len(t, e.Decisions, 1)
	assert.Equal(t, "held", e.Decisions[0].Outcome)
	assert.Equal(t, "sink-error", *e.Decisions[0].Reason)
	assert.Empty(t, e.Decisions[0].Disclosed, "a held copy discloses nothing")

	_, err = a.Records(&gateway.AuditInput{Worker: 0, Event: event("ev-2", "P1", 1), Results: results(), Correction: true})
	assert.ErrorContains(t, err, "did not audit last")
	_, err = a.Records(&gateway.AuditInput{Worker: 1, Event: ev, Results: results(), Correction: true})
	assert.ErrorContains(t, err, "did not audit last", "a correction belongs to the worker's chain")
}

func TestAuditorRejects(t *testing.T) {
	c := codec(t)
	_, err := audit.New(c, audit.Key{}, testTopic)
	assert.ErrorContains(t, err, "key")
	_, err = audit.New(c, testKey("k"), "")
	assert.ErrorContains(t, err, "topic")
	_, err = audit.New(c, testKey("k"), testTopic, audit.WithChainPrefix(""))
	assert.ErrorContains(t, err, "prefix")
	a := newAuditor(t, c, testKey("k"), "i1")
	_, err = a.Records(&gateway.AuditInput{Worker: 0})
	assert.ErrorContains(t, err, "no event")
	_, err = a.Records(&gateway.AuditInput{Worker: 0, Event: event("e", "P", 0), Results: []gateway.RecipientResult{{}}})
	assert.ErrorContains(t, err, "names no recipient")
}

// Workers call Records concurrently, each for its own chain.
func TestAuditorConcurrentWorkers(t *testing.T) {
	c := codec(t)
	a := newAuditor(t, c, testKey("k"), "i1")
	var wg sync.WaitGroup
	out := make([][]gateway.Disclosure, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := range 25 {
				ds, err := a.Records(&gateway.AuditInput{Worker: w, Event: event(fmt.Sprintf("e%d-%d", w, i), "P1", 0), Results: results()})
				if err != nil {
					t.Error(err)
					return
				}
				out[w] = append(out[w], ds...)
			}
		})
	}
	wg.Wait()
	var all trail
	for w := range out {
		for i, d := range out[w] {
			all = append(all, audit.Record{Topic: testTopic, Partition: w, Offset: int64(i), Key: d.Key, Value: d.Value})
		}
	}
	r := verify(t, c, all, 0, audit.WithKey(testKey("k")))
	assert.True(t, r.OK(), "%v", r.Problems)
	assert.Equal(t, 4, r.Chains)
	assert.Equal(t, 100, r.Records)
}

// Recycled bytes: the chain's next entry is sealed into the bytes handed
// back, and the trail is the same as without recycling.
func TestAuditorRecycle(t *testing.T) {
	c := codec(t)
	a := newAuditor(t, c, testKey("k"), "i1")
	plain := newAuditor(t, c, testKey("k"), "i1")
	var tr trail
	var handedBack []byte
	for i := range 6 {
		in := func() *gateway.AuditInput {
			return &gateway.AuditInput{Worker: 0, Event: event(fmt.Sprintf("ev-%d", i), "P1", int64(i)), Results: results()}
		}
		ds, err := a.Records(in())
		require.NoError(t, err)
		want, err := plain.Records(in())
		require.NoError(t, err)
		require.Len(t, ds, 1)
		if handedBack != nil {
			assert.Same(t, &handedBack[:1][0], &ds[0].Value[0], "entry %d is sealed into the bytes handed back", i)
		}
		assert.Equal(t, want[0].Value, ds[0].Value, "entry %d: the same bytes as without recycling", i)
		tr = append(tr, audit.Record{Topic: ds[0].Topic, Offset: int64(i), Key: ds[0].Key, Value: slices.Clone(ds[0].Value)})
		handedBack = ds[0].Value
		a.Recycle(0, ds)
	}
	r := verify(t, c, tr, 0, audit.WithKey(testKey("k")))
	assert.True(t, r.OK(), "%v", r.Problems)
	assert.Equal(t, 6, r.Records)

	// Bytes too small for an entry are not used; another worker's chain
	// does not take this one's.
	small := make([]byte, 0, 8)
	a.Recycle(0, []gateway.Disclosure{{Value: small}})
	a.Recycle(-1, []gateway.Disclosure{{Value: make([]byte, 0, 1<<16)}})
	other, err := a.Records(&gateway.AuditInput{Worker: 1, Event: event("ev-w1", "P1", 9), Results: results()})
	require.NoError(t, err)
	assert.NotSame(t, &handedBack[:1][0], &other[0].Value[0], "worker 1 does not take worker 0's bytes")
	ds, err := a.Records(&gateway.AuditInput{Worker: 0, Event: event("ev-6", "P1", 6), Results: results()})
	require.NoError(t, err)
	assert.Same(t, &handedBack[:1][0], &ds[0].Value[0], "the larger of the bytes handed back is kept")
	_, err = c.Decode(ds[0].Value)
	assert.NoError(t, err)
}
