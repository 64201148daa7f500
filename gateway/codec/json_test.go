package codec_test

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/synth"
)

func TestJSONRoundTrip(t *testing.T) {
	set := loadSet(t)
	g := synth.New(synth.Options{Seed: 12})
	check := func(typ string, v map[string]any) {
		s := schemaOf(t, set, typ)
		j, err := codec.ToJSON(s, v)
		require.NoError(t, err)
		require.True(t, json.Valid(j), "%s", j)
		back, err := codec.FromJSON(s, j)
		require.NoError(t, err, "%s", j)
		require.Empty(t, diff(v, back, ""), "%s round-trips through JSON", typ)
		again, err := codec.ToJSON(s, back)
		require.NoError(t, err)
		require.Equal(t, string(j), string(again))
	}
	check("booking", bookingValue())
	check("subject_request", subjectRequest())
	for range 2000 {
		ev := g.Next()
		check(ev.Type, ev.Value)
	}
}

func TestToJSONForm(t *testing.T) {
	set := loadSet(t)
	j, err := codec.ToJSON(schemaOf(t, set, "booking"), bookingValue())
	require.NoError(t, err)
	for _, want := range []string{
		`{"event_id":"ev-test-1","occurred_at":"2026-11-02T09:15:30.123Z",`, // schema field order
		`"birth_date":"1984-03-14"`,
		`"agency_code":"96123456","corporate_account":null,"employer_paid":false`,
		`"fare":{"amount":"1234567.89","currency":"KZT"}`,
		`"free_text":null`,
	} {
		assert.Contains(t, string(j), want)
	}
}

func TestFromJSONForms(t *testing.T) {
	set := loadSet(t)
	s := schemaOf(t, set, "booking")
	j, err := codec.ToJSON(s, bookingValue())
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(j, &m))
	// Timestamps as milliseconds or with an offset, decimals as numbers,
	// optional fields left out.
	m["occurred_at"] = 1793610930123
	m["booked_at"] = "2026-11-02T14:15:00+05:00"
	m["fare"].(map[string]any)["amount"] = 1234567.89
	delete(m, "agency_code")
	delete(m, "employer_paid")
	delete(m, "contact")
	b, err := json.Marshal(m)
	require.NoError(t, err)
	v, err := codec.FromJSON(s, b)
	require.NoError(t, err)
	assert.Equal(t, time.UnixMilli(1793610930123).UTC(), v["occurred_at"])
	assert.Equal(t, time.Date(2026, 11, 2, 9, 15, 0, 0, time.UTC), v["booked_at"])
	assert.Zero(t, big.NewRat(123456789, 100).Cmp(v["fare"].(map[string]any)["amount"].(*big.Rat)))
	assert.Nil(t, v["agency_code"])
	assert.Nil(t, v["contact"])
	assert.Equal(t, false, v["employer_paid"], "the schema default")
}

// TestFromJSONErrors checks that errors name the field path and what was
// expected, and never quote the value.
func TestFromJSONErrors(t *testing.T) {
	set := loadSet(t)
	s := schemaOf(t, set, "booking")
	base, err := codec.ToJSON(s, bookingValue())
	require.NoError(t, err)
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		require.NoError(t, json.Unmarshal(base, &m))
		f(m)
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return b
	}
	pax := func(m map[string]any) map[string]any { return m["passenger"].(map[string]any) }
	seg := func(m map[string]any, i int) map[string]any {
		return m["itinerary"].(map[string]any)["segments"].([]any)[i].(map[string]any)
	}
	tests := []struct {
		name string
		in   []byte
		msg  string
	}{
		{"not JSON", []byte(`{"event_id": "CANARY`), "booking: not valid JSON"},
		{"syntax error", []byte(`{"event_id" "CANARY"}`), "syntax error at byte 13"},
		{"two values", append(append([]byte(nil), base...), []byte(` {"CANARY":1}`)...), "more than one JSON value"},
		{"not an object", []byte(`["CANARY"]`), "expected object (record Booking), got array"},
		{"missing required field", edit(func(m map[string]any) { delete(m, "passenger_id") }), "field passenger_id: missing required field"},
		{"missing nested field", edit(func(m map[string]any) { delete(pax(m), "family_name") }), "field passenger.family_name: missing required field"},
		{"unknown field", edit(func(m map[string]any) { pax(m)["nickname"] = "CANARY" }), "field passenger.nickname: unknown field"},
		{"string expected", edit(func(m map[string]any) { m["record_locator"] = 12345 }), "field record_locator: expected string, got number"},
		{"null for required", edit(func(m map[string]any) { m["record_locator"] = nil }), "field record_locator: expected string, got null"},
		{"boolean expected", edit(func(m map[string]any) { m["employer_paid"] = "CANARY" }), "field employer_paid: expected boolean, got string"},
		{"date as number", edit(func(m map[string]any) { pax(m)["birth_date"] = 19840314 }), `field passenger.birth_date: expected date "YYYY-MM-DD", got number`},
		{"date text", edit(func(m map[string]any) { pax(m)["birth_date"] = "14.03.1984 CANARY" }), `field passenger.birth_date: expected date "YYYY-MM-DD"`},
		{"date out of range", edit(func(m map[string]any) { pax(m)["birth_date"] = "1850-01-01" }), "field passenger.birth_date: date out of range 1900-01-01..2200-12-31"},
		{"timestamp text", edit(func(m map[string]any) { m["occurred_at"] = "yesterday CANARY" }), "field occurred_at: expected timestamp as RFC 3339 text"},
		{"timestamp fraction", edit(func(m map[string]any) { m["occurred_at"] = 1.5 }), "field occurred_at: expected timestamp as integer milliseconds"},
		{"timestamp out of range", edit(func(m map[string]any) { m["occurred_at"] = "2301-01-01T00:00:00Z" }), "field occurred_at: timestamp out of range"},
		{"enum symbol", edit(func(m map[string]any) { pax(m)["gender"] = "CANARY" }), "field passenger.gender: expected one of F, M, X, U"},
		{"enum type", edit(func(m map[string]any) { m["purpose"] = 3 }), "field purpose: expected one of contract, border_control"},
		{"array item path", edit(func(m map[string]any) { seg(m, 1)["cabin"] = "CANARY" }), "field itinerary.segments[1].cabin: expected one of economy"},
		{"array expected", edit(func(m map[string]any) { m["companions"] = "CANARY" }), "field companions: expected array, got string"},
		{"array item type", edit(func(m map[string]any) { m["companions"] = []any{"CANARY", 7} }), "field companions[1]: expected string, got number"},
		{"union of record", edit(func(m map[string]any) { m["contact"] = "CANARY" }), "field contact: expected object (record Contact), got string"},
		{"decimal places", edit(func(m map[string]any) { m["fare"].(map[string]any)["amount"] = "12.345" }), "field fare.amount: decimal has more than 2 decimal places"},
		{"decimal digits", edit(func(m map[string]any) { m["fare"].(map[string]any)["amount"] = "12345678901" }), "field fare.amount: decimal has more than 12 digits"},
		{"decimal exponent", edit(func(m map[string]any) { m["fare"].(map[string]any)["amount"] = "1e3" }), `field fare.amount: expected decimal as plain digits ("1234.50")`},
		{"decimal fraction", edit(func(m map[string]any) { m["fare"].(map[string]any)["amount"] = "1/3" }), "expected decimal as plain digits"},
		{"decimal hex", edit(func(m map[string]any) { m["fare"].(map[string]any)["amount"] = "0x10" }), "expected decimal as plain digits"},
		{"decimal binary exponent", edit(func(m map[string]any) { m["fare"].(map[string]any)["amount"] = "0x1p999999999" }), "expected decimal as plain digits"},
		{"decimal separators", edit(func(m map[string]any) { m["fare"].(map[string]any)["amount"] = "1_000" }), "expected decimal as plain digits"},
		{"decimal text", edit(func(m map[string]any) { m["fare"].(map[string]any)["amount"] = "CANARY" }), "expected decimal as plain digits"},
		{"decimal type", edit(func(m map[string]any) { m["fare"].(map[string]any)["amount"] = true }), `field fare.amount: expected decimal as text ("1234.50") or number, got boolean`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := codec.FromJSON(s, tt.in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.msg)
			assert.True(t, strings.HasPrefix(err.Error(), "booking: "), "the error names the event type: %v", err)
			assert.False(t, synth.ContainsCanary([]byte(err.Error())), "no value in %q", err)
			assert.NotContains(t, err.Error(), "12345678901")
			assert.Less(t, time.Since(start), time.Second)
		})
	}
	// Other schemas: int range and type, double.
	ci := schemaOf(t, set, "checkin")
	cj, err := codec.ToJSON(ci, synth.New(synth.Options{Seed: 1, Types: []string{"checkin"}}).Next().Value)
	require.NoError(t, err)
	tooBig := bytes.Replace(cj, []byte(`"checked_bags":`), []byte(`"checked_bags":3000000000,"x":`), 1)
	_, err = codec.FromJSON(ci, tooBig)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "checkin: field checked_bags: expected int (an integer in range)")
}
