package audit_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
)

// TestEncodingIsPinned pins the exact bytes the auditor writes for fixed
// inputs: the hashes below were taken from the encoder built on hamba's
// generic Marshal, before entries were encoded by hand. A chain written by
// one dgw version must verify under the next, so any change here is a
// format change, not a refactoring.
func TestEncodingIsPinned(t *testing.T) {
	c := codec(t)
	a := newAuditor(t, c, testKey("k"), "i1")
	ev := event("ev-1", "P1", 7)
	var got []string
	ds, err := a.Records(&gateway.AuditInput{Worker: 0, Event: ev, Results: results(), TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"})
	require.NoError(t, err)
	got = append(got, digest(ds[0].Value))
	// A correction of it: kind correction, corrects_seq set, no trace id.
	corr := results()
	corr[0].Outcome, corr[0].Reason = gateway.OutcomeHeld, gateway.ReasonSink
	ds, err = a.Records(&gateway.AuditInput{Worker: 0, Event: ev, Results: corr, Correction: true})
	require.NoError(t, err)
	got = append(got, digest(ds[0].Value))
	// Edge values on another chain: no recipients, a time before 1970 with
	// sub-millisecond nanoseconds, a large offset, non-ASCII text.
	odd := event("ev-ü-€", "P\u00e9", 1<<40)
	odd.OccurredAt = time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.UTC)
	odd.Msg.Partition = 1 << 20
	odd.Context.Event.Purpose = ""
	ds, err = a.Records(&gateway.AuditInput{Worker: 3, Event: odd})
	require.NoError(t, err)
	got = append(got, digest(ds[0].Value))
	assert.Equal(t, []string{
		"e83f2cdb07cbf7422949d096cc0ea1c5c3594f9be09774ca5cc2a5beca05fe98",
		"d51168758b2004b8d95868245158a811be8bc943f9633168c0a38b6590348a59",
		"0eabf793b640ebfe4c02e21187d52f951ab553e689ab2bdf1973a17c19e74cff",
	}, got)
}

func digest(raw []byte) string {
	s := sha256.Sum256(raw)
	return hex.EncodeToString(s[:])
}

// BenchmarkRecords measures building and sealing one entry with three
// recipient decisions, the auditor's share of the per-event cost.
func BenchmarkRecords(b *testing.B) {
	c := codec(b)
	a := newAuditor(b, c, testKey("k"), "i1")
	ev := event("ev-1", "P1", 7)
	in := &gateway.AuditInput{Worker: 0, Event: ev, Results: results(), TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Records(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecordsFanOut measures an entry shaped like the bench
// workload's: 16 recipients with 40-path scopes, most refused, the
// decisions shared from entry to entry as a decision cache's are (about
// 10 KB an entry).
func BenchmarkRecordsFanOut(b *testing.B) {
	c := codec(b)
	a := newAuditor(b, c, testKey("k"), "i1")
	var res []gateway.RecipientResult
	for i := range 16 {
		scope := map[string][]gateway.Operator{}
		for j := range 40 {
			scope[fmt.Sprintf("section%d.field_%02d", j%5, j)] = []gateway.Operator{gateway.OpKeep}
		}
		r := &gateway.Recipient{ID: fmt.Sprintf("recipient-%02d", i), Name: "Recipient", Type: "partner", Country: "DE",
			Topic: fmt.Sprintf("dgw.out.r%d", i), Scope: gateway.Scope{"checkin": scope}}
		rr := gateway.RecipientResult{Recipient: r, Outcome: gateway.OutcomeRefused, Decision: gateway.Decision{
			Revision: "b3132902f699", Reasons: []string{"no legal basis for this recipient and purpose"}}}
		if i%8 == 0 {
			rr.Outcome = gateway.OutcomeDelivered
			rr.Decision.Allow, rr.Decision.Basis = true, "contract"
			rr.Decision.Fields = map[string]gateway.Operator{"section0.field_00": gateway.OpKeep, "section1.field_01": gateway.OpKeep}
		}
		res = append(res, rr)
	}
	in := &gateway.AuditInput{Worker: 0, Event: event("ev-1", "P1", 7), Results: res, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}
	var size int
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		ds, err := a.Records(in)
		if err != nil {
			b.Fatal(err)
		}
		size = len(ds[0].Value)
	}
	// Process CPU time, unlike ns/op, does not count waiting for a CPU
	// on a shared machine.
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(size), "bytes/entry")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
