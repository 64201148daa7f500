package gateway

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCheckScopeReportsReleases: checkScope gives CheckScope's answer and,
// for an allowed decision, whether it releases anything (Releases).
func TestCheckScopeReportsReleases(t *testing.T) {
	r := &Recipient{ID: "r1", Scope: Scope{"booking": {"a": {OpKeep}, "b": {OpKeep, OpMask}}}}
	for _, c := range []struct {
		name     string
		d        Decision
		releases bool
		err      string
	}{
		{name: "refused", d: Decision{Fields: map[string]Operator{"z": OpKeep}}},
		{name: "allowed, nothing named", d: Decision{Allow: true}},
		{name: "allowed, drops only", d: Decision{Allow: true, Fields: map[string]Operator{"a": OpDrop, "z": OpDrop}}},
		{name: "allowed in scope", d: Decision{Allow: true, Fields: map[string]Operator{"a": OpKeep, "b": OpMask, "z": OpDrop}}, releases: true},
		{name: "path outside scope", d: Decision{Allow: true, Fields: map[string]Operator{"a": OpKeep, "z": OpKeep}},
			releases: true, err: "recipient r1, booking field z with keep"},
		{name: "operator outside scope", d: Decision{Allow: true, Fields: map[string]Operator{"a": OpMask}},
			releases: true, err: "field a with mask"},
		{name: "unknown operator", d: Decision{Allow: true, Fields: map[string]Operator{"b": "reveal"}},
			releases: true, err: `unknown operator "reveal"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			releases, err := c.d.checkScope(r, "booking")
			want := c.d.CheckScope(r, "booking")
			if c.err != "" {
				require.ErrorIs(t, err, ErrScopeViolation)
				assert.ErrorContains(t, err, c.err)
				assert.Equal(t, want.Error(), err.Error())
			} else {
				require.NoError(t, err)
				require.NoError(t, want)
			}
			assert.Equal(t, c.releases, releases)
			if c.d.Allow && c.err == "" {
				assert.Equal(t, c.d.Releases(), releases, "as Releases says")
			}
		})
	}
}

// TestScopeMemo: a cached decision that passed the scope check for a
// recipient and an event type is answered from the memo; any other
// recipient or event type is checked, and a violation is found every time
// and never memoised, as is every uncached decision.
func TestScopeMemo(t *testing.T) {
	r1 := &Recipient{ID: "r1", Scope: Scope{"booking": {"a": {OpKeep}}, "checkin": {"b": {OpKeep}}}}
	r2 := &Recipient{ID: "r2", Scope: Scope{"booking": {"b": {OpKeep}}}}
	shared := map[string]Operator{"a": OpKeep, "z": OpDrop}
	d := Decision{Allow: true, Fields: shared, Cached: true}
	m := newScopeMemo()
	for range 3 {
		releases, err := m.check(&d, r1, "booking")
		require.NoError(t, err)
		assert.True(t, releases)
	}
	assert.Len(t, m.m, 1, "the pass is memoised")
	for range 3 {
		_, err := m.check(&d, r2, "booking")
		require.ErrorIs(t, err, ErrScopeViolation, "another recipient's scope")
		assert.ErrorContains(t, err, "recipient r2, booking field a with keep")
		_, err = m.check(&d, r1, "checkin")
		require.ErrorIs(t, err, ErrScopeViolation, "another event type's scope")
	}
	assert.Len(t, m.m, 1, "violations are not memoised")

	// The same fields in another map, not from a cache, or refused: checked.
	uncached := Decision{Allow: true, Fields: map[string]Operator{"a": OpKeep}}
	releases, err := m.check(&uncached, r1, "booking")
	require.NoError(t, err)
	assert.True(t, releases)
	refused := Decision{Fields: shared, Cached: true}
	releases, err = m.check(&refused, r2, "booking")
	require.NoError(t, err)
	assert.False(t, releases)
	assert.Len(t, m.m, 1)

	// Bounded: full, it forgets everything.
	m.m = make(map[scopeKey]scopePass, maxScopeMemo)
	for i := range maxScopeMemo {
		m.m[scopeKey{fields: uintptr(i + 1), eventType: "x"}] = scopePass{}
	}
	_, err = m.check(&d, r1, "booking")
	require.NoError(t, err)
	assert.Len(t, m.m, 1)
}

// BenchmarkScopeCheck: the scope check of an allowed cached decision of
// 12 fields (2 dropped) against a 40-path scope, walked or memoised.
func BenchmarkScopeCheck(b *testing.B) {
	scope := map[string][]Operator{}
	fields := map[string]Operator{}
	for j := range 40 {
		p := fmt.Sprintf("section%d.field_%02d", j%5, j)
		scope[p] = []Operator{OpKeep, OpMask}
		if j%3 == 0 {
			fields[p] = OpKeep
		}
	}
	fields["x.dropped"], fields["y.dropped"] = OpDrop, OpDrop
	r := &Recipient{ID: "r1", Scope: Scope{"checkin": scope}}
	d := Decision{Allow: true, Fields: fields, Cached: true}
	b.Run("walk", func(b *testing.B) {
		for b.Loop() {
			if ok, err := d.checkScope(r, "checkin"); !ok || err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("memo", func(b *testing.B) {
		m := newScopeMemo()
		for b.Loop() {
			if ok, err := m.check(&d, r, "checkin"); !ok || err != nil {
				b.Fatal(err)
			}
		}
	})
}
