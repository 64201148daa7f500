package codec

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/schema"
)

type identity struct {
	eventID    string
	subjectID  string
	occurredAt time.Time
}

// Context extracts the decision context of an event value. It reads only
// the fields annotated with "context" and, for the minor flag, the
// birth_date and passenger_type roles; no value of any other field is read.
func Context(s *schema.Schema, v map[string]any) (gateway.DecisionContext, error) {
	var dc gateway.DecisionContext
	_, err := extract(s, v, &dc)
	return dc, err
}

func extract(s *schema.Schema, v map[string]any, dc *gateway.DecisionContext) (identity, error) {
	var x extractor
	x.init(s, dc)
	visit(s, v, x.leaf)
	return x.finish()
}

// extractor builds a decision context from the annotated leaves of one
// event, handed to it in document order: by visit over a decoded value, or
// by a program while it decodes.
type extractor struct {
	dc        *gateway.DecisionContext
	id        identity
	births    []time.Time
	birthBuf  [2]time.Time
	minorType bool
	errs      []error
}

func (x *extractor) init(s *schema.Schema, dc *gateway.DecisionContext) {
	dc.Event = gateway.EventContext{Type: s.EventType, Route: []string{}}
	dc.Subject = gateway.SubjectContext{Consents: map[string]bool{}, Objections: []string{}}
	dc.Schema = gateway.SchemaContext{Name: s.Name}
	x.dc = dc
	x.births = x.birthBuf[:0]
}

// leaf takes the value of one annotated leaf.
func (x *extractor) leaf(f *gateway.Field, v any) {
	dc := x.dc
	if f.Role != "" {
		switch f.Role {
		case "event_id":
			x.id.eventID, _ = v.(string)
		case "subject_id":
			x.id.subjectID, _ = v.(string)
		case "occurred_at":
			x.id.occurredAt, _ = v.(time.Time)
		case "birth_date":
			if t, ok := v.(time.Time); ok {
				x.births = append(x.births, t)
			}
		case "passenger_type":
			if str, _ := v.(string); str == "CHD" || str == "INF" || str == "UMNR" {
				x.minorType = true
			}
		}
	}
	if f.Context == "" {
		return
	}
	str, _ := v.(string)
	switch f.Context {
	case "event.purpose":
		dc.Event.Purpose = str
	case "event.point_of_sale":
		dc.Event.PointOfSale = str
	case "event.booking_channel":
		dc.Event.BookingChannel = str
	case "event.agency_code":
		dc.Event.AgencyCode = str
	case "event.corporate_account":
		dc.Event.CorporateAccount = str
	case "event.employer_paid":
		dc.Event.EmployerPaid, _ = v.(bool)
	case "event.route":
		if str != "" && (len(dc.Event.Route) == 0 || dc.Event.Route[len(dc.Event.Route)-1] != str) {
			dc.Event.Route = append(dc.Event.Route, str)
		}
	case "subject.citizenship":
		dc.Subject.Citizenship = str
	case "subject.residence":
		dc.Subject.Residence = str
	default:
		if name, ok := strings.CutPrefix(f.Context, schema.ConsentPrefix); ok {
			b, isBool := v.(bool)
			if !isBool && v != nil {
				x.errs = append(x.errs, fmt.Errorf("field %s: consent context needs a boolean", f.Path))
			}
			dc.Subject.Consents[name] = b
		}
	}
}

// finish derives what needs every leaf: origin and destination, the minor
// flag, and checks the identity.
func (x *extractor) finish() (identity, error) {
	dc, id := x.dc, x.id
	if len(dc.Event.Route) > 0 {
		dc.Event.OriginCountry = dc.Event.Route[0]
		dc.Event.DestinationCountry = dc.Event.Route[len(dc.Event.Route)-1]
	}
	if id.eventID == "" {
		x.errs = append(x.errs, errors.New("event_id is empty"))
	}
	if id.subjectID == "" {
		x.errs = append(x.errs, errors.New("subject_id (passenger id) is empty"))
	}
	at := id.occurredAt
	if at.IsZero() {
		at = time.Now()
	}
	dc.Subject.Minor = x.minorType
	for _, b := range x.births {
		if AgeAt(b, at) < 18 {
			dc.Subject.Minor = true
		}
	}
	return id, errors.Join(x.errs...)
}

// AgeAt returns the age in whole years of someone born on birth at t.
func AgeAt(birth, t time.Time) int {
	age := t.Year() - birth.Year()
	if t.Month() < birth.Month() || (t.Month() == birth.Month() && t.Day() < birth.Day()) {
		age--
	}
	return age
}

// visit calls fn for every annotated leaf (context or role) of v in
// document order, descending arrays element by element.
func visit(s *schema.Schema, v map[string]any, fn func(f *gateway.Field, x any)) {
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, x := range orderedFields(s, prefix, m) {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			f, ok := s.Field(p)
			if !ok {
				continue
			}
			if f.Leaf {
				if f.Context != "" || f.Role != "" {
					fn(&f, x)
				}
				continue
			}
			switch y := x.(type) {
			case map[string]any:
				walk(p, y)
			case []any:
				for _, e := range y {
					if em, ok := e.(map[string]any); ok {
						walk(p, em)
					}
				}
			}
		}
	}
	walk("", v)
}

// orderedFields iterates m in schema field order.
func orderedFields(s *schema.Schema, prefix string, m map[string]any) func(func(string, any) bool) {
	return func(yield func(string, any) bool) {
		for _, name := range s.AnnotatedChildren(prefix) {
			if x, ok := m[name]; ok {
				if !yield(name, x) {
					return
				}
			}
		}
	}
}
