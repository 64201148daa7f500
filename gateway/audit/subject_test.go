package audit_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/audit"
)

func TestSubjectCollector(t *testing.T) {
	c := codec(t)
	key := testKey("k")
	a := newAuditor(t, c, key, "i1")
	var tr trail
	add := func(worker int, ev *gateway.Event, rs []gateway.RecipientResult, correction bool) {
		ds, err := a.Records(&gateway.AuditInput{Worker: worker, Event: ev, Results: rs, Correction: correction})
		require.NoError(t, err)
		for _, d := range ds {
			tr = append(tr, audit.Record{Topic: d.Topic, Partition: 0, Offset: int64(len(tr)), Key: d.Key, Value: d.Value})
		}
	}
	e1, e2, other := event("ev-1", "P1", 1), event("ev-2", "P1", 2), event("ev-3", "P2", 3)
	add(0, e1, results(), false)
	add(1, other, results(), false)
	add(0, e2, results(), false)
	held := results()[0]
	held.Outcome, held.Reason = gateway.OutcomeHeld, gateway.ReasonSink
	add(0, e2, []gateway.RecipientResult{held}, true)
	add(1, e1, results(), false) // the same event handled again after a restart
	tr = append(tr, tr[0])       // and a duplicate record
	tr = append(tr, audit.Record{Topic: testTopic, Value: []byte("junk")})

	col, err := audit.NewSubjectCollector(c, key, "P1")
	require.NoError(t, err)
	for _, r := range tr {
		col.Add(r)
	}
	assert.Equal(t, 1, col.Unreadable)

	rows := col.Rows(false)
	require.Len(t, rows, 1, "one delivery: ev-2's was corrected to held, ev-1's repeats are listed once")
	r := rows[0]
	assert.Equal(t, "ev-1", r.EventID)
	assert.Equal(t, "kz-border-api", r.RecipientID)
	assert.Equal(t, "Border Service", r.RecipientName)
	assert.Equal(t, "border_authority", r.RecipientType)
	assert.Equal(t, "KZ", r.RecipientCountry)
	assert.Equal(t, "legal_obligation", r.Basis)
	assert.Equal(t, "rev-1", r.PolicyRevision)
	assert.Equal(t, []audit.DisclosedField{{Path: "document.number", Operator: "mask"}, {Path: "passenger.surname", Operator: "keep"}}, r.Fields)
	assert.Equal(t, "dgw.audit/0@0 chain dgw-i1-w0 seq 1", r.Evidence)

	all := col.Rows(true)
	var outcomes []string
	for _, r := range all {
		outcomes = append(outcomes, r.EventID+" "+r.RecipientID+" "+r.Outcome+" "+r.Reason)
	}
	assert.ElementsMatch(t, []string{
		"ev-1 kz-border-api delivered ", "ev-1 pulse-research refused ", "ev-1 ist-lounge held policy-error",
		"ev-2 kz-border-api held sink-error", "ev-2 pulse-research refused ", "ev-2 ist-lounge held policy-error",
	}, outcomes)

	_, err = audit.NewSubjectCollector(c, key, "")
	assert.Error(t, err)
	_, err = audit.NewSubjectCollector(c, audit.Key{}, "P1")
	assert.Error(t, err)
}
