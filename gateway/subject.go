package gateway

import (
	"sort"
	"sync"
)

// SubjectRequestKind is what a data subject asked for (privacy policy §8,
// §10, §16).
type SubjectRequestKind string

// Request kinds, as in schemas/subject_request.avsc.
const (
	ConsentGiven       SubjectRequestKind = "consent_given"
	ConsentWithdrawn   SubjectRequestKind = "consent_withdrawn"
	Objection          SubjectRequestKind = "objection"
	ObjectionWithdrawn SubjectRequestKind = "objection_withdrawn"
	Erasure            SubjectRequestKind = "erasure"
)

// SubjectRequest is one request about one passenger.
type SubjectRequest struct {
	SubjectID string
	Kind      SubjectRequestKind
	Purpose   string // empty for erasure
}

// SubjectStore is the materialised state of subject requests: for each
// passenger, the consents given or withdrawn per purpose, the purposes
// objected to, and erasure. It implements SubjectState and is safe for
// concurrent use. Its keys are passenger ids, so it lives in memory only and
// is rebuilt from the compacted subject topic at start.
type SubjectStore struct {
	mu       sync.RWMutex
	subjects map[string]*subjectEntry
}

type subjectEntry struct {
	consents   map[string]bool
	objections map[string]bool
	erased     bool
}

var _ SubjectState = (*SubjectStore)(nil)

// NewSubjectStore returns an empty store.
func NewSubjectStore() *SubjectStore {
	return &SubjectStore{subjects: map[string]*subjectEntry{}}
}

// Apply records a request. Erasure is final: later consents do not undo it.
func (s *SubjectStore) Apply(r SubjectRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.subjects[r.SubjectID]
	if e == nil {
		e = &subjectEntry{consents: map[string]bool{}, objections: map[string]bool{}}
		s.subjects[r.SubjectID] = e
	}
	switch r.Kind {
	case ConsentGiven:
		e.consents[r.Purpose] = true
	case ConsentWithdrawn:
		e.consents[r.Purpose] = false
	case Objection:
		e.objections[r.Purpose] = true
	case ObjectionWithdrawn:
		delete(e.objections, r.Purpose)
	case Erasure:
		e.erased = true
	}
}

// Forget undoes what requests of kind's family recorded for purpose: the
// consent (given or withdrawn) or the objection to purpose becomes
// unrecorded, or the erasure is lifted. It mirrors a tombstone on the
// compacted subject topic, which deletes the latest request of that family
// for that passenger and purpose.
func (s *SubjectStore) Forget(subjectID string, kind SubjectRequestKind, purpose string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.subjects[subjectID]
	if e == nil {
		return
	}
	switch kind {
	case ConsentGiven, ConsentWithdrawn:
		delete(e.consents, purpose)
	case Objection, ObjectionWithdrawn:
		delete(e.objections, purpose)
	case Erasure:
		e.erased = false
	}
	if len(e.consents) == 0 && len(e.objections) == 0 && !e.erased {
		delete(s.subjects, subjectID)
	}
}

// Lookup returns the subject flags of a passenger; an unknown passenger has
// no recorded consents or objections and is not erased.
func (s *SubjectStore) Lookup(subjectID string) SubjectContext {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := SubjectContext{Consents: map[string]bool{}, Objections: []string{}}
	e := s.subjects[subjectID]
	if e == nil {
		return out
	}
	for k, v := range e.consents {
		out.Consents[k] = v
	}
	for k := range e.objections {
		out.Objections = append(out.Objections, k)
	}
	sort.Strings(out.Objections)
	out.Erased = e.erased
	return out
}

// Len returns the number of passengers with recorded requests.
func (s *SubjectStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.subjects)
}
