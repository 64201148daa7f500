package audit_test

import (
	"fmt"
	"io/fs"
	"time"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/audit"
	"github.com/dgwproject/dgw/schemas"
)

func exampleCodec() *audit.Codec {
	avsc, err := fs.ReadFile(schemas.FS, "audit.avsc")
	if err != nil {
		panic(err)
	}
	c, err := audit.NewCodec(avsc)
	if err != nil {
		panic(err)
	}
	return c
}

// An auditor chains the entries of each pipeline worker; a verifier
// checks the chains as read back from the topic.
func ExampleAuditor() {
	c := exampleCodec()
	key := audit.DevKey("example")
	a, err := audit.New(c, key, "dgw.audit", audit.WithInstance("demo"))
	if err != nil {
		panic(err)
	}
	recipient := &gateway.Recipient{ID: "kz-border-api", Type: "border_authority", Country: "KZ",
		Scope: gateway.Scope{"checkin": {"document.number": {gateway.OpKeep}}}}
	v, err := audit.NewVerifier(c, "dgw.audit", audit.WithKey(key))
	if err != nil {
		panic(err)
	}
	v.Partition(0, 0)
	for i := range 3 {
		ev := &gateway.Event{ID: fmt.Sprintf("ev-%d", i), SubjectID: "P1", Schema: gateway.SchemaRef{EventType: "checkin"}}
		ds, err := a.Records(&gateway.AuditInput{Worker: 0, Event: ev, Results: []gateway.RecipientResult{{
			Recipient: recipient, Outcome: gateway.OutcomeDelivered,
			Decision: gateway.Decision{Allow: true, Fields: map[string]gateway.Operator{"document.number": gateway.OpKeep}},
		}}})
		if err != nil {
			panic(err)
		}
		fmt.Println(ds[0].Topic, string(ds[0].Key))
		v.Add(audit.Record{Topic: ds[0].Topic, Offset: int64(i), Key: ds[0].Key, Value: ds[0].Value})
	}
	r := v.Finish()
	fmt.Println("intact:", r.OK(), "chains:", r.Chains, "head seq:", r.Heads[0].Seq)
	// Output:
	// dgw.audit dgw-demo-w0
	// dgw.audit dgw-demo-w0
	// dgw.audit dgw-demo-w0
	// intact: true chains: 1 head seq: 3
}

// The subject field of an entry is a keyed pseudonym of the passenger id.
func ExampleKey_Pseudonym() {
	key := audit.DevKey("example")
	fmt.Println(len(key.Pseudonym("P123")), key.Pseudonym("P123") == key.Pseudonym("P123"))
	fmt.Println(key)
	// Output:
	// 64 true
	// audit.Key{development seed, id 44a91b852dca9a98, secret redacted}
}

// A subject collector answers "who received my data" from the trail.
func ExampleSubjectCollector() {
	c := exampleCodec()
	key := audit.DevKey("example")
	a, _ := audit.New(c, key, "dgw.audit", audit.WithInstance("demo"),
		audit.WithClock(func() time.Time { return time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC) }))
	border := &gateway.Recipient{ID: "kz-border-api", Name: "Border Service", Type: "border_authority", Country: "KZ",
		Scope: gateway.Scope{"checkin": {"document.number": {gateway.OpKeep}}}}
	ev := &gateway.Event{ID: "ev-1", SubjectID: "P1", Schema: gateway.SchemaRef{EventType: "checkin"}}
	ds, _ := a.Records(&gateway.AuditInput{Event: ev, Results: []gateway.RecipientResult{{
		Recipient: border, Outcome: gateway.OutcomeDelivered,
		Decision: gateway.Decision{Allow: true, Basis: "legal_obligation", Revision: "r1",
			Fields: map[string]gateway.Operator{"document.number": gateway.OpKeep}},
	}}})
	col, err := audit.NewSubjectCollector(c, key, "P1")
	if err != nil {
		panic(err)
	}
	col.Add(audit.Record{Topic: "dgw.audit", Key: ds[0].Key, Value: ds[0].Value})
	for _, r := range col.Rows(false) {
		fmt.Println(r.RecordedAt.Format(time.RFC3339), r.RecipientName, r.RecipientCountry, r.Fields, r.Basis, r.PolicyRevision)
	}
	// Output:
	// 2026-03-01T09:30:00Z Border Service KZ [{document.number keep}] legal_obligation r1
}
