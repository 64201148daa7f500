// Package synth generates realistic, diverse and deterministic passenger
// events for every event type of schemas/: bookings
// (one event per passenger, passengers of one booking sharing the record
// locator), check-ins with travel documents, card payments, baggage claims,
// special-assistance requests, loyalty activity, corporate trips and web
// sessions; with Options.SubjectRequests also the passengers' subject
// requests (consents, withdrawals, objections, erasures).
//
// Events come in stories: a trip is booked (after a web session when booked
// online), paid, checked in, sometimes with assistance, a baggage claim or
// loyalty accrual afterwards. A few stories run at once and their events
// interleave, while each passenger's events keep their order. Routes cover
// domestic Kazakhstan and flights to and from Germany, the United Kingdom,
// Türkiye, the UAE, China, India, Central Asia and, by connection, France
// and the United States. Passengers include children, infants and
// unaccompanied minors, corporate travellers of the registry's employer
// (corporate account CORP-STEPPE-ENERGY) and bookings by the registry's
// travel agency (agency code 96123456).
//
// Every personal value is a recognisable canary, so that tests can search
// logs, topics and telemetry for leaks: see Canaries, CanaryFields,
// ContainsCanary and CanaryMarkers.
//
// The same Options give the same stream: the generator draws from a
// math/rand/v2 PCG source seeded with Options.Seed and never reads the
// wall clock.
package synth

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// Event is one generated event.
type Event struct {
	// Type is the event type, the dgw.event_type of the schema (booking, ...).
	Type string
	// Key is the passenger id: the Kafka record key. It is personal data.
	Key string
	// Value is the event in the normalised form of gateway/codec, valid for
	// schemas/<Type>.avsc: every field present, nil for null.
	Value map[string]any
}

// Options configure a Generator.
type Options struct {
	// Seed selects the stream; the same options give the same events.
	Seed int64
	// Start is the time of the first story. Zero means DefaultStart, so the
	// stream never depends on the wall clock.
	Start time.Time
	// Types restricts the stream to these event types (see EventTypes);
	// empty means all. Filtering drops the other events from the same
	// stream: the events that remain are identical, event ids included.
	Types []string
	// SubjectRequests adds the passengers' data-subject requests to the
	// stream as events of type RequestType (schemas/subject_request.avsc,
	// keyed by passenger id; Types does not filter them): at booking most
	// passengers consent to cross-border transfer and some to marketing
	// (MarketingPurpose) or research; after some trips a passenger
	// withdraws, objects to a marketing purpose or asks for erasure. A
	// request comes before every event it applies to (see RequestLead).
	// The other events stay the same, event ids included.
	SubjectRequests bool
}

// DefaultStart is the time of the first story when Options.Start is zero.
func DefaultStart() time.Time { return time.Date(2026, 11, 2, 6, 0, 0, 0, time.UTC) }

// EventTypes lists the event types the generator produces.
func EventTypes() []string {
	return []string{"booking", "checkin", "payment", "baggage", "assistance", "loyalty", "corporate", "websession"}
}

// ErrUnknownType is returned by Options.Validate for a type the generator
// cannot produce.
var ErrUnknownType = errors.New("unknown event type")

// Validate reports options New would reject.
func (o Options) Validate() error {
	for _, t := range o.Types {
		if !slices.Contains(EventTypes(), t) {
			return fmt.Errorf("types: %w %q, expected one of %v", ErrUnknownType, t, EventTypes())
		}
	}
	return nil
}

// concurrent is how many stories interleave.
const concurrent = 4

// Generator produces the event stream. It is not safe for concurrent use.
type Generator struct {
	rnd    *rand.Rand
	seed   int64
	tag    string // the seed in base 36, part of passenger ids
	clock  time.Time
	want   map[string]bool // nil: every type
	active [][]Event
	made   uint64     // events drawn so far, including filtered ones
	pax    int        // passengers created
	notes  int        // free texts written
	out    []Event    // drawn, not yet returned
	req    *rand.Rand // subject request decisions; nil: no requests
	reqs   int        // subject requests emitted
}

// New returns a generator for o. It panics when o.Validate fails: options
// are the caller's constants; validate user input with Options.Validate.
func New(o Options) *Generator {
	if err := o.Validate(); err != nil {
		panic("synth.New: " + err.Error())
	}
	start := o.Start
	if start.IsZero() {
		start = DefaultStart()
	}
	g := &Generator{
		rnd:   rand.New(rand.NewPCG(uint64(o.Seed), 0x64677773796e7468)), // "dgwsynth"
		seed:  o.Seed,
		tag:   strconv.FormatUint(uint64(o.Seed), 36),
		clock: start.UTC().Truncate(time.Millisecond),
	}
	if len(o.Types) > 0 {
		g.want = map[string]bool{}
		for _, t := range o.Types {
			g.want[t] = true
		}
	}
	if o.SubjectRequests {
		g.req = newRequestRand(o.Seed)
	}
	return g
}

// Next returns the next event of the stream.
func (g *Generator) Next() Event {
	for len(g.out) == 0 || g.req != nil && len(g.out) <= RequestLead {
		g.step()
	}
	ev := g.out[0]
	g.out[0] = Event{}
	g.out = g.out[1:]
	return ev
}

// step draws the next event of the interleaved stories into g.out, with
// the subject requests that come before it in its story (only a new
// story starts with requests) or right after it. Requests never take a
// draw of g.rnd, so the events are the same with and without them.
func (g *Generator) step() {
	for len(g.active) < concurrent {
		s := g.story()
		for len(s) > 0 && s[0].Type == RequestType {
			g.push(s[0])
			s = s[1:]
		}
		g.active = append(g.active, s)
	}
	i := g.rnd.IntN(len(g.active))
	ev := g.active[i][0]
	rest := g.active[i][1:]
	g.made++
	if g.want == nil || g.want[ev.Type] {
		ev.Value["event_id"] = fmt.Sprintf("ev-%d-%d", g.seed, g.made)
		g.out = append(g.out, ev)
	}
	for len(rest) > 0 && rest[0].Type == RequestType {
		g.push(rest[0])
		rest = rest[1:]
	}
	g.active[i] = rest
	if len(rest) == 0 {
		g.active = slices.Delete(g.active, i, i+1)
	}
}

// story advances the clock and plays one trip.
func (g *Generator) story() []Event {
	g.clock = g.clock.Add(time.Duration(1+g.rnd.IntN(20))*time.Minute + time.Duration(g.rnd.IntN(60000))*time.Millisecond)
	return g.play(g.newTrip(g.clock))
}

// Random helpers.

func (g *Generator) chance(percent int) bool { return g.rnd.IntN(100) < percent }

// either returns a when cond holds, else b.
func either(cond bool, a, b int) int {
	if cond {
		return a
	}
	return b
}

func (g *Generator) between(lo, hi int) int { return lo + g.rnd.IntN(hi-lo+1) }

func pick[T any](g *Generator, xs []T) T { return xs[g.rnd.IntN(len(xs))] }

// weighted picks an index with probability proportional to w(i).
func (g *Generator) weighted(n int, w func(i int) int) int {
	total := 0
	for i := range n {
		total += w(i)
	}
	r := g.rnd.IntN(total)
	for i := range n {
		if r -= w(i); r < 0 {
			return i
		}
	}
	return n - 1
}

// choose picks one of the string choices by weight.
type choice struct {
	s string
	w int
}

func (g *Generator) choose(cs ...choice) string {
	return cs[g.weighted(len(cs), func(i int) int { return cs[i].w })].s
}

// minutes returns a duration of lo..hi minutes with second precision.
func (g *Generator) minutes(lo, hi int) time.Duration {
	return time.Duration(g.between(lo*60, hi*60)) * time.Second
}

// digits returns n random decimal digits.
func (g *Generator) digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.rnd.IntN(10))
	}
	return string(b)
}

// code returns n random characters of a booking-code alphabet (no Y, I, O,
// 0 or 1, so no code can spell a canary marker).
func (g *Generator) code(n int) string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXZ23456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.rnd.IntN(len(alphabet))]
	}
	return string(b)
}

// note makes a free text recognisable.
func (g *Generator) note(text string) string {
	g.notes++
	return fmt.Sprintf("%s (canary note %d)", text, g.notes)
}

// nilIfEmpty maps "" to null.
func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func anys(xs []string) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// date truncates t to its UTC day, the normalised form of an Avro date.
func date(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// ms truncates t to the millisecond, the precision of timestamp-millis.
func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }
