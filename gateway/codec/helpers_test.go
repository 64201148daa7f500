package codec_test

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/schemas"
)

func loadSet(t testing.TB) *schema.Set {
	t.Helper()
	set, err := schema.Load(schemas.FS)
	require.NoError(t, err)
	return set
}

func schemaOf(t testing.TB, set *schema.Set, typ string) *schema.Schema {
	t.Helper()
	s, ok := set.ByEventType(typ)
	require.True(t, ok, typ)
	return s
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// Canary values of the hand-built booking.
const (
	canaryGiven = "Zhanar CANARYGIVEN"
	canaryEmail = "zhanar.canary@canary.example"
	canaryText  = "CANARYTEXT wheelchair to the seat, oxygen 2 l/min"
)

// bookingValue is a three-segment family booking of about 2 KB encoded.
func bookingValue() map[string]any {
	seg := func(mkt, num, from, fromC, to, toC string, dep time.Time, seat any) map[string]any {
		return map[string]any{
			"marketing_carrier": mkt, "operating_carrier": mkt, "flight_number": mkt + num,
			"departure_airport": from, "departure_country": fromC, "arrival_airport": to, "arrival_country": toC,
			"departure_time": dep, "cabin": "economy", "fare_class": "M", "seat": seat, "status": "HK",
		}
	}
	dep := time.Date(2026, 12, 1, 7, 30, 0, 0, time.UTC)
	return map[string]any{
		"event_id":          "ev-test-1",
		"occurred_at":       time.Date(2026, 11, 2, 9, 15, 30, 123_000_000, time.UTC),
		"source_system":     "pss-reservations",
		"purpose":           "contract",
		"point_of_sale":     "KZ",
		"booking_channel":   "travel_agency",
		"agency_code":       "96123456",
		"corporate_account": nil,
		"employer_paid":     false,
		"record_locator":    "K7QX2M",
		"booked_at":         time.Date(2026, 11, 2, 9, 15, 0, 0, time.UTC),
		"passenger_id":      "PAX-CANARY-T-000001",
		"passenger": map[string]any{
			"title": "MRS", "given_name": canaryGiven, "family_name": "Nurlanova-Canary", "gender": "F",
			"birth_date": day(1984, 3, 14), "passenger_type": "ADT", "citizenship": "KZ", "residence_country": "DE",
		},
		"contact": map[string]any{
			"email": canaryEmail, "phone": "+497700900123",
			"address": map[string]any{"line1": "Canarystraße 12", "city": "Frankfurt am Main", "postal_code": "60311", "country": "DE"},
		},
		"itinerary": map[string]any{"segments": []any{
			seg("KC", "901", "ALA", "KZ", "FRA", "DE", dep, "14C"),
			seg("LH", "400", "FRA", "DE", "JFK", "US", dep.Add(9*time.Hour), nil),
			seg("LH", "401", "JFK", "US", "FRA", "DE", dep.AddDate(0, 0, 14), "32A"),
			seg("KC", "902", "FRA", "DE", "ALA", "KZ", dep.AddDate(0, 0, 15), "15C"),
		}},
		"ticket_number":         "4652100012345",
		"frequent_flyer_number": "CNRY000123456",
		"meal_code":             "MOML",
		"special_service_requests": []any{
			map[string]any{"code": "WCHC", "free_text": canaryText},
			map[string]any{"code": "MEDA", "free_text": "CANARY medical clearance MEDIF 2026-114, cardiologist letter attached"},
			map[string]any{"code": "INFT", "free_text": "Nurlanova-Canary/Alua Canary 12MAR25 (canary note)"},
			map[string]any{"code": "CHLD", "free_text": nil},
		},
		"companions": []any{"Askar Canary Nurlanov-Canary", "Alua Canary Nurlanova-Canary", "Timur Canary Nurlanov-Canary",
			"Saule Canary Nurlanova-Canary", "Dana Canary Nurlanova-Canary"},
		"fare": map[string]any{"amount": big.NewRat(123456789, 100), "currency": "KZT"},
	}
}

// reasonOf asserts err parks the event with a dead-letter reason.
func reasonOf(t testing.TB, err error) gateway.Reason {
	t.Helper()
	require.Error(t, err)
	var pe *gateway.ParkError
	require.True(t, errors.As(err, &pe), "%T is a *gateway.ParkError: %v", err, err)
	require.True(t, pe.Reason.DeadLetter(), "reason %s is a dead-letter reason", pe.Reason)
	return pe.Reason
}

// diff returns the first difference between two normalised values, or "".
func diff(a, b any, path string) string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return fmt.Sprintf("%s: record of %d fields vs %T", path, len(x), b)
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok {
				return path + "." + k + ": missing"
			}
			if d := diff(v, w, path+"."+k); d != "" {
				return d
			}
		}
		return ""
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return fmt.Sprintf("%s: array of %d vs %T", path, len(x), b)
		}
		for i := range x {
			if d := diff(x[i], y[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	case *big.Rat:
		y, ok := b.(*big.Rat)
		if !ok || x.Cmp(y) != 0 {
			return fmt.Sprintf("%s: decimal %s vs %v", path, x.RatString(), b)
		}
		return ""
	case time.Time:
		y, ok := b.(time.Time)
		if !ok || !x.Equal(y) {
			return fmt.Sprintf("%s: time %v vs %v", path, x, b)
		}
		return ""
	case float64:
		y, ok := b.(float64)
		if !ok || math.Float64bits(x) != math.Float64bits(y) {
			return fmt.Sprintf("%s: %v vs %v", path, x, b)
		}
		return ""
	case float32:
		y, ok := b.(float32)
		if !ok || math.Float32bits(x) != math.Float32bits(y) {
			return fmt.Sprintf("%s: %v vs %v", path, x, b)
		}
		return ""
	case []byte:
		y, ok := b.([]byte)
		if !ok || string(x) != string(y) {
			return fmt.Sprintf("%s: bytes differ", path)
		}
		return ""
	}
	if a != b {
		return fmt.Sprintf("%s: %#v (%T) vs %#v (%T)", path, a, a, b, b)
	}
	return ""
}
