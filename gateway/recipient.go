package gateway

import "sort"

// Recipient is one registered disclosure recipient (policies/data/recipients.json).
type Recipient struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	Type             string   `json:"type"`    // recipient class, e.g. border_authority
	Country          string   `json:"country"` // ISO 3166-1 alpha-2 where the recipient processes the data
	Topic            string   `json:"topic"`
	Safeguards       []string `json:"safeguards"` // e.g. scc, bcr, dpf, dpf_uk
	AgencyCode       string   `json:"agency_code,omitempty"`
	CorporateAccount string   `json:"corporate_account,omitempty"`
	// Scope is the contract scope: per event type, the field paths the
	// data-sharing agreement allows and the operators allowed on each.
	Scope Scope `json:"scope"`
}

// PolicyView is the recipient as the policy sees it: no scope (the gateway
// enforces it) and nothing personal.
func (r *Recipient) PolicyView() map[string]any {
	sg := r.Safeguards
	if sg == nil {
		sg = []string{}
	}
	return map[string]any{
		"id":                r.ID,
		"type":              r.Type,
		"country":           r.Country,
		"safeguards":        sg,
		"agency_code":       r.AgencyCode,
		"corporate_account": r.CorporateAccount,
	}
}

// Scope maps event type → field path → allowed operators. A path absent
// from the scope is never released to the recipient.
type Scope map[string]map[string][]Operator

// Allows reports whether the scope allows releasing path of eventType with op.
func (s Scope) Allows(eventType, path string, op Operator) bool {
	for _, allowed := range s[eventType][path] {
		if allowed == op {
			return true
		}
	}
	return false
}

// Paths returns the scoped paths of an event type, sorted.
func (s Scope) Paths(eventType string) []string {
	m := s[eventType]
	out := make([]string, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
