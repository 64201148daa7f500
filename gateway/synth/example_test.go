package synth_test

import (
	"fmt"
	"log"

	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/gateway/synth"
	"github.com/dgwproject/dgw/schemas"
)

// The passengers of booking 8VWBJ8, a parent and a child, are published as
// one event each.
func ExampleNew() {
	set, err := schema.Load(schemas.FS)
	if err != nil {
		log.Fatal(err)
	}
	g := synth.New(synth.Options{Seed: 1, Types: []string{"booking"}})
	for range 6 {
		ev := g.Next()
		s, _ := set.ByEventType(ev.Type)
		raw, err := codec.Encode(s, ev.Value)
		if err != nil {
			log.Fatal(err)
		}
		p := ev.Value["passenger"].(map[string]any)
		fmt.Println(ev.Type, ev.Key, ev.Value["record_locator"], p["passenger_type"], len(raw) > 0)
	}
	// Output:
	// booking PAX-CANARY-1-000004 F7NEB5 ADT true
	// booking PAX-CANARY-1-000001 8VWBJ8 ADT true
	// booking PAX-CANARY-1-000003 SPL6NL ADT true
	// booking PAX-CANARY-1-000002 8VWBJ8 CHD true
	// booking PAX-CANARY-1-000005 HVWP3U ADT true
	// booking PAX-CANARY-1-000009 Q6XSUU ADT true
}

// A test scans a log line for leaks, then lists the values to search a
// recipient topic for.
func ExampleCanaries() {
	g := synth.New(synth.Options{Seed: 1, Types: []string{"checkin"}})
	ev := g.Next()
	log := []byte(`level=INFO msg="checkin decided" event=` + ev.Value["event_id"].(string))
	fmt.Println(synth.ContainsCanary(log))
	for _, c := range synth.Canaries(ev) {
		fmt.Println(c)
	}
	// Output:
	// false
	// PAX-CANARY-1-000004
	// Timur Canary
	// Abenov-Canary
	// CNRY26832
}

// CanaryFields names the field of every personal value, including card
// security codes, which are too short to search for.
func ExampleCanaryFields() {
	g := synth.New(synth.Options{Seed: 2, Types: []string{"payment"}})
	for {
		ev := g.Next()
		if card, ok := ev.Value["card"].(map[string]any); !ok || card["security_code"] == nil {
			continue
		}
		for _, c := range synth.CanaryFields(ev) {
			if c.Path == "card.number" || c.Path == "card.security_code" {
				fmt.Printf("%s %t\n", c.Path, synth.ContainsCanary([]byte(c.Value)))
			}
		}
		return
	}
	// Output:
	// card.number true
	// card.security_code false
}
