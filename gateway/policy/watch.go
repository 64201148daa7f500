package policy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing/fstest"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.opentelemetry.io/otel/metric"

	"github.com/dgwproject/dgw/gateway"
)

// Defaults of Watch.
const (
	// DefaultPollInterval is how often Watch fetches a bundle URL and
	// rescans a watched directory (the rescan catches what file events
	// miss: network file systems, a watch limit reached).
	DefaultPollInterval = 30 * time.Second
	// DefaultSettle is how long a watched directory must be quiet after a
	// file event before it is loaded, so that an editor's or a deployment's
	// several writes are loaded as one revision.
	DefaultSettle = 500 * time.Millisecond
)

// WatchOption configures Watch.
type WatchOption interface{ applyWatch(*watchConfig) }

type watchOptionFunc func(*watchConfig)

func (f watchOptionFunc) applyWatch(c *watchConfig) { f(c) }

type bundleSource struct {
	url string
	key *BundleKey
}

type watchConfig struct {
	dirs     []string
	bundles  []bundleSource
	interval time.Duration
	settle   time.Duration
	client   *http.Client
	mp       metric.MeterProvider
	observe  func(Reload)
}

// WatchDir watches a policy directory: file events (fsnotify, on the
// directory and its subdirectories) trigger a load once the directory has
// been quiet for the settle time, and the directory is rescanned every
// poll interval in case an event was missed.
func WatchDir(dir string) WatchOption {
	return watchOptionFunc(func(c *watchConfig) { c.dirs = append(c.dirs, dir) })
}

// WatchBundle polls an OPA bundle URL (a .tar.gz in the standard bundle
// format) every poll interval, with If-None-Match. With a key, a bundle
// must carry a .signatures.json signed with it; nil accepts unsigned
// bundles and does not check signatures.
func WatchBundle(url string, key *BundleKey) WatchOption {
	return watchOptionFunc(func(c *watchConfig) { c.bundles = append(c.bundles, bundleSource{url, key}) })
}

// WithPollInterval sets the bundle poll and directory rescan interval
// (default DefaultPollInterval).
func WithPollInterval(d time.Duration) WatchOption {
	return watchOptionFunc(func(c *watchConfig) { c.interval = d })
}

// WithSettle sets how long a watched directory must be quiet after a file
// event before it is loaded (default DefaultSettle).
func WithSettle(d time.Duration) WatchOption {
	return watchOptionFunc(func(c *watchConfig) { c.settle = d })
}

// WithHTTPClient sets the client that fetches bundles (default: a client
// with a one-minute timeout).
func WithHTTPClient(hc *http.Client) WatchOption {
	return watchOptionFunc(func(c *watchConfig) { c.client = hc })
}

// WithMeterProvider counts reload attempts as dgw.policy.reloads{result}
// (gateway.PolicyReloads): success when a new revision was activated,
// failure when one was rejected or a source could not be read, fetched or
// verified. Default: no metrics.
func WithMeterProvider(mp metric.MeterProvider) WatchOption {
	return watchOptionFunc(func(c *watchConfig) { c.mp = mp })
}

// WithReloadObserver calls fn after every reload attempt, activated or
// not, from the goroutine of its source.
func WithReloadObserver(fn func(Reload)) WatchOption {
	return watchOptionFunc(func(c *watchConfig) { c.observe = fn })
}

func (c *watchConfig) validate() error {
	if len(c.dirs)+len(c.bundles) == 0 {
		return errors.New("nothing to watch: give WatchDir or WatchBundle")
	}
	if c.interval <= 0 {
		return fmt.Errorf("poll interval must be positive, got %s", c.interval)
	}
	if c.settle < 0 {
		return fmt.Errorf("settle time must not be negative, got %s", c.settle)
	}
	for _, b := range c.bundles {
		if b.url == "" {
			return errors.New("bundle url is empty")
		}
	}
	if c.client == nil {
		c.client = &http.Client{Timeout: time.Minute}
	}
	return nil
}

// Watch loads every new revision of its sources until ctx ends: each one
// is checked like Load and activated only if it passes, otherwise it is
// logged with its problems and the running revision keeps serving. A
// rejected revision is not tried again until its source changes. Watch
// checks every source once at start, in case it changed since the running
// revision was loaded. It returns nil when ctx ends, or an error for an
// invalid configuration.
func (l *Live) Watch(ctx context.Context, opts ...WatchOption) error {
	cfg := watchConfig{interval: DefaultPollInterval, settle: DefaultSettle}
	for _, o := range opts {
		o.applyWatch(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("policy watch: %w", err)
	}
	reloads, err := gateway.NewPolicyReloads(ctx, cfg.mp)
	if err != nil {
		return fmt.Errorf("policy watch: %w", err)
	}
	w := &watcher{l: l, cfg: cfg, reloads: reloads}
	var wg sync.WaitGroup
	for _, dir := range cfg.dirs {
		wg.Go(func() { w.watchDir(ctx, dir) })
	}
	for _, b := range cfg.bundles {
		wg.Go(func() { w.pollBundle(ctx, b) })
	}
	wg.Wait()
	return nil
}

type watcher struct {
	l       *Live
	cfg     watchConfig
	reloads *gateway.PolicyReloads
}

// report logs, counts and hands on the outcome of an attempt, unless it
// was cut short by the end of ctx.
func (w *watcher) report(ctx context.Context, r Reload) {
	if ctx.Err() != nil {
		return
	}
	w.l.logged(r)
	w.reloads.Record(ctx, r.Err)
	if w.cfg.observe != nil {
		w.cfg.observe(r)
	}
}

// candidate tries files as a new revision unless it is the one serving or
// the one tried last (seen), and remembers it.
func (w *watcher) candidate(ctx context.Context, files fstest.MapFS, origin string, seen *string) {
	rev := revisionOf(files)
	if rev == *seen || rev == w.l.Revision() {
		*seen = rev
		return
	}
	*seen = rev
	w.report(ctx, w.l.load(ctx, files, origin))
}

// watchDir loads dir on file events (after the settle time) and on every
// poll interval.
func (w *watcher) watchDir(ctx context.Context, dir string) {
	origin := "dir " + dir
	log := w.l.log.With("origin", origin)
	var events <-chan fsnotify.Event
	var errs <-chan error
	fw, err := fsnotify.NewWatcher()
	if err == nil {
		defer fw.Close()
		if err = addTree(fw, dir); err == nil {
			events, errs = fw.Events, fw.Errors
		}
	}
	if err != nil {
		log.Warn("cannot watch the policy directory for changes; rescanning it every poll interval only",
			"interval", w.cfg.interval, "error", err.Error())
	}
	poll := time.NewTicker(w.cfg.interval)
	defer poll.Stop()
	settle := time.NewTimer(w.cfg.settle)
	settle.Stop()
	defer settle.Stop()
	seen := ""
	check := func() {
		files, err := snapshot(os.DirFS(dir))
		if err != nil {
			if _, statErr := os.Stat(dir); errors.Is(err, fs.ErrNotExist) && statErr == nil {
				// A file went away while it was read: the directory is
				// changing. Look again once it has settled.
				settle.Reset(w.cfg.settle)
				return
			}
			seen = ""
			w.report(ctx, Reload{Origin: origin, Previous: w.l.Revision(), Err: fmt.Errorf("policy %s: %w", origin, err)})
			return
		}
		w.candidate(ctx, files, origin, &seen)
	}
	check()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					_ = addTree(fw, ev.Name) // a new subdirectory: its files count too
				}
			}
			settle.Reset(w.cfg.settle)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			log.Warn("policy directory watch error; rescanning", "error", err.Error())
			settle.Reset(w.cfg.settle)
		case <-settle.C:
			check()
		case <-poll.C:
			check()
		}
	}
}

// addTree watches dir and its subdirectories (fsnotify is not recursive).
func addTree(fw *fsnotify.Watcher, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return fw.Add(p)
		}
		return nil
	})
}

// pollBundle fetches b every poll interval.
func (w *watcher) pollBundle(ctx context.Context, b bundleSource) {
	origin := "bundle " + b.url
	etag, seenRaw, seen := "", [sha256.Size]byte{}, ""
	check := func() {
		raw, tag, err := fetchBundle(ctx, w.cfg.client, b.url, etag)
		switch {
		case err != nil:
			w.report(ctx, Reload{Origin: origin, Previous: w.l.Revision(), Err: fmt.Errorf("policy %s: %w", origin, err)})
			return
		case raw == nil: // not modified
			return
		}
		etag = tag
		sum := sha256.Sum256(raw)
		if sum == seenRaw {
			return
		}
		seenRaw = sum
		files, err := readBundle(raw, b.key)
		if err != nil {
			seen = ""
			r := Reload{Origin: origin, Previous: w.l.Revision(), Err: fmt.Errorf("policy %s: %w", origin, err)}
			var pe *ProblemsError
			if errors.As(err, &pe) {
				r.Problems = pe.Problems
			}
			w.report(ctx, r)
			return
		}
		w.candidate(ctx, files, origin, &seen)
	}
	check()
	poll := time.NewTicker(w.cfg.interval)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			check()
		}
	}
}
