package redact

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
)

// fuzzFields are the booking string leaves FuzzRedact fills and releases.
var fuzzFields = []string{
	"passenger.title", "passenger.given_name", "passenger.family_name", "contact.email", "contact.phone",
	"contact.address.line1", "contact.address.postal_code", "record_locator", "ticket_number",
	"frequent_flyer_number", "meal_code", "companions", "itinerary.segments.flight_number",
	"itinerary.segments.seat", "special_service_requests.code", "special_service_requests.free_text",
}

// FuzzRedact fills a booking's string fields with arbitrary text, each
// value starting with a marker "Wnn:" that no other text can contain (the
// fuzzed text loses its colons), releases each field with an arbitrary
// operator, and checks that:
//   - no withheld field's marker, and so no withheld value, is in the output;
//   - withheld fields decode as null, kept ones unchanged;
//   - masked and hashed values never equal their source;
//   - nothing panics and every record decodes with the derived schema.
func FuzzRedact(f *testing.F) {
	set := loadSet(f)
	scope := map[string][]gateway.Operator{"passenger.birth_date": ops(oGen), "purpose": ops(oKeep)}
	for _, p := range fuzzFields {
		scope[p] = ops(oKeep, oMask, oHash, oDrop)
	}
	r := &gateway.Recipient{ID: "fuzz", Scope: gateway.Scope{"booking": scope}}
	x, err := New(set, []*gateway.Recipient{r}, DevKeyring("fuzz"))
	require.NoError(f, err)
	base := event(f, set, "booking", bookingJSON)
	baseValue := valueOf(f, set, base)

	f.Add("Aigerim", "a@b.kz", "+7 701 555 0142", uint64(0x0123456789abcdef))
	f.Add("", "", "", uint64(0))
	f.Add("x", "@", "1", uint64(0xffffffffffffffff))
	f.Add("W01:W02:", "***", "Ж\xff\xfe", uint64(0x9249249249249249))
	f.Add(strings.Repeat("long ", 40), "4111 1111 1111 1234", "::1", uint64(0x2492492492492492))

	f.Fuzz(func(t *testing.T, a, b, c string, plan uint64) {
		texts := []string{clean(a), clean(b), clean(c)}
		v := deepCopy(baseValue).(map[string]any)
		src := map[string][]string{} // field → source values, in output order
		for i, p := range fuzzFields {
			text := fmt.Sprintf("W%02d:%s", i, texts[i%len(texts)])
			src[p] = fill(v, strings.Split(p, "."), text)
		}
		fields := map[string]gateway.Operator{"purpose": oKeep}
		for i, p := range fuzzFields {
			switch (plan >> (3 * uint(i%21))) & 7 {
			case 1:
				fields[p] = oDrop
			case 2:
				fields[p] = oKeep
			case 3, 6:
				fields[p] = oMask
			case 4, 7:
				fields[p] = oHash
			}
		}
		if plan&1 == 1 {
			fields["passenger.birth_date"] = oGen
		}
		ev := reencoded(t, set, base, v)
		out, _, err := x.Redact(ev, r, allow(fields))
		require.NoError(t, err)
		got := decode(t, x, r.ID, "booking", out)

		for i, p := range fuzzFields {
			op := fields[p]
			marker := []byte(fmt.Sprintf("W%02d:", i))
			outs := collect(got, strings.Split(p, "."))
			switch op {
			case "", oDrop:
				require.False(t, bytes.Contains(out, marker), "withheld field %s is in the output", p)
				for _, o := range outs {
					require.Nil(t, o, "withheld field %s is not null", p)
				}
			case oKeep:
				require.Equal(t, len(src[p]), len(outs), p)
				for k, o := range outs {
					require.Equal(t, src[p][k], o, "kept field %s changed", p)
				}
			case oMask, oHash:
				require.Equal(t, len(src[p]), len(outs), p)
				for k, o := range outs {
					s, ok := o.(string)
					require.True(t, ok, p)
					require.NotEqual(t, src[p][k], s, "%s field %s equals its source", op, p)
					require.NotContains(t, s, string(marker), "%s field %s shows its marker", op, p)
					if op == oHash {
						require.Len(t, s, 64, p)
					}
				}
			}
		}
	})
}

// clean makes fuzzed text valid UTF-8 without colons, so that markers
// "Wnn:" appear only where fill puts them.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "")
	return strings.ReplaceAll(s, ":", "")
}

// fill sets every value at path (through records and arrays) to text,
// suffixed per array element, creating missing records; it returns the
// values in encoding order.
func fill(v map[string]any, path []string, text string) []string {
	name := path[0]
	if len(path) == 1 {
		if arr, ok := v[name].([]any); ok {
			out := make([]string, len(arr))
			for k := range arr {
				out[k] = fmt.Sprintf("%s#%d", text, k)
				arr[k] = out[k]
			}
			return out
		}
		v[name] = text
		return []string{text}
	}
	switch x := v[name].(type) {
	case map[string]any:
		return fill(x, path[1:], text)
	case []any:
		var out []string
		for k, item := range x {
			out = append(out, fill(item.(map[string]any), path[1:], fmt.Sprintf("%s#%d", text, k))...)
		}
		return out
	}
	return nil
}

// collect returns the decoded values at path, flattening arrays; a null
// record or array yields one nil.
func collect(v any, path []string) []any {
	if len(path) == 0 {
		if arr, ok := v.([]any); ok {
			return arr
		}
		return []any{v}
	}
	switch x := v.(type) {
	case map[string]any:
		return collect(x[path[0]], path[1:])
	case []any:
		var out []any
		for _, item := range x {
			out = append(out, collect(item, path)...)
		}
		return out
	}
	return []any{nil}
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}
