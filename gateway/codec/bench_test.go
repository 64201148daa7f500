package codec_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
)

// bigBooking is bookingValue grown to about 2 KB encoded.
func bigBooking() map[string]any {
	v := bookingValue()
	ssrs := v["special_service_requests"].([]any)
	for range 15 {
		ssrs = append(ssrs, map[string]any{"code": "OTHS", "free_text": "CANARY passenger asks for a bassinet seat and a vegetarian meal for the return"})
	}
	v["special_service_requests"] = ssrs
	return v
}

func TestBigBookingSize(t *testing.T) {
	set := loadSet(t)
	raw, err := codec.Encode(schemaOf(t, set, "booking"), bigBooking())
	require.NoError(t, err)
	require.InDelta(t, 2048, len(raw), 400, "the benchmark record is about 2 KB")
}

func BenchmarkDecode(b *testing.B) {
	set := loadSet(b)
	raw, err := codec.Encode(schemaOf(b, set, "booking"), bigBooking())
	require.NoError(b, err)
	dec := codec.NewDecoder(set)
	msg := gateway.Message{Value: raw}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dec.Decode(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkContext(b *testing.B) {
	set := loadSet(b)
	s := schemaOf(b, set, "booking")
	v := bigBooking()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := codec.Context(s, v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	set := loadSet(b)
	s := schemaOf(b, set, "booking")
	v := bigBooking()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = codec.AppendEncode(buf[:0], s, v); err != nil {
			b.Fatal(err)
		}
	}
}
