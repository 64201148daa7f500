package gateway

// DeciderSnapshot is an optional interface of a Decider whose policy can
// change while the gateway runs (a reloading decider). The pipeline calls
// Snapshot once per event and decides every recipient of that event with
// the Decider it returns, so an event is decided by exactly one policy
// revision across all its recipients, even when a new revision is
// activated meanwhile.
//
// The returned Decider serves one event: the pipeline does not change the
// event's decision context while using it, so it may remember what it
// derived from the context (such as a cache key) between recipients. It
// must be safe to call from the goroutine handling the event.
type DeciderSnapshot interface {
	Snapshot() Decider
}
