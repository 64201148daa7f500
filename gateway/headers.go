package gateway

import (
	"strconv"
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
	s := strconv.FormatUint(fp, 16)
	for len(s) < 16 {
		s = "0" + s
	}
	return s
}

func sourceHeaders(m *Message, hs []Header) []Header {
	return append(hs,
		Header{HeaderSourceTopic, []byte(m.Topic)},
		Header{HeaderSourcePartition, strconv.AppendInt(nil, int64(m.Partition), 10)},
		Header{HeaderSourceOffset, strconv.AppendInt(nil, m.Offset, 10)},
	)
}
