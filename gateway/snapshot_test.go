package gateway_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/gatewaytest"
)

// reloadingDecider activates a new revision after every decision it makes
// directly and after every snapshot it hands out: the worst case of a
// policy changing while events are decided.
type reloadingDecider struct {
	mu        sync.Mutex
	revision  int
	snapshots int
}

func (d *reloadingDecider) next() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.revision++
	return "rev" + strconv.Itoa(d.revision)
}

func (d *reloadingDecider) Decide(_ context.Context, _ *gateway.DecisionContext, _ *gateway.Recipient) (gateway.Decision, error) {
	return decision(d.next()), nil
}

func (d *reloadingDecider) Snapshot() gateway.Decider {
	d.mu.Lock()
	d.snapshots++
	d.mu.Unlock()
	rev := d.next()
	return gatewaytest.DeciderFunc(func(context.Context, *gateway.DecisionContext, *gateway.Recipient) (gateway.Decision, error) {
		return decision(rev), nil
	})
}

func decision(rev string) gateway.Decision {
	return gateway.Decision{Allow: true, Fields: map[string]gateway.Operator{"record_locator": gateway.OpKeep}, Revision: rev}
}

// TestPipelineDecidesAnEventWithOneRevision: the pipeline takes one
// snapshot per event, so every recipient record of an event carries the
// same policy revision even though the policy changes between decisions.
func TestPipelineDecidesAnEventWithOneRevision(t *testing.T) {
	src := gatewaytest.NewMemSource(true, msgs("e1", "e2", "e3", "e4", "e5", "e6")...)
	sink := &gatewaytest.MemSink{}
	d := &reloadingDecider{}
	rs := []*gateway.Recipient{recipient("a"), recipient("b"), recipient("c")}
	res := run(t, src, d, redactor(), sink, rs, gateway.WithWorkers(3))
	require.Len(t, res, 6)

	assert.Equal(t, 6, d.snapshots, "one snapshot per event")
	byEvent := map[string]map[string]bool{}
	for _, r := range rs {
		for _, rec := range sink.Topic(r.Topic) {
			id := gatewaytest.Header(rec, gateway.HeaderEventID)
			if byEvent[id] == nil {
				byEvent[id] = map[string]bool{}
			}
			byEvent[id][gatewaytest.Header(rec, gateway.HeaderPolicyRevision)] = true
		}
	}
	require.Len(t, byEvent, 6)
	revisions := map[string]bool{}
	for id, revs := range byEvent {
		assert.Len(t, revs, 1, "event %s was decided by several revisions: %v", id, revs)
		for rev := range revs {
			revisions[rev] = true
		}
	}
	assert.Len(t, revisions, 6, "every event saw the revision current when it was handled")
	for _, er := range res {
		for _, rr := range er.Recipients {
			assert.Equal(t, rr.Decision.Revision, er.Recipients[0].Decision.Revision)
		}
	}
}
