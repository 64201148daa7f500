package codec

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/synth"
)

// TestBoxesHoldTheirValues: a value boxed in a slab is an ordinary
// interface value of its type, equal to what was boxed, distinct from its
// neighbours, and stays so after the slab fills chunks and the garbage
// collector runs; whatever the hint.
func TestBoxesHoldTheirValues(t *testing.T) {
	types := newBoxTypes()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, c := range []struct {
		name string
		box  func(b *boxes, i int) any
		want func(i int) any
	}{
		{"string", func(b *boxes, i int) any { return b.string(fmt.Sprint("s", i)) }, func(i int) any { return fmt.Sprint("s", i) }},
		{"empty string", func(b *boxes, _ int) any { return b.string("") }, func(int) any { return "" }},
		{"time", func(b *boxes, i int) any { return b.time(t0.Add(time.Duration(i) * time.Hour)) },
			func(i int) any { return t0.Add(time.Duration(i) * time.Hour) }},
		{"int64", func(b *boxes, i int) any { return b.int64(int64(i*1000 - 7)) }, func(i int) any { return int64(i*1000 - 7) }},
		{"small int64", func(b *boxes, i int) any { return b.int64(int64(i % 256)) }, func(i int) any { return int64(i % 256) }},
		{"int", func(b *boxes, i int) any { return b.int(-i) }, func(i int) any { return -i }},
	} {
		for _, hint := range []int32{0, 5, 300} {
			t.Run(fmt.Sprintf("%s/hint %d", c.name, hint), func(t *testing.T) {
				var h boxHints
				h.str.Store(hint)
				h.tm.Store(hint)
				h.i64.Store(hint)
				h.i.Store(hint)
				var b boxes
				b.init(&types, &h)
				got := make([]any, 1000)
				for i := range got {
					got[i] = c.box(&b, i)
				}
				b.done()
				runtime.GC()
				for i, v := range got {
					want := c.want(i)
					require.Equal(t, reflect.TypeOf(want), reflect.TypeOf(v), "value %d", i)
					require.True(t, v == want, "value %d: %v, want %v", i, v, want)
				}
			})
		}
	}
}

// TestProgramAllocatesPerRecordNotPerValue: the compiled program's values
// share their records' slabs, so a 2 KB booking costs a fraction of the
// generic reader's allocations (205 before the slabs, 462 generic).
func TestProgramAllocatesPerRecordNotPerValue(t *testing.T) {
	set := internalSet(t)
	d := NewDecoder(set)
	ev := synth.New(synth.Options{Seed: 3, Types: []string{"booking"}}).Next()
	s, _ := set.ByEventType("booking")
	raw, err := Encode(s, ev.Value)
	require.NoError(t, err)
	msg := gateway.Message{Value: raw}
	compiled := testing.AllocsPerRun(50, func() { _, _ = d.Decode(msg) })
	generic := testing.AllocsPerRun(50, func() { _, _ = d.decodeGeneric(msg) })
	t.Logf("allocations: compiled %v, generic %v", compiled, generic)
	assert.Less(t, compiled, generic/3)
}
