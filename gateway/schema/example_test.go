package schema_test

import (
	"fmt"
	"log"
	"testing/fstest"

	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/schemas"
)

func ExampleLoad() {
	set, err := schema.Load(schemas.FS)
	if err != nil {
		log.Fatal(err)
	}
	s, _ := set.ByEventType("checkin")
	for _, path := range []string{"document.number", "flight.arrival_country", "ssr_codes"} {
		f, _ := s.Field(path)
		fmt.Printf("%s: category=%s context=%q format=%q kind=%s repeated=%t\n", f.Path, f.Category, f.Context, f.Format, f.Kind, f.Repeated)
	}
	// Output:
	// document.number: category=identity context="" format="document" kind=string repeated=false
	// flight.arrival_country: category=travel context="event.route" format="" kind=string repeated=false
	// ssr_codes: category=sensitive context="" format="" kind=string repeated=true
}

func ExampleLint() {
	fsys := fstest.MapFS{"note.avsc": {Data: []byte(`{"type": "record", "name": "Note", "dgw.event_type": "note",
	  "fields": [
	    {"name": "event_id", "type": "string", "category": "technical", "role": "event_id"},
	    {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}, "category": "technical", "role": "occurred_at"},
	    {"name": "passenger_id", "type": "string", "category": "identity", "role": "subject_id"},
	    {"name": "text", "type": "string", "category": "gossip"}
	  ]}`)}}
	for _, p := range schema.Lint(fsys) {
		fmt.Println(p)
	}
	// Output:
	// note.avsc: text: unknown category "gossip", expected one of identity, contact, payment, travel, health, sensitive, technical, interaction, social, shared, employment, statistical
}
