package policy

import (
	"context"
	"testing"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/policies"
	"github.com/dgwproject/dgw/schemas"
)

func BenchmarkProbe(b *testing.B) {
	set, _ := schema.Load(schemas.FS)
	d, err := New(context.Background(), policies.FS, WithCatalogue(set.Catalogue()))
	if err != nil {
		b.Fatal(err)
	}
	var r *gateway.Recipient
	for _, x := range d.recipients {
		if x.ID == "kz-border-api" {
			r = x
		}
	}
	dc := &gateway.DecisionContext{Event: gateway.EventContext{Type: "checkin", Purpose: "border_control", PointOfSale: "KZ", Route: []string{"KZ", "DE"}, OriginCountry: "KZ", DestinationCountry: "DE", BookingChannel: "website"},
		Subject: gateway.SubjectContext{Citizenship: "KZ", Residence: "KZ", Consents: map[string]bool{}, Objections: []string{}}, Schema: gateway.SchemaContext{Name: "dgw.events.Checkin"}}
	dec, _ := d.Decide(context.Background(), dc, r)
	b.Logf("fields %d", len(dec.Fields))
	b.Run("ctxkey", func(b *testing.B) { for b.Loop() { _ = dc.Key() } })
	b.Run("cachekey", func(b *testing.B) { for b.Loop() { _ = cacheKey(dc, r) } })
	k := cacheKey(dc, r)
	b.Run("get", func(b *testing.B) { for b.Loop() { _, _ = d.cache.Get(k) } })
	b.Run("clone", func(b *testing.B) { for b.Loop() { _ = clone(dec) } })
}
