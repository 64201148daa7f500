package synth

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// RequestType is the Event.Type of the subject requests a generator with
// Options.SubjectRequests emits: the dgw.event_type of
// schemas/subject_request.avsc.
const RequestType = "subject_request"

// MarketingPurpose is the purpose of a request about marketing as a
// passenger states it ("send me offers", "unsubscribe"): campaigns,
// advertising, surveys and research (privacy policy §7.1.1(5)-(8), §16).
// `dgw subject request` expands it to those purposes.
const MarketingPurpose = "marketing"

// CrossBorderConsent is the consent to a transfer abroad that states the
// transfer (Law 94-V Art 8 and 16; GDPR Art 49(1)(a)).
const CrossBorderConsent = "cross_border"

// ObjectablePurposes are the purposes generated objections name: direct
// marketing and research (GDPR Art 21(2), (6)). Objections to purposes
// that rest on the contract or a legal duty are a DPO's decision, not
// traffic.
func ObjectablePurposes() []string { return []string{"campaign", "advertising", "survey", "research"} }

// RequestLead is how many stream positions a subject request is moved
// ahead of where it happens, never past an earlier event of its own
// passenger: a consumer that reads the subject topic apart from the event
// topics (dgw does) has then usually applied a consent before the
// passenger's first event arrives, as the booking system's consent store
// would have it in production.
const RequestLead = 64

// Shares of subject requests, in percent. Most booking flows ask for the
// consent to cross-border transfer, since no country is listed as ensuring
// protection under Law 94-V Art 16; fewer passengers opt into marketing.
const (
	shareCrossBorder       = 85 // of all passengers, minors by their guardian
	shareMarketing         = 30 // of adults
	shareMarketingMember   = 55 // of adult frequent flyers
	shareResearchOnly      = 10 // of the other adults: research and surveys only
	shareWithdrawMarketing = 10 // of those who gave it, after the trip
	shareObject            = 3  // of adults, after the trip
	shareWithdrawTransfer  = 2  // of those who gave it, after the trip
	shareErase             = 1  // of adults, after the trip
)

// newRequestRand returns the source of request decisions: apart from the
// event source, so that switching requests on leaves the events as they
// are.
func newRequestRand(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x6467777265717374)) // "dgwreqst"
}

// withRequests adds the trip's subject requests to its events: consents
// given at booking before everything, and after the trip, before the
// later account activity (evs[after:]), withdrawals, objections and
// erasures.
func (g *Generator) withRequests(t *trip, evs []Event, after int) []Event {
	if g.req == nil {
		return evs
	}
	segs := t.segments()
	later := segs[len(segs)-1].arr.Add(time.Duration(1+g.req.IntN(72)) * time.Hour)
	var pre, post []Event
	for _, p := range t.pax {
		adult := p.paxType == "ADT" && p.age(t.bookedAt) >= 18
		ch := bookingChannel(t.channel)
		transfer := g.reqChance(shareCrossBorder)
		if transfer {
			pre = append(pre, request(p, t.bookedAt, "consent-manager", "consent_given", CrossBorderConsent, ch, false))
		}
		marketing, research := false, false
		if adult {
			marketing = g.reqChance(either(p.ff != "", shareMarketingMember, shareMarketing))
			research = !marketing && g.reqChance(shareResearchOnly)
		}
		switch {
		case marketing:
			pre = append(pre, request(p, t.bookedAt, "consent-manager", "consent_given", MarketingPurpose, ch, false))
		case research:
			pre = append(pre, request(p, t.bookedAt, "consent-manager", "consent_given", "research", ch, false))
		}
		if !adult {
			continue
		}
		switch {
		case marketing && g.reqChance(shareWithdrawMarketing):
			post = append(post, request(p, later, "crm", "consent_withdrawn", MarketingPurpose, "unsubscribe_link", false))
		case research && g.reqChance(shareWithdrawMarketing):
			post = append(post, request(p, later, "crm", "consent_withdrawn", "research", "email", false))
		}
		if g.reqChance(shareObject) {
			purpose := ObjectablePurposes()[g.req.IntN(len(ObjectablePurposes()))]
			post = append(post, request(p, later, "crm", "objection", purpose, "email", false))
		}
		if transfer && g.reqChance(shareWithdrawTransfer) {
			post = append(post, request(p, later, "crm", "consent_withdrawn", CrossBorderConsent, "contact_centre", false))
		}
		if g.reqChance(shareErase) {
			// §8, §10.3: a written request with a copy of an identity document.
			post = append(post, request(p, later, "crm", "erasure", "", "written", true))
		}
	}
	out := make([]Event, 0, len(evs)+len(pre)+len(post))
	out = append(append(out, pre...), evs[:after]...)
	return append(append(out, post...), evs[after:]...)
}

func (g *Generator) reqChance(percent int) bool { return g.req.IntN(100) < percent }

// bookingChannel is the subject request channel of a booking channel.
func bookingChannel(booking string) string {
	switch booking {
	case "website", "mobile_app":
		return "website"
	case "contact_centre":
		return "contact_centre"
	}
	return "written" // a signed form at the agency, the desk or the employer
}

// request is one subject request event; event_id is set when emitted.
func request(p *person, at time.Time, source, kind, purpose, channel string, verified bool) Event {
	return Event{Type: RequestType, Key: p.id, Value: map[string]any{
		"event_id": "", "occurred_at": ms(at), "source_system": source, "passenger_id": p.id, "kind": kind,
		"purpose": nilIfEmpty(purpose), "channel": channel, "verified_identity": verified,
	}}
}

// push queues a subject request RequestLead positions ahead, but behind
// every queued record of its own passenger, so that it never applies to
// an event that happened before it, and requests of one passenger keep
// their order.
func (g *Generator) push(r Event) {
	g.reqs++
	r.Value["event_id"] = fmt.Sprintf("sr-%d-%d", g.seed, g.reqs)
	at := 0
	for i := len(g.out) - 1; i >= 0; i-- {
		if g.out[i].Key == r.Key {
			at = i + 1
			break
		}
	}
	g.out = append(g.out, Event{})
	copy(g.out[at+1:], g.out[at:])
	g.out[at] = r
}
