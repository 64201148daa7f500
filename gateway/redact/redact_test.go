package redact

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
)

func devHash(t *testing.T, seed, recipient, canon string) string {
	t.Helper()
	k, ok := DevKeyring(seed).key(recipient)
	require.True(t, ok)
	m := hmac.New(sha256.New, k)
	m.Write([]byte(canon))
	return hex.EncodeToString(m.Sum(nil))
}

func TestRedactBooking(t *testing.T) {
	set := loadSet(t)
	r := partner()
	x, err := New(set, []*gateway.Recipient{r}, DevKeyring("test"))
	require.NoError(t, err)
	ev := event(t, set, "booking", bookingJSON)

	d := allow(map[string]gateway.Operator{
		"purpose": oKeep, "booked_at": oKeep,
		"passenger.given_name": oMask, "passenger.gender": oKeep, "passenger.birth_date": oGen,
		"contact.email": oHash, "contact.address.city": oKeep,
		"itinerary.segments.flight_number": oKeep, "itinerary.segments.departure_time": oGen,
		"meal_code": oDrop, "companions": oHash, "fare.amount": oKeep,
		"record_locator": oDrop, // drop outside the scope releases nothing: allowed
	})
	out, fp, err := x.Redact(ev, r, d)
	require.NoError(t, err)
	ds, _ := x.Schema(r.ID, "booking")
	assert.Equal(t, ds.Fingerprint, fp)
	fpHeader, err := codec.Fingerprint(out)
	require.NoError(t, err)
	assert.Equal(t, fp, fpHeader, "single-object header names the derived schema")

	v := decode(t, x, r.ID, "booking", out)
	js, err := codec.ToJSON(ds, v)
	require.NoError(t, err)
	h := func(s string) string { return devHash(t, "test", r.ID, s) }
	assert.JSONEq(t, fmt.Sprintf(`{
		"purpose": "contract",
		"booked_at": "2026-03-10T08:29:00.000Z",
		"passenger": {"given_name": "A***", "gender": "F", "birth_date": "30-39"},
		"contact": {"email": %q, "address": {"city": "Almaty"}},
		"itinerary": {"segments": [
			{"flight_number": "KC901", "departure_time": "2026-04-01"},
			{"flight_number": "KC902", "departure_time": "2026-04-15"}]},
		"meal_code": null,
		"companions": [%q, %q],
		"fare": {"amount": "123456.78"}
	}`, h("aigerim.n@example.kz"), h("Daulet Nurlanov"), h("Aruzhan Nurlanova")), string(js))

	for _, secret := range []string{"Aigerim", "Nurlanova", "MOML", "QX7P2L", "1991", "Abay", "Daulet", "example.kz"} {
		assert.NotContains(t, string(out), secret)
	}
}

// unwrapHamba removes hamba's union wrappers ({"array": [...]}, {"full.Name": v}).
func unwrapHamba(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, inner := range x {
				if k == "array" || strings.HasPrefix(k, "dgw.recipient.") {
					return unwrapHamba(inner)
				}
			}
		}
		out := map[string]any{}
		for k, e := range x {
			out[k] = unwrapHamba(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = unwrapHamba(e)
		}
		return out
	case *big.Rat:
		return x.FloatString(6)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case int32:
		return int(x)
	}
	return v
}

func TestPlainAvroReadsRecords(t *testing.T) {
	// A partner with nothing but the exported .avsc and a standard Avro
	// library reads exactly what codec reads.
	set := loadSet(t)
	r := partner()
	pay := &gateway.Recipient{ID: "pay-partner", Scope: gateway.Scope{"payment": {
		"amount": ops(oKeep), "currency": ops(oKeep), "method": ops(oKeep), "passenger_birth_date": ops(oGen),
		"card.number": ops(oMask, oHash), "card.holder_name": ops(oKeep), "payer.is_passenger": ops(oKeep),
		"payer.email": ops(oMask), "risk.ip_address": ops(oMask), "risk.email_age_days": ops(oKeep),
	}}}
	x, err := New(set, []*gateway.Recipient{r, pay}, DevKeyring("test"))
	require.NoError(t, err)
	cases := []struct {
		recipient *gateway.Recipient
		ev        *gateway.Event
		d         *gateway.Decision
	}{
		{r, event(t, set, "booking", bookingJSON), allow(map[string]gateway.Operator{
			"purpose": oKeep, "booked_at": oKeep, "passenger.given_name": oHash, "passenger.gender": oKeep,
			"passenger.birth_date": oGen, "contact.email": oMask, "itinerary.segments.departure_time": oGen,
			"companions": oHash, "fare.amount": oKeep})},
		{r, event(t, set, "booking", bookingJSON), allow(map[string]gateway.Operator{"contact.address.city": oKeep})},
		{pay, event(t, set, "payment", paymentJSON), allow(map[string]gateway.Operator{
			"amount": oKeep, "currency": oKeep, "method": oKeep, "passenger_birth_date": oGen, "card.number": oMask,
			"card.holder_name": oKeep, "payer.is_passenger": oKeep, "payer.email": oMask, "risk.ip_address": oMask,
			"risk.email_age_days": oKeep})},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			out, _, err := x.Redact(c.ev, c.recipient, c.d)
			require.NoError(t, err)
			var d Derived
			for _, s := range x.Schemas() {
				if s.Recipient == c.recipient.ID && s.EventType == c.ev.Schema.EventType {
					d = s
				}
			}
			plain, err := avro.ParseBytesWithCache(d.JSON, "", &avro.SchemaCache{})
			require.NoError(t, err)
			var hv any
			require.NoError(t, avro.Unmarshal(plain, out[codec.HeaderLen:], &hv))
			cv := decode(t, x, c.recipient.ID, c.ev.Schema.EventType, out)
			assert.Equal(t, unwrapHamba(cv), unwrapHamba(hv))
		})
	}
}

func TestRedactPayment(t *testing.T) {
	set := loadSet(t)
	kzpay := &gateway.Recipient{ID: "kzpay-processor", Scope: gateway.Scope{"payment": {
		"card.number": ops(oKeep), "card.expiry": ops(oKeep), "amount": ops(oKeep)}}}
	fraud := &gateway.Recipient{ID: "fraudshield", Scope: gateway.Scope{"payment": {
		"card.number": ops(oMask, oHash), "risk.ip_address": ops(oMask, oHash), "payer.email": ops(oMask),
		"passenger_birth_date": ops(oGen), "risk.email_age_days": ops(oHash)}}}
	x, err := New(set, []*gateway.Recipient{kzpay, fraud}, DevKeyring("test"))
	require.NoError(t, err)
	ev := event(t, set, "payment", paymentJSON)

	out, _, err := x.Redact(ev, kzpay, allow(map[string]gateway.Operator{"card.number": oKeep, "card.expiry": oKeep, "amount": oKeep}))
	require.NoError(t, err)
	v := decode(t, x, kzpay.ID, "payment", out)
	assert.Equal(t, "4111 1111 1111 1234", at(v, "card", "number"))
	assert.Equal(t, "09/29", at(v, "card", "expiry"))
	assert.Equal(t, "1234.50", at(v, "amount").(*big.Rat).FloatString(2))
	assert.NotContains(t, string(out), "737", "never the card security code")

	out, _, err = x.Redact(ev, fraud, allow(map[string]gateway.Operator{
		"card.number": oMask, "risk.ip_address": oMask, "payer.email": oMask, "passenger_birth_date": oGen, "risk.email_age_days": oHash}))
	require.NoError(t, err)
	v = decode(t, x, fraud.ID, "payment", out)
	assert.Equal(t, "************1234", at(v, "card", "number"))
	assert.Equal(t, "203.0.113.0/24", at(v, "risk", "ip_address"))
	assert.Equal(t, "a***@example.kz", at(v, "payer", "email"))
	assert.Equal(t, "30-39", at(v, "passenger_birth_date"))
	assert.Equal(t, devHash(t, "test", fraud.ID, "900"), at(v, "risk", "email_age_days"))

	out, _, err = x.Redact(ev, fraud, allow(map[string]gateway.Operator{"card.number": oHash, "risk.ip_address": oHash}))
	require.NoError(t, err)
	v = decode(t, x, fraud.ID, "payment", out)
	assert.Equal(t, devHash(t, "test", fraud.ID, "4111111111111234"), at(v, "card", "number"), "PAN hashed whole, as digits (PCI DSS 3.5.1.1 keyed hash)")
	assert.Equal(t, devHash(t, "test", fraud.ID, "203.0.113.77"), at(v, "risk", "ip_address"))
	assert.Nil(t, at(v, "payer"), "a record with nothing released is null")
}

func TestRedactUnreleasedFieldsAreNull(t *testing.T) {
	set := loadSet(t)
	r := partner()
	x, err := New(set, []*gateway.Recipient{r}, DevKeyring("test"))
	require.NoError(t, err)
	ev := event(t, set, "booking", bookingJSON)
	tests := []struct {
		name   string
		fields map[string]gateway.Operator
		want   string
	}{
		{"nothing released", nil,
			`{"purpose":null,"booked_at":null,"passenger":null,"contact":null,"itinerary":null,"meal_code":null,"companions":null,"fare":null}`},
		{"everything dropped", map[string]gateway.Operator{"purpose": oDrop, "passenger.given_name": oDrop, "companions": oDrop},
			`{"purpose":null,"booked_at":null,"passenger":null,"contact":null,"itinerary":null,"meal_code":null,"companions":null,"fare":null}`},
		{"one nested field", map[string]gateway.Operator{"contact.address.city": oKeep},
			`{"purpose":null,"booked_at":null,"passenger":null,"contact":{"email":null,"address":{"city":"Almaty"}},"itinerary":null,"meal_code":null,"companions":null,"fare":null}`},
		{"one field per segment", map[string]gateway.Operator{"itinerary.segments.flight_number": oKeep, "passenger.gender": oKeep},
			`{"purpose":null,"booked_at":null,"passenger":{"given_name":null,"gender":"F","birth_date":null},"contact":null,
			  "itinerary":{"segments":[{"flight_number":"KC901","departure_time":null},{"flight_number":"KC902","departure_time":null}]},
			  "meal_code":null,"companions":null,"fare":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := x.Redact(ev, r, allow(tt.fields))
			require.NoError(t, err)
			v := decode(t, x, r.ID, "booking", out)
			ds, _ := x.Schema(r.ID, "booking")
			js, err := codec.ToJSON(ds, v)
			require.NoError(t, err)
			assert.JSONEq(t, tt.want, string(js))
		})
	}

	// Null and absent source values stay null; empty arrays stay empty.
	v := valueOf(t, set, ev)
	v["contact"] = nil
	v["companions"] = []any{}
	fields := allow(map[string]gateway.Operator{"contact.email": oMask, "companions": oHash, "fare.amount": oKeep})
	out, _, err := x.Redact(reencoded(t, set, ev, v), r, fields)
	require.NoError(t, err)
	got := decode(t, x, r.ID, "booking", out)
	assert.Nil(t, got["contact"])
	assert.Equal(t, []any{}, got["companions"])
	assert.NotNil(t, got["fare"])

	// A value without a layout (a schema the decoder has no program for)
	// may lack a field altogether: it is null too.
	delete(v, "fare")
	out, _, err = x.Redact(eventOf(t, set, "booking", v, ev.OccurredAt), r, fields)
	require.NoError(t, err)
	got = decode(t, x, r.ID, "booking", out)
	assert.Nil(t, got["contact"])
	assert.Equal(t, []any{}, got["companions"])
	assert.Nil(t, got["fare"])
}

type violationCase struct {
	name      string
	ev        *gateway.Event
	recipient *gateway.Recipient
	fields    map[string]gateway.Operator
	want      string
}

func TestRedactScopeViolation(t *testing.T) {
	set := loadSet(t)
	r := partner()
	x, err := New(set, []*gateway.Recipient{r}, DevKeyring("test"))
	require.NoError(t, err)
	booking := event(t, set, "booking", bookingJSON)
	payment := event(t, set, "payment", paymentJSON)
	tests := []violationCase{
		{"field outside the scope", booking, r, map[string]gateway.Operator{"purpose": oKeep, "passenger.family_name": oKeep},
			"booking field passenger.family_name is not in the contract scope"},
		{"operator the scope does not allow", booking, r, map[string]gateway.Operator{"contact.email": oKeep},
			"booking field contact.email with keep"},
		{"unknown operator", booking, r, map[string]gateway.Operator{"purpose": "reveal"},
			`field purpose: unknown operator "reveal"`},
		{"record path", booking, r, map[string]gateway.Operator{"passenger": oKeep},
			"field passenger is not in the contract scope"},
		{"event type outside the scope", payment, r, map[string]gateway.Operator{"currency": oKeep},
			"no contract scope for event type payment"},
		{"unknown recipient", booking, &gateway.Recipient{ID: "stranger"}, map[string]gateway.Operator{"purpose": oKeep},
			"recipient stranger has no contract scope"},
	}
	// Decisions naming every scoped field take the other resolve path.
	full := func(extra map[string]gateway.Operator) map[string]gateway.Operator {
		m := map[string]gateway.Operator{}
		for p, o := range r.Scope["booking"] {
			m[p] = o[0]
		}
		for p, o := range extra {
			m[p] = o
		}
		return m
	}
	_, _, err = x.Redact(booking, r, allow(full(nil)))
	require.NoError(t, err)
	tests = append(tests,
		violationCase{"full decision, one operator not allowed", booking, r, full(map[string]gateway.Operator{"passenger.birth_date": oKeep}),
			"booking field passenger.birth_date with keep"},
		violationCase{"full decision plus a field outside the scope", booking, r, full(map[string]gateway.Operator{"ticket_number": oKeep}),
			"booking field ticket_number is not in the contract scope"},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, fp, err := x.Redact(tt.ev, tt.recipient, allow(tt.fields))
			require.ErrorIs(t, err, gateway.ErrScopeViolation)
			assert.Contains(t, err.Error(), tt.want)
			assert.Nil(t, out)
			assert.Zero(t, fp)
		})
	}

	_, _, err = x.Redact(booking, r, &gateway.Decision{Allow: false, Fields: map[string]gateway.Operator{"purpose": oKeep}})
	require.ErrorIs(t, err, ErrNotAllowed)

	wrong := *booking
	wrong.Schema.Fingerprint++
	_, _, err = x.Redact(&wrong, r, allow(map[string]gateway.Operator{"purpose": oKeep}))
	require.ErrorContains(t, err, "differs")
	_, _, err = x.Redact(nil, r, allow(nil))
	require.Error(t, err)
}

func TestRedactBadValuesFailWithoutQuotingThem(t *testing.T) {
	set := loadSet(t)
	r := partner()
	x, err := New(set, []*gateway.Recipient{r}, DevKeyring("test"))
	require.NoError(t, err)
	at := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		value  map[string]any
		fields map[string]gateway.Operator
		at     time.Time
		want   string
	}{
		{"number where a string belongs", map[string]any{"passenger": map[string]any{"given_name": 4242424242}},
			map[string]gateway.Operator{"passenger.given_name": oMask}, at, "field passenger.given_name: expected string, got integer"},
		{"invalid UTF-8", map[string]any{"passenger": map[string]any{"given_name": "Ai\xffgerim"}},
			map[string]gateway.Operator{"passenger.given_name": oKeep}, at, "not valid UTF-8"},
		{"unknown enum symbol", map[string]any{"purpose": "snooping"},
			map[string]gateway.Operator{"purpose": oKeep}, at, "field purpose: not a symbol"},
		{"record that is not one", map[string]any{"contact": "Aigerim.N@example.kz"},
			map[string]gateway.Operator{"contact.email": oMask}, at, "field contact: expected a record, got string"},
		{"birth date after the event", map[string]any{"passenger": map[string]any{"birth_date": at.AddDate(0, 0, 1)}},
			map[string]gateway.Operator{"passenger.birth_date": oGen}, at, "birth date after the event time"},
		{"age band without an event time", map[string]any{"passenger": map[string]any{"birth_date": at.AddDate(-30, 0, 0)}},
			map[string]gateway.Operator{"passenger.birth_date": oGen}, time.Time{}, "needs the event time"},
		{"date out of range", map[string]any{"itinerary": map[string]any{"segments": []any{map[string]any{"departure_time": time.Date(1899, 1, 1, 0, 0, 0, 0, time.UTC)}}}},
			map[string]gateway.Operator{"itinerary.segments.departure_time": oGen}, at, "out of range"},
		{"too many decimals", map[string]any{"fare": map[string]any{"amount": big.NewRat(1, 3)}},
			map[string]gateway.Operator{"fare.amount": oKeep}, at, "decimal places"},
		{"hash of the wrong type", map[string]any{"companions": []any{"Daulet", 77}},
			map[string]gateway.Operator{"companions": oHash}, at, "field companions: expected string, got integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := x.Redact(eventOf(t, set, "booking", tt.value, tt.at), r, allow(tt.fields))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.False(t, errors.Is(err, gateway.ErrScopeViolation))
			for _, v := range []string{"4242424242", "Aigerim", "snooping", "example", "1899", "2026", "Daulet", "77"} {
				assert.NotContains(t, err.Error(), v)
			}
		})
	}
}

func TestHashJoinsPerRecipientOnly(t *testing.T) {
	set := loadSet(t)
	scope := gateway.Scope{"booking": {"contact.email": ops(oHash), "companions": ops(oHash)},
		"payment": {"payer.email": ops(oHash)}}
	a := &gateway.Recipient{ID: "research-a", Scope: scope}
	b := &gateway.Recipient{ID: "research-b", Scope: scope}
	x, err := New(set, []*gateway.Recipient{a, b}, DevKeyring("test"))
	require.NoError(t, err)
	booking := event(t, set, "booking", bookingJSON)
	payment := event(t, set, "payment", paymentJSON)
	email := func(r *gateway.Recipient, ev *gateway.Event, path ...string) string {
		out, _, err := x.Redact(ev, r, allow(map[string]gateway.Operator{strings.Join(path, "."): oHash}))
		require.NoError(t, err)
		s, _ := at(decode(t, x, r.ID, ev.Schema.EventType, out), path...).(string)
		require.Len(t, s, 64)
		return s
	}
	a1 := email(a, booking, "contact", "email")
	assert.Equal(t, a1, email(a, booking, "contact", "email"), "stable")
	// "Aigerim.N@example.kz" in the booking, "aigerim.n@example.kz" in the payment: one person.
	assert.Equal(t, a1, email(a, payment, "payer", "email"), "joins across events and event types")
	assert.NotEqual(t, a1, email(b, booking, "contact", "email"), "another recipient cannot join")

	// Another seed (another key) gives other pseudonyms.
	y, err := New(set, []*gateway.Recipient{a}, DevKeyring("other"))
	require.NoError(t, err)
	out, _, err := y.Redact(booking, a, allow(map[string]gateway.Operator{"contact.email": oHash}))
	require.NoError(t, err)
	assert.NotEqual(t, a1, at(decode(t, y, a.ID, "booking", out), "contact", "email"))
}

func TestRedactConcurrently(t *testing.T) {
	set := loadSet(t)
	r := partner()
	x, err := New(set, []*gateway.Recipient{r}, DevKeyring("test"))
	require.NoError(t, err)
	ev := event(t, set, "booking", bookingJSON)
	d := allow(map[string]gateway.Operator{"passenger.given_name": oHash, "contact.email": oHash, "companions": oHash, "purpose": oKeep})
	want, _, err := x.Redact(ev, r, d)
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				got, _, err := x.Redact(ev, r, d)
				if err != nil {
					errs <- err
					return
				}
				if string(got) != string(want) {
					errs <- errors.New("different output under concurrency")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRedactLargeRecordsGrowTheBuffer(t *testing.T) {
	set := loadSet(t)
	r := partner()
	x, err := New(set, []*gateway.Recipient{r}, DevKeyring("test"))
	require.NoError(t, err)
	ev := event(t, set, "booking", bookingJSON)
	v := valueOf(t, set, ev)
	many := make([]any, 500)
	for i := range many {
		many[i] = fmt.Sprintf("companion %d", i)
	}
	v["companions"] = many
	e2 := reencoded(t, set, ev, v)
	for range 2 {
		out, _, err := x.Redact(e2, r, allow(map[string]gateway.Operator{"companions": oHash}))
		require.NoError(t, err)
		got := decode(t, x, r.ID, "booking", out)["companions"].([]any)
		require.Len(t, got, 500)
		assert.Equal(t, devHash(t, "test", r.ID, "companion 499"), got[499])
	}
}

func TestKeepDecimalsExactly(t *testing.T) {
	// Checked with plain hamba/avro, independently of codec (whose decoder
	// once dropped the sign of negative decimals).
	set := loadSet(t)
	r := &gateway.Recipient{ID: "refunds", Scope: gateway.Scope{"payment": {"amount": ops(oKeep)}}}
	x, err := New(set, []*gateway.Recipient{r}, Keyring{})
	require.NoError(t, err)
	plain, err := avro.ParseBytesWithCache(x.Schemas()[0].JSON, "", &avro.SchemaCache{})
	require.NoError(t, err)
	for _, amount := range []string{"0", "0.01", "-0.01", "-12.05", "128", "-128", "-128.01", "9999999999.99", "-9999999999.99"} {
		t.Run(amount, func(t *testing.T) {
			want, ok := new(big.Rat).SetString(amount)
			require.True(t, ok)
			out, _, err := x.Redact(eventOf(t, set, "payment", map[string]any{"amount": want}, time.Now()), r,
				allow(map[string]gateway.Operator{"amount": oKeep}))
			require.NoError(t, err)
			var got map[string]any
			require.NoError(t, avro.Unmarshal(plain, out[codec.HeaderLen:], &got))
			rat, ok := got["amount"].(*big.Rat)
			require.True(t, ok, "%#v", got)
			assert.Equal(t, want.FloatString(2), rat.FloatString(2))
		})
	}
	_, _, err = x.Redact(eventOf(t, set, "payment", map[string]any{"amount": big.NewRat(1e12, 1)}, time.Now()), r,
		allow(map[string]gateway.Operator{"amount": oKeep}))
	assert.ErrorContains(t, err, "more than 12 digits")
}

func TestRedactCheckin(t *testing.T) {
	set := loadSet(t)
	r := partner()
	x, err := New(set, []*gateway.Recipient{r}, DevKeyring("test"))
	require.NoError(t, err)
	js := strings.Replace(checkinJSON, `"ssr_codes": []`, `"ssr_codes": ["WCHR", "MEDA", "X"]`, 1)
	ev := event(t, set, "checkin", js)
	out, _, err := x.Redact(ev, r, allow(map[string]gateway.Operator{
		"document.number": oMask, "document.expiry_date": oGen, "ssr_codes": oMask, "checked_bags": oHash}))
	require.NoError(t, err)
	v := decode(t, x, r.ID, "checkin", out)
	assert.Equal(t, "******678", at(v, "document", "number"))
	assert.Equal(t, 2031, at(v, "document", "expiry_date"), "date generalised to the year")
	assert.Equal(t, []any{"W***", "M***", "*"}, v["ssr_codes"], "mask applies per element")
	assert.Equal(t, devHash(t, "test", r.ID, "1"), v["checked_bags"])

	out, _, err = x.Redact(ev, r, allow(map[string]gateway.Operator{"document.number": oKeep}))
	require.NoError(t, err)
	v = decode(t, x, r.ID, "checkin", out)
	assert.Equal(t, "N12345678", at(v, "document", "number"))
	assert.Nil(t, at(v, "document", "expiry_date"))
	assert.Nil(t, v["ssr_codes"])
}
