package gateway

import (
	"sort"
	"sync"
)

// Stats counts outcomes per recipient and dead-letter reasons. It is an
// Observer; Snapshot is safe to call while the pipeline runs.
type Stats struct {
	mu         sync.Mutex
	events     int64
	byType     map[string]int64
	deadLetter map[Reason]int64
	recipients map[string]*RecipientStats
}

// RecipientStats are the counters of one recipient.
type RecipientStats struct {
	ID        string             `json:"id"`
	Type      string             `json:"type"`
	Topic     string             `json:"topic"`
	Delivered int64              `json:"delivered"`
	Refused   int64              `json:"refused"`
	Held      int64              `json:"held"`
	HeldBy    map[Reason]int64   `json:"held_by_reason,omitempty"`
	Mechanism map[string]int64   `json:"transfer_mechanisms,omitempty"`
	Operators map[Operator]int64 `json:"fields_by_operator,omitempty"`
}

// StatsSnapshot is a copy of the counters.
type StatsSnapshot struct {
	Events     int64            `json:"events"`
	ByType     map[string]int64 `json:"events_by_type"`
	DeadLetter map[Reason]int64 `json:"dead_lettered"`
	Recipients []RecipientStats `json:"recipients"`
}

// NewStats returns empty counters.
func NewStats() *Stats {
	return &Stats{byType: map[string]int64{}, deadLetter: map[Reason]int64{}, recipients: map[string]*RecipientStats{}}
}

// Observe counts r.
func (s *Stats) Observe(r *EventResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events++
	if r.DeadLetter != "" {
		s.deadLetter[r.DeadLetter]++
		return
	}
	s.byType[r.EventType]++
	for i := range r.Recipients {
		rr := &r.Recipients[i]
		rs := s.recipients[rr.Recipient.ID]
		if rs == nil {
			rs = &RecipientStats{ID: rr.Recipient.ID, Type: rr.Recipient.Type, Topic: rr.Recipient.Topic,
				HeldBy: map[Reason]int64{}, Mechanism: map[string]int64{}, Operators: map[Operator]int64{}}
			s.recipients[rr.Recipient.ID] = rs
		}
		switch rr.Outcome {
		case OutcomeDelivered:
			rs.Delivered++
			if rr.Decision.Transfer.CrossBorder {
				rs.Mechanism[rr.Decision.Transfer.Mechanism]++
			}
			for _, op := range rr.Decision.Fields {
				if op != OpDrop {
					rs.Operators[op]++
				}
			}
		case OutcomeRefused:
			rs.Refused++
		case OutcomeHeld:
			rs.Held++
			rs.HeldBy[rr.Reason]++
		}
	}
}

// Events returns how many records were handled.
func (s *Stats) Events() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events
}

// Snapshot copies the counters; recipients are sorted by id.
func (s *Stats) Snapshot() StatsSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := StatsSnapshot{Events: s.events, ByType: map[string]int64{}, DeadLetter: map[Reason]int64{}}
	for k, v := range s.byType {
		out.ByType[k] = v
	}
	for k, v := range s.deadLetter {
		out.DeadLetter[k] = v
	}
	for _, rs := range s.recipients {
		c := *rs
		c.HeldBy, c.Mechanism, c.Operators = map[Reason]int64{}, map[string]int64{}, map[Operator]int64{}
		for k, v := range rs.HeldBy {
			c.HeldBy[k] = v
		}
		for k, v := range rs.Mechanism {
			c.Mechanism[k] = v
		}
		for k, v := range rs.Operators {
			c.Operators[k] = v
		}
		out.Recipients = append(out.Recipients, c)
	}
	sort.Slice(out.Recipients, func(i, j int) bool { return out.Recipients[i].ID < out.Recipients[j].ID })
	return out
}
