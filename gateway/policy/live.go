package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing/fstest"

	"github.com/dgwproject/dgw/gateway"
)

// Live is a Decider whose policy can change while the gateway runs. It
// serves one revision (a *Decider) at a time and replaces it only with a
// revision that passed every check; the swap is a single atomic pointer
// store, so no decision ever sees a half-loaded policy, and the pipeline
// takes one Snapshot per event, so all the recipients of an event are
// decided by the same revision.
//
// A new revision (Load, or Watch for a directory or an OPA bundle URL) is
// activated only if:
//   - it loads and compiles in strict mode, tests excluded and included;
//   - its own Rego tests pass;
//   - every field path its registry and Rego name is a leaf of the schemas;
//   - its registry is the running one (recipients, topics and contract
//     scopes are fixed while dgw runs: changing them takes a restart);
//   - every decision on the sample corpus of Check stays inside each
//     recipient's contract scope, and none fails to evaluate (conflicts).
//
// Otherwise the running revision keeps serving and the rejection lists
// every problem with its file and line.
type Live struct {
	cur   atomic.Pointer[Decider]
	stats *counters
	log   *slog.Logger
	mu    sync.Mutex // one load at a time
}

var (
	_ gateway.Decider          = (*Live)(nil)
	_ gateway.DeciderSnapshot  = (*Live)(nil)
	_ gateway.RevisionReporter = (*Live)(nil)
)

// NewLive loads the first revision from fsys with New's checks and options
// (WithCatalogue, WithLogger, WithCacheSize), which every later revision
// shares. Like New, it fails when the policy fails its tests or any static
// check.
func NewLive(ctx context.Context, fsys fs.FS, opts ...Option) (*Live, error) {
	cfg := config{cacheSize: DefaultCacheSize}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	files, err := snapshot(fsys)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	l := &Live{stats: &counters{}, log: cfg.log}
	d, err := build(ctx, files, cfg, l.stats, nil)
	if err != nil {
		return nil, err
	}
	l.cur.Store(d)
	return l, nil
}

// Current is the revision serving now.
func (l *Live) Current() *Decider { return l.cur.Load() }

// Revision is the id of the revision serving now.
func (l *Live) Revision() string { return l.Current().Revision() }

// Recipients is the registry; it is the same for every revision.
func (l *Live) Recipients() []*gateway.Recipient { return l.Current().Recipients() }

// Evaluator is how the current revision evaluates decision misses.
func (l *Live) Evaluator() Evaluator { return l.Current().Evaluator() }

// Evaluation is the current revision's Evaluation (the counts of every
// revision).
func (l *Live) Evaluation() gateway.EvaluationStats { return l.Current().Evaluation() }

// Stats returns the decision cache hits and misses of every revision so far.
func (l *Live) Stats() (hits, misses int64) { return l.stats.hits.Load(), l.stats.misses.Load() }

// Decide decides with the revision serving now. To decide several
// recipients of one event with one revision, use Snapshot.
func (l *Live) Decide(ctx context.Context, dc *gateway.DecisionContext, r *gateway.Recipient) (gateway.Decision, error) {
	return l.Current().Decide(ctx, dc, r)
}

// Snapshot returns a Decider bound to the revision serving now, for one
// event (gateway.DeciderSnapshot).
func (l *Live) Snapshot() gateway.Decider { return l.Current().Snapshot() }

// Reload is the outcome of one attempt to activate a new revision.
type Reload struct {
	// Origin names the source: "dir PATH", "bundle URL" or Load's origin.
	Origin string
	// Revision is the candidate's revision, when it could be read.
	Revision string
	// Previous is the revision serving before the attempt; it still serves
	// unless Activated.
	Previous  string
	Activated bool
	// Problems are why the candidate was rejected, each with file:line.
	Problems []Problem
	// Err is set when the attempt failed: the candidate was rejected (a
	// *ProblemsError) or could not be read, fetched or verified.
	Err error
}

// Load validates the policy directory fsys as a new revision and, if it
// passes every check, activates it. It returns nil when the revision is
// active afterwards (activated now or already serving), a *ProblemsError
// listing every problem when the revision was rejected, and another error
// when fsys could not be read or ctx ended. Rejections are logged; Watch
// also counts them.
func (l *Live) Load(ctx context.Context, fsys fs.FS, origin string) error {
	files, err := snapshot(fsys)
	if err != nil {
		err = fmt.Errorf("policy %s: %w", origin, err)
		l.logged(Reload{Origin: origin, Previous: l.Revision(), Err: err})
		return err
	}
	return l.logged(l.load(ctx, files, origin)).Err
}

// load validates and activates files, which nothing else writes.
func (l *Live) load(ctx context.Context, files fstest.MapFS, origin string) Reload {
	l.mu.Lock()
	defer l.mu.Unlock()
	running := l.Current()
	res := Reload{Origin: origin, Revision: revisionOf(files), Previous: running.revision}
	if res.Revision == running.revision {
		res.Activated = true // already serving
		return res
	}
	d, err := build(ctx, files, running.cfg, l.stats, running.recipients)
	if err != nil {
		res.Err = err
		var pe *ProblemsError
		if errors.As(err, &pe) {
			res.Problems = pe.Problems
		}
		return res
	}
	l.cur.Store(d)
	res.Activated = true
	return res
}

// logged logs the outcome of an attempt that changed or tried to change
// the revision, and returns it.
func (l *Live) logged(r Reload) Reload {
	switch {
	case r.Activated && r.Revision != r.Previous:
		l.log.Info("policy revision activated", "origin", r.Origin, "revision", r.Revision, "previous", r.Previous)
	case len(r.Problems) > 0:
		ps := make([]string, len(r.Problems))
		for i, p := range r.Problems {
			ps[i] = p.String()
		}
		l.log.Error("policy revision rejected; the running revision keeps serving", "origin", r.Origin,
			"revision", r.Revision, "running", r.Previous, "problems", ps)
	case r.Err != nil:
		l.log.Error("policy source unusable; the running revision keeps serving", "origin", r.Origin,
			"running", r.Previous, "error", r.Err.Error())
	}
	return r
}

// snapshot reads every file the policy loader would read into memory, so
// that the bytes checked are the bytes activated even if the directory
// changes meanwhile.
func snapshot(fsys fs.FS) (fstest.MapFS, error) {
	files := fstest.MapFS{}
	err := readLoadable(fsys, func(p string, b []byte) { files[p] = &fstest.MapFile{Data: b, Mode: 0o444} })
	if err != nil {
		return nil, fmt.Errorf("read policy directory: %w", err)
	}
	return files, nil
}

// revisionOf is the revision of a snapshot, as read computes it.
func revisionOf(files fstest.MapFS) string {
	m := make(map[string][]byte, len(files))
	for p, f := range files {
		m[p] = f.Data
	}
	return revision(m)
}
