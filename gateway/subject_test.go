package gateway_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dgwproject/dgw/gateway"
)

func TestSubjectStore(t *testing.T) {
	tests := []struct {
		name string
		reqs []gateway.SubjectRequest
		want gateway.SubjectContext
	}{
		{name: "unknown passenger", want: gateway.SubjectContext{Consents: map[string]bool{}, Objections: []string{}}},
		{name: "consent then withdrawal", reqs: []gateway.SubjectRequest{
			{SubjectID: "p1", Kind: gateway.ConsentGiven, Purpose: "marketing"},
			{SubjectID: "p1", Kind: gateway.ConsentGiven, Purpose: "research"},
			{SubjectID: "p1", Kind: gateway.ConsentWithdrawn, Purpose: "marketing"},
		}, want: gateway.SubjectContext{Consents: map[string]bool{"marketing": false, "research": true}, Objections: []string{}}},
		{name: "objections are sorted and can be withdrawn", reqs: []gateway.SubjectRequest{
			{SubjectID: "p1", Kind: gateway.Objection, Purpose: "survey"},
			{SubjectID: "p1", Kind: gateway.Objection, Purpose: "advertising"},
			{SubjectID: "p1", Kind: gateway.Objection, Purpose: "research"},
			{SubjectID: "p1", Kind: gateway.ObjectionWithdrawn, Purpose: "research"},
		}, want: gateway.SubjectContext{Consents: map[string]bool{}, Objections: []string{"advertising", "survey"}}},
		{name: "erasure is final", reqs: []gateway.SubjectRequest{
			{SubjectID: "p1", Kind: gateway.Erasure},
			{SubjectID: "p1", Kind: gateway.ConsentGiven, Purpose: "marketing"},
		}, want: gateway.SubjectContext{Consents: map[string]bool{"marketing": true}, Objections: []string{}, Erased: true}},
		{name: "other passengers are not affected", reqs: []gateway.SubjectRequest{
			{SubjectID: "p2", Kind: gateway.Erasure},
		}, want: gateway.SubjectContext{Consents: map[string]bool{}, Objections: []string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := gateway.NewSubjectStore()
			for _, r := range tt.reqs {
				s.Apply(r)
			}
			assert.Equal(t, tt.want, s.Lookup("p1"))
		})
	}
}

func TestSubjectStoreForget(t *testing.T) {
	s := gateway.NewSubjectStore()
	s.Apply(gateway.SubjectRequest{SubjectID: "p1", Kind: gateway.ConsentWithdrawn, Purpose: "research"})
	s.Apply(gateway.SubjectRequest{SubjectID: "p1", Kind: gateway.ConsentGiven, Purpose: "survey"})
	s.Apply(gateway.SubjectRequest{SubjectID: "p1", Kind: gateway.Objection, Purpose: "service"})
	s.Apply(gateway.SubjectRequest{SubjectID: "p1", Kind: gateway.Erasure})

	s.Forget("p1", gateway.ConsentGiven, "research")
	s.Forget("p1", gateway.ObjectionWithdrawn, "service")
	s.Forget("p2", gateway.Erasure, "")
	assert.Equal(t, gateway.SubjectContext{Consents: map[string]bool{"survey": true}, Objections: []string{}, Erased: true}, s.Lookup("p1"))
	s.Forget("p1", gateway.Erasure, "")
	s.Forget("p1", gateway.ConsentWithdrawn, "survey")
	assert.Equal(t, gateway.SubjectContext{Consents: map[string]bool{}, Objections: []string{}}, s.Lookup("p1"))
	assert.Zero(t, s.Len(), "a passenger with nothing recorded is dropped")
}
