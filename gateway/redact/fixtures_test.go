package redact

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/schemas"
)

// Fixture events: synthetic people only.
const bookingJSON = `{
  "event_id": "evt-booking-1",
  "occurred_at": "2026-03-10T08:30:00Z",
  "source_system": "res",
  "purpose": "contract",
  "point_of_sale": "KZ",
  "booking_channel": "website",
  "agency_code": null,
  "corporate_account": null,
  "employer_paid": false,
  "record_locator": "QX7P2L",
  "booked_at": "2026-03-10T08:29:00Z",
  "passenger_id": "pax-000123",
  "passenger": {
    "title": "MS", "given_name": "Aigerim", "family_name": "Nurlanova", "gender": "F",
    "birth_date": "1991-07-14", "passenger_type": "ADT", "citizenship": "KZ", "residence_country": "KZ"
  },
  "contact": {"email": "Aigerim.N@example.kz", "phone": "+7 701 555 0142",
              "address": {"line1": "Abay Ave 10", "city": "Almaty", "postal_code": "050000", "country": "KZ"}},
  "itinerary": {"segments": [
    {"marketing_carrier": "KC", "operating_carrier": "KC", "flight_number": "KC901", "departure_airport": "ALA",
     "departure_country": "KZ", "arrival_airport": "FRA", "arrival_country": "DE", "departure_time": "2026-04-01T23:40:00Z",
     "cabin": "economy", "fare_class": "Y", "seat": "23A", "status": "HK"},
    {"marketing_carrier": "KC", "operating_carrier": "KC", "flight_number": "KC902", "departure_airport": "FRA",
     "departure_country": "DE", "arrival_airport": "ALA", "arrival_country": "KZ", "departure_time": "2026-04-15T12:05:00Z",
     "cabin": "business", "fare_class": "J", "seat": null, "status": "HK"}
  ]},
  "ticket_number": "4652300000123",
  "frequent_flyer_number": "KC88812345",
  "meal_code": "MOML",
  "special_service_requests": [{"code": "WCHR", "free_text": "needs help at the gate"}],
  "companions": ["Daulet Nurlanov", "Aruzhan Nurlanova"],
  "fare": {"amount": "123456.78", "currency": "KZT"}
}`

const paymentJSON = `{
  "event_id": "evt-payment-1",
  "occurred_at": "2026-03-10T08:31:00Z",
  "source_system": "pay",
  "purpose": "contract",
  "point_of_sale": "KZ",
  "booking_channel": "website",
  "employer_paid": false,
  "record_locator": "QX7P2L",
  "passenger_id": "pax-000123",
  "passenger_birth_date": "1991-07-14",
  "payment_id": "pm-77",
  "amount": "1234.50",
  "currency": "EUR",
  "method": "card",
  "card": {"holder_name": "AIGERIM NURLANOVA", "number": "4111 1111 1111 1234", "expiry": "09/29",
           "security_code": "737", "brand": "VISA", "issuing_bank": "Kaspi"},
  "billing_address": null,
  "payer": {"is_passenger": true, "name": "Aigerim Nurlanova", "email": "aigerim.n@example.kz"},
  "authorisation_code": "A1B2C3",
  "risk": {"ip_address": "203.0.113.77", "device_id": "dev-42", "email_age_days": 900}
}`

func loadSet(t testing.TB) *schema.Set {
	t.Helper()
	set, err := schema.Load(schemas.FS)
	require.NoError(t, err)
	return set
}

// event decodes a JSON fixture through the production decoder, so the
// event carries its fingerprint, time and context as in the gateway.
func event(t testing.TB, set *schema.Set, eventType, js string) *gateway.Event {
	t.Helper()
	s, ok := set.ByEventType(eventType)
	require.True(t, ok, eventType)
	v, err := codec.FromJSON(s, []byte(js))
	require.NoError(t, err)
	bin, err := codec.Encode(s, v)
	require.NoError(t, err)
	ev, err := codec.NewDecoder(set).Decode(gateway.Message{Topic: "pax." + eventType, Value: bin, Time: time.Unix(0, 0)})
	require.NoError(t, err)
	return ev
}

// valueOf is the normalised value of a decoded event (the decoder gives
// the Redactor a layout of the bytes, not values).
func valueOf(t testing.TB, set *schema.Set, ev *gateway.Event) map[string]any {
	t.Helper()
	_, v, err := codec.Decode(set, ev.Msg.Value)
	require.NoError(t, err)
	return v
}

// reencoded is ev with value v, through the encoder and the production
// decoder.
func reencoded(t testing.TB, set *schema.Set, ev *gateway.Event, v map[string]any) *gateway.Event {
	t.Helper()
	s, ok := set.ByFingerprint(ev.Schema.Fingerprint)
	require.True(t, ok)
	bin, err := codec.Encode(s, v)
	require.NoError(t, err)
	msg := ev.Msg
	msg.Value = bin
	out, err := codec.NewDecoder(set).Decode(msg)
	require.NoError(t, err)
	require.NotNil(t, out.Layout)
	return out
}

// eventOf wraps a normalised value without the decoder.
func eventOf(t testing.TB, set *schema.Set, eventType string, v map[string]any, at time.Time) *gateway.Event {
	t.Helper()
	s, ok := set.ByEventType(eventType)
	require.True(t, ok, eventType)
	return &gateway.Event{ID: "evt", Schema: s.Ref(), Value: v, OccurredAt: at}
}

func allow(fields map[string]gateway.Operator) *gateway.Decision {
	return &gateway.Decision{Allow: true, Fields: fields}
}

func ops(o ...gateway.Operator) []gateway.Operator { return o }

// decode reads a recipient record back with the derived schema.
func decode(t testing.TB, x *Redactor, recipient, eventType string, out []byte) map[string]any {
	t.Helper()
	ds, ok := x.Schema(recipient, eventType)
	require.True(t, ok)
	set, err := schema.NewSet(ds)
	require.NoError(t, err)
	got, v, err := codec.Decode(set, out)
	require.NoError(t, err)
	require.Equal(t, ds.Fingerprint, got.Fingerprint)
	return v
}

// at follows a dotted path through records (not arrays).
func at(v map[string]any, path ...string) any {
	var cur any = v
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}
