package codec_test

import (
	"fmt"
	"log"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/schemas"
)

const exampleRequest = `{"event_id": "ev-1", "occurred_at": "2026-11-03T08:00:00Z", "source_system": "privacy-portal",
 "passenger_id": "PAX-1", "kind": "objection", "purpose": "advertising", "channel": "email", "verified_identity": true}`

func ExampleEncode() {
	set, err := schema.Load(schemas.FS)
	if err != nil {
		log.Fatal(err)
	}
	s, _ := set.ByEventType("subject_request")
	v, err := codec.FromJSON(s, []byte(exampleRequest))
	if err != nil {
		log.Fatal(err)
	}
	raw, err := codec.Encode(s, v)
	if err != nil {
		log.Fatal(err)
	}
	got, back, err := codec.Decode(set, raw)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("% x\n", raw[:2])
	fmt.Println(got.Name, back["kind"], back["purpose"])
	// Output:
	// c3 01
	// dgw.events.subject.SubjectRequest objection advertising
}

func ExampleDecoder_Decode() {
	set, err := schema.Load(schemas.FS)
	if err != nil {
		log.Fatal(err)
	}
	dec := codec.NewDecoder(set, codec.WithMaxSize(64<<10))
	_, err = dec.Decode(gateway.Message{Topic: "pax.booking", Value: []byte("not avro")})
	reason, _ := gateway.ReasonOf(err)
	fmt.Println(reason, reason.DeadLetter())
	// Output:
	// bad-magic true
}

func ExampleContext() {
	set, err := schema.Load(schemas.FS)
	if err != nil {
		log.Fatal(err)
	}
	s, _ := set.ByEventType("assistance")
	v, err := codec.FromJSON(s, []byte(`{"event_id": "ev-2", "occurred_at": "2026-11-03T08:00:00Z",
	 "source_system": "prm-desk", "purpose": "service", "point_of_sale": "KZ", "record_locator": "K7QX2M",
	 "passenger_id": "PAX-2", "passenger": {"given_name": "Aigerim", "family_name": "Example",
	 "birth_date": "2015-05-01", "citizenship": "KZ", "language": null},
	 "flight": {"carrier": "KC", "flight_number": "KC901", "departure_airport": "ALA", "departure_country": "KZ",
	 "arrival_airport": "FRA", "arrival_country": "DE", "scheduled_departure": "2026-12-01T07:30:00Z"},
	 "seat": null, "ssr_codes": ["UMNR"], "explicit_consent": false}`))
	if err != nil {
		log.Fatal(err)
	}
	dc, err := codec.Context(s, v)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(dc.Key())
	// Output:
	// {"event":{"type":"assistance","purpose":"service","point_of_sale":"KZ","origin_country":"KZ","destination_country":"DE","route":["KZ","DE"],"employer_paid":false},"subject":{"minor":true,"citizenship":"KZ","consents":{"health_data":false},"objections":[],"erased":false,"vital_interest":false},"schema":{"name":"dgw.events.assistance.SpecialAssistance"}}
}

func ExampleToJSON() {
	set, err := schema.Load(schemas.FS)
	if err != nil {
		log.Fatal(err)
	}
	s, _ := set.ByEventType("subject_request")
	v, err := codec.FromJSON(s, []byte(exampleRequest))
	if err != nil {
		log.Fatal(err)
	}
	j, err := codec.ToJSON(s, v)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(j))
	_, err = codec.FromJSON(s, []byte(`{"event_id": 7}`))
	fmt.Println(err)
	// Output:
	// {"event_id":"ev-1","occurred_at":"2026-11-03T08:00:00.000Z","source_system":"privacy-portal","passenger_id":"PAX-1","kind":"objection","purpose":"advertising","channel":"email","verified_identity":true}
	// subject_request: field event_id: expected string, got number
}
