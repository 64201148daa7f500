package audit

import (
	"fmt"
	"reflect"
	"sync"
	"unsafe"

	"github.com/dgwproject/dgw/gateway"
)

// parts memoises the encoded decision records of entries ("parts"), for
// the codec that encodes by hand.
//
// A part is the Avro encoding of one recipient's Decision within an entry.
// It depends on the recipient, the event type (whose contract scope lists
// the withheld paths), the outcome, the held reason and the decision, and
// on nothing of the event itself. Deciders hand out cached decisions
// interned (equal decisions share one Fields map and one Reasons slice,
// see gateway.Decision), refusals repeat, and the scope paths are most of
// a part's bytes (about 10 KB an entry with 16 recipients): building and
// encoding every part of every entry afresh was most of the auditor's
// cost. The parts are shared by all chains of an auditor.
//
// A decision is keyed by the identity of its Fields map and Reasons
// slice, which gateway.Decision declares read-only, and by the value of
// its other fields. The memo keeps every map and slice whose identity is
// in one of its keys alive, so no other map or slice can take that
// identity while the key exists. A decision whose map or slice is not
// shared (an uncached one) just misses: its part is built, correct, like
// any other, and takes a place in the memo. The memo is bounded and
// forgets everything when full, like the decision interner.
type parts struct {
	mu    sync.Mutex
	m     map[partID][]part
	n     int // parts in m
	bytes int // the encodings' total length
	// Bounds: at most max parts of maxBytes together.
	max, maxBytes int
}

// Bounds of the memo. 16 recipients, a few event types and a few hundred
// distinct decisions make some thousand parts of under 1 KB each.
const (
	maxParts     = 8192
	maxPartBytes = 8 << 20
)

// partID is the words of a part's key: the map finds the parts with the
// same recipient and decision identity by hashing them as plain memory,
// and a lookup then compares the strings of each candidate's key, which
// are mostly the same strings and compare at once. Hashing the strings
// too made a lookup cost as much as 150 ns, 16 per entry.
type partID struct {
	r        *gateway.Recipient // registered recipients are immutable (see scratch.paths)
	fields   uintptr            // identity of Decision.Fields; the part keeps the map alive
	reasons  *string            // identity of Decision.Reasons' array, kept alive by the key
	nreasons int
}

// partKey is everything a part encodes, with partID.
type partKey struct {
	id        partID
	eventType string
	outcome   gateway.Outcome
	reason    gateway.Reason // held parts only
	// The decision's other recorded fields, by value.
	basis, mechanism, revision string
	crossBorder                bool
}

type part struct {
	key    partKey
	fields map[string]gateway.Operator // holds the map whose address is in the key
	enc    []byte                      // never changed once memoised
}

func newParts() *parts { return &parts{m: map[partID][]part{}, max: maxParts, maxBytes: maxPartBytes} }

func keyOf(r *gateway.RecipientResult, eventType string) partKey {
	d := &r.Decision
	k := partKey{id: partID{r: r.Recipient, fields: reflect.ValueOf(d.Fields).Pointer(), reasons: unsafe.SliceData(d.Reasons),
		nreasons: len(d.Reasons)}, eventType: eventType, outcome: r.Outcome,
		basis: d.Basis, mechanism: d.Transfer.Mechanism, revision: d.Revision, crossBorder: d.Transfer.CrossBorder}
	if r.Outcome == gateway.OutcomeHeld {
		// Only a held part records the reason (decisionOf).
		k.reason = r.Reason
	}
	return k
}

// lookup returns the memoised part of k, or nil. p.mu is held.
func (p *parts) lookup(k *partKey) []byte {
	cs := p.m[k.id]
	for i := range cs {
		if cs[i].key == *k {
			return cs[i].enc
		}
	}
	return nil
}

// encode appends to dst the part of every result, from the memo or built
// and memoised; s builds the missing ones. It returns dst and the parts'
// total length.
func (p *parts) encode(dst [][]byte, s *scratch, results []gateway.RecipientResult, eventType string) ([][]byte, int, error) {
	start := len(dst)
	p.mu.Lock()
	for i := range results {
		k := keyOf(&results[i], eventType)
		dst = append(dst, p.lookup(&k))
	}
	p.mu.Unlock()
	total := 0
	var missed bool
	for i, enc := range dst[start:] {
		if enc == nil {
			r := &results[i]
			s.reset(1)
			d := s.decisionOf(r, eventType)
			b, err := appendDecision(nil, &d)
			if err != nil {
				return dst, 0, fmt.Errorf("decisions[%d]: %w", i, err)
			}
			dst[start+i], enc, missed = b, b, true
		}
		total += len(enc)
	}
	if missed {
		p.mu.Lock()
		for i, enc := range dst[start:] {
			k := keyOf(&results[i], eventType)
			if p.lookup(&k) != nil {
				continue
			}
			if p.n >= p.max || p.bytes+len(enc) > p.maxBytes {
				clear(p.m)
				p.n, p.bytes = 0, 0
			}
			p.m[k.id] = append(p.m[k.id], part{key: k, fields: results[i].Decision.Fields, enc: enc})
			p.n++
			p.bytes += len(enc)
		}
		p.mu.Unlock()
	}
	return dst, total, nil
}
