package audit

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/dgwproject/dgw/gateway"
)

// Auditor implements gateway.Auditor: it turns the decisions about an
// event into one audit entry and links it into the hash chain of the
// pipeline worker that handled the event.
//
// # Chains and order
//
// Each Auditor (one per dgw process) starts a fresh chain per worker,
// named <prefix>-<random instance id>-w<worker>, and uses the chain id as
// the record key, so the murmur2 partitioner puts a whole chain on one
// partition of the audit topic. The pipeline writes a worker's entries one
// call at a time and only after the previous call's entry was
// acknowledged (gateway.AuditInput), and an event's decisions travel in
// one Kafka record, which the broker appends atomically: a chain
// therefore lands in its partition in sequence order. Chains of other
// workers and other processes interleave with it; that is expected.
//
// A restarted process never continues an old chain: it starts new ones,
// and the old chains simply end.
type Auditor struct {
	codec    *Codec
	key      Key
	topic    string
	instance string
	now      func() time.Time

	mu     sync.Mutex
	chains map[int]*chain
}

var _ gateway.Auditor = (*Auditor)(nil)

type chain struct {
	mu        sync.Mutex
	id        string
	seq       int64
	prev      [32]byte
	lastEvent *gateway.Event // the event of the last decision entry
	lastSeq   int64          // its seq, for a correction
}

// Option configures an Auditor.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	prefix   string
	instance string
	now      func() time.Time
}

// WithChainPrefix starts every chain id, e.g. with the Kafka client id, so
// chains tell which deployment wrote them. Default "dgw".
func WithChainPrefix(p string) Option { return optionFunc(func(c *config) { c.prefix = p }) }

// WithInstance fixes the instance part of chain ids instead of a random
// one; for tests that need stable chain ids.
func WithInstance(id string) Option { return optionFunc(func(c *config) { c.instance = id }) }

// WithClock sets the clock for recorded_at. Default time.Now.
func WithClock(now func() time.Time) Option { return optionFunc(func(c *config) { c.now = now }) }

func (c *config) validate() error {
	if c.prefix == "" || c.instance == "" {
		return errors.New("chain prefix and instance must not be empty")
	}
	if c.now == nil {
		return errors.New("clock must not be nil")
	}
	return nil
}

// New returns an auditor writing entries of codec's schema, keyed and
// MACed with key, to topic.
func New(codec *Codec, key Key, topic string, opts ...Option) (*Auditor, error) {
	if codec == nil || !key.Valid() || topic == "" {
		return nil, errors.New("audit: codec, key and topic are required")
	}
	cfg := config{prefix: "dgw", now: time.Now}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if cfg.instance == "" {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("audit: instance id: %w", err)
		}
		cfg.instance = hex.EncodeToString(b[:])
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return &Auditor{codec: codec, key: key, topic: topic, instance: cfg.prefix + "-" + cfg.instance,
		now: cfg.now, chains: map[int]*chain{}}, nil
}

// Instance returns the prefix shared by this auditor's chain ids.
func (a *Auditor) Instance() string { return a.instance }

func (a *Auditor) chain(worker int) *chain {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.chains[worker]
	if c == nil {
		c = &chain{id: a.instance + "-w" + strconv.Itoa(worker)}
		a.chains[worker] = c
	}
	return c
}

// Records returns the event's audit entry as one record for the audit
// topic and advances the worker's chain.
func (a *Auditor) Records(in *gateway.AuditInput) ([]gateway.Disclosure, error) {
	if in == nil || in.Event == nil {
		return nil, errors.New("audit: no event")
	}
	if in.Worker < 0 {
		return nil, fmt.Errorf("audit: negative worker %d", in.Worker)
	}
	ev := in.Event
	c := a.chain(in.Worker)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := Entry{
		ChainID: c.id, Seq: c.seq + 1, PrevHash: c.prev, KeyID: a.key.ID(), Kind: KindDecision,
		RecordedAt: a.now().UTC().Truncate(time.Millisecond),
		EventID:    ev.ID, EventType: ev.Schema.EventType, OccurredAt: ev.OccurredAt.UTC().Truncate(time.Millisecond),
		Purpose:     ev.Context.Event.Purpose,
		SourceTopic: ev.Msg.Topic, SourcePartition: int32(ev.Msg.Partition), SourceOffset: ev.Msg.Offset,
		Subject:   a.key.Pseudonym(ev.SubjectID),
		Decisions: make([]Decision, 0, len(in.Results)),
	}
	if in.TraceID != "" {
		t := in.TraceID
		e.TraceID = &t
	}
	if in.Correction {
		if c.lastEvent != ev {
			return nil, fmt.Errorf("audit: correction for event %s, which worker %d did not audit last", ev.ID, in.Worker)
		}
		e.Kind = KindCorrection
		s := c.lastSeq
		e.CorrectsSeq = &s
	}
	for i := range in.Results {
		r := &in.Results[i]
		if r.Recipient == nil {
			return nil, fmt.Errorf("audit: event %s: result %d names no recipient", ev.ID, i)
		}
		e.Decisions = append(e.Decisions, decisionOf(r, ev.Schema.EventType))
	}
	raw, err := a.codec.seal(&e, a.key)
	if err != nil {
		return nil, fmt.Errorf("audit: event %s: %w", ev.ID, err)
	}
	c.seq, c.prev = e.Seq, e.Hash
	if !in.Correction {
		c.lastEvent, c.lastSeq = ev, e.Seq
	}
	return []gateway.Disclosure{{Topic: a.topic, Key: []byte(c.id), Value: raw}}, nil
}

// decisionOf records one recipient's result: what was delivered with which
// operator, what the contract scope would have allowed but was withheld,
// and why. No field value and no error text (which could only repeat what
// the reason code says) is recorded.
func decisionOf(r *gateway.RecipientResult, eventType string) Decision {
	rc := r.Recipient
	d := Decision{
		RecipientID: rc.ID, RecipientName: rc.Name, RecipientType: rc.Type, RecipientCountry: rc.Country,
		Outcome: string(r.Outcome), PolicyRevision: r.Decision.Revision, CrossBorder: r.Decision.Transfer.CrossBorder,
		Disclosed: []DisclosedField{}, Withheld: []string{}, Reasons: append([]string{}, r.Decision.Reasons...),
	}
	if r.Outcome == gateway.OutcomeHeld {
		reason := string(r.Reason)
		d.Reason = &reason
	}
	if b := r.Decision.Basis; b != "" {
		d.Basis = &b
	}
	if m := r.Decision.Transfer.Mechanism; m != "" {
		d.Mechanism = &m
	}
	released := map[string]bool{}
	if r.Outcome == gateway.OutcomeDelivered {
		for _, p := range r.Decision.Released() {
			d.Disclosed = append(d.Disclosed, DisclosedField{Path: p, Operator: string(r.Decision.Fields[p])})
			released[p] = true
		}
	}
	for _, p := range rc.Scope.Paths(eventType) {
		if !released[p] {
			d.Withheld = append(d.Withheld, p)
		}
	}
	return d
}
