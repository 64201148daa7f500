package synth

import (
	"bytes"
	"slices"
)

// Canary scheme. Every personal value the generator writes carries one of
// these recognisable forms, so a byte search finds it in logs, spans,
// metrics, error texts and topics:
//
//   - names, addresses, free texts, e-mail addresses, passenger, employee,
//     session and device ids contain "canary" (any case): given names end
//     in " Canary", family names in "-Canary", addresses name a Canary
//     street, e-mails end "@canary.example" or ".canary.example", free
//     texts end "(canary note N)", passenger ids are "PAX-CANARY-<seed>-N";
//   - travel-document, visa and frequent-flyer numbers start "CNRY";
//   - phone numbers are "+<country code>7700900NNN";
//   - IP addresses come from the documentation ranges 192.0.2.0/24,
//     198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32, MAC addresses
//     from 00:00:5e:00:53:00/24;
//   - card numbers are published test PANs (TestPANs).
//
// Card security codes are 3 or 4 random digits: too short to search for
// reliably; check them by field path (CanaryFields). Birth dates are not
// strings and are not canaries. Standard codes that reveal sensitive data
// (meal and SSR codes, languages, preferences) are real IATA/ISO codes, not
// canaries. Booking references (record locator, ticket number, bag tags,
// claim reference, payment id) are not canaries either.

// securityCode is the one personal path whose values are not recognisable.
const securityCode = "card.security_code"

// markers found in any case.
const foldMarker = "canary"

// markers found exactly.
var exactMarkers = []string{"CNRY", "7700900", "192.0.2.", "198.51.100.", "203.0.113.", "2001:db8:", "00:00:5e:00:53:"}

// CanaryMarkers returns the substrings ContainsCanary looks for besides the
// test PANs. The first, "canary", is matched in any case.
func CanaryMarkers() []string { return append([]string{foldMarker}, exactMarkers...) }

// TestPANs returns the card numbers the generator uses: published,
// Luhn-valid test numbers of Visa, Mastercard, American Express, Discover,
// JCB and UnionPay.
func TestPANs() []string {
	out := make([]string, len(testCards))
	for i, c := range testCards {
		out[i] = c.pan
	}
	return out
}

// ContainsCanary reports whether b holds a canary marker or a test PAN: a
// quick scan for channels where no personal value may appear at all, not
// even masked (logs, spans, metrics, errors, policy input). A masked value
// may still match (a masked e-mail keeps "@canary.example"); to check a
// recipient topic, search for the exact values of Canaries instead.
func ContainsCanary(b []byte) bool {
	if containsFold(b, foldMarker) {
		return true
	}
	for _, m := range exactMarkers {
		if bytes.Contains(b, []byte(m)) {
			return true
		}
	}
	for _, c := range testCards {
		if bytes.Contains(b, []byte(c.pan)) {
			return true
		}
	}
	return false
}

// containsFold reports whether b contains the lower-case ASCII word w in
// any case.
func containsFold(b []byte, w string) bool {
	for i := 0; i+len(w) <= len(b); i++ {
		j := 0
		for ; j < len(w); j++ {
			c := b[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != w[j] {
				break
			}
		}
		if j == len(w) {
			return true
		}
	}
	return false
}

// personalPaths are the leaf paths of personal values per event type
// (arrays transparent, as in the schema catalogue).
var personalPaths = map[string][]string{
	"booking": {"passenger_id", "passenger.given_name", "passenger.family_name", "contact.email", "contact.phone",
		"contact.address.line1", "frequent_flyer_number", "special_service_requests.free_text", "companions"},
	"checkin": {"passenger_id", "passenger.given_names", "passenger.family_name", "document.number", "visa.number",
		"destination_address.line1", "contact_phone"},
	"payment": {"passenger_id", "card.holder_name", "card.number", "card.security_code", "billing_address.line1",
		"payer.name", "payer.email", "risk.ip_address", "risk.device_id"},
	"baggage": {"passenger_id", "claimant.given_name", "claimant.family_name", "claimant.email", "claimant.phone",
		"claimant.delivery_address.line1", "claim.bag_description", "claim.contents", "claim.statement"},
	"assistance": {"passenger_id", "passenger.given_name", "passenger.family_name", "medical.condition",
		"medical.physician_contact", "escort"},
	"loyalty": {"passenger_id", "member.number", "member.given_name", "member.family_name", "member.email",
		"member.phone", "interests", "survey_answers.answer"},
	"corporate": {"passenger_id", "employee.employee_id", "employee.given_name", "employee.family_name",
		"employee.work_email", "incident.summary", "incident.medical_details"},
	"websession": {"passenger_id", "session_id", "ip_address", "mac_address", "device_id"},
	RequestType:  {"passenger_id"},
}

// PersonalPaths returns the leaf paths (dotted, arrays transparent) whose
// values are personal canaries in events of type typ, in schema order.
func PersonalPaths(typ string) []string { return slices.Clone(personalPaths[typ]) }

// A Canary is one personal value of an event and the leaf path it sits at.
type Canary struct {
	Path  string
	Value string
}

// CanaryFields returns every personal string value of ev with its path, in
// schema order, including values too short to search for (card security
// codes). Null fields are skipped.
func CanaryFields(ev Event) []Canary {
	var out []Canary
	for _, p := range personalPaths[ev.Type] {
		collect(ev.Value, splitPath(p), func(s string) { out = append(out, Canary{Path: p, Value: s}) })
	}
	return out
}

// Canaries returns the distinct personal string values of ev that are at
// least 4 bytes long, the passenger id (ev.Key) first. Each is a substring
// to search logs, telemetry and topics for, and each satisfies
// ContainsCanary. Card security codes are left out (random digits, see
// CanaryFields).
func Canaries(ev Event) []string {
	out := []string{}
	seen := map[string]bool{}
	addValue := func(s string) {
		if len(s) >= 4 && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	addValue(ev.Key)
	for _, c := range CanaryFields(ev) {
		if c.Path != securityCode {
			addValue(c.Value)
		}
	}
	return out
}

func splitPath(p string) []string {
	var out []string
	for len(p) > 0 {
		i := bytes.IndexByte([]byte(p), '.')
		if i < 0 {
			return append(out, p)
		}
		out, p = append(out, p[:i]), p[i+1:]
	}
	return out
}

// collect calls fn for every string at path below v, descending records
// and arrays.
func collect(v any, path []string, fn func(string)) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			collect(e, path, fn)
		}
	case map[string]any:
		if len(path) > 0 {
			collect(x[path[0]], path[1:], fn)
		}
	case string:
		if len(path) == 0 {
			fn(x)
		}
	}
}
