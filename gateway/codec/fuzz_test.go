package codec_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/synth"
)

// FuzzDecode feeds arbitrary records (10-byte single-object header plus
// Avro body) to the decoder. Invariants: it never panics; a failure is a
// *gateway.ParkError with a dead-letter reason whose text quotes no value;
// a success re-encodes to a record that decodes to the same value and the
// same decision context.
func FuzzDecode(f *testing.F) {
	set := loadSet(f)
	dec := codec.NewDecoder(set, codec.WithMaxSize(64<<10))
	booking, err := codec.Encode(schemaOf(f, set, "booking"), bookingValue())
	require.NoError(f, err)
	f.Add(booking)
	f.Add(booking[:len(booking)/2])
	f.Add(booking[:codec.HeaderLen])
	f.Add([]byte{0xC3, 0x01})
	f.Add([]byte{})
	sr, err := codec.Encode(schemaOf(f, set, "subject_request"), subjectRequest())
	require.NoError(f, err)
	f.Add(sr)
	for _, typ := range synth.EventTypes() {
		ev := synth.New(synth.Options{Seed: 1, Types: []string{typ}}).Next()
		raw, err := codec.Encode(schemaOf(f, set, typ), ev.Value)
		require.NoError(f, err)
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := dec.Decode(gateway.Message{Value: raw})
		if err != nil {
			require.Nil(t, ev)
			reasonOf(t, err)
			// The seeds' strings contain "canary"; numbers in errors
			// (lengths, indexes, fingerprints) cannot spell it.
			require.NotContains(t, strings.ToLower(err.Error()), "canary", "error quotes a value")
			return
		}
		s, ok := set.ByFingerprint(ev.Schema.Fingerprint)
		require.True(t, ok)
		v, err := codec.DecodeBody(s, raw[codec.HeaderLen:])
		require.NoError(t, err, "the value reader reads what the decoder accepts")
		again, err := codec.Encode(s, v)
		require.NoError(t, err, "a decoded value re-encodes")
		ev2, err := dec.Decode(gateway.Message{Value: again})
		require.NoError(t, err, "a re-encoded value decodes")
		v2, err := codec.DecodeBody(s, again[codec.HeaderLen:])
		require.NoError(t, err)
		require.Empty(t, diff(v, v2, ""), "re-encoding keeps the value")
		require.Equal(t, ev.Context, ev2.Context)
		require.Equal(t, ev.ID, ev2.ID)
		require.Equal(t, ev.SubjectID, ev2.SubjectID)
	})
}

// FuzzFromJSON feeds arbitrary JSON to FromJSON for every schema.
// Invariants: it never panics; a value it accepts encodes, decodes back to
// the same value, and renders to JSON that FromJSON reads to the same
// value again.
func FuzzFromJSON(f *testing.F) {
	set := loadSet(f)
	all := set.All()
	for i, s := range all {
		var v map[string]any
		switch s.EventType {
		case "subject_request":
			v = subjectRequest()
		case "booking":
			v = bookingValue()
		default:
			v = synth.New(synth.Options{Seed: 1, Types: []string{s.EventType}}).Next().Value
		}
		j, err := codec.ToJSON(s, v)
		require.NoError(f, err)
		f.Add(uint8(i), j)
	}
	f.Add(uint8(0), []byte(`{}`))
	f.Add(uint8(1), []byte(`{"amount": "0x1p30"}`))
	f.Add(uint8(2), []byte(`null`))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		s := all[int(which)%len(all)]
		v, err := codec.FromJSON(s, data)
		if err != nil {
			require.Nil(t, v)
			return
		}
		raw, err := codec.Encode(s, v)
		require.NoError(t, err, "an accepted value encodes")
		_, back, err := codec.Decode(set, raw)
		require.NoError(t, err, "an accepted value decodes")
		j1, err := codec.ToJSON(s, v)
		require.NoError(t, err)
		j2, err := codec.ToJSON(s, back)
		require.NoError(t, err)
		require.Equal(t, string(j1), string(j2), "the binary form keeps what FromJSON read")
		again, err := codec.FromJSON(s, j1)
		require.NoError(t, err, "ToJSON output is FromJSON input")
		require.Empty(t, diff(back, again, ""), "JSON round trip")
	})
}
