package codec_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/soe"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/gateway/synth"
)

// subjectRequest is a hand-built value of the one schema synth does not
// generate.
func subjectRequest() map[string]any {
	return map[string]any{
		"event_id": "ev-sr-1", "occurred_at": time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC), "source_system": "privacy-portal",
		"passenger_id": "PAX-CANARY-T-000009", "kind": "consent_withdrawn", "purpose": "research", "channel": "website",
		"verified_identity": true,
	}
}

// TestRoundTripEverySchema encodes and decodes values of every schema,
// and checks the bytes against hamba/avro, an independent implementation:
// the single-object header is hamba's and hamba decodes the body to the
// same value.
func TestRoundTripEverySchema(t *testing.T) {
	set := loadSet(t)
	values := map[string][]map[string]any{"subject_request": {subjectRequest()}}
	values["booking"] = append(values["booking"], bookingValue())
	for _, typ := range synth.EventTypes() {
		g := synth.New(synth.Options{Seed: 5, Types: []string{typ}})
		for range 150 {
			values[typ] = append(values[typ], g.Next().Value)
		}
	}
	for _, s := range set.All() {
		t.Run(s.EventType, func(t *testing.T) {
			vs := values[s.EventType]
			require.NotEmpty(t, vs, "every schema is covered")
			header, err := soe.BuildHeader(s.Avro)
			require.NoError(t, err)
			for i, v := range vs {
				raw, err := codec.Encode(s, v)
				require.NoError(t, err, "value %d", i)
				require.Equal(t, header, raw[:codec.HeaderLen], "single-object header as hamba builds it")

				got, v2, err := codec.Decode(set, raw)
				require.NoError(t, err, "value %d", i)
				require.Same(t, s, got)
				require.Empty(t, diff(v, v2, ""), "value %d round-trips", i)

				var ref any
				require.NoError(t, avro.Unmarshal(s.Avro, raw[codec.HeaderLen:], &ref), "hamba decodes value %d", i)
				require.Empty(t, diff(v, unwrapUnions(ref), ""), "hamba reads value %d the same", i)
			}
		})
	}
}

// unwrapUnions turns hamba's generic union form {"full.Name": value} into
// the normalised form (only record unions are wrapped by hamba).
func unwrapUnions(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, e := range x {
				if strings.HasPrefix(k, "dgw.") {
					return unwrapUnions(e)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = unwrapUnions(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = unwrapUnions(e)
		}
		return out
	case int:
		return x
	}
	return v
}

func TestDecimalRoundTrip(t *testing.T) {
	set := loadSet(t)
	s := schemaOf(t, set, "booking")
	for _, amount := range []string{"0", "0.01", "-0.01", "1234.5", "-1234.50", "9999999999.99", "-9999999999.99", "128", "-128", "-129", "255", "32768"} {
		r, ok := new(big.Rat).SetString(amount)
		require.True(t, ok)
		v := bookingValue()
		v["fare"] = map[string]any{"amount": r, "currency": "KZT"}
		raw, err := codec.Encode(s, v)
		require.NoError(t, err, amount)
		_, got, err := codec.Decode(set, raw)
		require.NoError(t, err, amount)
		gotAmount := got["fare"].(map[string]any)["amount"].(*big.Rat)
		assert.Zero(t, r.Cmp(gotAmount), "%s decodes as %s", amount, gotAmount.FloatString(2))
	}
	for _, bad := range []string{"10000000000.00", "0.001", "-12345678901"} {
		r, _ := new(big.Rat).SetString(bad)
		v := bookingValue()
		v["fare"] = map[string]any{"amount": r, "currency": "KZT"}
		_, err := codec.Encode(s, v)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "field fare.amount")
		assert.NotContains(t, err.Error(), strings.TrimPrefix(bad, "-"))
	}
}

func TestHeader(t *testing.T) {
	set := loadSet(t)
	s := schemaOf(t, set, "booking")
	raw, err := codec.Encode(s, bookingValue())
	require.NoError(t, err)
	assert.Equal(t, []byte{0xC3, 0x01}, raw[:2])
	assert.Equal(t, s.Fingerprint, binary.LittleEndian.Uint64(raw[2:10]), "little-endian fingerprint")
	fp, err := codec.Fingerprint(raw)
	require.NoError(t, err)
	assert.Equal(t, s.Fingerprint, fp)

	appended, err := codec.AppendEncode([]byte("prefix"), s, bookingValue())
	require.NoError(t, err)
	assert.Equal(t, append([]byte("prefix"), raw...), appended)
}

// badCase is one malformed record and the reason it must be parked with.
type badCase struct {
	name   string
	raw    []byte
	max    int // decoder size limit, 0 = default
	reason []gateway.Reason
	msg    string // substring of the error
}

func badInputs(t *testing.T, set *schema.Set) []badCase {
	booking := schemaOf(t, set, "booking")
	good, err := codec.Encode(booking, bookingValue())
	require.NoError(t, err)
	with := func(edit func(v map[string]any)) []byte {
		v := bookingValue()
		edit(v)
		raw, err := codec.Encode(booking, v)
		require.NoError(t, err)
		return raw
	}
	replace := func(raw []byte, old, new string) []byte {
		require.Equal(t, 1, bytes.Count(raw, []byte(old)), "%q occurs once", old)
		require.Equal(t, len(old), len(new))
		return bytes.Replace(raw, []byte(old), []byte(new), 1)
	}
	otherFP := append([]byte(nil), good...)
	otherFP[2] ^= 0xff
	web := schemaOf(t, set, "websession")
	g := synth.New(synth.Options{Seed: 1, Types: []string{"websession"}})
	webRaw, err := codec.Encode(web, g.Next().Value)
	require.NoError(t, err)
	wrongSchema := append(append([]byte(nil), good[:codec.HeaderLen]...), webRaw[codec.HeaderLen:]...)

	// Out-of-range dates and timestamps cannot be encoded by codec, so
	// hamba writes them (it checks no range).
	checkin := schemaOf(t, set, "checkin")
	cv := synth.New(synth.Options{Seed: 1, Types: []string{"checkin"}}).Next().Value
	cv["visa"], cv["destination_address"] = nil, nil
	viaHamba := func(edit func(v map[string]any)) []byte {
		v := map[string]any{}
		for k, x := range cv {
			v[k] = x
		}
		p := map[string]any{}
		for k, x := range cv["passenger"].(map[string]any) {
			p[k] = x
		}
		v["passenger"] = p
		edit(v)
		body, err := avro.Marshal(checkin.Avro, v)
		require.NoError(t, err)
		return append(append([]byte(nil), good[:2]...), append(binary.LittleEndian.AppendUint64(nil, checkin.Fingerprint), body...)...)
	}
	// hamba writes array blocks with a negative count and a byte size;
	// codec reads them to the same value.
	_, back, err := codec.Decode(set, viaHamba(func(map[string]any) {}))
	require.NoError(t, err)
	require.Empty(t, diff(cv, back, ""), "codec reads hamba's encoding")

	return []badCase{
		{name: "empty", raw: nil, reason: []gateway.Reason{gateway.ReasonBadMagic}, msg: "0 bytes"},
		{name: "header cut short", raw: good[:7], reason: []gateway.Reason{gateway.ReasonBadMagic}},
		{name: "wrong magic", raw: append([]byte{0xC3, 0x02}, good[2:]...), reason: []gateway.Reason{gateway.ReasonBadMagic}},
		{name: "no header (bare Avro body)", raw: good[codec.HeaderLen:], reason: []gateway.Reason{gateway.ReasonBadMagic}},
		{name: "Confluent wire format", raw: append([]byte{0, 0, 0, 0, 7}, good[codec.HeaderLen:]...), reason: []gateway.Reason{gateway.ReasonBadMagic}},
		{name: "unknown fingerprint", raw: otherFP, reason: []gateway.Reason{gateway.ReasonUnknownSchema}, msg: "names no known schema"},
		{name: "header only", raw: good[:codec.HeaderLen], reason: []gateway.Reason{gateway.ReasonDecode}, msg: "truncated"},
		{name: "truncated record", raw: good[:len(good)/2], reason: []gateway.Reason{gateway.ReasonDecode}, msg: "truncated"},
		{name: "last byte missing", raw: good[:len(good)-1], reason: []gateway.Reason{gateway.ReasonDecode}, msg: "truncated"},
		{name: "trailing bytes", raw: append(append([]byte(nil), good...), 0, 0), reason: []gateway.Reason{gateway.ReasonDecode}, msg: "2 trailing bytes"},
		{name: "valid Avro of the wrong schema", raw: wrongSchema, reason: []gateway.Reason{gateway.ReasonDecode, gateway.ReasonInvalid}},
		{name: "over the size limit", raw: good, max: len(good) - 1, reason: []gateway.Reason{gateway.ReasonTooLarge}, msg: "exceeds the limit"},
		{name: "empty event id", raw: with(func(v map[string]any) { v["event_id"] = "" }), reason: []gateway.Reason{gateway.ReasonInvalid}, msg: "event_id is empty"},
		{name: "empty passenger id", raw: with(func(v map[string]any) { v["passenger_id"] = "" }), reason: []gateway.Reason{gateway.ReasonInvalid}, msg: "subject_id"},
		{name: "invalid UTF-8", raw: replace(good, "CANARYGIVEN", "CANARY\xff\xfeVEN"), reason: []gateway.Reason{gateway.ReasonInvalid}, msg: "field passenger.given_name: string is not valid UTF-8"},
		{name: "invalid UTF-8 in an array", raw: replace(good, "CANARYTEXT", "CANARY\xc3(XT"), reason: []gateway.Reason{gateway.ReasonInvalid}, msg: "field special_service_requests.free_text"},
		{name: "birth date before 1900", raw: viaHamba(func(v map[string]any) { v["passenger"].(map[string]any)["birth_date"] = day(1850, 1, 1) }),
			reason: []gateway.Reason{gateway.ReasonInvalid}, msg: "field passenger.birth_date: date out of range"},
		{name: "expiry after 2200", raw: viaHamba(func(v map[string]any) {
			v["document"] = map[string]any{"type": "passport", "number": "CNRY00001", "issuing_country": "KZ", "expiry_date": day(2300, 1, 1)}
		}), reason: []gateway.Reason{gateway.ReasonInvalid}, msg: "field document.expiry_date: date out of range"},
		{name: "timestamp before 1900", raw: viaHamba(func(v map[string]any) { v["occurred_at"] = time.Date(1812, 6, 1, 0, 0, 0, 0, time.UTC) }),
			reason: []gateway.Reason{gateway.ReasonInvalid}, msg: "field occurred_at: timestamp out of range"},
	}
}

func TestDecodeBadInput(t *testing.T) {
	set := loadSet(t)
	cases := badInputs(t, set)
	// An enum index past the symbols: gender is the byte after family_name.
	booking := schemaOf(t, set, "booking")
	good, err := codec.Encode(booking, bookingValue())
	require.NoError(t, err)
	i := bytes.Index(good, []byte("Nurlanova-Canary")) + len("Nurlanova-Canary")
	require.Equal(t, byte(0), good[i], "gender F is symbol 0")
	badEnum := append([]byte(nil), good...)
	badEnum[i] = 0x08 // zigzag 4: symbol index 4 of F, M, X, U
	cases = append(cases, badCase{name: "enum index out of range", raw: badEnum, reason: []gateway.Reason{gateway.ReasonDecode},
		msg: "field passenger.gender: enum index 4 outside the 4 symbols"})
	badBool := append([]byte(nil), good...)
	k := bytes.Index(good, []byte("96123456")) + len("96123456") + 1 // after the corporate_account null branch
	require.Equal(t, byte(0), good[k])
	badBool[k] = 2
	cases = append(cases, badCase{name: "boolean byte 2", raw: badBool, reason: []gateway.Reason{gateway.ReasonDecode}, msg: "field employer_paid: expected boolean byte 0 or 1"})

	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			var opts []codec.Option
			if tt.max > 0 {
				opts = append(opts, codec.WithMaxSize(tt.max))
			}
			ev, err := codec.NewDecoder(set, opts...).Decode(gateway.Message{Value: tt.raw})
			require.Nil(t, ev)
			reason := reasonOf(t, err)
			assert.Contains(t, tt.reason, reason, "%v", err)
			if tt.msg != "" {
				assert.Contains(t, err.Error(), tt.msg)
			}
			assert.False(t, synth.ContainsCanary([]byte(err.Error())), "no value in %q", err)
			if reason == gateway.ReasonUnknownSchema {
				assert.ErrorIs(t, err, gateway.ErrSchemaNotFound)
			}
		})
	}
}

func TestMaxSizeBoundary(t *testing.T) {
	set := loadSet(t)
	raw, err := codec.Encode(schemaOf(t, set, "booking"), bookingValue())
	require.NoError(t, err)
	_, err = codec.NewDecoder(set, codec.WithMaxSize(len(raw))).Decode(gateway.Message{Value: raw})
	require.NoError(t, err, "a record of exactly the limit is accepted")
	_, err = codec.NewDecoder(set, codec.WithMaxSize(len(raw)-1)).Decode(gateway.Message{Value: raw})
	assert.Equal(t, gateway.ReasonTooLarge, reasonOf(t, err))
	big := make([]byte, 1<<20+1)
	_, err = codec.NewDecoder(set).Decode(gateway.Message{Value: big})
	assert.Equal(t, gateway.ReasonTooLarge, reasonOf(t, err), "the default limit is 1 MiB")
}

// TestErrorsHoldNoValues damages a record of canary values in every
// position and at every length: each error is a dead-letter park error and
// none quotes a value.
func TestErrorsHoldNoValues(t *testing.T) {
	set := loadSet(t)
	dec := codec.NewDecoder(set)
	good, err := codec.Encode(schemaOf(t, set, "booking"), bookingValue())
	require.NoError(t, err)
	check := func(raw []byte) {
		_, err := dec.Decode(gateway.Message{Value: raw})
		if err == nil {
			return
		}
		reasonOf(t, err)
		msg := []byte(err.Error())
		require.False(t, synth.ContainsCanary(msg), "error quotes a value: %s", msg)
		require.NotContains(t, string(msg), "Nurlanova")
	}
	failures := 0
	for n := range len(good) {
		check(good[:n])
	}
	for i := codec.HeaderLen; i < len(good); i++ {
		for _, x := range []byte{0x00, 0x01, 0x7f, 0x80, 0xff} {
			raw := append([]byte(nil), good...)
			raw[i] = x
			if _, err := dec.Decode(gateway.Message{Value: raw}); err != nil {
				failures++
			}
			check(raw)
		}
	}
	assert.Greater(t, failures, len(good), "the damage is detected")
}

func TestEncodeErrors(t *testing.T) {
	set := loadSet(t)
	s := schemaOf(t, set, "booking")
	tests := []struct {
		name string
		edit func(v map[string]any)
		msg  string
	}{
		{"missing required field", func(v map[string]any) { delete(v["passenger"].(map[string]any), "given_name") }, "field passenger.given_name: missing required field"},
		{"wrong type", func(v map[string]any) { v["passenger"].(map[string]any)["given_name"] = 42 }, "field passenger.given_name: expected string, got integer"},
		{"unknown enum symbol", func(v map[string]any) { v["passenger"].(map[string]any)["gender"] = "CANARY" }, "field passenger.gender: not a symbol of enum"},
		{"null for a required field", func(v map[string]any) { v["record_locator"] = nil }, "field record_locator: expected string, got null"},
		{"invalid UTF-8", func(v map[string]any) { v["passenger"].(map[string]any)["family_name"] = "CANARY\xff" }, "field passenger.family_name: string is not valid UTF-8"},
		{"date out of range", func(v map[string]any) { v["passenger"].(map[string]any)["birth_date"] = day(1899, 12, 31) }, "field passenger.birth_date: date out of range"},
		{"date as text", func(v map[string]any) { v["passenger"].(map[string]any)["birth_date"] = "1984-03-14" }, "field passenger.birth_date: expected date (time.Time), got string"},
		{"array item", func(v map[string]any) { v["companions"] = []any{"CANARY A", 7} }, "field companions: expected string, got integer"},
		{"record as text", func(v map[string]any) { v["contact"] = "CANARY" }, "field contact: expected record dgw.events.booking.Contact, got string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := bookingValue()
			tt.edit(v)
			_, err := codec.Encode(s, v)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.msg)
			assert.False(t, synth.ContainsCanary([]byte(err.Error())), "no value in %q", err)
		})
	}
	// Optional fields with defaults may be left out.
	v := bookingValue()
	delete(v, "agency_code")
	delete(v, "employer_paid")
	raw, err := codec.Encode(s, v)
	require.NoError(t, err)
	_, got, err := codec.Decode(set, raw)
	require.NoError(t, err)
	assert.Nil(t, got["agency_code"])
	assert.Equal(t, false, got["employer_paid"])
}

type fakeState map[string]gateway.SubjectContext

func (f fakeState) Lookup(id string) gateway.SubjectContext { return f[id] }

func TestDecoderEvent(t *testing.T) {
	set := loadSet(t)
	s := schemaOf(t, set, "booking")
	raw, err := codec.Encode(s, bookingValue())
	require.NoError(t, err)
	state := fakeState{"PAX-CANARY-T-000001": {
		Consents:   map[string]bool{"research": true},
		Objections: []string{"advertising"},
		Erased:     true,
	}}
	msg := gateway.Message{Topic: "pax.booking", Partition: 2, Offset: 41, Value: raw}
	ev, err := codec.NewDecoder(set, codec.WithSubjectState(state)).Decode(msg)
	require.NoError(t, err)
	assert.Equal(t, "ev-test-1", ev.ID)
	assert.Equal(t, "PAX-CANARY-T-000001", ev.SubjectID)
	assert.Equal(t, time.Date(2026, 11, 2, 9, 15, 30, 123_000_000, time.UTC), ev.OccurredAt)
	assert.Equal(t, s.Ref(), ev.Schema)
	assert.Equal(t, msg, ev.Msg)
	assert.Equal(t, map[string]bool{"research": true}, ev.Context.Subject.Consents)
	assert.Equal(t, []string{"advertising"}, ev.Context.Subject.Objections)
	assert.True(t, ev.Context.Subject.Erased)

	ev, err = codec.NewDecoder(set).Decode(msg)
	require.NoError(t, err)
	assert.Empty(t, ev.Context.Subject.Consents)
	assert.False(t, ev.Context.Subject.Erased)
}

func TestFingerprintErrors(t *testing.T) {
	_, err := codec.Fingerprint([]byte{0xC3, 0x01, 1, 2, 3})
	assert.Equal(t, gateway.ReasonBadMagic, reasonOf(t, err))
	fp, err := codec.Fingerprint([]byte{0xC3, 0x01, 1, 0, 0, 0, 0, 0, 0, 0x80})
	require.NoError(t, err)
	assert.Equal(t, uint64(0x8000000000000001), fp)
	var pe *gateway.ParkError
	_, _, err = codec.Decode(loadSet(t), []byte{0xC3, 0x01, 1, 0, 0, 0, 0, 0, 0, 0x80})
	require.True(t, errors.As(err, &pe))
	assert.Contains(t, err.Error(), gateway.FingerprintHex(0x8000000000000001))
}

// TestDecimalLimits feeds decimals longer than the schema's precision:
// they are invalid, and a megabyte-long one is rejected without the
// quadratic cost of formatting it.
func TestDecimalLimits(t *testing.T) {
	set := loadSet(t)
	v := bookingValue()
	v["fare"] = map[string]any{"amount": new(big.Rat), "currency": "KZT"}
	raw, err := codec.Encode(schemaOf(t, set, "booking"), v)
	require.NoError(t, err)
	tail := []byte{0x02, 0x00, 0x06, 'K', 'Z', 'T'} // amount: 1 byte, 0; currency "KZT"
	require.True(t, bytes.HasSuffix(raw, tail))
	prefix := raw[:len(raw)-len(tail)]
	withAmount := func(unscaled []byte) []byte {
		if unscaled[0]&0x80 != 0 {
			unscaled = append([]byte{0}, unscaled...) // positive in two's complement
		}
		out := append([]byte(nil), prefix...)
		out = binary.AppendUvarint(out, uint64(len(unscaled))*2) // zigzag of a non-negative length
		out = append(out, unscaled...)
		return append(out, 0x06, 'K', 'Z', 'T')
	}
	dec := codec.NewDecoder(set, codec.WithMaxSize(4<<20))

	max := new(big.Int).Sub(new(big.Int).Exp(big.NewInt(10), big.NewInt(12), nil), big.NewInt(1)) // 12 nines
	_, err = dec.Decode(gateway.Message{Value: withAmount(max.Bytes())})
	require.NoError(t, err, "12 digits fit precision 12")
	_, v, err = codec.Decode(set, withAmount(max.Bytes()))
	require.NoError(t, err)
	assert.Equal(t, "9999999999.99", v["fare"].(map[string]any)["amount"].(*big.Rat).FloatString(2))

	_, err = dec.Decode(gateway.Message{Value: withAmount(new(big.Int).Add(max, big.NewInt(1)).Bytes())})
	assert.Equal(t, gateway.ReasonInvalid, reasonOf(t, err))
	assert.Contains(t, err.Error(), "field fare.amount: decimal has more than 12 digits")

	// A 1 MiB decimal is rejected as invalid. (The digit check compares bit
	// lengths instead of formatting the number; speed is not asserted here:
	// speed goals live in benchmarks, never in timed unit tests.)
	huge := bytes.Repeat([]byte{0x5a}, 1<<20)
	_, err = dec.Decode(gateway.Message{Value: withAmount(huge)})
	assert.Equal(t, gateway.ReasonInvalid, reasonOf(t, err))
}
