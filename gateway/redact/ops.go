package redact

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"math/big"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// ageBands are the values generalise gives a birth date: all minors share
// one band (they are specially protected, privacy policy §17), adults get
// ten-year bands from 30, and everyone from 80 shares a top band so that
// small groups of very old passengers stand out less.
var ageBands = []string{"0-17", "18-29", "30-39", "40-49", "50-59", "60-69", "70-79", "80+"}

// ageAt is the age in whole years on the UTC date of at.
func ageAt(birth, at time.Time) int {
	by, bm, bd := birth.UTC().Date()
	ay, am, ad := at.UTC().Date()
	age := ay - by
	if am < bm || (am == bm && ad < bd) {
		age--
	}
	return age
}

// ageBand returns the band of age, or false for a negative age.
func ageBand(age int) (string, bool) {
	switch {
	case age < 0:
		return "", false
	case age < 18:
		return ageBands[0], true
	case age < 30:
		return ageBands[1], true
	case age >= 80:
		return ageBands[len(ageBands)-1], true
	}
	return ageBands[age/10-1], true
}

// Minimum lengths below which a value is masked entirely: a "card number"
// of fewer than 12 digits or a "document number" of fewer than 6
// characters is not one, and showing its tail would show most of it.
const (
	minPANDigits   = 12
	minDocumentLen = 6
	minPhoneDigits = 5
)

// appendMask appends the masked form of s for format. The result is never
// equal to s, except that the empty string stays empty.
func appendMask(dst []byte, format, s string) []byte {
	start := len(dst)
	switch format {
	case "pan":
		dst = maskDigits(dst, s, 4, minPANDigits, false)
	case "phone":
		dst = maskDigits(dst, s, 2, minPhoneDigits, true)
	case "email":
		dst = maskEmail(dst, s)
	case "document":
		dst = maskTail(dst, s, 3, minDocumentLen)
	case "ip":
		dst = maskIP(dst, s)
	default:
		dst = maskFirst(dst, s)
	}
	if s != "" && string(dst[start:]) == s {
		// Only a value that already looks masked can get here.
		dst = dst[:start]
		for range utf8.RuneCountInString(s) + 1 {
			dst = append(dst, '*')
		}
	}
	return dst
}

// maskFirst keeps the first character and appends "***"; a one-character
// value becomes "*".
func maskFirst(dst []byte, s string) []byte {
	if s == "" {
		return dst
	}
	r, n := utf8.DecodeRuneInString(s)
	if n == len(s) {
		return append(dst, '*')
	}
	dst = utf8.AppendRune(dst, r)
	return append(dst, "***"...)
}

// maskDigits keeps only the digits of s (and a leading '+' when plus is
// set), all replaced by '*' but the last keep; values with fewer than min
// digits are masked entirely.
func maskDigits(dst []byte, s string, keep, min int, plus bool) []byte {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	if n < min {
		keep = 0
	}
	if plus && strings.HasPrefix(strings.TrimSpace(s), "+") {
		dst = append(dst, '+')
	}
	seen := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			continue
		}
		seen++
		if seen > n-keep {
			dst = append(dst, c)
		} else {
			dst = append(dst, '*')
		}
	}
	return dst
}

// maskTail replaces every character but the last keep by '*'; values
// shorter than min characters are masked entirely.
func maskTail(dst []byte, s string, keep, min int) []byte {
	n := utf8.RuneCountInString(s)
	if n < min {
		keep = 0
	}
	i := 0
	for _, r := range s {
		if i < n-keep {
			dst = append(dst, '*')
		} else {
			dst = utf8.AppendRune(dst, r)
		}
		i++
	}
	return dst
}

// maskEmail keeps the first character of the local part (none when the
// local part is one character) and the domain: "j***@example.com".
func maskEmail(dst []byte, s string) []byte {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return maskFirst(dst, s)
	}
	local, domain := s[:at], s[at+1:]
	if r, n := utf8.DecodeRuneInString(local); n > 0 && n < len(local) {
		dst = utf8.AppendRune(dst, r)
	}
	dst = append(dst, "***@"...)
	return append(dst, domain...)
}

// maskIP cuts an address to its network: IPv4 /24, IPv6 /48, in CIDR
// notation. Text that is not an address is masked like free text.
func maskIP(dst []byte, s string) []byte {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return maskFirst(dst, s)
	}
	a = a.Unmap().WithZone("")
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return maskFirst(dst, s)
	}
	return p.AppendTo(dst)
}

// hasher computes pseudonyms with one recipient's key. hmac keeps the keyed
// state, so Reset does not rehash the key.
type hasher struct {
	mac hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

func newHasherPool(key []byte) *sync.Pool {
	k := append([]byte(nil), key...)
	return &sync.Pool{New: func() any {
		return &hasher{mac: hmac.New(sha256.New, k), buf: make([]byte, 0, 128)}
	}}
}

// appendHash appends the lowercase hex HMAC-SHA256 of canon.
func (h *hasher) appendHash(dst, canon []byte) []byte {
	h.mac.Reset()
	h.mac.Write(canon)
	return hex.AppendEncode(dst, h.mac.Sum(h.sum[:0]))
}

// appendCanonical appends the text that hash pseudonymises: the value in a
// canonical form, so equal values join across events and event types.
// Strings are normalised by format (e-mail lower-cased and trimmed; card
// and phone numbers to their digits; document numbers upper-cased without
// blanks and dashes; IP addresses in their standard text form); dates are
// YYYY-MM-DD, timestamps RFC 3339 UTC with milliseconds (microseconds for
// timestamp-micros), decimals with exactly their scale's decimals, numbers
// in Go's shortest form, bytes as hex, enums as the symbol.
func appendCanonical(dst []byte, l *leaf, v any) ([]byte, bool) {
	switch l.kind {
	case sString, sEnum:
		s, ok := v.(string)
		if !ok {
			return dst, false
		}
		if l.kind == sEnum {
			return append(dst, s...), true
		}
		return appendCanonicalString(dst, l.format, s), true
	case sInt, sLong:
		n, ok := asInt64(v)
		return strconv.AppendInt(dst, n, 10), ok
	case sBool:
		b, ok := v.(bool)
		return strconv.AppendBool(dst, b), ok
	case sFloat:
		f, ok := v.(float32)
		if !ok {
			d, ok := v.(float64)
			return strconv.AppendFloat(dst, d, 'g', -1, 32), ok
		}
		return strconv.AppendFloat(dst, float64(f), 'g', -1, 32), true
	case sDouble:
		switch f := v.(type) {
		case float64:
			return strconv.AppendFloat(dst, f, 'g', -1, 64), true
		case float32:
			return strconv.AppendFloat(dst, float64(f), 'g', -1, 64), true
		}
		return dst, false
	case sBytes:
		b, ok := v.([]byte)
		return hex.AppendEncode(dst, b), ok
	case sDate:
		t, ok := v.(time.Time)
		return t.UTC().AppendFormat(dst, time.DateOnly), ok
	case sTimestampMillis:
		t, ok := v.(time.Time)
		return t.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00"), ok
	case sTimestampMicros:
		t, ok := v.(time.Time)
		return t.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000Z07:00"), ok
	case sDecimal:
		r, ok := v.(*big.Rat)
		if !ok || r == nil {
			return dst, false
		}
		return append(dst, r.FloatString(l.scale)...), true
	}
	return dst, false
}

func appendCanonicalString(dst []byte, format, s string) []byte {
	switch format {
	case "email":
		for _, r := range strings.TrimSpace(s) {
			dst = utf8.AppendRune(dst, unicode.ToLower(r))
		}
		return dst
	case "pan", "phone":
		for i := 0; i < len(s); i++ {
			if s[i] >= '0' && s[i] <= '9' {
				dst = append(dst, s[i])
			}
		}
		return dst
	case "document":
		for _, r := range s {
			if r != ' ' && r != '-' && !unicode.IsSpace(r) {
				dst = utf8.AppendRune(dst, unicode.ToUpper(r))
			}
		}
		return dst
	case "ip":
		if a, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil {
			return a.Unmap().AppendTo(dst)
		}
	}
	return append(dst, s...)
}

func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}
