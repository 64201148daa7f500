package policy

import (
	"slices"
	"testing"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/gateway/synth"
	"github.com/dgwproject/dgw/schemas"
)

var eea = []string{"AT","BE","BG","HR","CY","CZ","DK","EE","FI","FR","DE","GR","HU","IE","IT","LV","LT","LU","MT","NL","PL","PT","RO","SK","SI","ES","SE","IS","LI","NO"}

func class(c string) string {
	if slices.Contains(eea, c) { return "EEA" }
	if c == "GB" { return "GB" }
	return c
}

func TestProbeDistinct(t *testing.T) {
	set, _ := schema.Load(schemas.FS)
	for _, mode := range []string{"full", "read-only", "pos-res-class", "all-class"} {
		for _, size := range []int{10_000, 1_000_000} {
			g := synth.New(synth.Options{Seed: 1})
			c, _ := lru.New[string, struct{}](size)
			var hits, total int
			for i := 1; i <= 100000; i++ {
				ev := g.Next()
				s, _ := set.ByEventType(ev.Type)
				dc, _ := codec.Context(s, ev.Value)
				x := dc
				if mode != "full" {
					x.Subject.Citizenship, x.Event.BookingChannel, x.Schema = "", "", gateway.SchemaContext{}
				}
				if mode == "pos-res-class" || mode == "all-class" {
					x.Event.PointOfSale, x.Subject.Residence = class(x.Event.PointOfSale), class(x.Subject.Residence)
				}
				if mode == "all-class" {
					r := []string{}
					for _, c := range x.Event.Route { r = append(r, class(c)) }
					x.Event.Route = r
					x.Event.OriginCountry, x.Event.DestinationCountry = class(x.Event.OriginCountry), class(x.Event.DestinationCountry)
				}
				k := x.Key()
				y := x
				y.Event.AgencyCode, y.Event.CorporateAccount, y.Event.EmployerPaid = "", "", false
				k2 := y.Key()
				for r := range 16 {
					key := string(rune('a'+r)) + k
					if r > 1 && mode == "all-class" { key = string(rune('a'+r)) + k2 }
					total++
					if _, ok := c.Get(key); ok {
						hits++
					} else {
						c.Add(key, struct{}{})
					}
				}
			}
			t.Logf("%s cache %d: hit ratio %.3f", mode, size, float64(hits)/float64(total))
		}
	}
}
