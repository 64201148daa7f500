package audit

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
)

// Problem kinds: how the first broken record of a chain was broken.
const (
	// Modified: a record no longer matches its own hash or MAC, no longer
	// decodes, or its successor's back-link no longer matches it.
	Modified = "modified"
	// Removed: the chain skips sequence numbers that do not appear later.
	Removed = "removed"
	// Inserted: a record that is not part of the chain sits among its
	// records: it claims a position another intact record holds, or it
	// does not decode while the chain continues intact around it.
	Inserted = "inserted"
	// Reordered: the chain skips sequence numbers that appear later: all
	// records are there, in the wrong order.
	Reordered = "reordered"
)

// Record is one record of the audit topic as read from Kafka.
type Record struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
}

// Problem names a broken record.
type Problem struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
	Chain     string `json:"chain,omitempty"`
	Seq       int64  `json:"seq,omitempty"` // the seq the record claims; 0 when unknown
	Kind      string `json:"kind"`
	Detail    string `json:"detail"`
}

func (p Problem) String() string {
	s := fmt.Sprintf("%s/%d@%d", p.Topic, p.Partition, p.Offset)
	if p.Chain != "" {
		s += fmt.Sprintf(" chain %s seq %d", p.Chain, p.Seq)
	}
	return s + ": " + p.Kind + ": " + p.Detail
}

// Head is the last intact record of a chain. Heads saved from one
// verification and passed to the next (WithAnchors) detect records
// removed from the end of a chain, which no hash chain shows by itself.
type Head struct {
	Chain     string `json:"chain"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
	Seq       int64  `json:"seq"`
	Hash      string `json:"hash"` // hex
}

// Report is the outcome of a verification.
type Report struct {
	Topic   string `json:"topic"`
	Records int    `json:"records"`
	Chains  int    `json:"chains"`
	// Duplicates counts records identical to an earlier record of their
	// chain: written twice by a retried produce request. They add nothing
	// and change nothing, so they are not tampering.
	Duplicates int `json:"duplicates"`
	// ExpiredStarts counts chains whose first records were deleted by the
	// topic's retention (their first retained record is not seq 1 and the
	// partition no longer starts at offset 0).
	ExpiredStarts int `json:"expired_starts"`
	// Unverified counts records of broken chains after their first
	// problem.
	Unverified int    `json:"unverified"`
	MACChecked bool   `json:"mac_checked"`
	KeyID      string `json:"key_id,omitempty"`
	// Problems holds the first broken record of every broken chain, and
	// records that belong to no chain, by partition and offset.
	Problems []Problem `json:"problems"`
	Heads    []Head    `json:"heads"`
}

// OK reports whether the trail is intact.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// First returns the first broken record, or nil.
func (r *Report) First() *Problem {
	if len(r.Problems) == 0 {
		return nil
	}
	return &r.Problems[0]
}

// VerifyOption configures a Verifier.
type VerifyOption interface{ applyVerify(*Verifier) }

type verifyFunc func(*Verifier)

func (f verifyFunc) applyVerify(v *Verifier) { f(v) }

// WithKey checks every record's MAC and key id against key. Without it
// only hashes and links are checked, and whoever can write the topic can
// rewrite a chain and recompute its hashes undetected.
func WithKey(key Key) VerifyOption { return verifyFunc(func(v *Verifier) { v.key = key }) }

// WithAnchors names heads of an earlier verification; each must still be
// in the trail with the same hash, unless retention expired it.
func WithAnchors(heads []Head) VerifyOption {
	return verifyFunc(func(v *Verifier) {
		for _, h := range heads {
			v.anchors[h.Chain] = h
		}
	})
}

// WithWindow sets how many recent records per chain are remembered to
// recognise duplicates (default 4096), and how many records after a
// chain's first problem are read to classify it (default 100000).
func WithWindow(duplicates, lookahead int) VerifyOption {
	return verifyFunc(func(v *Verifier) { v.window, v.lookahead = duplicates, lookahead })
}

// Verifier checks the hash chains of an audit topic. Feed it every record
// of the topic with Add, each partition in offset order (partitions in any
// order), after declaring the partition with Partition; then Finish.
//
// Each record must decode, match its own hash (SHA-256 over the domain
// string, the single-object header and every field before hash) and, with
// a key, its MAC; and continue its chain: seq one more than the previous
// record of the chain, prev_hash equal to that record's hash. A chain
// lives on one partition and starts at seq 1 with a zero prev_hash, unless
// the partition's start was deleted by retention.
type Verifier struct {
	codec     *Codec
	key       Key
	anchors   map[string]Head
	window    int
	lookahead int

	topic    string
	logStart map[int]int64
	chains   map[string]*chainState
	report   Report
	loose    []Problem // problems outside any chain
}

type chainState struct {
	id        string
	partition int
	started   bool
	next      int64
	prev      [32]byte
	lastOff   int64
	recent    map[int64][32]byte
	anomaly   *anomaly
	broken    bool
	anchorHit bool
}

// obs is what the verifier keeps of one record.
type obs struct {
	offset  int64
	decoded bool
	valid   bool
	seq     int64
	prev    [32]byte
	hash    [32]byte
	detail  string
}

type anomaly struct {
	first   obs
	buf     []obs
	next    int64
	prev    [32]byte
	lastOff int64
	recent  map[int64][32]byte
}

// NewVerifier returns a verifier for records of topic.
func NewVerifier(codec *Codec, topic string, opts ...VerifyOption) (*Verifier, error) {
	if codec == nil {
		return nil, errors.New("audit: verifier needs the audit codec")
	}
	v := &Verifier{codec: codec, topic: topic, anchors: map[string]Head{}, window: 4096, lookahead: 100_000,
		logStart: map[int]int64{}, chains: map[string]*chainState{}}
	for _, o := range opts {
		o.applyVerify(v)
	}
	if v.window < 1 || v.lookahead < 1 {
		return nil, fmt.Errorf("audit: verifier windows must be positive, got %d and %d", v.window, v.lookahead)
	}
	v.report = Report{Topic: topic, MACChecked: v.key.Valid(), KeyID: v.key.ID(), Problems: []Problem{}, Heads: []Head{}}
	return v, nil
}

// Partition declares a partition and the first offset it still holds
// (its log start offset); records before it were deleted by retention.
func (v *Verifier) Partition(partition int, logStart int64) { v.logStart[partition] = logStart }

// Add checks one record.
func (v *Verifier) Add(r Record) {
	v.report.Records++
	o, chainID := v.observe(r)
	if chainID == "" {
		v.loose = append(v.loose, Problem{Topic: v.topic, Partition: r.Partition, Offset: r.Offset, Kind: Inserted,
			Detail: "not an audit entry and keyed by no chain: " + o.detail})
		return
	}
	cs := v.chains[chainID]
	if cs == nil {
		cs = &chainState{id: chainID, partition: r.Partition, next: 1, recent: map[int64][32]byte{}}
		v.chains[chainID] = cs
	}
	if cs.partition != r.Partition {
		v.loose = append(v.loose, Problem{Topic: v.topic, Partition: r.Partition, Offset: r.Offset, Chain: chainID, Seq: o.seq,
			Kind: Inserted, Detail: fmt.Sprintf("chain %s lives on partition %d; a chain never changes partition", chainID, cs.partition)})
		return
	}
	switch {
	case cs.broken:
		v.report.Unverified++
		return
	case cs.anomaly != nil:
		cs.anomaly.buf = append(cs.anomaly.buf, o)
		if len(cs.anomaly.buf) >= v.lookahead {
			v.classify(cs)
		}
		return
	}
	if !cs.started && o.valid && o.seq > 1 && v.logStart[r.Partition] > 0 {
		// The chain began in records that retention deleted.
		v.report.ExpiredStarts++
		cs.next, cs.prev = o.seq, o.prev
	}
	if o.valid && o.seq == cs.next && o.prev == cs.prev {
		v.accept(cs, o)
		return
	}
	if o.valid && o.seq < cs.next {
		if h, ok := cs.recent[o.seq]; ok && h == o.hash {
			v.report.Duplicates++
			return
		}
	}
	cs.anomaly = &anomaly{first: o, next: cs.next, prev: cs.prev, lastOff: cs.lastOff, recent: cs.recent}
}

func (v *Verifier) accept(cs *chainState, o obs) {
	cs.started = true
	cs.recent[o.seq] = o.hash
	delete(cs.recent, o.seq-int64(v.window))
	cs.next, cs.prev, cs.lastOff = o.seq+1, o.hash, o.offset
	if a, ok := v.anchors[cs.id]; ok && a.Seq == o.seq {
		cs.anchorHit = true
		if hex.EncodeToString(o.hash[:]) != a.Hash {
			v.report.Problems = append(v.report.Problems, v.problem(cs, o, Modified,
				"this record was the chain's head at an earlier verification with another hash: it was rewritten since"))
			cs.broken = true
		}
	}
}

// observe decodes a record into what the verifier keeps of it.
func (v *Verifier) observe(r Record) (obs, string) {
	o := obs{offset: r.Offset}
	e, err := v.codec.Decode(r.Value)
	if e == nil {
		o.detail = "does not decode as an audit entry (" + err.Error() + ")"
		return o, string(r.Key)
	}
	o.decoded, o.seq, o.prev, o.hash = true, e.Seq, e.PrevHash, e.Hash
	switch {
	case errors.Is(err, ErrNotCanonical):
		o.detail = "its bytes are not the encoding dgw writes: they were changed"
	case !HashOK(r.Value, e):
		o.detail = "its content does not match its hash: it was changed"
	case v.key.Valid() && e.KeyID != v.key.ID():
		o.detail = fmt.Sprintf("it claims audit key %s, not the verifying key %s", e.KeyID, v.key.ID())
	case v.key.Valid() && !v.key.verify(e.Hash, e.MAC):
		o.detail = "its MAC is not valid under the audit key: it was changed and its hash recomputed, or forged"
	default:
		o.valid = true
	}
	return o, e.ChainID
}

func (v *Verifier) problem(cs *chainState, o obs, kind, detail string) Problem {
	return Problem{Topic: v.topic, Partition: cs.partition, Offset: o.offset, Chain: cs.id, Seq: o.seq, Kind: kind, Detail: detail}
}

// classify names what happened at a chain's first anomaly, looking at the
// records of the chain that follow it.
func (v *Verifier) classify(cs *chainState) {
	an := cs.anomaly
	cs.anomaly, cs.broken = nil, true
	v.report.Unverified += len(an.buf)
	a := an.first
	fits := func(b obs) bool { return b.valid && b.seq == an.next && b.prev == an.prev }
	later := func(pred func(obs) bool) (obs, bool) {
		for _, b := range an.buf {
			if pred(b) {
				return b, true
			}
		}
		return obs{}, false
	}
	add := func(o obs, kind, detail string) {
		v.report.Problems = append(v.report.Problems, v.problem(cs, o, kind, detail))
	}
	if b, ok := later(fits); ok && (!a.valid || a.seq == an.next || a.seq < an.next) {
		add(a, Inserted, fmt.Sprintf("%s; the chain continues intact with seq %d at offset %d", describe(a), b.seq, b.offset))
		return
	}
	switch {
	case !a.valid:
		add(a, Modified, a.detail)
	case a.seq < an.next:
		if _, taken := an.recent[a.seq]; taken {
			add(a, Inserted, fmt.Sprintf("seq %d is already in the chain with another content", a.seq))
		} else {
			add(a, Inserted, fmt.Sprintf("seq %d comes after seq %d", a.seq, an.next-1))
		}
	case a.seq == an.next:
		// a is intact but does not link to the record before it.
		if an.next == 1 || !cs.started {
			add(a, Inserted, "the first record of the chain does not start it (its prev_hash is not zero)")
			return
		}
		prev := obs{offset: an.lastOff, seq: an.next - 1}
		add(prev, Modified, fmt.Sprintf("its hash no longer matches the prev_hash of seq %d at offset %d: it was changed and its hash recomputed", a.seq, a.offset))
	default: // a.seq > an.next: records missing here
		if b, ok := later(func(b obs) bool { return b.valid && b.seq == a.seq && b.hash != a.hash }); ok {
			add(a, Inserted, fmt.Sprintf("seq %d is claimed again by the record at offset %d", a.seq, b.offset))
			return
		}
		if b, ok := later(func(b obs) bool { return b.valid && b.seq == an.next }); ok {
			add(a, Reordered, fmt.Sprintf("seq %d comes before seq %d, which follows at offset %d", a.seq, an.next, b.offset))
			return
		}
		if an.next == a.seq-1 {
			add(a, Removed, fmt.Sprintf("seq %d is missing before it", an.next))
		} else {
			add(a, Removed, fmt.Sprintf("seqs %d to %d are missing before it", an.next, a.seq-1))
		}
	}
}

func describe(o obs) string {
	if !o.valid {
		return o.detail
	}
	return fmt.Sprintf("an intact record claiming seq %d does not fit the chain", o.seq)
}

// Finish classifies what is pending and returns the report.
func (v *Verifier) Finish() *Report {
	for _, cs := range v.chains {
		if cs.anomaly != nil {
			v.classify(cs)
		}
	}
	v.report.Chains = len(v.chains)
	for id, a := range v.anchors {
		cs := v.chains[id]
		if cs != nil && (cs.anchorHit || cs.broken) {
			continue
		}
		if a.Offset < v.logStart[a.Partition] {
			continue // expired by retention
		}
		detail := fmt.Sprintf("the chain's head at an earlier verification, seq %d, is gone: records were removed from its end", a.Seq)
		p := Problem{Topic: v.topic, Partition: a.Partition, Offset: a.Offset, Chain: id, Seq: a.Seq, Kind: Removed, Detail: detail}
		if cs != nil && cs.started && cs.next-1 > a.Seq {
			continue // not reached only because the anchor seq was below the chain's retained start
		}
		v.report.Problems = append(v.report.Problems, p)
	}
	v.report.Problems = append(v.report.Problems, v.loose...)
	sort.SliceStable(v.report.Problems, func(i, j int) bool {
		pi, pj := v.report.Problems[i], v.report.Problems[j]
		if pi.Partition != pj.Partition {
			return pi.Partition < pj.Partition
		}
		return pi.Offset < pj.Offset
	})
	for _, cs := range v.chains {
		if cs.started {
			h := Head{Chain: cs.id, Partition: cs.partition, Offset: cs.lastOff, Seq: cs.next - 1, Hash: hex.EncodeToString(cs.prev[:])}
			v.report.Heads = append(v.report.Heads, h)
		}
	}
	sort.Slice(v.report.Heads, func(i, j int) bool { return v.report.Heads[i].Chain < v.report.Heads[j].Chain })
	r := v.report
	return &r
}
