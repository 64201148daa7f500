package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/dgwproject/dgw/adapters/broker"
	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/audit"
	"github.com/dgwproject/dgw/gateway/policy"
	"github.com/dgwproject/dgw/gateway/redact"
	"github.com/dgwproject/dgw/policies"
)

func TestPolicyConfig(t *testing.T) {
	cfg, err := loadConfig("", []string{"DGW_BROKERS=b:9092"})
	require.NoError(t, err)
	assert.True(t, cfg.PolicyWatch, "policy_dir is watched by default")
	assert.Equal(t, "30s", cfg.PolicyPollInterval)
	assert.Equal(t, "plan", cfg.PolicyEvaluator)

	cfg, err = loadConfig("", []string{"DGW_BROKERS=b:9092", "DGW_POLICY_BUNDLE_URL=https://p.example/dgw.tar.gz",
		"DGW_POLICY_BUNDLE_KEY_FILE=/k", "DGW_POLICY_BUNDLE_KEY_ALG=ES256", "DGW_POLICY_POLL_INTERVAL=1m", "DGW_POLICY_WATCH=false",
		"DGW_POLICY_EVALUATOR=interpreter"})
	require.NoError(t, err)
	assert.Equal(t, []string{"https://p.example/dgw.tar.gz", "/k", "ES256", "1m", "interpreter"},
		[]string{cfg.PolicyBundleURL, cfg.PolicyBundleKeyFile, cfg.PolicyBundleKeyAlg, cfg.PolicyPollInterval, cfg.PolicyEvaluator})
	assert.False(t, cfg.PolicyWatch)

	sample, err := loadConfig("../../deploy/dgw.yaml", nil)
	require.NoError(t, err)
	assert.Equal(t, "/etc/dgw/policies", sample.PolicyDir)
	assert.True(t, sample.PolicyWatch)

	for _, tt := range []struct {
		env  []string
		want string
	}{
		{[]string{"DGW_POLICY_BUNDLE_URL=ftp://p.example/b"}, "policy_bundle_url: expected an http(s) URL"},
		{[]string{"DGW_POLICY_BUNDLE_URL=https://p.example/b", "DGW_POLICY_DIR=/p"}, "give one policy source"},
		{[]string{"DGW_POLICY_BUNDLE_KEY_FILE=/k"}, "which is not set"},
		{[]string{"DGW_POLICY_POLL_INTERVAL=0s"}, "policy_poll_interval"},
		{[]string{"DGW_POLICY_POLL_INTERVAL=soon"}, "policy_poll_interval"},
		{[]string{"DGW_POLICY_WATCH=maybe"}, "DGW_POLICY_WATCH"},
		{[]string{"DGW_POLICY_EVALUATOR=wasm"}, `policy_evaluator: expected plan or interpreter, got "wasm"`},
	} {
		_, err := loadConfig("", append([]string{"DGW_BROKERS=b:9092"}, tt.env...))
		require.Error(t, err, tt.env)
		assert.Contains(t, err.Error(), tt.want, tt.env)
	}
}

// shippedBundle is the built-in policy as `opa build policies/` makes it,
// signed with an HS256 secret when secret is set.
func shippedBundle(t *testing.T, secret string) []byte {
	t.Helper()
	b := bundle.Bundle{Data: map[string]any{}}
	data := map[string]any{}
	err := fs.WalkDir(policies.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := fs.ReadFile(policies.FS, p)
		if err != nil {
			return err
		}
		switch {
		case strings.HasSuffix(p, ".rego"):
			b.Modules = append(b.Modules, bundle.ModuleFile{URL: "/" + p, Path: "/" + p, Raw: raw})
		case strings.HasPrefix(p, "data/"):
			var doc map[string]any
			if err := json.Unmarshal(raw, &doc); err != nil {
				return err
			}
			maps.Copy(data, doc)
		}
		return nil
	})
	require.NoError(t, err)
	b.Data["data"] = data
	if secret != "" {
		require.NoError(t, b.GenerateSignature(bundle.NewSigningConfig(secret, "HS256", ""), "ci", false))
	}
	var buf bytes.Buffer
	require.NoError(t, bundle.NewWriter(&buf).Write(b))
	return buf.Bytes()
}

// TestRunPolicyFromBundle: with policy_bundle_url, run takes the policy
// from the bundle, verifies its signature with policy_bundle_key_file, and
// follows the URL.
func TestRunPolicyFromBundle(t *testing.T) {
	const secret = "a shared secret long enough for HS256"
	signed := shippedBundle(t, secret)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(signed) }))
	t.Cleanup(srv.Close)
	keyFile := filepath.Join(t.TempDir(), "bundle.key")
	require.NoError(t, os.WriteFile(keyFile, []byte(secret+"\n"), 0o600))
	cfg, err := loadConfig("", []string{"DGW_BROKERS=b:9092", "DGW_POLICY_BUNDLE_URL=" + srv.URL, "DGW_POLICY_BUNDLE_KEY_FILE=" + keyFile})
	require.NoError(t, err)

	rp, err := loadRunPolicy(t.Context(), cfg, redact.DevKeyring("bundle"), discardLogger())
	require.NoError(t, err)
	assert.Len(t, rp.parts.recipients, 16)
	assert.NotEmpty(t, rp.watch, "the bundle URL is polled")

	wrong := filepath.Join(t.TempDir(), "wrong.key")
	require.NoError(t, os.WriteFile(wrong, []byte("another secret, not the signer's"), 0o600))
	cfg.PolicyBundleKeyFile = wrong
	_, err = loadRunPolicy(t.Context(), cfg, redact.DevKeyring("bundle"), discardLogger())
	require.Error(t, err, "a bundle that does not verify is never loaded")
	assert.Contains(t, err.Error(), "verify")
}

// testBedFor is newTestBed with parts built by the caller.
func testBedFor(t *testing.T, p *parts) *testBed {
	t.Helper()
	sources := defaultSourceTopics(p.set)
	topics := append(append([]string{testDeadLetter, testHeld}, sources...), recipientTopics(p.recipients)...)
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", Partitions: 3, Topics: topics})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	acct, err := newAccountability(p.set, defaultAuditTopic, defaultSubjectTopic, audit.DevKey(devAuditSeed), defaultAuditRetention)
	require.NoError(t, err)
	require.NoError(t, acct.ensureTopics(t.Context(), kafka.AdminConfig{Brokers: b.Addrs()}, 3, 1))
	return &testBed{broker: b, brokers: b.Addrs(), parts: p, sources: sources, acct: acct}
}

// writeAtomic puts content at name in dir the way a deployment should:
// written aside, renamed into place.
func writeAtomic(t *testing.T, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), "next")
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(dir, name)))
}

func shipped(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(policies.FS, name)
	require.NoError(t, err)
	return string(b)
}

func replaceOnce(t *testing.T, s, old, with string) string {
	t.Helper()
	require.Equal(t, 1, strings.Count(s, old), "%q must occur once", old)
	return strings.Replace(s, old, with, 1)
}

func reloadCounts(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(t.Context(), &rm))
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "dgw.policy.reloads" {
				for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
					v, _ := p.Attributes.Value("result")
					out[v.AsString()] += p.Value
				}
			}
		}
	}
	return out
}

// TestPolicyReloadWhileRunning is the safe-change acceptance test: a
// running gateway (embedded broker, kafka-go adapters, real OPA) watches
// its policy directory. Every kind of bad revision is rejected with its
// file and line while the old revision keeps forwarding; then a good
// revision is written during a live stream, and every event is decided by
// exactly one revision (all its records carry that revision's header, and
// its deliveries are exactly that revision's decisions), none lost.
func TestPolicyReloadWhileRunning(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, policies.FS))
	p, err := buildParts(t.Context(), dir, "", redact.DevKeyring("reload"), 1<<20, discardLogger())
	require.NoError(t, err)
	tb := testBedFor(t, p)
	first := p.decider.Current()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	results := make(chan *gateway.EventResult, 1024)
	gwErr := make(chan error, 1)
	go func() {
		gwErr <- runGateway(ctx, gatewayOptions{brokers: tb.brokers, clientID: "reload", group: "reload", topics: tb.sources,
			deadLetter: testDeadLetter, held: testHeld, workers: 4, queue: 16, parts: p, log: discardLogger(), acct: tb.acct,
			observers: []gateway.Observer{gateway.ObserverFunc(func(r *gateway.EventResult) { results <- r.Clone() })}})
	}()
	reader := sdkmetric.NewManualReader()
	reports := make(chan policy.Reload, 16)
	stopWatch := followPolicy(ctx, p.decider, []policy.WatchOption{policy.WatchDir(dir), policy.WithSettle(100 * time.Millisecond)},
		sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), func(r policy.Reload) { reports <- r }, discardLogger())

	pool := generate(t, p, 220, 5)
	sent := 0
	var handled []*gateway.EventResult
	// send publishes the next n events and waits until they are handled.
	send := func(n int) {
		t.Helper()
		recs := make([]gateway.Disclosure, 0, n)
		for _, e := range pool[sent : sent+n] {
			recs = append(recs, e.record)
		}
		sent += n
		tb.publish(t, recs...)
		for range n {
			select {
			case r := <-results:
				handled = append(handled, r)
			case err := <-gwErr:
				t.Fatalf("the gateway stopped: %v", err)
			case <-time.After(3 * time.Minute):
				t.Fatalf("%d of %d events handled", len(handled), sent)
			}
		}
	}
	nextReport := func() policy.Reload {
		t.Helper()
		select {
		case r := <-reports:
			return r
		case <-time.After(3 * time.Minute):
			t.Fatal("no policy reload reported")
			return policy.Reload{}
		}
	}

	send(6)
	seatRule := "\t\t\"itinerary.segments.seat\": \"keep\",\n\t},\n}\n\ngrants.service_provider.checkin"
	bad := []struct {
		name   string
		file   string
		change string // the file's new content; the shipped one (or none) is restored after
		where  string // problem location prefix
		want   string
	}{
		{"syntax error", "broken.rego", "package dgw\n\nallow if {\n", "broken.rego:4:", "rego_parse_error"},
		{"runtime conflict", "conflict.rego",
			"package dgw\n\n# Service events rest on consent now.\nbasis := \"consent\" if input.event.purpose == \"service\"\n",
			"classes_test.rego:", "conflict.rego:4: eval_conflict_error"},
		{"failing Rego test", "caterer_test.rego",
			"package dgw_test\n\n# Catering gets no seat numbers any more.\ntest_caterer_gets_no_seat if {\n" +
				"\td := decide(\"skychef-catering\", ev(\"booking\", \"service\", [\"KZ\"]), {})\n\tnot d.fields[\"itinerary.segments.seat\"]\n}\n",
			"caterer_test.rego:4:", "rego test data.dgw_test.test_caterer_gets_no_seat failed"},
		{"scope violation", "lounge.rego",
			"package dgw\n\n# The lounge checks passports.\nrelease[\"document.number\"] := \"keep\" if {\n" +
				"\tinput.recipient.id == \"ist-lounge\"\n\tinput.event.type == \"checkin\"\n}\n",
			"data/recipients.json:", "recipient ist-lounge, checkin events: the policy releases a field outside the contract scope"},
		{"field no schema has", "fields.rego",
			replaceOnce(t, shipped(t, "fields.rego"), seatRule, strings.Replace(seatRule, `segments.seat"`, `segments.seat_number"`, 1)),
			"fields.rego:", `field path "itinerary.segments.seat_number" is not a leaf of schemas/booking.avsc`},
	}
	for _, b := range bad {
		writeAtomic(t, dir, b.file, b.change)
		r := nextReport()
		assert.False(t, r.Activated, b.name)
		assert.Equal(t, first.Revision(), r.Previous, b.name)
		found := slices.ContainsFunc(r.Problems, func(p policy.Problem) bool {
			return strings.HasPrefix(p.String(), b.where) && p.Line > 0 && strings.Contains(p.Msg, b.want)
		})
		assert.True(t, found, "%s: want %s ...%s... in %v (error %v)", b.name, b.where, b.want, r.Problems, r.Err)
		assert.Equal(t, first.Revision(), p.decider.Revision(), "%s: the running revision keeps serving", b.name)
		if content, err := fs.ReadFile(policies.FS, b.file); err == nil {
			writeAtomic(t, dir, b.file, string(content))
		} else {
			require.NoError(t, os.Remove(filepath.Join(dir, b.file)))
		}
		send(3) // still forwarded, by the first revision
	}
	for _, r := range handled {
		for _, rr := range r.Recipients {
			require.Equal(t, first.Revision(), rr.Decision.Revision, "event %s, recipient %s", r.EventID, rr.Recipient.ID)
		}
	}

	// A good revision during a live stream: compliance narrows ground
	// transfers' and catering's bookings to the service purpose.
	writeAtomic(t, dir, "fields.rego", replaceOnce(t, shipped(t, "fields.rego"),
		"grants.service_provider.booking := {\n\t\"purposes\": {\"contract\", \"service\"},",
		"grants.service_provider.booking := {\n\t\"purposes\": {\"service\"},"))
	activated, after := false, 0
	for batch := 0; batch < 80 && after < 3; batch++ {
		select {
		case r := <-reports:
			require.True(t, r.Activated, "%v %v", r.Problems, r.Err)
			activated = true
		default:
		}
		send(2)
		if activated {
			after++
		}
	}
	if !activated {
		r := nextReport()
		require.True(t, r.Activated, "%v %v", r.Problems, r.Err)
	}
	for ; after < 3; after++ {
		send(2)
	}
	second := p.decider.Current()
	require.NotEqual(t, first.Revision(), second.Revision())
	stopWatch()
	cancel()
	require.NoError(t, <-gwErr)

	assert.Equal(t, map[string]int64{"success": 1, "failure": int64(len(bad))}, reloadCounts(t, reader))

	// Every event handled, each by one revision.
	require.Len(t, handled, sent, "no event lost")
	revisionOf := map[string]string{}
	perRevision := map[string]int{}
	for _, r := range handled {
		require.Empty(t, r.DeadLetter)
		rev := r.Recipients[0].Decision.Revision
		for _, rr := range r.Recipients {
			require.NotEqual(t, gateway.OutcomeHeld, rr.Outcome, "event %s held for %s: %v", r.EventID, rr.Recipient.ID, rr.Err)
			require.Equal(t, rev, rr.Decision.Revision, "event %s was decided by two revisions", r.EventID)
		}
		revisionOf[r.EventID] = rev
		perRevision[rev]++
	}
	assert.Positive(t, perRevision[first.Revision()])
	assert.Positive(t, perRevision[second.Revision()], "events were decided by the new revision")
	assert.Len(t, perRevision, 2)

	// What reached the recipients is exactly what each event's revision
	// allows, and every record says which revision decided it.
	deciders := map[string]*policy.Decider{first.Revision(): first, second.Revision(): second}
	got := readAll(t, tb.brokers, append([]string{testHeld, testDeadLetter}, recipientTopics(p.recipients)...)...)
	assert.Empty(t, got[testHeld])
	assert.Empty(t, got[testDeadLetter])
	delivered := map[string]map[string]bool{}
	for _, r := range p.recipients {
		for _, rec := range got[r.Topic] {
			id := rec.Headers[gateway.HeaderEventID]
			require.Equal(t, revisionOf[id], rec.Headers[gateway.HeaderPolicyRevision], "event %s, recipient %s", id, r.ID)
			if delivered[id] == nil {
				delivered[id] = map[string]bool{}
			}
			assert.False(t, delivered[id][r.ID], "event %s delivered twice to %s", id, r.ID)
			delivered[id][r.ID] = true
		}
	}
	differs := 0
	for _, e := range pool[:sent] {
		ev, err := p.decoder.Decode(gateway.Message{Topic: e.record.Topic, Value: e.record.Value})
		require.NoError(t, err)
		want := map[string]map[string]bool{}
		for rev, d := range deciders {
			want[rev] = map[string]bool{}
			for _, r := range p.recipients {
				dec, err := d.Decide(t.Context(), &ev.Context, r)
				require.NoError(t, err)
				if dec.Allow && len(dec.Released()) > 0 {
					want[rev][r.ID] = true
				}
			}
		}
		if !maps.Equal(want[first.Revision()], want[second.Revision()]) {
			differs++
		}
		assert.Equal(t, want[revisionOf[e.id]], orEmpty(delivered[e.id]), "event %s, revision %s", e.id, revisionOf[e.id])
	}
	assert.Positive(t, differs, "the new revision decides some events of the stream differently")
	t.Logf("%d events; per revision %v; %d of them decided differently by the two revisions", sent, perRevision, differs)
}

func orEmpty(m map[string]bool) map[string]bool {
	if m == nil {
		return map[string]bool{}
	}
	return m
}
