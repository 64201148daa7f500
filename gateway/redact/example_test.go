package redact_test

import (
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/redact"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/schemas"
)

const exampleBooking = `{"event_id": "evt-1", "occurred_at": "2026-03-10T08:30:00Z", "source_system": "res",
 "purpose": "contract", "point_of_sale": "KZ", "booking_channel": "website", "record_locator": "QX7P2L",
 "booked_at": "2026-03-10T08:29:00Z", "passenger_id": "pax-1",
 "passenger": {"given_name": "Aigerim", "family_name": "Nurlanova", "gender": "F", "birth_date": "1991-07-14",
               "passenger_type": "ADT", "citizenship": "KZ", "residence_country": "KZ"},
 "contact": {"email": "aigerim.n@example.kz", "phone": "+7 701 555 0142"},
 "itinerary": {"segments": [{"marketing_carrier": "KC", "operating_carrier": "KC", "flight_number": "KC901",
   "departure_airport": "ALA", "departure_country": "KZ", "arrival_airport": "FRA", "arrival_country": "DE",
   "departure_time": "2026-04-01T23:40:00Z", "cabin": "economy", "fare_class": "Y", "status": "HK"}]},
 "special_service_requests": [], "companions": [], "fare": {"amount": "123456.78", "currency": "KZT"}}`

// Example derives a recipient's schema, redacts one booking under a
// decision and reads the record back as the recipient would.
func Example() {
	set, err := schema.Load(schemas.FS)
	if err != nil {
		log.Fatal(err)
	}
	lounge := &gateway.Recipient{ID: "ist-lounge", Topic: "dgw.out.ist-lounge", Scope: gateway.Scope{"booking": {
		"passenger.family_name":            {gateway.OpKeep, gateway.OpMask},
		"passenger.birth_date":             {gateway.OpGeneralise},
		"contact.email":                    {gateway.OpMask, gateway.OpHash},
		"contact.phone":                    {gateway.OpMask},
		"itinerary.segments.flight_number": {gateway.OpKeep},
		"itinerary.segments.cabin":         {gateway.OpKeep},
	}}}
	red, err := redact.New(set, []*gateway.Recipient{lounge}, redact.DevKeyring("example"))
	if err != nil {
		log.Fatal(err)
	}

	// An event as the gateway's decoder produces it.
	s, _ := set.ByEventType("booking")
	v, err := codec.FromJSON(s, []byte(exampleBooking))
	if err != nil {
		log.Fatal(err)
	}
	raw, err := codec.Encode(s, v)
	if err != nil {
		log.Fatal(err)
	}
	ev, err := codec.NewDecoder(set).Decode(gateway.Message{Value: raw, Time: time.Now()})
	if err != nil {
		log.Fatal(err)
	}

	d := &gateway.Decision{Allow: true, Fields: map[string]gateway.Operator{
		"passenger.family_name":            gateway.OpMask,
		"passenger.birth_date":             gateway.OpGeneralise,
		"contact.email":                    gateway.OpMask,
		"itinerary.segments.flight_number": gateway.OpKeep,
		// contact.phone and the cabin are not released this time: null.
	}}
	out, fp, err := red.Redact(ev, lounge, d)
	if err != nil {
		log.Fatal(err)
	}

	// The recipient reads it with its derived schema.
	derived, _ := red.Schema("ist-lounge", "booking")
	rs, err := schema.NewSet(derived)
	if err != nil {
		log.Fatal(err)
	}
	_, rec, err := codec.Decode(rs, out)
	if err != nil {
		log.Fatal(err)
	}
	js, err := codec.ToJSON(derived, rec)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(derived.Name, fp == derived.Fingerprint)
	fmt.Println(string(js))
	// Output:
	// dgw.recipient.ist_lounge.Booking true
	// {"passenger":{"family_name":"N***","birth_date":"30-39"},"contact":{"email":"a***@example.kz","phone":null},"itinerary":{"segments":[{"flight_number":"KC901","cabin":null}]}}
}

func ExampleRedactor_Schemas() {
	set, err := schema.Load(schemas.FS)
	if err != nil {
		log.Fatal(err)
	}
	recipients := []*gateway.Recipient{
		{ID: "skychef-catering", Scope: gateway.Scope{"booking": {"meal_code": {gateway.OpKeep}}}},
		{ID: "fraudshield", Scope: gateway.Scope{
			"payment": {"card.number": {gateway.OpMask, gateway.OpHash}},
			"booking": {"contact.email": {gateway.OpHash}},
		}},
	}
	red, err := redact.New(set, recipients, redact.DevKeyring("example"))
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range red.Schemas() {
		fmt.Println(d.Recipient, d.EventType, d.Schema.Name)
	}
	// Output:
	// fraudshield booking dgw.recipient.fraudshield.Booking
	// fraudshield payment dgw.recipient.fraudshield.Payment
	// skychef-catering booking dgw.recipient.skychef_catering.Booking
}

func ExampleExport() {
	set, err := schema.Load(schemas.FS)
	if err != nil {
		log.Fatal(err)
	}
	r := &gateway.Recipient{ID: "ala-airport", Scope: gateway.Scope{
		"assistance": {"ssr_codes": {gateway.OpKeep}, "flight.flight_number": {gateway.OpKeep}},
		"checkin":    {"seat": {gateway.OpKeep}},
	}}
	red, err := redact.New(set, []*gateway.Recipient{r}, redact.Keyring{})
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "dgw-schemas")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := redact.Export(dir, red.Schemas()); err != nil {
		log.Fatal(err)
	}
	err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			fmt.Println(filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// ala-airport/assistance.avsc
	// ala-airport/checkin.avsc
}

func ExampleLoadKeyring() {
	dir, err := os.MkdirTemp("", "dgw-keys")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "hash-keys")
	text := "# one line per recipient\n" +
		"fraudshield = hex:" + strings.Repeat("5a", 32) + "\n" +
		"pulse-research = base64:" + "c2VjcmV0IG9mIHRoZSBwdWxzZSByZXNlYXJjaCBwc2V1ZG9ueW1z" + "\n"
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		log.Fatal(err)
	}
	keys, err := redact.LoadKeyring(file)
	if err != nil {
		log.Fatal(err)
	}
	// Printing a keyring never shows a secret.
	fmt.Println(strings.Replace(keys.String(), file, "FILE", 1))
	// Output:
	// redact.Keyring{file FILE: fraudshield pulse-research, secrets redacted}
}

func ExampleKeyringFromEnv() {
	environ := []string{
		"PATH=/usr/bin",
		redact.EnvName("fraudshield") + "=hex:" + strings.Repeat("a5", 32),
	}
	keys, err := redact.KeyringFromEnv(environ)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%v\n", keys)
	fmt.Println(redact.EnvName("kz-border-api"))
	// Output:
	// redact.Keyring{environment: DGW_HASH_KEY_FRAUDSHIELD, secrets redacted}
	// DGW_HASH_KEY_KZ_BORDER_API
}

func ExampleDevKeyring() {
	keys := redact.DevKeyring("dgw-dev")
	fmt.Printf("%#v\n", keys)
	// Output:
	// redact.Keyring{development keys, secrets redacted}
}

func ExampleNamespace() {
	fmt.Println(redact.Namespace("kz-border-api"))
	fmt.Println(redact.Namespace("3rd.party"))
	// Output:
	// dgw.recipient.kz_border_api
	// dgw.recipient._3rd_party
}
