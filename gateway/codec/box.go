package codec

import (
	"sync/atomic"
	"time"
	"unsafe"
)

// Boxing a string, a time or a large number into an interface value (the
// normalised form is map[string]any) allocates a copy of it on the heap:
// one allocation per decoded string, about 130 for a 2 KB booking, most of
// the decoder's allocations. A program run instead keeps the values of one
// record in a few arrays (slabs) and makes each interface value point at
// its element, as the runtime's own boxed copy would: the value is the
// same dynamic type and value, only its storage is shared with the
// record's other values, like the record's strings already share one copy
// of its bytes. An element is written once, before its interface value
// exists, and never again, which is what the runtime assumes of a boxed
// copy; the garbage collector keeps an array alive while any interface
// value points into it.

// eface is the runtime's layout of an empty interface value, stable since
// Go 1.0 and relied on by reflect.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// typeOf returns the runtime type word of T's interface values.
func typeOf[T any]() unsafe.Pointer {
	var zero T
	v := any(zero)
	return (*eface)(unsafe.Pointer(&v)).typ
}

// slab hands out interface values of T backed by elements of arrays it
// allocates a chunk at a time.
type slab[T any] struct {
	typ  unsafe.Pointer
	free []T
	hint int // elements the last run used
	used int // elements handed out in this run, for the next run's hint
}

func (s *slab[T]) box(v T) any {
	if len(s.free) == cap(s.free) {
		// Earlier chunks stay alive through the values pointing into them.
		s.free = make([]T, 0, max(s.hint-s.used, 8))
	}
	s.free = append(s.free, v)
	s.used++
	var out any
	e := (*eface)(unsafe.Pointer(&out))
	e.typ, e.data = s.typ, unsafe.Pointer(&s.free[len(s.free)-1])
	return out
}

// boxTypes are the type words of the slabs, worked out once per program.
type boxTypes struct {
	str, tm, i64, i unsafe.Pointer
}

func newBoxTypes() boxTypes {
	return boxTypes{str: typeOf[string](), tm: typeOf[time.Time](), i64: typeOf[int64](), i: typeOf[int]()}
}

// boxHints size a run's first chunks: the counts of the program's last
// run, so a stream of similar records allocates one chunk per slab. They
// are shared by the concurrent runs of a program; any value is safe.
type boxHints struct {
	str, tm, i64, i atomic.Int32
}

// boxes are one program run's slabs.
type boxes struct {
	hints *boxHints
	str   slab[string]
	tm    slab[time.Time]
	i64   slab[int64]
	i     slab[int]
}

func (b *boxes) init(t *boxTypes, h *boxHints) {
	b.hints = h
	b.str.typ, b.tm.typ, b.i64.typ, b.i.typ = t.str, t.tm, t.i64, t.i
	b.str.hint, b.tm.hint = int(h.str.Load()), int(h.tm.Load())
	b.i64.hint, b.i.hint = int(h.i64.Load()), int(h.i.Load())
}

func (b *boxes) string(v string) any {
	if v == "" {
		return v // the runtime boxes the empty string without allocating
	}
	return b.str.box(v)
}

func (b *boxes) time(v time.Time) any { return b.tm.box(v) }

func (b *boxes) int64(v int64) any {
	if v >= 0 && v < 256 {
		return v // small values are boxed without allocating
	}
	return b.i64.box(v)
}

func (b *boxes) int(v int) any {
	if v >= 0 && v < 256 {
		return v
	}
	return b.i.box(v)
}

// done records the run's counts as the next run's hints.
func (b *boxes) done() {
	b.hints.str.Store(int32(b.str.used))
	b.hints.tm.Store(int32(b.tm.used))
	b.hints.i64.Store(int32(b.i64.used))
	b.hints.i.Store(int32(b.i.used))
}
