package subjects_test

import (
	"fmt"
	"time"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/gateway/subjects"
	"github.com/dgwproject/dgw/schemas"
)

// A withdrawal of consent is published keyed by passenger, family and
// purpose, and applied to the subject state the decision context reads.
func ExampleCodec_Apply() {
	set, err := schema.Load(schemas.FS)
	if err != nil {
		panic(err)
	}
	c, err := subjects.NewCodec(set)
	if err != nil {
		panic(err)
	}
	key, value, err := c.Encode(subjects.Request{
		SubjectRequest: gateway.SubjectRequest{SubjectID: "P1", Kind: gateway.ConsentWithdrawn, Purpose: "research"},
		EventID:        "sr-1", OccurredAt: time.Now(), SourceSystem: "support", Channel: "email",
	})
	if err != nil {
		panic(err)
	}
	store := gateway.NewSubjectStore()
	if err := c.Apply(store, gateway.Message{Key: key, Value: value}); err != nil {
		panic(err)
	}
	fmt.Println(string(key), store.Lookup("P1").Consents)
	// Output: P1|consent|research map[research:false]
}
