package gateway

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
)

// Operator says how a released field is transformed for a recipient.
type Operator string

// Operators, from most to least revealing. Drop is the same as not naming
// the field; it exists so policies can be explicit.
const (
	OpKeep       Operator = "keep"       // value as is
	OpGeneralise Operator = "generalise" // date → year, birth date → age band
	OpMask       Operator = "mask"       // card number → last four, e-mail → partial
	OpHash       Operator = "hash"       // HMAC-SHA256 pseudonym with the recipient's key
	OpDrop       Operator = "drop"       // withheld
)

// Valid reports whether o is a known operator.
func (o Operator) Valid() bool {
	switch o {
	case OpKeep, OpGeneralise, OpMask, OpHash, OpDrop:
		return true
	}
	return false
}

// Transfer describes the cross-border aspect of a decision.
type Transfer struct {
	CrossBorder bool   `json:"cross_border"`
	Mechanism   string `json:"mechanism,omitempty"` // e.g. adequacy, scc, bcr, art49_contract, kz_consent
}

// Decision is the policy's answer for one (event, recipient).
//
// Deciders cache decisions and hand the same Fields map and Reasons slice
// to every caller whose context has the same key, concurrently: treat a
// Decision as read-only, and copy Fields before changing it. A decider
// never changes the Fields map of a decision it handed out with Cached
// set: the pipeline memoises the scope check of such a decision by the
// map's identity (scopeMemo).
type Decision struct {
	Allow    bool                `json:"allow"`
	Fields   map[string]Operator `json:"fields"`
	Basis    string              `json:"basis,omitempty"`
	Transfer Transfer            `json:"transfer"`
	Reasons  []string            `json:"reasons"`
	Revision string              `json:"revision"`
	// Cached reports that the decision came from the decision cache; it
	// feeds metrics only and is not part of the decision.
	Cached bool `json:"-"`
}

// Released returns the released field paths in sorted order (drop excluded).
func (d *Decision) Released() []string {
	out := make([]string, 0, len(d.Fields))
	for p, op := range d.Fields {
		if op != OpDrop {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// Releases reports whether the decision releases any field (drop excluded).
func (d *Decision) Releases() bool {
	for _, op := range d.Fields {
		if op != OpDrop {
			return true
		}
	}
	return false
}

// CheckScope verifies the second fence: every field the decision releases
// must be in the recipient's contract scope for this event type, with an
// operator the contract allows. It returns an error wrapping
// ErrScopeViolation naming the first offending path (never a value).
func (d *Decision) CheckScope(r *Recipient, eventType string) error {
	_, err := d.checkScope(r, eventType)
	return err
}

// checkScope is CheckScope, and also reports for an allowed decision
// whether it releases any field (Releases), found in the same walk over
// Fields: the pipeline needs both for every allowed pair.
func (d *Decision) checkScope(r *Recipient, eventType string) (releases bool, err error) {
	if !d.Allow {
		return false, nil
	}
	// The common case, everything in scope, needs no sorting; the sorted
	// walk below finds the first offending path when there is one.
	scope := r.Scope[eventType]
	ok := true
	for p, op := range d.Fields {
		if op == OpDrop {
			continue
		}
		releases = true
		if !op.Valid() || !slices.Contains(scope[p], op) {
			ok = false
			break
		}
	}
	if ok {
		return releases, nil
	}
	return true, d.scopeViolation(r, eventType)
}

// scopeViolation names the first released path, in sorted order, that is
// outside r's scope for eventType.
func (d *Decision) scopeViolation(r *Recipient, eventType string) error {
	for _, p := range d.Released() {
		op := d.Fields[p]
		if !op.Valid() {
			return fmt.Errorf("field %s: unknown operator %q: %w", p, op, ErrScopeViolation)
		}
		if !r.Scope.Allows(eventType, p, op) {
			return fmt.Errorf("recipient %s, %s field %s with %s: %w", r.ID, eventType, p, op, ErrScopeViolation)
		}
	}
	return nil
}

// scopeMemo remembers, for one pipeline worker, the cached decisions that
// passed the scope check for a recipient and an event type, and whether
// they release anything: the check walks every field of the decision, for
// every (event, recipient), while a decider's cache hands out a few
// hundred distinct decisions.
//
// A decision is known by the identity of its Fields map, which Decision
// declares read-only; only decisions from a cache (Cached) are memoised,
// whose maps the decider shares and never changes. The memo keeps every
// map whose identity is in one of its keys alive, so no other map can take
// that identity while the key exists; the key keeps the recipient alive
// too (registered recipients are not changed). A decision that fails the
// check is never memoised: it is checked, and held, every time. The memo
// is bounded and forgets everything when full.
type scopeMemo struct {
	m map[scopeKey]scopePass
}

type scopeKey struct {
	fields    uintptr // identity of Decision.Fields
	r         *Recipient
	eventType string
}

type scopePass struct {
	fields   map[string]Operator // holds the map whose address is in the key
	releases bool
}

// maxScopeMemo bounds a worker's memo: distinct cached decisions times
// recipients times event types.
const maxScopeMemo = 4096

func newScopeMemo() *scopeMemo { return &scopeMemo{m: map[scopeKey]scopePass{}} }

// check is d.checkScope(r, eventType), from the memo when d was seen.
func (m *scopeMemo) check(d *Decision, r *Recipient, eventType string) (releases bool, err error) {
	if m == nil || !d.Cached || !d.Allow {
		return d.checkScope(r, eventType)
	}
	k := scopeKey{fields: reflect.ValueOf(d.Fields).Pointer(), r: r, eventType: eventType}
	if p, ok := m.m[k]; ok {
		return p.releases, nil
	}
	if releases, err = d.checkScope(r, eventType); err != nil {
		return releases, err
	}
	if len(m.m) >= maxScopeMemo {
		clear(m.m)
	}
	m.m[k] = scopePass{fields: d.Fields, releases: releases}
	return releases, nil
}
