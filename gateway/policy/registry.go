package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/dgwproject/dgw/gateway"
)

// registryFile is where the recipients registry lives in a policy
// directory; the policy reads it as data.data.recipients.
const registryFile = "data/recipients.json"

// Safeguards a registry entry may name (GDPR Art 45-46, UK GDPR Art 45-46).
var knownSafeguards = []string{"scc", "bcr", "dpf", "dpf_uk", "bcr_uk", "uk_idta", "uk_addendum"}

// formatCardSecurityCode marks fields that may never be in a contract scope
// (PCI DSS 4.0.1 req 3.3.1.2).
const formatCardSecurityCode = "card_security_code"

var countryCode = regexp.MustCompile(`^[A-Z]{2}$`)

// registry decodes and validates the recipients registry. classes are the
// recipient types the policy knows (data.dgw.recipient_classes); a nil
// catalogue skips the checks against the schemas.
func registry(raw []byte, classes []string, catalogue map[string][]gateway.Field) ([]*gateway.Recipient, []Problem) {
	if raw == nil {
		return nil, []Problem{{File: registryFile, Msg: "missing: the recipients registry is required"}}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var doc struct {
		Recipients []*gateway.Recipient `json:"recipients"`
	}
	if err := dec.Decode(&doc); err != nil {
		line := 0
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line = lineAt(raw, int(se.Offset))
		}
		return nil, []Problem{{File: registryFile, Line: line, Msg: "decode registry: " + err.Error()}}
	}
	if len(doc.Recipients) == 0 {
		return nil, []Problem{{File: registryFile, Msg: "no recipients"}}
	}
	v := &registryCheck{loc: locator{raw}, catalogue: catalogue, classes: classes,
		ids: map[string]bool{}, topics: map[string]string{}, fields: fieldIndex(catalogue)}
	for i, r := range doc.Recipients {
		if r == nil {
			v.add(0, "recipient %d is null", i)
			continue
		}
		v.recipient(i, r)
	}
	return doc.Recipients, v.problems
}

type registryCheck struct {
	loc       locator
	catalogue map[string][]gateway.Field
	fields    map[string]map[string]gateway.Field
	classes   []string
	ids       map[string]bool
	topics    map[string]string
	problems  []Problem
}

func (v *registryCheck) add(line int, format string, args ...any) {
	v.problems = append(v.problems, Problem{File: registryFile, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (v *registryCheck) recipient(i int, r *gateway.Recipient) {
	line := v.loc.line(`"id"\s*:\s*` + regexp.QuoteMeta(jsonString(r.ID)))
	if r.ID == "" {
		v.add(line, "recipient %d has no id", i)
		return
	}
	if v.ids[r.ID] {
		v.add(line, "recipient id %q used twice", r.ID)
	}
	v.ids[r.ID] = true
	if strings.TrimSpace(r.Name) == "" {
		v.add(line, "recipient %s: no name", r.ID)
	}
	if !slices.Contains(v.classes, r.Type) {
		v.add(line, "recipient %s: type %q is not a recipient class of the policy (%s)", r.ID, r.Type, strings.Join(v.classes, ", "))
	}
	if !countryCode.MatchString(r.Country) {
		v.add(line, "recipient %s: country %q is not an ISO 3166-1 alpha-2 code", r.ID, r.Country)
	}
	switch other, dup := v.topics[r.Topic]; {
	case r.Topic == "":
		v.add(line, "recipient %s: no topic", r.ID)
	case dup:
		v.add(line, "recipient %s: topic %q is already the topic of %s", r.ID, r.Topic, other)
	default:
		v.topics[r.Topic] = r.ID
	}
	for _, s := range r.Safeguards {
		if !slices.Contains(knownSafeguards, s) {
			v.add(line, "recipient %s: unknown safeguard %q (known: %s)", r.ID, s, strings.Join(knownSafeguards, ", "))
		}
	}
	if r.Type == "travel_agency" && r.AgencyCode == "" {
		v.add(line, "recipient %s: a travel agency needs its agency_code (§9.1.3)", r.ID)
	}
	if r.Type == "employer" && r.CorporateAccount == "" {
		v.add(line, "recipient %s: an employer needs its corporate_account (§9.1.8)", r.ID)
	}
	if len(r.Scope) == 0 {
		v.add(line, "recipient %s: empty contract scope", r.ID)
	}
	start := v.loc.offset(0, `"id"\s*:\s*`+regexp.QuoteMeta(jsonString(r.ID)))
	for _, et := range sortedKeys(r.Scope) {
		v.scope(r, et, start)
	}
}

func (v *registryCheck) scope(r *gateway.Recipient, et string, start int) {
	etOff := v.loc.offset(start, regexp.QuoteMeta(jsonString(et))+`\s*:`)
	etLine := v.loc.lineOf(etOff)
	fields, known := v.fields[et]
	if v.catalogue != nil && !known {
		v.add(etLine, "recipient %s: scope names event type %q, which no schema has", r.ID, et)
		return
	}
	for _, p := range sortedKeys(r.Scope[et]) {
		ops := r.Scope[et][p]
		line := v.loc.lineOf(v.loc.offset(etOff, regexp.QuoteMeta(jsonString(p))+`\s*:`))
		where := fmt.Sprintf("recipient %s, %s field %s", r.ID, et, p)
		if len(ops) == 0 {
			v.add(line, "%s: no operators", where)
		}
		for _, op := range ops {
			if !op.Valid() {
				v.add(line, "%s: unknown operator %q (keep, generalise, mask, hash, drop)", where, op)
			}
		}
		if v.catalogue == nil {
			continue
		}
		f, ok := fields[p]
		switch {
		case !ok:
			v.add(line, "%s: not a field of schemas/%s.avsc", where, et)
			continue
		case !f.Leaf:
			v.add(line, "%s: a record, not a leaf; scopes name leaf paths", where)
			continue
		case f.Format == formatCardSecurityCode:
			v.add(line, "%s: a card security code may never be in a contract scope (PCI DSS 3.3.1.2)", where)
			continue
		}
		v.operators(line, where, f, ops)
	}
}

// operators checks that the operators apply to the field and give one type
// for the recipient's derived schema (as gateway/redact derives it).
func (v *registryCheck) operators(line int, where string, f gateway.Field, ops []gateway.Operator) {
	first := ""
	for _, op := range ops {
		var out string
		switch op {
		case gateway.OpKeep:
			out = "keep:" + f.Kind
			if f.Kind == "string" {
				out = "string"
			}
		case gateway.OpMask:
			if f.Kind != "string" {
				v.add(line, "%s: mask applies to strings only, the field is a %s", where, f.Kind)
				continue
			}
			out = "string"
		case gateway.OpHash:
			out = "string"
		case gateway.OpGeneralise:
			switch {
			case f.Kind == "date" && f.Role == "birth_date":
				out = "string"
			case f.Kind == "date":
				out = "int"
			case f.Kind == "timestamp":
				out = "date"
			default:
				v.add(line, "%s: generalise applies to dates and timestamps, the field is a %s", where, f.Kind)
				continue
			}
		default:
			continue
		}
		if first == "" {
			first = out
		} else if out != first {
			v.add(line, "%s: operators %s give different types for one field", where, joinOps(ops))
			return
		}
	}
}

func joinOps(ops []gateway.Operator) string {
	s := make([]string, len(ops))
	for i, op := range ops {
		s[i] = string(op)
	}
	return strings.Join(s, ", ")
}

// fieldIndex maps event type → path → field.
func fieldIndex(catalogue map[string][]gateway.Field) map[string]map[string]gateway.Field {
	out := make(map[string]map[string]gateway.Field, len(catalogue))
	for et, fs := range catalogue {
		m := make(map[string]gateway.Field, len(fs))
		for _, f := range fs {
			m[f.Path] = f
		}
		out[et] = m
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// locator finds the line of a pattern in a file, for problems.
type locator struct{ b []byte }

// offset is the byte offset of the first match of pattern at or after
// from, or -1 (also when from is -1).
func (l locator) offset(from int, pattern string) int {
	if from < 0 || from > len(l.b) {
		return -1
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return -1
	}
	m := re.FindIndex(l.b[from:])
	if m == nil {
		return -1
	}
	return from + m[0]
}

func (l locator) lineOf(off int) int {
	if off < 0 {
		return 0
	}
	return lineAt(l.b, off)
}

func (l locator) line(pattern string) int { return l.lineOf(l.offset(0, pattern)) }

// registryBytes returns the registry file of a policy directory.
func registryBytes(files map[string][]byte) []byte {
	return files[path.Clean(registryFile)]
}

// registryChanges reports how the registry of a new revision differs from
// the running one's. The gateway derives the recipients' schemas, topics
// and contract fences from the registry at start, so a reload may change
// the Rego and the country lists but not the registry: that takes a
// restart.
func registryChanges(raw []byte, running, next []*gateway.Recipient) []Problem {
	loc := locator{raw}
	const restart = "the recipients registry can change only with a restart (recipient schemas, topics and contract scopes are fixed while dgw runs)"
	old := make(map[string]*gateway.Recipient, len(running))
	for _, r := range running {
		old[r.ID] = r
	}
	var out []Problem
	seen := map[string]bool{}
	for i, r := range next {
		line := loc.line(`"id"\s*:\s*` + regexp.QuoteMeta(jsonString(r.ID)))
		seen[r.ID] = true
		prev, ok := old[r.ID]
		switch {
		case !ok:
			out = append(out, Problem{File: registryFile, Line: line, Msg: fmt.Sprintf("recipient %s is new: %s", r.ID, restart)})
		case !reflect.DeepEqual(normalRecipient(prev), normalRecipient(r)):
			out = append(out, Problem{File: registryFile, Line: line, Msg: fmt.Sprintf("recipient %s changed: %s", r.ID, restart)})
		case i >= len(running) || running[i].ID != r.ID:
			out = append(out, Problem{File: registryFile, Line: line, Msg: fmt.Sprintf("recipient %s moved in the registry: %s", r.ID, restart)})
		}
	}
	for _, r := range running {
		if !seen[r.ID] {
			out = append(out, Problem{File: registryFile, Msg: fmt.Sprintf("recipient %s was removed: %s", r.ID, restart)})
		}
	}
	return out
}

// normalRecipient treats absent and empty safeguards alike.
func normalRecipient(r *gateway.Recipient) gateway.Recipient {
	c := *r
	if len(c.Safeguards) == 0 {
		c.Safeguards = nil
	}
	return c
}
