package synth_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/synth"
)

// TestSubjectRequestsLeaveEventsAlone: switching requests on adds them to
// the stream and changes nothing else, event ids included.
func TestSubjectRequestsLeaveEventsAlone(t *testing.T) {
	set := loadSet(t)
	plain := stream(t, set, synth.Options{Seed: 5}, 1500)
	g := synth.New(synth.Options{Seed: 5, SubjectRequests: true})
	var events []string
	requests := 0
	for len(events) < len(plain) {
		ev := g.Next()
		if ev.Type == synth.RequestType {
			requests++
			continue
		}
		s, _ := set.ByEventType(ev.Type)
		j, err := codec.ToJSON(s, ev.Value)
		require.NoError(t, err)
		events = append(events, ev.Type+" "+ev.Key+" "+string(j))
	}
	assert.Equal(t, plain, events)
	assert.Greater(t, requests, 100, "requests in 1,500 events")

	again := synth.New(synth.Options{Seed: 5, SubjectRequests: true})
	other := synth.New(synth.Options{Seed: 5, SubjectRequests: true})
	for range 500 {
		require.Equal(t, again.Next(), other.Next(), "deterministic per seed")
	}
}

// TestSubjectRequests checks the requests of a long stream: valid records
// of the subject_request schema, consents before every event of their
// passenger and well ahead of it, later requests after the passenger's
// earlier events, and the mix the dev stream needs.
func TestSubjectRequests(t *testing.T) {
	set := loadSet(t)
	s, ok := set.ByEventType(synth.RequestType)
	require.True(t, ok)
	g := synth.New(synth.Options{Seed: 9, SubjectRequests: true, Types: []string{"booking", "checkin", "loyalty", "websession"}})
	type seen struct {
		first, last int // positions of the passenger's first and last event so far
	}
	pax := map[string]*seen{}
	minors := map[string]bool{}
	var reqs []struct {
		at  int
		key string
		v   map[string]any
	}
	ids := map[string]bool{}
	counts := map[string]int{}
	const n = 6000
	for i := range n {
		ev := g.Next()
		id := ev.Value["event_id"].(string)
		require.False(t, ids[id], "event id %s twice", id)
		ids[id] = true
		if ev.Type != synth.RequestType {
			require.NotContains(t, []string{"subject_request"}, ev.Type)
			if p := pax[ev.Key]; p == nil {
				pax[ev.Key] = &seen{first: i, last: i}
			} else {
				p.last = i
			}
			if ev.Type == "booking" {
				if pt := ev.Value["passenger"].(map[string]any)["passenger_type"]; pt != "ADT" {
					minors[ev.Key] = true
				}
			}
			continue
		}
		// A valid record: it encodes and decodes to the same value.
		raw, err := codec.Encode(s, ev.Value)
		require.NoError(t, err)
		_, back, err := codec.Decode(set, raw)
		require.NoError(t, err)
		require.Equal(t, ev.Value, back)
		assert.Equal(t, ev.Key, ev.Value["passenger_id"])
		assert.Regexp(t, `^sr-9-\d+$`, id)
		assert.Equal(t, []string{ev.Key}, synth.Canaries(ev), "the passenger id is the request's canary")
		reqs = append(reqs, struct {
			at  int
			key string
			v   map[string]any
		}{i, ev.Key, ev.Value})
		purpose, _ := ev.Value["purpose"].(string)
		counts[fmt.Sprintf("%s %s", ev.Value["kind"], purpose)]++
	}
	t.Logf("requests: %v", counts)

	consented := map[string]bool{}
	for _, r := range reqs {
		kind, purpose := r.v["kind"].(string), r.v["purpose"]
		p := pax[r.key]
		switch kind {
		case "consent_given":
			if p != nil {
				assert.Less(t, r.at, p.first, "a consent comes before every event of its passenger")
				if r.at > 2*synth.RequestLead {
					assert.GreaterOrEqual(t, p.first-r.at, synth.RequestLead, "and well ahead of it")
				}
			}
			if purpose == synth.CrossBorderConsent {
				consented[r.key] = true
			} else {
				assert.False(t, minors[r.key], "no marketing or research consent for a minor")
			}
			assert.Equal(t, false, r.v["verified_identity"])
		case "objection":
			assert.Contains(t, synth.ObjectablePurposes(), purpose)
		case "erasure":
			assert.Nil(t, purpose)
			assert.Equal(t, "written", r.v["channel"])
			assert.Equal(t, true, r.v["verified_identity"], "§8: a written request with an identity document")
		case "consent_withdrawn":
			assert.Contains(t, []any{synth.MarketingPurpose, "research", synth.CrossBorderConsent}, purpose)
		default:
			t.Errorf("unexpected kind %s", kind)
		}
		if kind != "consent_given" {
			// After the trip: later than the passenger's booking.
			require.NotNil(t, p, "a later request follows events of its passenger")
			assert.Greater(t, r.at, p.first)
		}
	}
	// Requests of one passenger keep their story order: consents first.
	byPax := map[string][]string{}
	for _, r := range reqs {
		byPax[r.key] = append(byPax[r.key], r.v["kind"].(string))
	}
	for key, kinds := range byPax {
		given := slices.IndexFunc(kinds, func(k string) bool { return k != "consent_given" })
		if given >= 0 {
			assert.NotContains(t, kinds[given:], "consent_given", "%s: a consent after a later request", key)
		}
	}

	share := float64(len(consented)) / float64(len(pax))
	assert.InDelta(t, 0.85, share, 0.06, "most passengers consent to cross-border transfer")
	assert.Positive(t, counts["consent_given marketing"])
	assert.Positive(t, counts["consent_given research"])
	assert.Positive(t, counts["consent_withdrawn marketing"])
	assert.Positive(t, counts["erasure "])
	objections := 0
	for _, p := range synth.ObjectablePurposes() {
		objections += counts["objection "+p]
	}
	assert.Positive(t, objections)
}

// Requests carry times of their own: at booking, or after the trip.
func TestSubjectRequestTimes(t *testing.T) {
	g := synth.New(synth.Options{Seed: 2, SubjectRequests: true})
	booked := map[string]time.Time{}
	checked := 0
	for range 3000 {
		ev := g.Next()
		at := ev.Value["occurred_at"].(time.Time)
		switch {
		case ev.Type == "booking":
			if _, ok := booked[ev.Key]; !ok {
				booked[ev.Key] = ev.Value["booked_at"].(time.Time)
			}
		case ev.Type == synth.RequestType && ev.Value["kind"] != "consent_given":
			if b, ok := booked[ev.Key]; ok {
				assert.True(t, at.After(b), "a withdrawal, objection or erasure comes after the booking")
				checked++
			}
		}
	}
	assert.Positive(t, checked)
}
