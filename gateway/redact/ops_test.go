package redact

import (
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"

	"github.com/dgwproject/dgw/gateway/codec"
)

func mask(format, s string) string { return string(appendMask(nil, format, s)) }

func TestMask(t *testing.T) {
	tests := []struct {
		format, in, want string
	}{
		// pan: last four digits only (PCI DSS 3.4.1), separators dropped.
		{"pan", "4111111111111234", "************1234"},
		{"pan", "4111 1111 1111 1234", "************1234"},
		{"pan", "4111-1111-1111-1234", "************1234"},
		{"pan", "378282246310005", "***********0005"},
		{"pan", "6011000990139424123", "***************4123"},
		{"pan", "12345", "*****"},           // not a PAN: nothing shown
		{"pan", "1234", "****"},             // would equal its own last four
		{"pan", "************1234", "****"}, // already masked: still never equal
		{"pan", "no digits", ""},
		{"pan", "", ""},
		// email: first character of the local part, domain kept.
		{"email", "aigerim.n@example.kz", "a***@example.kz"},
		{"email", "Élodie@exemple.fr", "É***@exemple.fr"},
		{"email", "a@example.kz", "***@example.kz"}, // one-character local part not shown
		{"email", "@example.kz", "***@example.kz"},
		{"email", "odd\"@local@example.kz", "o***@example.kz"},
		{"email", "not-an-email", "n***"},
		{"email", "x", "*"},
		{"email", "", ""},
		// phone: a leading + and the digits, all but the last two hidden.
		{"phone", "+7 701 555 0142", "+*********42"},
		{"phone", "87015550142", "*********42"},
		{"phone", "(0)30 1234", "*****34"},
		{"phone", "1234", "****"},
		{"phone", "n/a", ""}, // digits only, and there are none
		{"phone", "", ""},
		// document: all but the last three characters.
		{"document", "N12345678", "******678"},
		{"document", "AB1234", "***234"},
		{"document", "AB123", "*****"},
		{"document", "Ж1234567", "*****567"},
		{"document", "", ""},
		// ip: network only.
		{"ip", "203.0.113.77", "203.0.113.0/24"},
		{"ip", " 10.1.2.3 ", "10.1.2.0/24"},
		{"ip", "::ffff:192.0.2.10", "192.0.2.0/24"},
		{"ip", "2001:db8:1234:5678::1", "2001:db8:1234::/48"},
		{"ip", "fe80::1%eth0", "fe80::/48"},
		{"ip", "not-an-ip", "n***"},
		{"ip", "203.0.113.0/24", "2***"},
		// no format: first character and ***.
		{"", "Aigerim", "A***"},
		{"", "Ай", "А***"},
		{"", "A", "*"},
		{"", "Ж", "*"},
		{"", "A***", "*****"},
		{"", "*", "**"},
		{"", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.format+"/"+tt.in, func(t *testing.T) {
			got := mask(tt.format, tt.in)
			assert.Equal(t, tt.want, got)
			if tt.in != "" {
				assert.NotEqual(t, tt.in, got, "a masked value never equals its source")
			}
			assert.True(t, utf8.ValidString(got))
		})
	}
}

func TestFixLength(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 65, 200, 8191, 8192, 100000} {
		dst := append([]byte("hdr"), 0)
		for range n {
			dst = append(dst, 'x')
		}
		dst = fixLength(dst, 3)
		want := codec.AppendLong([]byte("hdr"), int64(n))
		for range n {
			want = append(want, 'x')
		}
		assert.Equal(t, want, dst, "length %d", n)
	}
}

func TestAgeBand(t *testing.T) {
	event := time.Date(2026, 3, 10, 8, 30, 0, 0, time.UTC)
	tests := []struct {
		birth string
		want  string
		ok    bool
	}{
		{"2026-03-10", "0-17", true},
		{"2008-03-11", "0-17", true}, // 17 until tomorrow
		{"2008-03-10", "18-29", true},
		{"1996-03-11", "18-29", true},
		{"1996-03-10", "30-39", true},
		{"1991-07-14", "30-39", true},
		{"1986-03-10", "40-49", true},
		{"1970-01-01", "50-59", true},
		{"1960-01-01", "60-69", true},
		{"1950-01-01", "70-79", true},
		{"1946-03-11", "70-79", true},
		{"1946-03-10", "80+", true},
		{"1900-01-01", "80+", true},
		{"2026-03-11", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.birth, func(t *testing.T) {
			b, err := time.Parse(time.DateOnly, tt.birth)
			assert.NoError(t, err)
			got, ok := ageBand(ageAt(b, event))
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
	// Leap-day birthdays count from 1 March in other years.
	b := time.Date(2008, 2, 29, 0, 0, 0, 0, time.UTC)
	assert.Equal(t, 17, ageAt(b, time.Date(2026, 2, 28, 23, 0, 0, 0, time.UTC)))
	assert.Equal(t, 18, ageAt(b, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)))
}

func TestCanonical(t *testing.T) {
	str := func(format string) *leaf { return &leaf{kind: sString, format: format} }
	tests := []struct {
		name string
		l    *leaf
		a, b any // same canonical text
		want string
	}{
		{"email case and blanks", str("email"), " Aigerim.N@Example.KZ", "aigerim.n@example.kz", "aigerim.n@example.kz"},
		{"pan separators", str("pan"), "4111 1111-1111 1234", "4111111111111234", "4111111111111234"},
		{"phone formatting", str("phone"), "+7 (701) 555-01-42", "77015550142", "77015550142"},
		{"document case", str("document"), "n 1234-5678", "N12345678", "N12345678"},
		{"ip forms", str("ip"), "::ffff:203.0.113.7", "203.0.113.7", "203.0.113.7"},
		{"plain string verbatim", str(""), "Daulet", "Daulet", "Daulet"},
		{"int widths", &leaf{kind: sInt}, 42, int64(42), "42"},
		{"date", &leaf{kind: sDate}, time.Date(1991, 7, 14, 0, 0, 0, 0, time.UTC), time.Date(1991, 7, 14, 0, 0, 0, 0, time.UTC), "1991-07-14"},
		{"timestamp in UTC", &leaf{kind: sTimestampMillis}, time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.FixedZone("x", 3600)),
			time.Date(2026, 1, 2, 2, 4, 5, 6e6, time.UTC), "2026-01-02T02:04:05.006Z"},
		{"bool", &leaf{kind: sBool}, true, true, "true"},
		{"double", &leaf{kind: sDouble}, 43.25, float32(43.25), "43.25"},
		{"bytes", &leaf{kind: sBytes}, []byte{0xca, 0xfe}, []byte{0xca, 0xfe}, "cafe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := appendCanonical(nil, tt.l, tt.a)
			assert.True(t, ok)
			b, ok := appendCanonical(nil, tt.l, tt.b)
			assert.True(t, ok)
			assert.Equal(t, tt.want, string(a))
			assert.Equal(t, tt.want, string(b))
		})
	}
	_, ok := appendCanonical(nil, &leaf{kind: sInt}, "42")
	assert.False(t, ok, "type mismatch is reported")
}
