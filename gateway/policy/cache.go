package policy

import (
	"fmt"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/dgwproject/dgw/gateway"
)

// decisionCache is the bounded LRU cache of decisions.
//
// A hit reads its entry under the cache's read lock (Peek). Moving the
// entry to the front of the LRU list takes the write lock and touches the
// list, 10 to 16 times an event, so a hit moves its entry only when the
// entry may have drifted towards the tail:
//
// An entry placed at the front (inserted or moved) when ops reached s is
// at most ops−s places from the front: only the insertions and moves of
// other entries, each counted in ops, push it back, one place each
// (evictions take the tail, lookups move nothing). It is evicted only from
// the last place, by an insertion: not before ops−s reaches size. A hit
// moves its entry when ops−s >= slack, half the size, so an entry hit at
// least once in every size/2 insertions and moves is never evicted; an
// entry hit less often may be, as it may be under an exact LRU too. The
// counts race with the list operations of concurrent callers by at most
// one operation per caller, far below the slack of a cache of any real
// size.
type decisionCache struct {
	lru *lru.Cache[cacheKey, cacheEntry]
	// ops counts the insertions and moves to the front so far.
	ops atomic.Uint64
	// slack is how many ops after its placement a hit moves its entry.
	slack uint64
}

func newDecisionCache(size int) (*decisionCache, error) {
	c, err := lru.New[cacheKey, cacheEntry](size)
	if err != nil {
		return nil, fmt.Errorf("policy: decision cache: %w", err)
	}
	return &decisionCache{lru: c, slack: uint64(size / 2)}, nil
}

// cacheKey finds a decision: the registry recipient (the cache holds
// decisions for the registry's recipients only, as registered) and a hash
// of the parts of the context the policy reads (projection.appendKey).
type cacheKey struct {
	recipient int // the registry recipient's position
	context   uint64
}

// cacheEntry is a cached decision with the context key it answers, which
// a lookup compares in full: two contexts share a decision only when their
// keys are equal, never because their hashes are.
type cacheEntry struct {
	context  string
	decision gateway.Decision
	// placed is the value of ops when the entry was last put at the front.
	placed *atomic.Uint64
}

// get returns the decision cached for key and the context key ctx.
func (c *decisionCache) get(key cacheKey, ctx []byte) (gateway.Decision, bool) {
	e, ok := c.lru.Peek(key)
	if !ok || e.context != string(ctx) {
		return gateway.Decision{}, false
	}
	if c.ops.Load()-e.placed.Load() >= c.slack {
		e.placed.Store(c.ops.Add(1))
		c.lru.Get(key)
	}
	return e.decision, true
}

// add caches dec for key and the context key ctx, at the front.
func (c *decisionCache) add(key cacheKey, ctx string, dec gateway.Decision) {
	e := cacheEntry{context: ctx, decision: dec, placed: new(atomic.Uint64)}
	e.placed.Store(c.ops.Add(1))
	c.lru.Add(key, e)
}

// purge empties the cache.
func (c *decisionCache) purge() { c.lru.Purge() }
