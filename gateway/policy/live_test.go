package policy_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/policy"
)

func tinyLive(t *testing.T, fsys fstest.MapFS) *policy.Live {
	t.Helper()
	l, err := policy.NewLive(t.Context(), fsys, policy.WithCatalogue(tinyCatalogue))
	require.NoError(t, err)
	return l
}

// cardOp is what the tiny policy does with the card number for the acquirer.
func cardOp(t *testing.T, d gateway.Decider, r *gateway.Recipient) (gateway.Operator, string) {
	t.Helper()
	dec, err := d.Decide(t.Context(), tinyPayment(), r)
	require.NoError(t, err)
	require.True(t, dec.Allow, "%v", dec.Reasons)
	return dec.Fields["card.number"], dec.Revision
}

func TestLiveLoad(t *testing.T) {
	l := tinyLive(t, tinyPolicy(tinyMasked))
	acq := l.Recipients()[0]
	first := l.Revision()
	op, rev := cardOp(t, l, acq)
	assert.Equal(t, gateway.OpMask, op)
	assert.Equal(t, first, rev)

	before := l.Snapshot() // an event being decided while the policy changes
	require.NoError(t, l.Load(t.Context(), tinyPolicy(tinyKept), "test"))
	second := l.Revision()
	assert.NotEqual(t, first, second)
	op, rev = cardOp(t, l, acq)
	assert.Equal(t, gateway.OpKeep, op, "the new revision decides")
	assert.Equal(t, second, rev, "decisions carry the revision that made them")
	op, rev = cardOp(t, before, acq)
	assert.Equal(t, gateway.OpMask, op, "a snapshot keeps deciding with its revision")
	assert.Equal(t, first, rev)

	require.NoError(t, l.Load(t.Context(), tinyPolicy(tinyKept), "test"), "loading the serving revision is a no-op")
	assert.Equal(t, second, l.Revision())
	hits, misses := l.Stats()
	assert.Equal(t, [2]int64{1, 2}, [2]int64{hits, misses}, "statistics span revisions (the snapshot hit the first revision's cache)")
}

// TestLiveRejects feeds every kind of bad revision: each is rejected with
// its problems at file:line, and the running revision keeps deciding.
func TestLiveRejects(t *testing.T) {
	l := tinyLive(t, tinyPolicy(tinyMasked))
	acq := l.Recipients()[0]
	running := l.Revision()
	otherTopic := strings.Replace(tinyRegistry, "dgw.out.acq", "dgw.out.acquirer", 1)
	tests := []struct {
		name  string
		fsys  fstest.MapFS
		where string // file:line prefix of a problem
		want  string // in that problem
	}{
		{"syntax error", tinyPolicy(tinyMasked, "broken.rego", "package dgw\n\nallow if {\n"),
			"broken.rego:4:", "rego_parse_error"},
		{"runtime conflict", tinyPolicy(tinyMasked, "conflict.rego",
			"package dgw\n\ndecision := {\"allow\": false} if input.event.purpose == \"contract\"\n"),
			"data/recipients.json:2:", "eval_conflict_error"},
		{"failing Rego test", tinyPolicy(tinyMasked, "extra_test.rego", "package dgw_test\n\ntest_always_fails if false\n"),
			"extra_test.rego:3:", "rego test data.dgw_test.test_always_fails failed"},
		{"scope violation", tinyPolicy(`{"amount": "keep", "card.holder": "keep"}`),
			"data/recipients.json:2:", "releases a field outside the contract scope"},
		{"field no schema has", tinyPolicy(`{"amount": "keep", "card.cvv2": "keep"}`),
			"decision.rego:11:", `field path "card.cvv2" is a leaf of no schema`},
		{"registry change", tinyPolicy(tinyMasked, "data/recipients.json", otherTopic),
			"data/recipients.json:2:", "recipient acq changed: the recipients registry can change only with a restart"},
		{"no Rego tests", tinyPolicy(tinyMasked, "decision_test.rego", ""),
			".:", "no Rego tests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := l.Load(t.Context(), tt.fsys, "test")
			var pe *policy.ProblemsError
			require.True(t, errors.As(err, &pe), "%v", err)
			found := false
			for _, p := range pe.Problems {
				found = found || strings.HasPrefix(p.String(), tt.where) && strings.Contains(p.Msg, tt.want)
			}
			assert.True(t, found, "want %s ...%s... in %v", tt.where, tt.want, pe.Problems)
			assert.Equal(t, running, l.Revision(), "the running revision keeps serving")
			op, rev := cardOp(t, l, acq)
			assert.Equal(t, gateway.OpMask, op)
			assert.Equal(t, running, rev)
		})
	}
}

// writeAtomic replaces a file the way deployments should: write aside,
// rename into place.
func writeAtomic(t *testing.T, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), "tmp")
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
	require.NoError(t, os.Rename(tmp, filepath.Join(dir, name)))
}

func writeDir(t *testing.T, dir string, files fstest.MapFS) {
	t.Helper()
	for name, f := range files {
		writeAtomic(t, dir, name, string(f.Data))
	}
}

// reloadCounts reads dgw.policy.reloads by result.
func reloadCounts(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(t.Context(), &rm))
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "dgw.policy.reloads" {
				continue
			}
			for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
				v, _ := p.Attributes.Value("result")
				out[v.AsString()] += p.Value
			}
		}
	}
	return out
}

// nextReload waits for the watcher's next report.
func nextReload(t *testing.T, ch <-chan policy.Reload) policy.Reload {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(time.Minute):
		t.Fatal("no reload reported within a minute")
		return policy.Reload{}
	}
}

func startWatch(t *testing.T, l *policy.Live, opts ...policy.WatchOption) (<-chan policy.Reload, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	reports := make(chan policy.Reload, 16)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- l.Watch(ctx, append(opts, policy.WithMeterProvider(mp),
			policy.WithReloadObserver(func(r policy.Reload) { reports <- r }))...)
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return reports, reader
}

// TestWatchDir: file events in a watched directory load the new revision;
// a bad one is rejected with file:line and counted, a good one activated.
func TestWatchDir(t *testing.T) {
	dir := t.TempDir()
	writeDir(t, dir, tinyPolicy(tinyMasked))
	l, err := policy.NewLive(t.Context(), os.DirFS(dir), policy.WithCatalogue(tinyCatalogue))
	require.NoError(t, err)
	acq := l.Recipients()[0]
	first := l.Revision()
	reports, reader := startWatch(t, l, policy.WatchDir(dir), policy.WithPollInterval(time.Hour),
		policy.WithSettle(20*time.Millisecond))

	writeAtomic(t, dir, "broken.rego", "package dgw\n\nallow if {\n")
	r := nextReload(t, reports)
	assert.False(t, r.Activated)
	assert.Equal(t, "dir "+dir, r.Origin)
	assert.Equal(t, first, r.Previous)
	require.NotEmpty(t, r.Problems)
	assert.Equal(t, "broken.rego", r.Problems[0].File)
	assert.Equal(t, 4, r.Problems[0].Line)
	assert.Equal(t, first, l.Revision())

	require.NoError(t, os.Remove(filepath.Join(dir, "broken.rego")))
	writeAtomic(t, dir, "decision.rego", tinyRules(tinyKept))
	r = nextReload(t, reports)
	require.True(t, r.Activated, "%v %v", r.Problems, r.Err)
	assert.Equal(t, l.Revision(), r.Revision)
	assert.NotEqual(t, first, r.Revision)
	op, _ := cardOp(t, l, acq)
	assert.Equal(t, gateway.OpKeep, op)

	// A new subdirectory is watched too.
	writeAtomic(t, dir, "lib/broken.rego", "package dgw.lib\n\np if {\n")
	r = nextReload(t, reports)
	assert.False(t, r.Activated)
	require.NotEmpty(t, r.Problems)
	assert.Equal(t, "lib/broken.rego", r.Problems[0].File)

	assert.Equal(t, map[string]int64{"success": 1, "failure": 2}, reloadCounts(t, reader))
}

// bundleOf builds a snapshot bundle of a policy directory, as `opa build`
// does, signed with sc when it is set; tamper edits a module after signing.
func bundleOf(t *testing.T, files fstest.MapFS, sc *bundle.SigningConfig, tamper bool) []byte {
	t.Helper()
	b := bundle.Bundle{Manifest: bundle.Manifest{Revision: "test"}, Data: map[string]any{}}
	for name, f := range files {
		switch {
		case strings.HasSuffix(name, ".rego"):
			b.Modules = append(b.Modules, bundle.ModuleFile{URL: "/" + name, Path: "/" + name, Raw: f.Data})
		case name == "data/recipients.json":
			var v any
			require.NoError(t, json.Unmarshal(f.Data, &v))
			b.Data["data"] = v
		}
	}
	if sc != nil {
		require.NoError(t, b.GenerateSignature(sc, "signer", false))
	}
	if tamper {
		for i := range b.Modules {
			if b.Modules[i].Path == "/decision.rego" {
				b.Modules[i].Raw = []byte(tinyRules(`{"amount": "keep"}`))
			}
		}
	}
	var buf bytes.Buffer
	require.NoError(t, bundle.NewWriter(&buf).Write(b))
	return buf.Bytes()
}

// ecKeys is a P-256 key pair: the private key signs, dgw gets the public
// PEM in a file.
func ecKeys(t *testing.T) (*bundle.SigningConfig, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	priv, err := x509.MarshalECPrivateKey(k)
	require.NoError(t, err)
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "bundle.pub")
	require.NoError(t, os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600))
	return bundle.NewSigningConfig(string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: priv})), "ES256", ""), file
}

// bundleServer serves whatever bytes it holds, with an ETag, and counts
// the requests it answered 304 (unchanged says when one was).
type bundleServer struct {
	*httptest.Server
	body        atomic.Pointer[[]byte]
	notModified atomic.Int64
	unchanged   chan struct{}
}

func newBundleServer(t *testing.T, body []byte) *bundleServer {
	t.Helper()
	s := &bundleServer{unchanged: make(chan struct{}, 1)}
	s.body.Store(&body)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := *s.body.Load()
		sum := sha256.Sum256(b)
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		if r.Header.Get("If-None-Match") == etag {
			s.notModified.Add(1)
			select {
			case s.unchanged <- struct{}{}:
			default:
			}
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		_, _ = w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *bundleServer) serve(b []byte) { s.body.Store(&b) }

// TestWatchBundle: a signed bundle URL is polled; a bundle whose signature
// does not verify, or that is not signed, is rejected and counted, a
// signed new revision is activated.
func TestWatchBundle(t *testing.T) {
	sc, keyFile := ecKeys(t)
	key, err := policy.LoadBundleKey(keyFile, "")
	require.NoError(t, err)
	assert.Equal(t, "ES256", key.Algorithm)
	srv := newBundleServer(t, bundleOf(t, tinyPolicy(tinyMasked), sc, false))

	fsys, err := policy.FetchBundle(t.Context(), srv.Client(), srv.URL, key)
	require.NoError(t, err)
	l, err := policy.NewLive(t.Context(), fsys, policy.WithCatalogue(tinyCatalogue))
	require.NoError(t, err)
	acq := l.Recipients()[0]
	first := l.Revision()
	reports, reader := startWatch(t, l, policy.WatchBundle(srv.URL, key),
		policy.WithPollInterval(10*time.Millisecond), policy.WithHTTPClient(srv.Client()))

	srv.serve(bundleOf(t, tinyPolicy(tinyKept), sc, true))
	r := nextReload(t, reports)
	assert.False(t, r.Activated)
	assert.Equal(t, "bundle "+srv.URL, r.Origin)
	require.Error(t, r.Err)
	assert.Contains(t, r.Err.Error(), "decision.rego")

	srv.serve(bundleOf(t, tinyPolicy(tinyKept), nil, false))
	r = nextReload(t, reports)
	assert.False(t, r.Activated)
	require.Error(t, r.Err)
	assert.Contains(t, r.Err.Error(), "missing .signatures.json")
	assert.Equal(t, first, l.Revision())
	op, _ := cardOp(t, l, acq)
	assert.Equal(t, gateway.OpMask, op, "the running revision keeps serving")

	srv.serve(bundleOf(t, tinyPolicy(tinyKept), sc, false))
	r = nextReload(t, reports)
	require.True(t, r.Activated, "%v %v", r.Problems, r.Err)
	assert.Equal(t, l.Revision(), r.Revision)
	op, _ = cardOp(t, l, acq)
	assert.Equal(t, gateway.OpKeep, op)

	srv.serve(bundleOf(t, tinyPolicy(`{"amount": "keep", "card.holder": "keep"}`), sc, false))
	r = nextReload(t, reports)
	assert.False(t, r.Activated)
	require.NotEmpty(t, r.Problems)
	assert.Equal(t, "data/recipients.json", r.Problems[0].File, "registry problems point into the bundle's registry")
	assert.Contains(t, r.Problems[0].Msg, "outside the contract scope")

	assert.Equal(t, map[string]int64{"success": 1, "failure": 3}, reloadCounts(t, reader))
	// The watcher polls every 10ms: a poll of the bundle it has must be
	// answered 304, and must not count as a reload.
	select {
	case <-srv.unchanged:
	case <-time.After(30 * time.Second):
		t.Fatal("an unchanged bundle is downloaded again: no request was answered 304")
	}
	assert.Equal(t, map[string]int64{"success": 1, "failure": 3}, reloadCounts(t, reader), "a 304 is no reload")
}

func TestFetchBundleErrors(t *testing.T) {
	missing := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(missing.Close)
	_, err := policy.FetchBundle(t.Context(), missing.Client(), missing.URL, nil)
	require.ErrorContains(t, err, "HTTP 404")

	garbage := newBundleServer(t, []byte("not a bundle"))
	_, err = policy.FetchBundle(t.Context(), garbage.Client(), garbage.URL, nil)
	require.ErrorContains(t, err, "read bundle")

	broken := newBundleServer(t, bundleOf(t, tinyPolicy(tinyMasked, "broken.rego", "package dgw\n\nallow if {\n"), nil, false))
	_, err = policy.FetchBundle(t.Context(), broken.Client(), broken.URL, nil)
	var pe *policy.ProblemsError
	require.True(t, errors.As(err, &pe), "%v", err)
	assert.Equal(t, "broken.rego", pe.Problems[0].File)
	assert.Equal(t, 4, pe.Problems[0].Line)
}

func TestWatchOptions(t *testing.T) {
	l := tinyLive(t, tinyPolicy(tinyMasked))
	for _, tt := range []struct {
		name string
		opts []policy.WatchOption
		want string
	}{
		{"nothing", nil, "nothing to watch"},
		{"interval", []policy.WatchOption{policy.WatchDir("."), policy.WithPollInterval(0)}, "poll interval"},
		{"settle", []policy.WatchOption{policy.WatchDir("."), policy.WithSettle(-1)}, "settle"},
		{"url", []policy.WatchOption{policy.WatchBundle("", nil)}, "bundle url"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorContains(t, l.Watch(t.Context(), tt.opts...), tt.want)
		})
	}
}
