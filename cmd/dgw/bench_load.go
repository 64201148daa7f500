package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/gateway/synth"
)

// Record sizes of the benchmark workload: a GDS booking or check-in record
// with its service requests, remarks and history is 1 to 3 KB. The
// synthetic events are smaller, so the workload grows each event to a size
// drawn uniformly from this range by repeating items of its lists that no
// context or role annotation reads (service requests, pages, answers, bag
// tags): the decision context, and so the policy's work, stays that of the
// generated event.
const (
	benchMinBytes = 1024
	benchMaxBytes = 3072
)

// workload generates the benchmark's source records.
type workload struct {
	set *schema.Set
	gen *synth.Generator
	rnd *rand.Rand
	pad bool
}

func newWorkload(set *schema.Set, seed int64, pad bool) *workload {
	return &workload{set: set, gen: synth.New(synth.Options{Seed: seed}),
		rnd: rand.New(rand.NewPCG(uint64(seed), 0x6267)), pad: pad}
}

// next returns the next source record: Avro single-object encoding, keyed
// by passenger id, on the event type's topic.
func (w *workload) next(topic func(eventType string) string) (gateway.Disclosure, error) {
	ev := w.gen.Next()
	s, ok := w.set.ByEventType(ev.Type)
	if !ok {
		return gateway.Disclosure{}, fmt.Errorf("generator produced unknown event type %s", ev.Type)
	}
	raw, err := codec.Encode(s, ev.Value)
	if err != nil {
		return gateway.Disclosure{}, fmt.Errorf("encode synthetic %s event: %w", ev.Type, err)
	}
	if w.pad {
		target := benchMinBytes + w.rnd.IntN(benchMaxBytes-benchMinBytes+1)
		if raw, err = grow(s, ev.Value, raw, target); err != nil {
			return gateway.Disclosure{}, err
		}
	}
	return gateway.Disclosure{Topic: topic(ev.Type), Key: []byte(ev.Key), Value: raw}, nil
}

// grow repeats items of v's growable lists, one item per round taking the
// lists in turn, for the fewest rounds (at most 256) whose encoding reaches
// target bytes, and returns that encoding. The size grows by at least a
// byte per round, so the rounds are estimated from the size of one round of
// every list and then corrected one round at a time: a few encodings per
// event instead of one per round, which made publishing a large backlog
// take longer than draining it.
func grow(s *schema.Schema, v map[string]any, raw []byte, target int) ([]byte, error) {
	lists := growable(s, v, "")
	if s.EventType == "booking" {
		// A booking without service requests gets other-service
		// requests, as GDS records carry many.
		if ssr, ok := v["special_service_requests"].([]any); ok && len(ssr) == 0 {
			v["special_service_requests"] = []any{map[string]any{"code": "OTHS",
				"free_text": "PAX REQUESTS AISLE SEAT NEAR GALLEY AND VEGETARIAN MEAL ON ALL SEGMENTS"}}
			lists = growable(s, v, "")
		}
	}
	if len(lists) == 0 || len(raw) >= target {
		return raw, nil
	}
	base := make([][]any, len(lists))
	for i, l := range lists {
		base[i] = l.m[l.name].([]any)
	}
	const maxRounds = 256
	// setRounds makes v the generated event grown by k rounds.
	setRounds := func(k int) {
		for i, l := range lists {
			items := slices.Clip(base[i])
			n := len(base[i])
			for r := i; r < k; r += len(lists) {
				items = append(items, items[len(items)%n])
			}
			l.m[l.name] = items
		}
	}
	encodeAt := func(k int) ([]byte, error) {
		setRounds(k)
		out, err := codec.Encode(s, v)
		if err != nil {
			return nil, fmt.Errorf("grow %s event: %w", s.EventType, err)
		}
		return out, nil
	}
	cycle := min(len(lists), maxRounds)
	one, err := encodeAt(cycle)
	if err != nil {
		return nil, err
	}
	k, out := cycle, one
	if len(one) < target {
		perRound := max(float64(len(one)-len(raw))/float64(cycle), 1)
		k = min(maxRounds, cycle+int(float64(target-len(one))/perRound))
		if out, err = encodeAt(k); err != nil {
			return nil, err
		}
	}
	for len(out) < target && k < maxRounds {
		k++
		if out, err = encodeAt(k); err != nil {
			return nil, err
		}
	}
	for k > 0 {
		prev := raw
		if k > 1 {
			if prev, err = encodeAt(k - 1); err != nil {
				return nil, err
			}
		}
		if len(prev) < target {
			break
		}
		k, out = k-1, prev
	}
	setRounds(k) // v as encoded
	return out, nil
}

type list struct {
	m    map[string]any
	name string
}

// growable finds the non-empty lists of v no context or role annotation
// reads, outside other lists.
func growable(s *schema.Schema, v map[string]any, prefix string) []list {
	var out []list
	for _, name := range s.Children(prefix) {
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		switch x := v[name].(type) {
		case map[string]any:
			out = append(out, growable(s, x, p)...)
		case []any:
			if len(x) > 0 && !annotatedUnder(s, p) {
				out = append(out, list{v, name})
			}
		}
	}
	return out
}

func annotatedUnder(s *schema.Schema, path string) bool {
	for _, f := range s.Fields {
		if (f.Path == path || strings.HasPrefix(f.Path, path+".")) && (f.Context != "" || f.Role != "") {
			return true
		}
	}
	return false
}
