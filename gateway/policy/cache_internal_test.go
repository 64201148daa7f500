package policy

import (
	"context"
	"maps"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/gateway/synth"
	"github.com/dgwproject/dgw/policies"
	"github.com/dgwproject/dgw/schemas"
)

// streamContexts are the decision contexts of the first n events of the
// generated stream.
func streamContexts(t testing.TB, seed int64, n int) []gateway.DecisionContext {
	t.Helper()
	set, err := schema.Load(schemas.FS)
	require.NoError(t, err)
	g := synth.New(synth.Options{Seed: seed})
	out := make([]gateway.DecisionContext, 0, n)
	for range n {
		ev := g.Next()
		s, ok := set.ByEventType(ev.Type)
		require.True(t, ok)
		dc, err := codec.Context(s, ev.Value)
		require.NoError(t, err)
		out = append(out, dc)
	}
	return out
}

// mismatches decides every (context, recipient) pair through d's cache, as
// the pipeline does, and evaluates it again without the cache and without
// any abstraction; it returns the pairs whose decisions differ, and the
// share of cache hits. With first set, it compares hits only and stops at
// the first difference.
func mismatches(t testing.TB, d *Decider, dcs []gateway.DecisionContext, first bool) (bad []string, hitRatio float64) {
	t.Helper()
	ctx := context.Background()
	h0, m0 := d.Stats()
	for i := range dcs {
		snap := d.Snapshot()
		for _, r := range d.recipients {
			got, err := snap.Decide(ctx, &dcs[i], r)
			require.NoError(t, err)
			if first && !got.Cached {
				continue // the controls look for a wrong hit
			}
			want, err := evaluate(ctx, d.query, &dcs[i], r)
			require.NoError(t, err)
			if !sameDecision(want, got) {
				bad = append(bad, r.ID+": "+dcs[i].Key())
				if first {
					return bad, 0
				}
			}
		}
	}
	h1, m1 := d.Stats()
	return bad, float64(h1-h0) / float64(h1-h0+m1-m0)
}

// TestCacheIsExact: on the generated stream, every decision the cache
// gives (hit or miss, key abstracted or not) is the decision of the
// context itself: reasons, basis, transfer mechanism and fields. The
// controls below show the comparison fails when the key leaves out a
// member the policy reads, or merges countries the policy tells apart.
func TestCacheIsExact(t *testing.T) {
	d, err := New(t.Context(), policies.FS)
	require.NoError(t, err)
	require.NotNil(t, d.proj.canon, "the shipped policy cannot tell the merged countries apart")
	dcs := streamContexts(t, 7, 150)
	bad, hits := mismatches(t, d, dcs, false)
	assert.Empty(t, bad)
	assert.Greater(t, hits, 0.2, "the stream has hits to compare")

	// A copy of d with an empty cache and its own projection and
	// abstraction, to break.
	fresh := func(t *testing.T) *Decider {
		c := *d
		p := *d.proj
		p.members = slices.Clone(p.members)
		k := *p.canon
		k.class, k.members, k.const_ = maps.Clone(k.class), maps.Clone(k.members), maps.Clone(k.const_)
		p.canon = &k
		c.proj = &p
		var err error
		c.cache, err = newDecisionCache(1000)
		require.NoError(t, err)
		c.stats = &counters{}
		if f := c.facts; f != nil {
			cache, err := lru.New[uint64, factsEntry](1000)
			require.NoError(t, err)
			c.facts = &facts{query: f.query, decision: f.decision, cache: cache, seed: f.seed, values: map[string]factsEntry{}, views: f.views}
		}
		return &c
	}

	t.Run("key without a member the policy reads", func(t *testing.T) {
		for _, name := range []string{"event.purpose", "event.route", "subject.consents", "event.agency_code"} {
			t.Run(name, func(t *testing.T) {
				d := fresh(t)
				if i := slices.IndexFunc(d.proj.members, func(m member) bool { return memberNames[m] == name }); i < d.proj.split {
					d.proj.split--
				}
				d.proj.members = slices.DeleteFunc(d.proj.members, func(m member) bool { return memberNames[m] == name })
				bad, _ := mismatches(t, d, dcs, true)
				assert.NotEmpty(t, bad, "without %s the cache answers wrongly", name)
			})
		}
	})
	t.Run("recipients keyed without a field of the facts they read", func(t *testing.T) {
		d := fresh(t)
		require.Contains(t, d.facts.views[d.factsViews[d.views["kz-border-api"].index]], "served_countries")
		d.facts.views = append(slices.Clone(d.facts.views), []string{"regimes", "route_type"})
		d.factsViews = slices.Repeat([]int{len(d.facts.views) - 1}, len(d.recipients))
		bad, _ := mismatches(t, d, dcs, true)
		assert.NotEmpty(t, bad, "without the countries a trip serves the cache answers wrongly")
	})
	t.Run("countries the policy tells apart merged", func(t *testing.T) {
		d := fresh(t)
		k := d.proj.canon
		for class, ms := range k.members { // GB and TR join the EEA class
			if slices.Contains(ms, "FR") {
				k.members[class] = append([]string{"GB", "TR"}, ms...)
				k.class["GB"], k.class["TR"] = class, class
				delete(k.const_, "TR")
			}
		}
		bad, _ := mismatches(t, d, dcs, true)
		assert.NotEmpty(t, bad)
	})
}

// TestCacheTooManyCodes: a context with more distinct codes than the
// renaming holds is decided as it is and not cached.
func TestCacheTooManyCodes(t *testing.T) {
	d, err := New(t.Context(), policies.FS)
	require.NoError(t, err)
	r := d.views["de-border-pnr"].r
	dc := &gateway.DecisionContext{Event: gateway.EventContext{Type: "booking", Purpose: "border_control",
		PointOfSale: "FR", OriginCountry: "KZ", DestinationCountry: "DE"}}
	for i := range 40 {
		dc.Event.Route = append(dc.Event.Route, string(rune('A'+i/26))+string(rune('A'+i%26))+"X")
	}
	dc.Event.Route = append(dc.Event.Route, "IT", "FR", "DE")
	require.Nil(t, d.proj.appendKey(nil, dc))
	want, err := evaluate(t.Context(), d.query, dc, r)
	require.NoError(t, err)
	for range 2 {
		got, err := d.Decide(t.Context(), dc, r)
		require.NoError(t, err)
		assert.False(t, got.Cached)
		assert.True(t, sameDecision(want, got))
	}
	dec, shared, err := evaluateCanonical(t.Context(), d.query, d.proj.canon, d.proj.members, dc, r, nil)
	require.NoError(t, err)
	assert.False(t, shared)
	assert.True(t, sameDecision(want, dec))
}

// TestDecisionCacheMovesOnlyNearTheTail: an entry hit once in every
// size/2 insertions is never evicted, however many entries pass through
// the cache, while hits of an entry near the front do not move it (no
// write lock, no list move).
func TestDecisionCacheMovesOnlyNearTheTail(t *testing.T) {
	const size = 100
	c, err := newDecisionCache(size)
	require.NoError(t, err)
	kept := cacheKey{recipient: 1, context: 1}
	c.add(kept, "kept", gateway.Decision{Allow: true})
	for range 10 {
		_, ok := c.get(kept, []byte("kept"))
		require.True(t, ok)
	}
	require.Equal(t, uint64(1), c.ops.Load(), "hits near the front move nothing")

	next := uint64(100)
	for round := range 20 { // 1,000 insertions: ten times the size
		for range size / 2 {
			next++
			c.add(cacheKey{recipient: 2, context: next}, "other", gateway.Decision{})
		}
		dec, ok := c.get(kept, []byte("kept"))
		require.True(t, ok, "round %d: an entry hit once every size/2 insertions stays", round)
		require.True(t, dec.Allow)
	}
	_, ok := c.get(kept, []byte("other"))
	assert.False(t, ok, "the context key is compared in full")

	// Not hit for size insertions: evicted, as under an exact LRU.
	for range size {
		next++
		c.add(cacheKey{recipient: 2, context: next}, "other", gateway.Decision{})
	}
	_, ok = c.get(kept, []byte("kept"))
	assert.False(t, ok)
}

// BenchmarkDecideHitsParallel: the pipeline's warm hits, concurrently: 200
// events of the generated stream for 10 recipients (2,000 cache entries,
// as in BenchmarkPipeline/warm-audit-k10), one snapshot per event; an op
// is one event.
func BenchmarkDecideHitsParallel(b *testing.B) {
	ctx := context.Background()
	d, err := New(ctx, policies.FS)
	require.NoError(b, err)
	dcs := streamContexts(b, 1, 200)
	rs := d.recipients[:10]
	for i := range dcs {
		for _, r := range rs {
			_, err := d.Decide(ctx, &dcs[i], r)
			require.NoError(b, err)
		}
	}
	h0, m0 := d.Stats()
	var next atomic.Int64
	b.SetParallelism(2)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) * 37
		for pb.Next() {
			dc := &dcs[i%len(dcs)]
			s := d.Snapshot()
			for _, r := range rs {
				if _, err := s.Decide(ctx, dc, r); err != nil {
					b.Fatal(err)
				}
			}
			i++
		}
	})
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	h1, m1 := d.Stats()
	b.ReportMetric(100*float64(h1-h0)/float64(max(1, h1-h0+m1-m0)), "%hits")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
