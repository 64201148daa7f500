package audit

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Row is one decision about a passenger, as a subject access report shows
// it: when, to whom, what, on which basis, across which border, under
// which policy revision, and where in the trail the evidence is.
type Row struct {
	RecordedAt       time.Time        `json:"recorded_at"`
	OccurredAt       time.Time        `json:"event_time"`
	EventID          string           `json:"event_id"`
	EventType        string           `json:"event_type"`
	Purpose          string           `json:"purpose"`
	RecipientID      string           `json:"recipient_id"`
	RecipientName    string           `json:"recipient_name"`
	RecipientType    string           `json:"recipient_type"`
	RecipientCountry string           `json:"recipient_country"`
	Outcome          string           `json:"outcome"`
	Reason           string           `json:"reason,omitempty"`
	Fields           []DisclosedField `json:"fields"`
	Withheld         []string         `json:"withheld,omitempty"`
	Basis            string           `json:"basis,omitempty"`
	CrossBorder      bool             `json:"cross_border"`
	Mechanism        string           `json:"mechanism,omitempty"`
	PolicyRevision   string           `json:"policy_revision"`
	Reasons          []string         `json:"reasons,omitempty"`
	Evidence         string           `json:"evidence"` // topic/partition@offset chain seq of the entry
}

// SubjectCollector gathers one passenger's entries from an audit topic.
// Feed it every record (any order); Rows then lists the decisions.
type SubjectCollector struct {
	codec     *Codec
	pseudonym string
	seen      map[string]bool // chain/seq already taken (duplicates)
	entries   []located
	// Unreadable counts records that did not decode.
	Unreadable int
}

type located struct {
	e     *Entry
	where string
}

// NewSubjectCollector collects the entries of subjectID, found by its
// pseudonym under key.
func NewSubjectCollector(codec *Codec, key Key, subjectID string) (*SubjectCollector, error) {
	if codec == nil || !key.Valid() {
		return nil, errors.New("audit: subject report needs the audit codec and key")
	}
	if subjectID == "" {
		return nil, errors.New("audit: subject report needs a passenger id")
	}
	return &SubjectCollector{codec: codec, pseudonym: key.Pseudonym(subjectID), seen: map[string]bool{}}, nil
}

// Add reads one record of the audit topic.
func (c *SubjectCollector) Add(r Record) {
	e, err := c.codec.Decode(r.Value)
	if err != nil {
		c.Unreadable++
		return
	}
	if e.Subject != c.pseudonym {
		return
	}
	id := fmt.Sprintf("%s/%d", e.ChainID, e.Seq)
	if c.seen[id] {
		return
	}
	c.seen[id] = true
	c.entries = append(c.entries, located{e: e, where: fmt.Sprintf("%s/%d@%d chain %s seq %d", r.Topic, r.Partition, r.Offset, e.ChainID, e.Seq)})
}

// Rows lists the passenger's decisions, oldest first. Deliveries a later
// correction shows as held are listed as held. Without all, only
// deliveries are listed: the disclosures a subject access request asks
// for. A delivery recorded again for the same event and recipient with the
// same content (an event handled twice after a restart) is listed once.
func (c *SubjectCollector) Rows(all bool) []Row {
	type corrKey struct {
		chain     string
		seq       int64
		recipient string
	}
	corrected := map[corrKey]Decision{}
	for _, l := range c.entries {
		if l.e.Kind == KindCorrection && l.e.CorrectsSeq != nil {
			for _, d := range l.e.Decisions {
				corrected[corrKey{l.e.ChainID, *l.e.CorrectsSeq, d.RecipientID}] = d
			}
		}
	}
	var rows []Row
	dedup := map[string]bool{}
	for _, l := range c.entries {
		e := l.e
		if e.Kind != KindDecision {
			continue
		}
		for _, d := range e.Decisions {
			if cd, ok := corrected[corrKey{e.ChainID, e.Seq, d.RecipientID}]; ok {
				d.Outcome, d.Reason, d.Disclosed, d.Withheld = cd.Outcome, cd.Reason, cd.Disclosed, cd.Withheld
			}
			if !all && d.Outcome != "delivered" {
				continue
			}
			row := Row{
				RecordedAt: e.RecordedAt, OccurredAt: e.OccurredAt, EventID: e.EventID, EventType: e.EventType, Purpose: e.Purpose,
				RecipientID: d.RecipientID, RecipientName: d.RecipientName, RecipientType: d.RecipientType,
				RecipientCountry: d.RecipientCountry, Outcome: d.Outcome, Fields: d.Disclosed, Withheld: d.Withheld,
				CrossBorder: d.CrossBorder, PolicyRevision: d.PolicyRevision, Reasons: d.Reasons, Evidence: l.where,
			}
			row.Reason, row.Basis, row.Mechanism = deref(d.Reason), deref(d.Basis), deref(d.Mechanism)
			rows = append(rows, row)
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := &rows[i], &rows[j]
		if !a.RecordedAt.Equal(b.RecordedAt) {
			return a.RecordedAt.Before(b.RecordedAt)
		}
		if a.EventID != b.EventID {
			return a.EventID < b.EventID
		}
		return a.RecipientID < b.RecipientID
	})
	out := rows[:0]
	for _, r := range rows {
		k := rowKey(&r)
		if !dedup[k] {
			dedup[k] = true
			out = append(out, r)
		}
	}
	return out
}

func rowKey(r *Row) string {
	fs := make([]string, len(r.Fields))
	for i, f := range r.Fields {
		fs[i] = f.Path + ":" + f.Operator
	}
	slices.Sort(fs)
	return strings.Join([]string{r.EventID, r.RecipientID, r.Outcome, r.Reason, r.Basis, r.Mechanism, r.PolicyRevision,
		strings.Join(fs, ",")}, "\x00")
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
