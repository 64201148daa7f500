package gateway

import (
	"encoding/json"
	"strconv"
)

// AppendKey appends the canonical encoding of the context to dst: the very
// bytes encoding/json gives for it (struct fields in order, omitempty
// honoured, map keys sorted), written without reflection. Key and the
// decision cache use it; TestKeyIsJSON holds it to encoding/json for
// random contexts, every field included, so a field added to the context
// cannot be left out of the key.
func (c *DecisionContext) AppendKey(dst []byte) []byte {
	e := &c.Event
	dst = append(dst, `{"event":{"type":`...)
	dst = appendJSONString(dst, e.Type)
	dst = append(dst, `,"purpose":`...)
	dst = appendJSONString(dst, e.Purpose)
	dst = appendOptional(dst, `,"point_of_sale":`, e.PointOfSale)
	dst = appendOptional(dst, `,"origin_country":`, e.OriginCountry)
	dst = appendOptional(dst, `,"destination_country":`, e.DestinationCountry)
	dst = append(dst, `,"route":`...)
	dst = appendJSONStrings(dst, e.Route)
	dst = appendOptional(dst, `,"booking_channel":`, e.BookingChannel)
	dst = appendOptional(dst, `,"agency_code":`, e.AgencyCode)
	dst = appendOptional(dst, `,"corporate_account":`, e.CorporateAccount)
	dst = append(dst, `,"employer_paid":`...)
	dst = strconv.AppendBool(dst, e.EmployerPaid)

	s := &c.Subject
	dst = append(dst, `},"subject":{"minor":`...)
	dst = strconv.AppendBool(dst, s.Minor)
	dst = appendOptional(dst, `,"citizenship":`, s.Citizenship)
	dst = appendOptional(dst, `,"residence":`, s.Residence)
	dst = append(dst, `,"consents":`...)
	dst = appendJSONBools(dst, s.Consents)
	dst = append(dst, `,"objections":`...)
	dst = appendJSONStrings(dst, s.Objections)
	dst = append(dst, `,"erased":`...)
	dst = strconv.AppendBool(dst, s.Erased)
	dst = append(dst, `,"vital_interest":`...)
	dst = strconv.AppendBool(dst, s.VitalInterest)

	dst = append(dst, `},"schema":{"name":`...)
	dst = appendJSONString(dst, c.Schema.Name)
	return append(dst, "}}"...)
}

func appendOptional(dst []byte, name, v string) []byte {
	if v == "" {
		return dst
	}
	return appendJSONString(append(dst, name...), v)
}

func appendJSONStrings(dst []byte, vs []string) []byte {
	if vs == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, v := range vs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, v)
	}
	return append(dst, ']')
}

// appendJSONBools writes m with its keys sorted, as encoding/json does.
func appendJSONBools(dst []byte, m map[string]bool) []byte {
	if m == nil {
		return append(dst, "null"...)
	}
	var buf [16]string
	keys := buf[:0]
	for k := range m {
		// Insertion sort: consent maps hold a handful of purposes.
		i := len(keys)
		keys = append(keys, k)
		for ; i > 0 && keys[i-1] > k; i-- {
			keys[i] = keys[i-1]
		}
		keys[i] = k
	}
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		dst = strconv.AppendBool(dst, m[k])
	}
	return append(dst, '}')
}

// appendJSONString writes s as encoding/json does. Printable ASCII other
// than the characters it escapes is copied; anything else takes
// encoding/json's own path, so the escaping is exactly its.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, err := json.Marshal(s)
			if err != nil {
				// A string always marshals.
				panic("gateway: marshal string: " + err.Error())
			}
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
