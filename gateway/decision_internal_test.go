package gateway

import (
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
