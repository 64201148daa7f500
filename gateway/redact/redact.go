package redact

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/schema"
)

// ErrNotAllowed is returned by Redact for a decision that refuses
// disclosure: nothing may be encoded for it.
var ErrNotAllowed = errors.New("the decision does not allow disclosure")

// Derived is one recipient's schema for one event type.
type Derived struct {
	Recipient string
	EventType string
	Schema    *schema.Schema
	JSON      []byte // the .avsc text, indented, newline-terminated
}

// Redactor applies decisions to events and encodes each recipient's record
// with its derived schema. It is safe for concurrent use.
type Redactor struct {
	progs   map[string]map[string]*program // recipient id → event type → program
	derived []Derived
}

var _ gateway.Redactor = (*Redactor)(nil)

// New validates every recipient's contract scope against the event schemas
// of set, derives the recipient schemas and compiles the projections. It
// fails, listing every problem, when a scope names an event type no schema
// defines, a path that is not a leaf of the schema, an unknown operator, an
// operator the field's type does not support, operators that give one field
// two types, or a field with format card_security_code; and when a
// recipient whose scope allows hash has no key in keys. It never returns a
// partial redactor.
func New(set *schema.Set, recipients []*gateway.Recipient, keys Keyring) (*Redactor, error) {
	if set == nil {
		return nil, errors.New("redact: no schema set")
	}
	x := &Redactor{progs: map[string]map[string]*program{}}
	var errs []error
	for i, r := range recipients {
		if r == nil || r.ID == "" {
			errs = append(errs, fmt.Errorf("recipient #%d has no id", i+1))
			continue
		}
		if _, dup := x.progs[r.ID]; dup {
			errs = append(errs, fmt.Errorf("recipient %s is registered twice", r.ID))
			continue
		}
		progs := map[string]*program{}
		x.progs[r.ID] = progs
		types := make([]string, 0, len(r.Scope))
		for t := range r.Scope {
			types = append(types, t)
		}
		slices.Sort(types)
		hashes := false
		for _, t := range types {
			src, ok := set.ByEventType(t)
			if !ok {
				errs = append(errs, fmt.Errorf("recipient %s: event type %s in the scope: no schema defines it", r.ID, t))
				continue
			}
			p, err := compile(r, t, src, r.Scope[t])
			if err != nil {
				errs = append(errs, err)
				continue
			}
			progs[t] = p
			for _, l := range p.leaves {
				hashes = hashes || l.allowed&(1<<opHash) != 0
			}
		}
		if !hashes {
			continue
		}
		key, ok := keys.key(r.ID)
		if !ok {
			errs = append(errs, fmt.Errorf("recipient %s: the scope allows hash but there is no hash key for it (keys file entry %q or variable %s)",
				r.ID, r.ID, EnvName(r.ID)))
			continue
		}
		if len(key) < MinKeyLen {
			errs = append(errs, fmt.Errorf("recipient %s: hash key has %d bytes, need at least %d", r.ID, len(key), MinKeyLen))
			continue
		}
		pool := newHasherPool(key)
		for _, p := range progs {
			p.hashers = pool
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("redact: %w", errors.Join(errs...))
	}
	for id, progs := range x.progs {
		for t, p := range progs {
			x.derived = append(x.derived, Derived{Recipient: id, EventType: t, Schema: p.derived, JSON: p.json})
		}
	}
	slices.SortFunc(x.derived, func(a, b Derived) int {
		if c := strings.Compare(a.Recipient, b.Recipient); c != 0 {
			return c
		}
		return strings.Compare(a.EventType, b.EventType)
	})
	return x, nil
}

// Redact builds recipient r's record of event e under decision d and
// returns its single-object encoding and the derived schema's fingerprint.
//
// It checks again that every field d releases is in r's contract scope
// with that operator (an error wrapping gateway.ErrScopeViolation names
// the first one that is not). Fields the decision does not release, or
// releases with drop, are null. Errors name recipients, event types and
// field paths, never values.
func (x *Redactor) Redact(e *gateway.Event, r *gateway.Recipient, d *gateway.Decision) ([]byte, uint64, error) {
	if e == nil || r == nil || d == nil {
		return nil, 0, errors.New("redact: event, recipient and decision are required")
	}
	p := x.progs[r.ID][e.Schema.EventType]
	if p == nil {
		return nil, 0, fmt.Errorf("recipient %s has no contract scope for event type %s: %w", r.ID, e.Schema.EventType, gateway.ErrScopeViolation)
	}
	if !d.Allow {
		return nil, 0, fmt.Errorf("recipient %s, %s: %w", r.ID, e.Schema.EventType, ErrNotAllowed)
	}
	if e.Schema.Fingerprint != p.source.Fingerprint {
		return nil, 0, fmt.Errorf("recipient %s: event schema %s differs from the %s schema the recipient schema was derived from",
			r.ID, gateway.FingerprintHex(e.Schema.Fingerprint), e.Schema.EventType)
	}
	lay, _ := e.Layout.(*codec.Layout)
	if e.Value == nil && lay == nil {
		// No value, or a layout of another codec.
		return nil, 0, fmt.Errorf("recipient %s, %s: event has no value", r.ID, e.Schema.EventType)
	}
	var buf [64]opCode
	ops, err := p.resolve(d, buf[:])
	if err != nil {
		return nil, 0, err
	}
	hint := p.sizeHint.Load()
	out, err := p.encode(make([]byte, 0, hint), e, lay, ops)
	if err != nil {
		return nil, 0, fmt.Errorf("recipient %s, %s: %w", r.ID, e.Schema.EventType, err)
	}
	if n := int64(len(out)); n > hint && n <= 1<<20 {
		p.sizeHint.Store(n)
	}
	return out, p.derived.Fingerprint, nil
}

// Schema returns a recipient's derived schema for an event type.
func (x *Redactor) Schema(recipientID, eventType string) (*schema.Schema, bool) {
	p := x.progs[recipientID][eventType]
	if p == nil {
		return nil, false
	}
	return p.derived, true
}

// Schemas returns every derived schema, sorted by recipient and event type.
// The JSON texts are copies; the schemas are shared and must not be changed.
func (x *Redactor) Schemas() []Derived {
	out := slices.Clone(x.derived)
	for i := range out {
		out[i].JSON = bytes.Clone(out[i].JSON)
	}
	return out
}

// Export writes DIR/<recipient>/<event type>.avsc for each derived schema,
// creating the directories.
func Export(dir string, all []Derived) error {
	seen := map[string]bool{}
	for _, d := range all {
		if !safeName(d.Recipient) || !safeName(d.EventType) {
			return fmt.Errorf("export: recipient %q, event type %q: not usable as file names", d.Recipient, d.EventType)
		}
		key := d.Recipient + "/" + d.EventType
		if seen[key] {
			return fmt.Errorf("export: %s appears twice", key)
		}
		seen[key] = true
		sub := filepath.Join(dir, d.Recipient)
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if err := os.WriteFile(filepath.Join(sub, d.EventType+".avsc"), d.JSON, 0o644); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	return nil
}

func safeName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`+"\x00") && filepath.Base(s) == s
}
