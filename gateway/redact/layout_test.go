package redact

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/synth"
)

// TestLayoutMatchesValues holds the production path (records written from
// the decoder's layout of the source bytes: kept values copied, others
// decoded one by one) to the value path (records written from the fully
// decoded value), byte for byte: every event type of the synthetic stream,
// every scoped leaf, each operator, random decisions.
func TestLayoutMatchesValues(t *testing.T) {
	set := loadSet(t)
	// Per event type, three recipients whose scopes name every leaf but card
	// security codes: all kept; all hashed; strings masked, dates and
	// timestamps generalised, the rest kept.
	var rs []*gateway.Recipient
	for _, typ := range synth.EventTypes() {
		s, ok := set.ByEventType(typ)
		require.True(t, ok)
		keep, hash, other := map[string][]gateway.Operator{}, map[string][]gateway.Operator{}, map[string][]gateway.Operator{}
		for _, f := range s.Fields {
			if !f.Leaf || f.Format == FormatCardSecurityCode {
				continue
			}
			keep[f.Path], hash[f.Path] = ops(oKeep), ops(oHash)
			switch f.Kind {
			case "string":
				other[f.Path] = ops(oMask)
			case "date", "timestamp":
				other[f.Path] = ops(oGen)
			default:
				other[f.Path] = ops(oKeep)
			}
		}
		rs = append(rs,
			&gateway.Recipient{ID: "keep-" + typ, Scope: gateway.Scope{typ: keep}},
			&gateway.Recipient{ID: "hash-" + typ, Scope: gateway.Scope{typ: hash}},
			&gateway.Recipient{ID: "other-" + typ, Scope: gateway.Scope{typ: other}})
	}
	x, err := New(set, rs, DevKeyring("layout"))
	require.NoError(t, err)
	dec := codec.NewDecoder(set)
	g := synth.New(synth.Options{Seed: 17})
	rnd := rand.New(rand.NewPCG(1, 2))
	compared := 0
	for range 600 {
		sev := g.Next()
		s, _ := set.ByEventType(sev.Type)
		raw, err := codec.Encode(s, sev.Value)
		require.NoError(t, err)
		ev, err := dec.Decode(gateway.Message{Value: raw})
		require.NoError(t, err)
		require.NotNil(t, ev.Layout)
		byValue := *ev
		byValue.Layout, byValue.Value = nil, valueOf(t, set, ev)
		for _, r := range rs {
			scope := r.Scope[sev.Type]
			if scope == nil {
				continue
			}
			fields := map[string]gateway.Operator{}
			for p, o := range scope {
				if rnd.IntN(3) > 0 {
					fields[p] = o[0]
				}
			}
			d := allow(fields)
			want, _, wantErr := x.Redact(&byValue, r, d)
			got, _, gotErr := x.Redact(ev, r, d)
			if wantErr != nil {
				require.Error(t, gotErr, "%s %s", r.ID, sev.Type)
				require.Equal(t, wantErr.Error(), gotErr.Error())
				continue
			}
			require.NoError(t, gotErr, "%s %s", r.ID, sev.Type)
			require.Equal(t, want, got, "%s %s: the same record from the layout as from the value", r.ID, sev.Type)
			compared++
		}
	}
	require.Greater(t, compared, 1000)
}

// TestRedactRefusesAForeignLayout: an event whose layout is not this
// codec's, and that has no value, gets an error, not a record of nulls.
func TestRedactRefusesAForeignLayout(t *testing.T) {
	set := loadSet(t)
	r := partner()
	x, err := New(set, []*gateway.Recipient{r}, DevKeyring("test"))
	require.NoError(t, err)
	ev := *event(t, set, "booking", bookingJSON)
	d := allow(map[string]gateway.Operator{"contact.email": oMask})
	_, _, err = x.Redact(&ev, r, d)
	require.NoError(t, err, "the decoder's own layout")
	ev.Layout = struct{ spans []int }{}
	_, _, err = x.Redact(&ev, r, d)
	require.ErrorContains(t, err, "event has no value")
}
