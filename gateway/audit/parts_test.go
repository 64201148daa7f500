package audit

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
)

// twinAuditors returns an auditor that encodes decisions through the memo
// of parts and one that encodes every entry with hamba's generic Marshal,
// with the same key, chain ids and clock: they must write the same bytes.
func twinAuditors(t *testing.T) (memo, generic *Auditor) {
	t.Helper()
	c, err := NewCodec(schemaBytes(t))
	require.NoError(t, err)
	require.True(t, c.hand)
	g := *c
	g.hand = false
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	opts := []Option{WithInstance("i1"), WithClock(func() time.Time { return now })}
	memo, err = New(c, DevKey("k"), "dgw.audit", opts...)
	require.NoError(t, err)
	require.NotNil(t, memo.parts)
	generic, err = New(&g, DevKey("k"), "dgw.audit", opts...)
	require.NoError(t, err)
	require.Nil(t, generic.parts, "without the hand encoder, no memo")
	return memo, generic
}

func partsEvent(id string, eventType string) *gateway.Event {
	return &gateway.Event{
		Msg: gateway.Message{Topic: "pax." + eventType, Partition: 1, Offset: 9},
		ID:  id, SubjectID: "P1", OccurredAt: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
		Schema:  gateway.SchemaRef{EventType: eventType},
		Context: gateway.DecisionContext{Event: gateway.EventContext{Type: eventType, Purpose: "ops"}},
	}
}

// requireTwins has both auditors record in and requires the same bytes.
func requireTwins(t *testing.T, memo, generic *Auditor, in *gateway.AuditInput, msg string) []byte {
	t.Helper()
	want, err := generic.Records(in)
	require.NoError(t, err, msg)
	got, err := memo.Records(in)
	require.NoError(t, err, msg)
	require.Equal(t, want[0].Value, got[0].Value, msg)
	return got[0].Value
}

// TestPartsGiveTheGenericBytes: over random entries whose decisions are
// shared (as interned cached decisions are), copied into fresh maps and
// slices, or new, with every outcome and several revisions, recipients
// and event types, the memoised parts give byte for byte what the
// generic encoder writes, on two chains, corrections included.
func TestPartsGiveTheGenericBytes(t *testing.T) {
	memo, generic := twinAuditors(t)
	rng := rand.New(rand.NewPCG(3, 5))
	types := []string{"checkin", "booking"}
	paths := []string{"a", "b.c", "b.d", "e", "f.g.h", "z"}
	ops := []gateway.Operator{gateway.OpKeep, gateway.OpGeneralise, gateway.OpMask, gateway.OpHash, gateway.OpDrop}
	var recipients []*gateway.Recipient
	for i := range 4 {
		sc := gateway.Scope{}
		for _, et := range types {
			sc[et] = map[string][]gateway.Operator{}
			for _, p := range paths {
				if rng.IntN(3) > 0 {
					sc[et][p] = []gateway.Operator{gateway.OpKeep}
				}
			}
		}
		recipients = append(recipients, &gateway.Recipient{ID: fmt.Sprintf("r%d", i), Name: fmt.Sprintf("R %d", i),
			Type: "t", Country: "DE", Topic: fmt.Sprintf("dgw.out.r%d", i), Scope: sc})
	}
	newDecision := func() gateway.Decision {
		d := gateway.Decision{Allow: rng.IntN(2) == 0, Fields: map[string]gateway.Operator{},
			Revision: []string{"rev-1", "rev-2"}[rng.IntN(2)], Basis: []string{"", "consent", "contract"}[rng.IntN(3)]}
		for _, p := range paths {
			if rng.IntN(2) == 0 {
				d.Fields[p] = ops[rng.IntN(len(ops))]
			}
		}
		if rng.IntN(2) == 0 {
			d.Transfer = gateway.Transfer{CrossBorder: true, Mechanism: []string{"", "scc", "adequacy"}[rng.IntN(3)]}
		}
		for range rng.IntN(3) {
			d.Reasons = append(d.Reasons, fmt.Sprintf("reason %d", rng.IntN(4)))
		}
		return d
	}
	shared := make([]gateway.Decision, 12)
	for i := range shared {
		shared[i] = newDecision()
	}
	outcomes := []gateway.Outcome{gateway.OutcomeDelivered, gateway.OutcomeRefused, gateway.OutcomeHeld}
	reasons := []gateway.Reason{gateway.ReasonPolicy, gateway.ReasonScope, gateway.ReasonSink}
	for i := range 2000 {
		ev := partsEvent(fmt.Sprintf("ev-%d", i), types[rng.IntN(len(types))])
		var results []gateway.RecipientResult
		for _, r := range recipients {
			rr := gateway.RecipientResult{Recipient: r, Outcome: outcomes[rng.IntN(3)]}
			switch rng.IntN(4) {
			case 0: // a copy: same content, other map and slice
				d := shared[rng.IntN(len(shared))]
				d.Fields, d.Reasons = maps.Clone(d.Fields), slices.Clone(d.Reasons)
				rr.Decision = d
			case 1:
				rr.Decision = newDecision()
			default:
				rr.Decision = shared[rng.IntN(len(shared))]
			}
			if rr.Outcome == gateway.OutcomeHeld {
				rr.Reason = reasons[rng.IntN(len(reasons))]
			}
			results = append(results, rr)
		}
		in := &gateway.AuditInput{Worker: i % 2, Event: ev, Results: results}
		if rng.IntN(3) == 0 {
			in.TraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		}
		requireTwins(t, memo, generic, in, fmt.Sprintf("entry %d", i))
		if rng.IntN(5) == 0 {
			held := results[:1]
			held[0].Outcome, held[0].Reason = gateway.OutcomeHeld, gateway.ReasonSink
			requireTwins(t, memo, generic, &gateway.AuditInput{Worker: i % 2, Event: ev, Results: held, Correction: true},
				fmt.Sprintf("correction of entry %d", i))
		}
	}
	assert.NotEmpty(t, memo.parts.m)
}

// TestPartsKeyedByAllTheyEncode: a memoised part is not reused for a
// result that differs in anything the part encodes, even when it shares
// the decision's map and slice.
func TestPartsKeyedByAllTheyEncode(t *testing.T) {
	r := &gateway.Recipient{ID: "r1", Name: "R 1", Type: "t", Country: "DE", Topic: "dgw.out.r1",
		Scope: gateway.Scope{"checkin": {"a": {gateway.OpKeep}, "b": {gateway.OpKeep}}, "booking": {"c": {gateway.OpKeep}}}}
	base := gateway.RecipientResult{Recipient: r, Outcome: gateway.OutcomeDelivered, Decision: gateway.Decision{Allow: true,
		Fields: map[string]gateway.Operator{"a": gateway.OpKeep}, Basis: "contract", Revision: "rev-1", Reasons: []string{"ok", "why"}}}
	for _, c := range []struct {
		name      string
		eventType string
		change    func(rr *gateway.RecipientResult)
	}{
		{name: "revision", change: func(rr *gateway.RecipientResult) { rr.Decision.Revision = "rev-2" }},
		{name: "basis", change: func(rr *gateway.RecipientResult) { rr.Decision.Basis = "consent" }},
		{name: "cross border", change: func(rr *gateway.RecipientResult) { rr.Decision.Transfer.CrossBorder = true }},
		{name: "mechanism", change: func(rr *gateway.RecipientResult) { rr.Decision.Transfer.Mechanism = "scc" }},
		{name: "outcome", change: func(rr *gateway.RecipientResult) { rr.Outcome = gateway.OutcomeRefused }},
		{name: "held", change: func(rr *gateway.RecipientResult) { rr.Outcome, rr.Reason = gateway.OutcomeHeld, gateway.ReasonScope }},
		{name: "fewer reasons, same array", change: func(rr *gateway.RecipientResult) { rr.Decision.Reasons = rr.Decision.Reasons[:1] }},
		{name: "other fields map", change: func(rr *gateway.RecipientResult) {
			rr.Decision.Fields = map[string]gateway.Operator{"a": gateway.OpKeep, "b": gateway.OpMask}
		}},
		{name: "re-registered recipient", change: func(rr *gateway.RecipientResult) {
			again := *r
			again.Name = "R 1 renamed"
			rr.Recipient = &again
		}},
		{name: "event type", eventType: "booking", change: func(*gateway.RecipientResult) {}},
	} {
		t.Run(c.name, func(t *testing.T) {
			memo, generic := twinAuditors(t)
			first := requireTwins(t, memo, generic, &gateway.AuditInput{Event: partsEvent("ev-1", "checkin"),
				Results: []gateway.RecipientResult{base}}, "first")
			changed := base
			c.change(&changed)
			et := "checkin"
			if c.eventType != "" {
				et = c.eventType
			}
			second := requireTwins(t, memo, generic, &gateway.AuditInput{Event: partsEvent("ev-1", et),
				Results: []gateway.RecipientResult{changed}}, "changed")
			// The decisions differ only if the first part was not reused.
			assert.NotEqual(t, decisionBytes(t, memo, first), decisionBytes(t, memo, second))
			assert.Equal(t, 2, memo.parts.n, "one part each")
		})
	}
}

// decisionBytes decodes raw and re-encodes its decisions alone.
func decisionBytes(t *testing.T, a *Auditor, raw []byte) []byte {
	t.Helper()
	e, err := a.codec.Decode(raw)
	require.NoError(t, err)
	var out []byte
	for i := range e.Decisions {
		out, err = appendDecision(out, &e.Decisions[i])
		require.NoError(t, err)
	}
	return out
}

// TestPartsReusedAndBounded: equal results are encoded once; the memo
// forgets everything when it would pass its bounds, and entries stay
// right after that.
func TestPartsReusedAndBounded(t *testing.T) {
	memo, generic := twinAuditors(t)
	r := &gateway.Recipient{ID: "r1", Topic: "dgw.out.r1", Scope: gateway.Scope{"checkin": {"a": {gateway.OpKeep}}}}
	d := gateway.Decision{Fields: map[string]gateway.Operator{}, Revision: "rev-1", Reasons: []string{"no"}}
	in := &gateway.AuditInput{Event: partsEvent("ev", "checkin"),
		Results: []gateway.RecipientResult{{Recipient: r, Outcome: gateway.OutcomeRefused, Decision: d}}}
	for range 3 {
		requireTwins(t, memo, generic, in, "same result")
	}
	require.Equal(t, 1, memo.parts.n, "a shared decision is encoded once")
	k := keyOf(&in.Results[0], "checkin")
	part := memo.parts.lookup(&k)
	require.NotNil(t, part)

	memo.parts.max = 4
	for i := range 10 {
		fresh := d
		fresh.Fields = map[string]gateway.Operator{} // an uncached decision: new identity
		requireTwins(t, memo, generic, &gateway.AuditInput{Event: partsEvent("ev", "checkin"),
			Results: []gateway.RecipientResult{{Recipient: r, Outcome: gateway.OutcomeRefused, Decision: fresh}}}, fmt.Sprintf("fresh %d", i))
		assert.LessOrEqual(t, memo.parts.n, 4)
	}
	memo.parts.maxBytes = 2 * len(part)
	for i := range 5 {
		requireTwins(t, memo, generic, in, fmt.Sprintf("after clearing %d", i))
		assert.LessOrEqual(t, memo.parts.bytes, memo.parts.maxBytes)
	}
}
