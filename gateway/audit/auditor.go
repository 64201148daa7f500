package audit

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
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
	// parts is the memo of encoded decisions, shared by the chains; nil
	// when the codec does not encode by hand.
	parts *parts

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

	// Reused from entry to entry under mu: nothing of an entry outlives
	// Records but its encoding, which is copied out.
	scratch scratch
	// spare is the bytes of an earlier record of the chain that the
	// pipeline handed back (Recycle) once the broker acknowledged it; the
	// next entry is sealed into them.
	spare []byte
}

// scratch holds the buffers one chain reuses for every entry it builds.
type scratch struct {
	entry     Entry // holds no field values, like everything here
	buf       []byte
	decisions []Decision
	disclosed []DisclosedField
	withheld  []string
	released  []string
	strs      []string // backing for the decisions' optional strings
	traceID   string   // the entry's
	// paths caches the sorted scope paths of a recipient for an event
	// type. Recipients are immutable once registered (redact compiles its
	// programs per recipient the same way); a registry reload brings new
	// ones, so the cache is dropped when it grows past maxPaths.
	paths map[pathsKey][]string
	macs  *keyMACs
	// enc holds an entry's parts (parts.go) and seal what sealParts reuses.
	enc  [][]byte
	seal sealScratch
}

type pathsKey struct {
	r         *gateway.Recipient
	eventType string
}

const maxPaths = 1024

func (s *scratch) scopePaths(r *gateway.Recipient, eventType string) []string {
	k := pathsKey{r, eventType}
	if p, ok := s.paths[k]; ok {
		return p
	}
	if s.paths == nil || len(s.paths) >= maxPaths {
		s.paths = map[pathsKey][]string{}
	}
	p := r.Scope.Paths(eventType)
	s.paths[k] = p
	return p
}

// str returns a pointer to a copy of v in strs, which was sized before
// the entry was built so that no pointer handed out is moved.
func (s *scratch) str(v string) *string {
	s.strs = append(s.strs, v)
	return &s.strs[len(s.strs)-1]
}

// reset prepares the buffers for an entry of n decisions.
func (s *scratch) reset(n int) {
	if need := 3 * n; cap(s.strs) < need {
		s.strs = make([]string, 0, need)
	}
	clear(s.strs)
	s.strs = s.strs[:0]
	clear(s.decisions)
	s.decisions = s.decisions[:0]
	s.disclosed, s.withheld = s.disclosed[:0], s.withheld[:0]
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
	a := &Auditor{codec: codec, key: key, topic: topic, instance: cfg.prefix + "-" + cfg.instance,
		now: cfg.now, chains: map[int]*chain{}}
	if codec.hand {
		a.parts = newParts()
	}
	return a, nil
}

// Instance returns the prefix shared by this auditor's chain ids.
func (a *Auditor) Instance() string { return a.instance }

func (a *Auditor) chain(worker int) *chain {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.chains[worker]
	if c == nil {
		c = &chain{id: a.instance + "-w" + strconv.Itoa(worker), scratch: scratch{macs: a.key.macs(), seal: sealScratch{sum: sha256.New()}}}
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
	e := &c.scratch.entry
	*e = Entry{
		ChainID: c.id, Seq: c.seq + 1, PrevHash: c.prev, KeyID: a.key.ID(), Kind: KindDecision,
		RecordedAt: a.now().UTC().Truncate(time.Millisecond),
		EventID:    ev.ID, EventType: ev.Schema.EventType, OccurredAt: ev.OccurredAt.UTC().Truncate(time.Millisecond),
		Purpose:     ev.Context.Event.Purpose,
		SourceTopic: ev.Msg.Topic, SourcePartition: int32(ev.Msg.Partition), SourceOffset: ev.Msg.Offset,
		Subject: c.scratch.macs.pseudonymOf(ev.SubjectID),
	}
	sc := &c.scratch
	sc.reset(len(in.Results))
	if in.TraceID != "" {
		// Not in strs: building a part resets those (parts.encode).
		sc.traceID = in.TraceID
		e.TraceID = &sc.traceID
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
		if in.Results[i].Recipient == nil {
			return nil, fmt.Errorf("audit: event %s: result %d names no recipient", ev.ID, i)
		}
	}
	var raw []byte
	var err error
	if a.parts != nil {
		var n int
		sc.enc, n, err = a.parts.encode(sc.enc[:0], sc, in.Results, ev.Schema.EventType)
		if err == nil {
			raw, err = a.codec.sealParts(e, sc.enc, n, sc.macs, &sc.seal, c.spare)
			c.spare = nil // handed out with the record until Recycle returns it
		}
		clear(sc.enc) // the memo's bytes, not held past the call
	} else {
		for i := range in.Results {
			sc.decisions = append(sc.decisions, sc.decisionOf(&in.Results[i], ev.Schema.EventType))
		}
		e.Decisions = sc.decisions
		var buf []byte
		raw, buf, err = a.codec.seal(e, sc.macs, sc.buf)
		sc.buf = buf
	}
	if err != nil {
		return nil, fmt.Errorf("audit: event %s: %w", ev.ID, err)
	}
	c.seq, c.prev = e.Seq, e.Hash
	if !in.Correction {
		c.lastEvent, c.lastSeq = ev, e.Seq
	}
	return []gateway.Disclosure{{Topic: a.topic, Key: []byte(c.id), Value: raw}}, nil
}

// Recycle takes back the bytes of records that Records returned for
// worker, once the pipeline no longer needs them: the sink acknowledged
// them and nothing holds them. The worker's next entry is written into
// them instead of into a new allocation of ~10 KB.
func (a *Auditor) Recycle(worker int, recs []gateway.Disclosure) {
	if worker < 0 || len(recs) == 0 {
		return
	}
	c := a.chain(worker)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range recs {
		if cap(r.Value) > cap(c.spare) {
			c.spare = r.Value[:0]
		}
	}
}

// decisionOf records one recipient's result: what was delivered with which
// operator, what the contract scope would have allowed but was withheld,
// and why. No field value and no error text (which could only repeat what
// the reason code says) is recorded. The decision's slices live in s until
// the next entry.
func (s *scratch) decisionOf(r *gateway.RecipientResult, eventType string) Decision {
	rc := r.Recipient
	d := Decision{
		RecipientID: rc.ID, RecipientName: rc.Name, RecipientType: rc.Type, RecipientCountry: rc.Country,
		Outcome: string(r.Outcome), PolicyRevision: r.Decision.Revision, CrossBorder: r.Decision.Transfer.CrossBorder,
		Reasons: r.Decision.Reasons,
	}
	if r.Outcome == gateway.OutcomeHeld {
		d.Reason = s.str(string(r.Reason))
	}
	if b := r.Decision.Basis; b != "" {
		d.Basis = s.str(b)
	}
	if m := r.Decision.Transfer.Mechanism; m != "" {
		d.Mechanism = s.str(m)
	}
	// released and the scope paths are both sorted: withheld is the merge
	// difference, as the released set was before (issue #7).
	s.released = s.released[:0]
	if r.Outcome == gateway.OutcomeDelivered {
		for p, op := range r.Decision.Fields {
			if op != gateway.OpDrop {
				s.released = append(s.released, p)
			}
		}
		slices.Sort(s.released)
		start := len(s.disclosed)
		for _, p := range s.released {
			s.disclosed = append(s.disclosed, DisclosedField{Path: p, Operator: string(r.Decision.Fields[p])})
		}
		d.Disclosed = s.disclosed[start:len(s.disclosed):len(s.disclosed)]
	}
	start, i := len(s.withheld), 0
	for _, p := range s.scopePaths(rc, eventType) {
		for i < len(s.released) && s.released[i] < p {
			i++
		}
		if i < len(s.released) && s.released[i] == p {
			continue
		}
		s.withheld = append(s.withheld, p)
	}
	d.Withheld = s.withheld[start:len(s.withheld):len(s.withheld)]
	return d
}
