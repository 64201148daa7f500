package gateway

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Header names dgw sets on every record it writes. Values are ASCII; none
// carries personal data.
const (
	HeaderEventID         = "dgw-event-id"
	HeaderEventType       = "dgw-event-type"
	HeaderSchema          = "dgw-schema"        // fingerprint (16 hex digits) of the schema the value is encoded with
	HeaderSourceSchema    = "dgw-source-schema" // fingerprint of the source record's schema
	HeaderPolicyRevision  = "dgw-policy-revision"
	HeaderRecipient       = "dgw-recipient"
	HeaderSourceTopic     = "dgw-source-topic"
	HeaderSourcePartition = "dgw-source-partition"
	HeaderSourceOffset    = "dgw-source-offset"
	HeaderReason          = "dgw-reason"        // parked records: a Reason
	HeaderReasonDetail    = "dgw-reason-detail" // parked records: error text (paths and ids, never values)
)

// FingerprintHex formats a schema fingerprint as 16 lowercase hex digits.
func FingerprintHex(fp uint64) string {
	var b [16]byte
	return string(appendFingerprintHex(b[:0], fp))
}

// appendFingerprintHex appends the 16 hex digits of fp to dst.
func appendFingerprintHex(dst []byte, fp uint64) []byte {
	const digits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, digits[(fp>>uint(shift))&0xf])
	}
	return dst
}

func sourceHeaders(m *Message, hs []Header) []Header {
	return append(hs,
		Header{HeaderSourceTopic, []byte(m.Topic)},
		Header{HeaderSourcePartition, strconv.AppendInt(nil, int64(m.Partition), 10)},
		Header{HeaderSourceOffset, strconv.AppendInt(nil, m.Offset, 10)},
	)
}

// CheckHeaders checks the headers of a source record. Header values are
// opaque to dgw, but keys must be non-empty, valid UTF-8 without control
// characters, and must not start with "dgw-" (in any case): those headers
// are dgw's own provenance (event id, recipient, policy revision), and a
// source record carrying them is either forged or dgw output fed back as
// input. A failure is a *ParkError with ReasonBadHeader that names the
// header's position, never its value.
func CheckHeaders(hs []Header) error {
	for i, h := range hs {
		if err := checkHeaderKey(h.Key); err != nil {
			return Park(ReasonBadHeader, fmt.Errorf("header %d: %w", i, err))
		}
	}
	return nil
}

func checkHeaderKey(k string) error {
	switch {
	case k == "":
		return errors.New("empty key")
	case !utf8.ValidString(k):
		return errors.New("key is not valid UTF-8")
	case strings.IndexFunc(k, unicode.IsControl) >= 0:
		return errors.New("key contains control characters")
	case len(k) >= 4 && strings.EqualFold(k[:4], "dgw-"):
		return errors.New("key starts with dgw-, which is reserved for the headers dgw writes")
	}
	return nil
}
