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
	dc.Event = gateway.EventContext{Type: s.EventType, Route: []string{}}
	dc.Subject = gateway.SubjectContext{Consents: map[string]bool{}, Objections: []string{}}
	dc.Schema = gateway.SchemaContext{Name: s.Name}
	var id identity
	var births []time.Time
	minorType := false
	var errs []error
	visit(s, v, func(f *gateway.Field, x any) {
		if f.Role != "" {
			switch f.Role {
			case "event_id":
				id.eventID, _ = x.(string)
			case "subject_id":
				id.subjectID, _ = x.(string)
			case "occurred_at":
				id.occurredAt, _ = x.(time.Time)
			case "birth_date":
				if t, ok := x.(time.Time); ok {
					births = append(births, t)
				}
			case "passenger_type":
				if str, _ := x.(string); str == "CHD" || str == "INF" || str == "UMNR" {
					minorType = true
				}
			}
		}
		if f.Context == "" {
			return
		}
		str, _ := x.(string)
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
			dc.Event.EmployerPaid, _ = x.(bool)
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
				b, isBool := x.(bool)
				if !isBool && x != nil {
					errs = append(errs, fmt.Errorf("field %s: consent context needs a boolean", f.Path))
				}
				dc.Subject.Consents[name] = b
			}
		}
	})
	if len(dc.Event.Route) > 0 {
		dc.Event.OriginCountry = dc.Event.Route[0]
		dc.Event.DestinationCountry = dc.Event.Route[len(dc.Event.Route)-1]
	}
	if id.eventID == "" {
		errs = append(errs, errors.New("event_id is empty"))
	}
	if id.subjectID == "" {
		errs = append(errs, errors.New("subject_id (passenger id) is empty"))
	}
	at := id.occurredAt
	if at.IsZero() {
		at = time.Now()
	}
	dc.Subject.Minor = minorType
	for _, b := range births {
		if AgeAt(b, at) < 18 {
			dc.Subject.Minor = true
		}
	}
	return id, errors.Join(errs...)
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
