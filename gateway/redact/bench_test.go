package redact

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
)

// benchCases are (event, recipient) pairs shaped like the registry's.
func benchCases() []struct {
	name, eventType, js string
	r                   *gateway.Recipient
	d                   map[string]gateway.Operator
} {
	keepAll := func(paths ...string) (map[string][]gateway.Operator, map[string]gateway.Operator) {
		s, d := map[string][]gateway.Operator{}, map[string]gateway.Operator{}
		for _, p := range paths {
			s[p], d[p] = ops(oKeep), oKeep
		}
		return s, d
	}
	pnrScope, pnrDecision := keepAll("record_locator", "booked_at", "passenger.title", "passenger.given_name",
		"passenger.family_name", "passenger.gender", "passenger.birth_date", "passenger.citizenship",
		"passenger.residence_country", "contact.email", "contact.phone", "contact.address.line1", "contact.address.city",
		"contact.address.postal_code", "contact.address.country", "itinerary.segments.marketing_carrier",
		"itinerary.segments.operating_carrier", "itinerary.segments.flight_number", "itinerary.segments.departure_airport",
		"itinerary.segments.arrival_airport", "itinerary.segments.departure_time", "itinerary.segments.cabin",
		"itinerary.segments.fare_class", "itinerary.segments.seat", "itinerary.segments.status", "ticket_number",
		"frequent_flyer_number", "companions", "fare.amount", "fare.currency", "booking_channel", "agency_code")
	apiScope, apiDecision := keepAll("passenger.given_names", "passenger.family_name", "passenger.sex",
		"passenger.birth_date", "passenger.nationality", "passenger.residence_country", "document.type",
		"document.number", "document.issuing_country", "document.expiry_date", "flight.carrier", "flight.flight_number",
		"flight.departure_airport", "flight.arrival_airport", "flight.scheduled_departure", "flight.scheduled_arrival",
		"record_locator", "seat", "bag_tags")
	return []struct {
		name, eventType, js string
		r                   *gateway.Recipient
		d                   map[string]gateway.Operator
	}{
		{"booking/de-border-pnr", "booking", bookingJSON,
			&gateway.Recipient{ID: "de-border-pnr", Scope: gateway.Scope{"booking": pnrScope}}, pnrDecision},
		{"checkin/kz-border-api", "checkin", checkinJSON,
			&gateway.Recipient{ID: "kz-border-api", Scope: gateway.Scope{"checkin": apiScope}}, apiDecision},
		{"payment/fraudshield", "payment", paymentJSON,
			&gateway.Recipient{ID: "fraudshield", Scope: gateway.Scope{"payment": {
				"card.number": ops(oMask, oHash), "card.brand": ops(oKeep), "risk.ip_address": ops(oMask), "risk.device_id": ops(oHash),
				"payer.email": ops(oHash), "amount": ops(oKeep), "currency": ops(oKeep), "passenger_birth_date": ops(oGen)}}},
			map[string]gateway.Operator{"card.number": oHash, "card.brand": oKeep, "risk.ip_address": oMask, "risk.device_id": oHash,
				"payer.email": oHash, "amount": oKeep, "currency": oKeep, "passenger_birth_date": oGen}},
		{"booking/pulse-research", "booking", bookingJSON,
			&gateway.Recipient{ID: "pulse-research", Scope: gateway.Scope{"booking": {
				"passenger.birth_date": ops(oGen), "passenger.gender": ops(oKeep), "contact.email": ops(oHash),
				"itinerary.segments.cabin": ops(oKeep), "itinerary.segments.departure_time": ops(oGen),
				"itinerary.segments.arrival_airport": ops(oKeep), "passenger.residence_country": ops(oKeep)}}},
			map[string]gateway.Operator{"passenger.birth_date": oGen, "passenger.gender": oKeep, "contact.email": oHash,
				"itinerary.segments.cabin": oKeep, "itinerary.segments.departure_time": oGen,
				"itinerary.segments.arrival_airport": oKeep, "passenger.residence_country": oKeep}},
		{"booking/skychef-catering", "booking", bookingJSON,
			&gateway.Recipient{ID: "skychef-catering", Scope: gateway.Scope{"booking": {
				"meal_code": ops(oKeep), "itinerary.segments.flight_number": ops(oKeep), "itinerary.segments.seat": ops(oKeep)}}},
			map[string]gateway.Operator{"meal_code": oKeep, "itinerary.segments.flight_number": oKeep, "itinerary.segments.seat": oKeep}},
	}
}

const checkinJSON = `{
  "event_id": "evt-checkin-1", "occurred_at": "2026-04-01T20:10:00Z", "source_system": "dcs", "purpose": "border_control",
  "point_of_sale": "KZ", "record_locator": "QX7P2L", "passenger_id": "pax-000123", "check_in_channel": "web",
  "flight": {"carrier": "KC", "flight_number": "KC901", "departure_airport": "ALA", "departure_country": "KZ",
             "arrival_airport": "FRA", "arrival_country": "DE", "scheduled_departure": "2026-04-01T23:40:00Z",
             "scheduled_arrival": "2026-04-02T03:10:00Z"},
  "passenger": {"given_names": "Aigerim", "family_name": "Nurlanova", "sex": "F", "birth_date": "1991-07-14",
                "nationality": "KZ", "residence_country": "KZ", "passenger_type": "ADT"},
  "document": {"type": "passport", "number": "N12345678", "issuing_country": "KZ", "expiry_date": "2031-05-20"},
  "visa": null, "destination_address": null, "contact_phone": "+7 701 555 0142", "seat": "23A", "checked_bags": 1,
  "bag_tags": ["0465123456"], "boarding_status": "checked_in", "meal_code": null, "ssr_codes": []
}`

func BenchmarkRedact(b *testing.B) {
	set := loadSet(b)
	for _, c := range benchCases() {
		b.Run(c.name, func(b *testing.B) {
			x, err := New(set, []*gateway.Recipient{c.r}, DevKeyring("bench"))
			require.NoError(b, err)
			ev := event(b, set, c.eventType, c.js)
			d := allow(c.d)
			out, _, err := x.Redact(ev, c.r, d)
			require.NoError(b, err)
			decode(b, x, c.r.ID, c.eventType, out) // the benchmarked record is a valid one
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, _, err := x.Redact(ev, c.r, d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
