package codec

import (
	"encoding/binary"
	"errors"
	"math"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/gateway/synth"
	"github.com/dgwproject/dgw/schemas"
)

func internalSet(t testing.TB) *schema.Set {
	t.Helper()
	set, err := schema.Load(schemas.FS)
	require.NoError(t, err)
	return set
}

// sameDecoding decodes raw with the compiled program and with the generic
// reader plus context extraction, and requires the same outcome: the same
// value, context and identity, or the same error text and reason.
func sameDecoding(t *testing.T, d *Decoder, raw []byte) (*gateway.Event, error) {
	t.Helper()
	msg := gateway.Message{Value: raw}
	got, gotErr := d.Decode(msg)
	want, wantErr := d.decodeGeneric(msg)
	if wantErr != nil {
		require.Error(t, gotErr, "the generic reader fails, the program must too")
		require.Equal(t, wantErr.Error(), gotErr.Error())
		var gp, wp *gateway.ParkError
		require.True(t, errors.As(gotErr, &gp))
		require.True(t, errors.As(wantErr, &wp))
		require.Equal(t, wp.Reason, gp.Reason)
		require.Nil(t, got)
		return nil, gotErr
	}
	require.NoError(t, gotErr)
	require.Nil(t, got.Value, "the program builds a layout, not values")
	lay, ok := got.Layout.(*Layout)
	require.True(t, ok, "the program builds a layout")
	p := d.progs[got.Schema.Fingerprint]
	require.True(t, sameValue(want.Value, layoutValue(t, p, p.root, lay, 0)), "every span of the layout holds the value the generic reader decodes")
	require.Equal(t, want.Context, got.Context)
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.SubjectID, got.SubjectID)
	require.True(t, want.OccurredAt.Equal(got.OccurredAt))
	require.Equal(t, want.Schema, got.Schema)
	return got, nil
}

// layoutValue rebuilds the normalised value of the record whose fields
// start at base from a layout, reading each leaf at its span as a Redactor
// does.
func layoutValue(t *testing.T, p *program, n *pnode, lay *Layout, base int32) map[string]any {
	t.Helper()
	out := make(map[string]any, len(n.fields))
	for i := range n.fields {
		f := &n.fields[i]
		require.Less(t, int(base)+i, len(lay.Spans), f.node.path)
		out[f.name] = spanValue(t, p, f.node, lay, lay.Spans[int(base)+i])
	}
	return out
}

func spanValue(t *testing.T, p *program, n *pnode, lay *Layout, sp Span) any {
	t.Helper()
	if n.kind == pUnion {
		if sp.Null() {
			return nil
		}
		var branch *pnode
		for _, b := range n.branches {
			if b.kind != pNull {
				require.Nil(t, branch, "%s: the schemas' unions have one non-null branch", n.path)
				branch = b
			}
		}
		n = branch
	}
	switch n.kind {
	case pNull:
		require.True(t, sp.Null(), n.path)
		return nil
	case pRecord:
		return layoutValue(t, p, n, lay, sp.Sub)
	case pArray:
		items := n.items
		if items.kind == pUnion && hasRecord(items) {
			for _, b := range items.branches {
				if b.kind == pRecord {
					items = b
				}
			}
		}
		if items.kind == pRecord {
			out := make([]any, 0, sp.N)
			for _, e := range lay.Items[sp.Sub : sp.Sub+sp.N] {
				if e < 0 {
					out = append(out, nil)
					continue
				}
				out = append(out, layoutValue(t, p, items, lay, e))
			}
			return out
		}
	}
	r := preader{reader: reader{b: lay.Body, i: int(sp.Start)}, str: string(lay.Body)}
	v, err := r.value(n)
	require.NoError(t, err, n.path)
	require.Equal(t, int(sp.End), r.i, "%s: the span ends where the value does", n.path)
	return v
}

// sameValue compares normalised values, decimals and times by value.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) || (x == nil) != (y == nil) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case *big.Rat:
		y, ok := b.(*big.Rat)
		return ok && x.Cmp(y) == 0
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y) && y.Location() == time.UTC
	}
	return reflect.DeepEqual(a, b)
}

func TestProgramCompilesEverySchema(t *testing.T) {
	set := internalSet(t)
	d := NewDecoder(set)
	for _, s := range set.All() {
		require.NotNil(t, d.progs[s.Fingerprint], "%s has a compiled program", s.Name)
	}
}

// TestProgramMatchesGeneric holds the compiled decoder to the generic
// reader on the synthetic stream, every truncation of some records, and
// corrupted bytes at every position.
func TestProgramMatchesGeneric(t *testing.T) {
	set := internalSet(t)
	d := NewDecoder(set)
	g := synth.New(synth.Options{Seed: 11})
	var samples [][]byte
	for i := range 500 {
		ev := g.Next()
		s, ok := set.ByEventType(ev.Type)
		require.True(t, ok)
		raw, err := Encode(s, ev.Value)
		require.NoError(t, err)
		_, err = sameDecoding(t, d, raw)
		require.NoError(t, err)
		if i%101 == 0 {
			samples = append(samples, raw)
		}
	}
	for _, raw := range samples {
		for n := range len(raw) {
			_, err := sameDecoding(t, d, raw[:n])
			require.Error(t, err, "a truncated record fails")
		}
		for i := HeaderLen; i < len(raw); i++ {
			for _, flip := range []byte{0x01, 0xff} {
				bad := append([]byte(nil), raw...)
				bad[i] ^= flip
				_, _ = sameDecoding(t, d, bad)
			}
		}
		_, err := sameDecoding(t, d, append(append([]byte(nil), raw...), 0))
		require.Error(t, err, "a trailing byte fails")
	}
}

// syntheticBooking is the first generated booking of seed and its encoding.
func syntheticBooking(t *testing.T, set *schema.Set, seed int64) (synth.Event, []byte) {
	t.Helper()
	ev := synth.New(synth.Options{Seed: seed, Types: []string{"booking"}}).Next()
	s, ok := set.ByEventType("booking")
	require.True(t, ok)
	raw, err := Encode(s, ev.Value)
	require.NoError(t, err)
	return ev, raw
}

// TestProgramStringsDoNotAliasTheMessage: the strings of the decision
// context are copies, not slices of the message's bytes, so the decision
// cache, which keeps contexts, never sees them change. (The layout does
// refer to the bytes: gateway.Message.Value must not change while its
// event is handled.)
func TestProgramStringsDoNotAliasTheMessage(t *testing.T) {
	set := internalSet(t)
	d := NewDecoder(set)
	ev, raw := syntheticBooking(t, set, 2)
	got, err := d.Decode(gateway.Message{Value: raw})
	require.NoError(t, err)
	id, dc := got.ID, got.Context
	require.NotEmpty(t, dc.Event.Route)
	for i := HeaderLen; i < len(raw); i++ {
		raw[i] = 'X'
	}
	require.Equal(t, ev.Value["event_id"], id, "overwriting the message bytes leaves the event's id unchanged")
	require.Equal(t, ev.Value["event_id"], got.ID)
	require.Equal(t, dc, got.Context, "and its decision context, which the decision cache keeps")
}

func TestDecimalPlanMatchesGeneric(t *testing.T) {
	for _, d := range []decimal{{9, 2}, {18, 2}, {18, 18}, {19, 2}, {30, 4}, {4, 0}} {
		p := plan(d)
		for _, b := range [][]byte{
			{}, {0}, {0x7f}, {0x80}, {0xff}, {0x01, 0x00}, {0xff, 0x38}, {0x05, 0xf5, 0xe1, 0x00},
			{0x3b, 0x9a, 0xc9, 0xff}, {0x80, 0, 0, 0, 0, 0, 0, 0}, {0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			{0x0d, 0xe0, 0xb6, 0xb3, 0xa7, 0x64, 0x00, 0x00}, {0x01, 0, 0, 0, 0, 0, 0, 0, 0},
		} {
			want, wantErr := d.rat(b, "amount")
			got, gotErr := p.rat(b, "amount")
			if wantErr != nil {
				require.Error(t, gotErr, "decimal(%d,%d) % x", d.precision, d.scale, b)
				require.Equal(t, wantErr.Error(), gotErr.Error())
				continue
			}
			require.NoError(t, gotErr, "decimal(%d,%d) % x", d.precision, d.scale, b)
			require.Zero(t, want.Cmp(got), "decimal(%d,%d) % x: %s vs %s", d.precision, d.scale, b, want, got)
		}
	}
}

// FuzzProgram: on any input the compiled decoder and the generic reader
// agree.
func FuzzProgram(f *testing.F) {
	set := internalSet(f)
	d := NewDecoder(set, WithMaxSize(64<<10))
	for _, typ := range synth.EventTypes() {
		ev := synth.New(synth.Options{Seed: 1, Types: []string{typ}}).Next()
		s, _ := set.ByEventType(typ)
		raw, err := Encode(s, ev.Value)
		require.NoError(f, err)
		f.Add(raw)
		f.Add(raw[:len(raw)/2])
	}
	f.Add([]byte{0xC3, 0x01})
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = sameDecoding(t, d, raw)
	})
}

// BenchmarkDecodePaths compares the compiled program with the generic
// reader (plus the separate context walk) on the synthetic stream.
func BenchmarkDecodePaths(b *testing.B) {
	set := internalSet(b)
	d := NewDecoder(set)
	g := synth.New(synth.Options{Seed: 5})
	var msgs []gateway.Message
	var bytes int
	for range 200 {
		ev := g.Next()
		s, _ := set.ByEventType(ev.Type)
		raw, err := Encode(s, ev.Value)
		require.NoError(b, err)
		msgs = append(msgs, gateway.Message{Value: raw})
		bytes += len(raw)
	}
	for _, bc := range []struct {
		name   string
		decode func(gateway.Message) (*gateway.Event, error)
	}{{"compiled", d.Decode}, {"generic", d.decodeGeneric}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(bytes / len(msgs)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := bc.decode(msgs[i%len(msgs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// TestProgramAllocatesPerRecordNotPerValue: the compiled program builds a
// layout, not values, so a booking costs a few allocations (the layout,
// the context's strings and values) against the generic reader's one per
// value.
func TestProgramAllocatesPerRecordNotPerValue(t *testing.T) {
	set := internalSet(t)
	d := NewDecoder(set)
	_, raw := syntheticBooking(t, set, 3)
	msg := gateway.Message{Value: raw}
	compiled := testing.AllocsPerRun(50, func() { _, _ = d.Decode(msg) })
	generic := testing.AllocsPerRun(50, func() { _, _ = d.decodeGeneric(msg) })
	t.Logf("allocations: compiled %v, generic %v", compiled, generic)
	assert.Less(t, compiled, generic/5)
}

// TestNullArraysAreBounded: an array of nulls takes no bytes, so only a
// bound on its count keeps a forged count from holding a reader for ever
// (or, in the generic reader, from growing a slice until memory runs out).
// Both readers give the same answer, blocks summed.
func TestNullArraysAreBounded(t *testing.T) {
	s, err := schema.ParseDerived("nulls.avsc", []byte(`{"type": "record", "name": "Nulls", "namespace": "t",
		"fields": [{"name": "nulls", "category": "technical", "type": {"type": "array", "items": "null"}}]}`))
	require.NoError(t, err)
	set, err := schema.NewSet(s)
	require.NoError(t, err)
	d := NewDecoder(set)
	require.NotNil(t, d.progs[s.Fingerprint])
	record := func(blocks ...int64) []byte {
		raw := append(Magic[:], make([]byte, 8)...)
		binary.LittleEndian.PutUint64(raw[2:], s.Fingerprint)
		for _, n := range blocks {
			raw = AppendLong(raw, n)
		}
		return AppendLong(raw, 0)
	}
	for _, c := range []struct {
		blocks  []int64
		bounded bool
	}{
		{[]int64{1 << 62}, true},
		{[]int64{math.MaxInt64}, true},
		{[]int64{maxNullItems, 1}, true},
		{[]int64{maxNullItems - 1, math.MaxInt64}, true},
		{[]int64{maxNullItems}, false},
		{[]int64{-3}, false}, // a negative count is followed by a size; here 0: truncated, not bounded
	} {
		_, err := sameDecoding(t, d, record(c.blocks...))
		require.Error(t, err, "%v: no event id either way", c.blocks)
		if c.bounded {
			assert.ErrorContains(t, err, "array of more than 65536 null items", c.blocks)
		} else {
			assert.NotContains(t, err.Error(), "null items", c.blocks)
		}
	}
}
