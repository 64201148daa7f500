package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/dgwproject/dgw/gateway"
)

// Country and party codes of a decision context are keyed by what the
// policy can tell apart, not by their spelling: a passenger living in
// France and one living in Italy get the same decision from a policy that
// only asks whether the country of residence is in the EEA list. Without
// this, every new combination of countries in a trip is a cache miss.
//
// The abstraction (canon) sorts the strings the policy could meet into:
//   - constants: every string a policy module names, every string of a
//     data document other than data.data.countries (the registry: recipient
//     countries, agency codes, corporate accounts), and "" (a missing
//     member). A constant is keyed as itself;
//   - classes: the strings of data.data.countries, grouped by where they
//     occur there (the same lists, the same keys with the same entry). Two
//     members of a class are interchangeable for a policy that reads them
//     by membership and lookup;
//   - everything else (a country no list names, an agency code not in the
//     registry), one class.
//
// A context's abstracted members (the countries of the trip, of sale, of
// the passenger; the agency code and the corporate account) are renamed in
// order of appearance to members of their class: the first distinct value
// of a class to the class's first member, the second to its second, and so
// on (unknown strings to "~1", "~2", ...), so equality between members is
// kept. The decision is then evaluated on the renamed context, which the
// cache key determines, so the cache stays exact by construction; and it
// is the decision of the real context as long as the policy cannot tell
// class members apart:
//   - a decision that names a renamed value (in a reason, the basis, the
//     mechanism or a field) is not cached: the real context is evaluated;
//   - at load, checkCanon compares the decisions of sample contexts with
//     those of the same contexts with class members swapped, and turns the
//     abstraction off for the revision when any differs (a policy that
//     compares a country's spelling, say).
type canon struct {
	class map[string]int // string of data.data.countries → its class; constants absent
	// members lists each class's strings, sorted; singleton classes are
	// absent (their string is its own name).
	members map[int][]string
	const_  map[string]bool // constants
	unknown []string        // the names of unknown strings: "~1", "~2", ...
}

// isAbstracted reports whether the abstraction renames a context member:
// the countries of the trip, of sale and of the passenger, the agency code
// and the corporate account. Renaming numbers them in member order.
func isAbstracted(m member) bool {
	switch m {
	case 2, 3, 4, memberRoute, 7, 8, 11, 12:
		return true
	}
	return false
}

// memberRoute is the one abstracted member that is a list.
const memberRoute member = 5

// abstractedString is the abstracted string member m of dc (see
// isAbstracted), nil for any other member, the route included.
func abstractedString(dc *gateway.DecisionContext, m member) *string {
	switch m {
	case 2:
		return &dc.Event.PointOfSale
	case 3:
		return &dc.Event.OriginCountry
	case 4:
		return &dc.Event.DestinationCountry
	case 7:
		return &dc.Event.AgencyCode
	case 8:
		return &dc.Event.CorporateAccount
	case 11:
		return &dc.Subject.Citizenship
	case 12:
		return &dc.Subject.Residence
	}
	return nil
}

// newCanon builds the abstraction of a compiled policy and its data.
func newCanon(c *ast.Compiler, docs map[string]any) *canon {
	k := &canon{class: map[string]int{}, members: map[int][]string{}, const_: map[string]bool{"": true}}
	for _, m := range c.Modules {
		ast.WalkTerms(m, func(t *ast.Term) bool {
			if s, ok := t.Value.(ast.String); ok {
				k.const_[string(s)] = true
			}
			return false
		})
	}
	var countries any
	if d, ok := docs["data"].(map[string]any); ok {
		countries = d["countries"]
	}
	for name, doc := range docs {
		if name != "data" {
			collectStrings(doc, k.const_)
			continue
		}
		d, _ := doc.(map[string]any)
		for n, x := range d {
			if n != "countries" {
				collectStrings(x, k.const_)
			}
		}
	}
	// Where each string of the countries document occurs.
	where := map[string][]string{}
	locate(countries, "", func(s, loc string) { where[s] = append(where[s], loc) })
	bySig := map[string][]string{}
	for s, locs := range where {
		if k.const_[s] {
			continue
		}
		slices.Sort(locs)
		sig := strings.Join(slices.Compact(locs), "\x00")
		bySig[sig] = append(bySig[sig], s)
	}
	sigs := make([]string, 0, len(bySig))
	for sig := range bySig {
		sigs = append(sigs, sig)
	}
	slices.Sort(sigs)
	for i, sig := range sigs {
		ms := bySig[sig]
		slices.Sort(ms)
		for _, s := range ms {
			k.class[s] = i + 1
		}
		if len(ms) > 1 {
			k.members[i+1] = ms
		}
	}
	// Names of unknown strings: a prefix no constant or listed string
	// starts with.
	prefix := "~"
	for k.clashes(prefix) {
		prefix += "~"
	}
	k.unknown = make([]string, len(renamer{}.seen))
	for i := range k.unknown {
		k.unknown[i] = prefix + strconv.Itoa(i+1)
	}
	return k
}

func (k *canon) clashes(prefix string) bool {
	for s := range k.const_ {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	for s := range k.class {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// collectStrings adds every string of a JSON document, keys included.
func collectStrings(v any, into map[string]bool) {
	switch x := v.(type) {
	case string:
		into[x] = true
	case map[string]any:
		for key, y := range x {
			into[key] = true
			collectStrings(y, into)
		}
	case []any:
		for _, y := range x {
			collectStrings(y, into)
		}
	}
}

// locate calls fn for every string of v with where it occurs: the path to
// it, with the position in a list of strings left out (membership is all
// such a list tells), and for an object key the whole entry it keys.
func locate(v any, path string, fn func(s, loc string)) {
	switch x := v.(type) {
	case string:
		fn(x, path+"=")
	case map[string]any:
		for key, y := range x {
			entry, _ := json.Marshal(y) // sorted keys: canonical
			fn(key, path+"{}"+string(entry))
			locate(y, path+"."+strconv.Quote(key), fn)
		}
	case []any:
		for i, y := range x {
			if _, ok := y.(string); ok {
				locate(y, path+"[*]", fn)
			} else {
				locate(y, path+"["+strconv.Itoa(i)+"]", fn)
			}
		}
	}
}

// renamer renames one context's abstracted members.
type renamer struct {
	k *canon
	n int
	// overflow is set when the context has more distinct abstracted
	// values than seen holds: the renaming is then not faithful, and the
	// context is neither keyed nor decided renamed.
	overflow bool
	seen     [32]struct {
		from, to string
		class    int
	}
}

// rename returns the name of s in this context.
func (r *renamer) rename(s string) string {
	k := r.k
	if k.const_[s] {
		return s
	}
	class, listed := k.class[s]
	if listed && k.members[class] == nil {
		return s // alone in its class
	}
	nth := 0
	for i := range r.n {
		e := &r.seen[i]
		if e.from == s {
			return e.to
		}
		if e.class == class {
			nth++
		}
	}
	if r.n == len(r.seen) {
		r.overflow = true // a route through dozens of countries
		return s
	}
	var to string
	if listed {
		to = k.members[class][nth]
	} else {
		to = k.unknown[nth]
	}
	r.seen[r.n].from, r.seen[r.n].to, r.seen[r.n].class = s, to, class
	r.n++
	return to
}

// renamed reports whether name is the new name of an abstracted value in
// this context, i.e. a decision naming it could depend on the spelling it
// stands for.
func (r *renamer) renamed(name string) bool {
	for i := range r.n {
		if r.seen[i].to == name {
			return true
		}
	}
	return false
}

// canonical returns dc with the abstracted members among members (those
// the key holds) renamed, and the renamer that did it.
func (k *canon) canonical(dc *gateway.DecisionContext, members []member) (gateway.DecisionContext, *renamer) {
	c := normalised(dc)
	c.Event.Route = slices.Clone(c.Event.Route)
	r := &renamer{k: k}
	for _, m := range members {
		if m == memberRoute {
			for i, x := range c.Event.Route {
				c.Event.Route[i] = r.rename(x)
			}
		} else if p := abstractedString(&c, m); p != nil {
			*p = r.rename(*p)
		}
	}
	return c, r
}

// names reports whether the decision names a renamed value: as a word of
// a reason, the basis, the mechanism, or a field path.
func (r *renamer) names(d *gateway.Decision) bool {
	if r.n == 0 {
		return false
	}
	words := func(s string) bool {
		for w := range strings.FieldsFuncSeq(s, func(c rune) bool { return c > 0x7f || !isWordByte(byte(c)) }) {
			if r.renamed(w) {
				return true
			}
		}
		return false
	}
	if words(d.Basis) || words(d.Transfer.Mechanism) {
		return true
	}
	for _, s := range d.Reasons {
		if words(s) {
			return true
		}
	}
	for p := range d.Fields {
		if words(p) {
			return true
		}
	}
	return false
}

// checkCanon evaluates sample contexts whose countries and codes the
// abstraction renames, for every registry recipient and event type of its
// scope, and returns why the abstraction cannot be used ("" when it can):
//   - the decision of a context with class members swapped for others of
//     their class must be the decision of the context with the same swap
//     applied to what it names;
//   - the decision the cache would give (evaluateCanonical) must be the
//     decision of the context itself.
//
// The error reports a cancelled context.
func checkCanon(ctx context.Context, q preparedQuery, recipients []*gateway.Recipient, members []member, k *canon) (string, error) {
	type probe struct{ a, b, c, d string } // a↔c, b↔d
	var probes []probe
	for _, class := range slices.Sorted(maps.Keys(k.members)) {
		ms := k.members[class]
		n := len(ms)
		// The context names the class's last members, which the key
		// renames to its first ones.
		if n < 4 {
			probes = append(probes, probe{ms[n-1], ms[0], ms[0], ms[n-1]})
			continue
		}
		probes = append(probes, probe{ms[n-1], ms[n-2], ms[0], ms[1]})
	}
	unknown := probe{"ZX", "ZY", "ZW", "ZV"}
	if ok := !slices.ContainsFunc([]string{unknown.a, unknown.b, unknown.c, unknown.d}, func(s string) bool {
		_, listed := k.class[s]
		return listed || k.const_[s]
	}); ok {
		probes = append(probes, unknown)
	}
	type job struct {
		r      *gateway.Recipient
		dc     *gateway.DecisionContext
		swap   map[string]string
		sample string
	}
	var jobs []job
	for _, r := range recipients {
		for _, et := range sortedKeys(r.Scope) {
			for _, p := range probes {
				// A purpose of the trip with every consent, one resting on
				// consent without any: allowed and refused decisions.
				for _, v := range []struct {
					purpose string
					consent bool
				}{{"contract", true}, {"research", false}} {
					dc := &gateway.DecisionContext{
						Event: gateway.EventContext{Type: et, Purpose: v.purpose, PointOfSale: p.a, OriginCountry: p.a,
							DestinationCountry: r.Country, Route: []string{p.a, r.Country, p.b}, AgencyCode: unknown.a,
							CorporateAccount: unknown.b, EmployerPaid: true},
						Subject: gateway.SubjectContext{Citizenship: p.b, Residence: p.b, Objections: []string{},
							Consents: map[string]bool{"health_data": v.consent, "cross_border": v.consent, v.purpose: v.consent}},
					}
					swap := map[string]string{p.a: p.c, p.c: p.a, p.b: p.d, p.d: p.b,
						unknown.a: unknown.c, unknown.c: unknown.a, unknown.b: unknown.d, unknown.d: unknown.b}
					sample := fmt.Sprintf("recipient %s, %s events, purpose %s, countries %s %s", r.ID, et, v.purpose, p.a, p.b)
					jobs = append(jobs, job{r, dc, swap, sample})
				}
			}
		}
	}
	why, err := smallestReason(ctx, jobs, func(j job) string {
		real, err := evaluate(ctx, q, j.dc, j.r)
		if err != nil {
			return j.sample + ": " + err.Error()
		}
		via, _, err := evaluateCanonical(ctx, q, k, members, j.dc, j.r, nil)
		if err != nil || !sameDecision(real, via) {
			return j.sample + ": the abstracted context is decided otherwise"
		}
		swapped := swapContext(j.dc, j.swap)
		perm, err := evaluate(ctx, q, swapped, j.r)
		if err != nil || !sameDecision(swapDecision(real, j.swap), perm) {
			return j.sample + ": swapping countries or codes of one class changes the decision"
		}
		return ""
	})
	if err != nil {
		return "", fmt.Errorf("check the decision cache abstraction: %w", err)
	}
	return why, nil
}

// smallestReason runs check on every item, on every CPU, and returns the
// smallest reason it gave ("" when none did): the same answer however the
// items were scheduled. The error reports a cancelled context.
func smallestReason[T any](ctx context.Context, items []T, check func(T) string) (string, error) {
	jobs := make(chan T)
	var (
		mu  sync.Mutex
		why string
		wg  sync.WaitGroup
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for it := range jobs {
				if s := check(it); s != "" {
					mu.Lock()
					if why == "" || s < why {
						why = s
					}
					mu.Unlock()
				}
			}
		})
	}
feed:
	for _, it := range items {
		select {
		case jobs <- it:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return "", err
	}
	return why, nil
}

// swapContext is dc with the strings of its abstracted members swapped.
func swapContext(dc *gateway.DecisionContext, swap map[string]string) *gateway.DecisionContext {
	c := normalised(dc)
	s := func(v string) string {
		if w, ok := swap[v]; ok {
			return w
		}
		return v
	}
	e := &c.Event
	e.PointOfSale, e.OriginCountry, e.DestinationCountry = s(e.PointOfSale), s(e.OriginCountry), s(e.DestinationCountry)
	e.AgencyCode, e.CorporateAccount = s(e.AgencyCode), s(e.CorporateAccount)
	e.Route = slices.Clone(e.Route)
	for i := range e.Route {
		e.Route[i] = s(e.Route[i])
	}
	c.Subject.Citizenship, c.Subject.Residence = s(c.Subject.Citizenship), s(c.Subject.Residence)
	return &c
}

// swapDecision is d with the words its strings name swapped.
func swapDecision(d gateway.Decision, swap map[string]string) gateway.Decision {
	words := func(s string) string {
		var b strings.Builder
		start := -1
		flush := func(end int) {
			if start >= 0 {
				w := s[start:end]
				if x, ok := swap[w]; ok {
					w = x
				}
				b.WriteString(w)
				start = -1
			}
		}
		for i := 0; i < len(s); i++ {
			if isWordByte(s[i]) {
				if start < 0 {
					start = i
				}
				continue
			}
			flush(i)
			b.WriteByte(s[i])
		}
		flush(len(s))
		return b.String()
	}
	out := d
	out.Basis, out.Transfer.Mechanism = words(d.Basis), words(d.Transfer.Mechanism)
	out.Reasons = make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		out.Reasons[i] = words(r)
	}
	out.Fields = make(map[string]gateway.Operator, len(d.Fields))
	for p, op := range d.Fields {
		out.Fields[words(p)] = op
	}
	return out
}

func isWordByte(c byte) bool {
	return c == '~' || c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// sameDecision compares what a decision says (not whether it was cached).
func sameDecision(a, b gateway.Decision) bool {
	return a.Allow == b.Allow && a.Basis == b.Basis && a.Transfer == b.Transfer &&
		slices.Equal(a.Reasons, b.Reasons) && maps.Equal(a.Fields, b.Fields)
}
