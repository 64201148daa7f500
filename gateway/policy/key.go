package policy

import (
	"encoding/binary"
	"reflect"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/dgwproject/dgw/gateway"
)

// projection is which parts of the decision context a policy revision can
// observe, found in its compiled modules: every reference to input.<part>
// or input.<part>.<member>. The decision cache keys a decision by those
// parts only, so contexts that differ in what the policy never reads (the
// passenger's citizenship, the booking channel, the schema name, for the
// shipped policy) share one entry, and the cache stays exact: two contexts
// with the same key give the policy the same input.
//
// A reference the analysis cannot narrow down (input itself, input[x],
// input.event[x]) keeps the whole input or the whole part.
type projection struct {
	all  bool            // the policy may read any part: key the whole context
	read map[string]bool // "event", "subject.consents", ...: parts and members read
	// members are the members of the context the key holds, in context
	// order.
	members []member
	// canon, when set, keys the abstracted members by their names in the
	// abstraction (canon.go) instead of their spelling.
	canon *canon
	// facts is set when decisions are keyed by the event's facts (facts.go):
	// members[:split] are then the members read outside data.dgw.facts,
	// members[split:] those only the facts read, and factsRead what the
	// facts read.
	facts     bool
	split     int
	factsRead map[string]bool
}

// inputProjection analyses the compiled policy modules.
func inputProjection(c *ast.Compiler) *projection {
	var rules []*ast.Rule
	for _, name := range sortedKeys(c.Modules) {
		// The package and imports are not evaluated; rules are.
		rules = append(rules, c.Modules[name].Rules...)
	}
	return projectionOf(rules)
}

// projectionOf is what rules (with their else chains) read of the input.
func projectionOf(rules []*ast.Rule) *projection {
	p := &projection{read: map[string]bool{}}
	var visit func(t *ast.Term) bool
	visit = func(t *ast.Term) bool {
		switch v := t.Value.(type) {
		case ast.Var:
			if v.Equal(ast.InputRootDocument.Value) {
				p.all = true // input as a whole
			}
		case ast.Ref:
			if len(v) == 0 || !v[0].Equal(ast.InputRootDocument) {
				return false
			}
			p.note(v)
			for _, x := range v[1:] {
				ast.WalkTerms(x, visit)
			}
			return true
		}
		return false
	}
	for _, r := range rules {
		ast.WalkTerms(r, visit)
		for x := r; x != nil; x = x.Else {
			for _, t := range x.Head.Ref() {
				ast.WalkTerms(t, visit)
			}
		}
	}
	for _, m := range allMembers {
		if p.readsMember(m) {
			p.members = append(p.members, m)
		}
	}
	p.split = len(p.members)
	return p
}

// reads reports whether the policy reads part of the input, or a member
// of it.
func (p *projection) reads(part string) bool {
	if p.all || p.read[part] {
		return true
	}
	for k := range p.read {
		if before, _, ok := strings.Cut(k, "."); ok && before == part {
			return true
		}
	}
	return false
}

// readsMember reports whether the policy reads context member m.
func (p *projection) readsMember(m member) bool {
	part, _, _ := strings.Cut(memberNames[m], ".")
	return p.all || p.read[part] || p.read[memberNames[m]]
}

// note records what a reference to input reads.
func (p *projection) note(ref ast.Ref) {
	if len(ref) < 2 {
		p.all = true
		return
	}
	part, ok := ref[1].Value.(ast.String)
	if !ok {
		p.all = true
		return
	}
	if len(ref) < 3 {
		p.read[string(part)] = true
		return
	}
	member, ok := ref[2].Value.(ast.String)
	if !ok {
		p.read[string(part)] = true
		return
	}
	p.read[string(part)+"."+string(member)] = true
}

// member is one member of gateway.DecisionContext, as the policy sees it
// (two levels of JSON names). memberNames and appendMember list every
// member; TestProjectionKey holds them to the struct by reflection, so a
// member added to the context cannot be left out of the whole-input key.
type member uint8

var memberNames = [...]string{
	"event.type", "event.purpose", "event.point_of_sale", "event.origin_country", "event.destination_country",
	"event.route", "event.booking_channel", "event.agency_code", "event.corporate_account", "event.employer_paid",
	"subject.minor", "subject.citizenship", "subject.residence", "subject.consents", "subject.objections",
	"subject.erased", "subject.vital_interest",
	"schema.name",
}

var allMembers = func() (out [len(memberNames)]member) {
	for i := range out {
		out[i] = member(i)
	}
	return out
}()

// contextMembers lists the members of gateway.DecisionContext by
// reflection, in the names memberNames uses.
func contextMembers() []string {
	var out []string
	ct := reflect.TypeFor[gateway.DecisionContext]()
	for i := range ct.NumField() {
		part, ok := jsonName(ct.Field(i))
		if !ok {
			continue
		}
		pt := ct.Field(i).Type
		for j := range pt.NumField() {
			if m, ok := jsonName(pt.Field(j)); ok {
				out = append(out, part+"."+m)
			}
		}
	}
	return out
}

// jsonName is the name encoding/json gives a struct field; false when it
// is not encoded.
func jsonName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch tag {
	case "-":
		return "", false
	case "":
		return f.Name, true
	}
	return tag, true
}

// appendKey appends the key of dc to dst: the members the policy reads,
// each tagged with its index, strings and lists length-prefixed, map
// entries sorted, nil and empty collections alike (the policy sees both as
// empty). It does not allocate when dst has room. It returns nil for a
// context the abstraction cannot rename faithfully (too many distinct
// codes), which is then not cached.
func (p *projection) appendKey(dst []byte, dc *gateway.DecisionContext) []byte {
	key, _ := p.appendKeySplit(dst, dc, nil)
	return key
}

// appendKeySplit is appendKey, and the length of the key's part that
// holds the members read outside the facts (facts.go); all of it without
// facts. The rest is renamed after that part, so it does not change it.
// offs, when not nil, receives where each member's part starts.
func (p *projection) appendKeySplit(dst []byte, dc *gateway.DecisionContext, offs *memberOffsets) (key []byte, split int) {
	ms := p.members
	if p.all {
		ms = allMembers[:]
	}
	var r *renamer
	if p.canon != nil {
		r = &renamer{k: p.canon}
	}
	split = -1
	for i, m := range ms {
		if i == p.split && p.facts {
			split = len(dst)
		}
		if offs != nil {
			offs[i] = int32(len(dst))
		}
		dst = append(dst, byte(m))
		dst = appendMember(dst, dc, m, r)
	}
	if split < 0 {
		split = len(dst)
	}
	if offs != nil {
		offs[len(ms)] = int32(len(dst))
	}
	if r != nil && r.overflow {
		return nil, 0
	}
	return dst, split
}

// key is appendKey as a string, for tests.
func (p *projection) key(dc *gateway.DecisionContext) string {
	var buf [512]byte
	return string(p.appendKey(buf[:0], dc))
}

// memberOffsets are where the members' parts of a key start, in key
// order, and where the last one ends.
type memberOffsets [len(memberNames) + 1]int32

// appendMember appends member m of dc, abstracted members renamed by r
// when r is not nil (the order of the calls numbers them, as in
// canon.canonical).
func appendMember(dst []byte, dc *gateway.DecisionContext, m member, r *renamer) []byte {
	e, s := &dc.Event, &dc.Subject
	if r != nil && m == memberRoute {
		dst = binary.AppendUvarint(dst, uint64(len(e.Route)))
		for _, v := range e.Route {
			dst = appendString(dst, r.rename(v))
		}
		return dst
	}
	if r != nil {
		if p := abstractedString(dc, m); p != nil {
			return appendString(dst, r.rename(*p))
		}
	}
	switch m {
	case 0:
		return appendString(dst, e.Type)
	case 1:
		return appendString(dst, e.Purpose)
	case 2:
		return appendString(dst, e.PointOfSale)
	case 3:
		return appendString(dst, e.OriginCountry)
	case 4:
		return appendString(dst, e.DestinationCountry)
	case 5:
		return appendStrings(dst, e.Route)
	case 6:
		return appendString(dst, e.BookingChannel)
	case 7:
		return appendString(dst, e.AgencyCode)
	case 8:
		return appendString(dst, e.CorporateAccount)
	case 9:
		return appendBool(dst, e.EmployerPaid)
	case 10:
		return appendBool(dst, s.Minor)
	case 11:
		return appendString(dst, s.Citizenship)
	case 12:
		return appendString(dst, s.Residence)
	case 13:
		return appendBools(dst, s.Consents)
	case 14:
		return appendStrings(dst, s.Objections)
	case 15:
		return appendBool(dst, s.Erased)
	case 16:
		return appendBool(dst, s.VitalInterest)
	case 17:
		return appendString(dst, dc.Schema.Name)
	}
	panic("policy: no key encoding for context member " + memberNames[m])
}

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

func appendStrings(dst []byte, vs []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(vs)))
	for _, v := range vs {
		dst = appendString(dst, v)
	}
	return dst
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// appendBools writes m with its keys sorted.
func appendBools(dst []byte, m map[string]bool) []byte {
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
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		dst = appendBool(appendString(dst, k), m[k])
	}
	return dst
}

// String lists what the policy reads, for the load log.
func (p *projection) String() string {
	if p.all {
		return "all"
	}
	list := func(read map[string]bool) string {
		names := make([]string, 0, len(read))
		for n := range read {
			names = append(names, n)
		}
		slices.Sort(names)
		return strings.Join(names, " ")
	}
	if p.facts {
		return list(p.read) + "; facts: " + list(p.factsRead)
	}
	return list(p.read)
}

// normalised is dc with empty collections where it has none, as the policy
// receives it.
func normalised(dc *gateway.DecisionContext) gateway.DecisionContext {
	c := *dc
	if c.Event.Route == nil {
		c.Event.Route = []string{}
	}
	if c.Subject.Consents == nil {
		c.Subject.Consents = map[string]bool{}
	}
	if c.Subject.Objections == nil {
		c.Subject.Objections = []string{}
	}
	return c
}
