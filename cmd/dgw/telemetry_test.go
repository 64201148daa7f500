package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/dgwproject/dgw/adapters/broker"
	"github.com/dgwproject/dgw/adapters/telemetry"
	"github.com/dgwproject/dgw/adapters/telemetry/telemetrytest"
	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/redact"
	"github.com/dgwproject/dgw/gateway/synth"
	"github.com/dgwproject/dgw/policies"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestReadiness(t *testing.T) {
	failing := func(reason string) func(context.Context) error {
		return func(context.Context) error { return errors.New(reason) }
	}
	passing := func(context.Context) error { return nil }
	tests := []struct {
		name       string
		setup      func(r *readiness)
		wantReady  bool
		wantReason string
	}{
		{name: "no checks", setup: func(*readiness) {}, wantReady: true},
		{name: "flag not set", setup: func(r *readiness) { r.Flag("policy", "policy not loaded") },
			wantReason: "policy not loaded"},
		{name: "flag set", setup: func(r *readiness) { r.Flag("policy", "policy not loaded").Set(true) }, wantReady: true},
		{name: "flag set then cleared", setup: func(r *readiness) {
			f := r.Flag("consumer", "consumer not running")
			f.Set(true)
			f.Set(false)
		}, wantReason: "consumer not running"},
		{name: "every failing reason, in order", setup: func(r *readiness) {
			r.Flag("policy", "policy not loaded")
			r.Add("subject state", failing("subject state catching up"))
			r.Add("broker", passing)
			r.Add("consumer", failing("consumer not running"))
		}, wantReason: "policy not loaded; subject state catching up; consumer not running"},
		{name: "startup: neither policy nor consumer", setup: func(r *readiness) {
			(&observability{ready: r}).startupChecks()
		}, wantReason: "policy not loaded; consumer not running"},
		{name: "startup: policy loaded, consumer not started", setup: func(r *readiness) {
			(&observability{ready: r}).startupChecks().Set(true)
		}, wantReason: "consumer not running"},
		{name: "a check added again replaces the first", setup: func(r *readiness) {
			r.Add("broker", failing("broker unreachable"))
			r.Add("broker", passing)
		}, wantReady: true},
		{name: "checks get a deadline", setup: func(r *readiness) {
			r.Add("slow", func(ctx context.Context) error {
				if _, ok := ctx.Deadline(); !ok {
					return errors.New("no deadline")
				}
				return nil
			})
		}, wantReady: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReadiness()
			tt.setup(r)
			ok, reason := r.Ready()
			assert.Equal(t, tt.wantReady, ok)
			assert.Equal(t, tt.wantReason, reason)
		})
	}
	var none *readiness
	none.watchGateway(nil)() // runGateway without readiness: nothing to watch
}

func TestConfigAdminAddr(t *testing.T) {
	dir := t.TempDir()
	file := func(body string) string {
		p := filepath.Join(dir, strconv.Itoa(len(body))+".yaml")
		require.NoError(t, os.WriteFile(p, []byte("brokers: [\"h:9092\"]\n"+body), 0o600))
		return p
	}
	tests := []struct {
		name    string
		file    string
		environ []string
		want    string
		wantErr string
	}{
		{name: "default", file: file(""), want: telemetry.DefaultAdminAddr},
		{name: "file", file: file("admin_addr: 0.0.0.0:9464\n"), want: "0.0.0.0:9464"},
		{name: "environment wins", file: file("admin_addr: 0.0.0.0:9464\n"), environ: []string{"DGW_ADMIN_ADDR=:9999"}, want: ":9999"},
		{name: "empty: no admin server", file: file(""), environ: []string{"DGW_ADMIN_ADDR="}, want: ""},
		{name: "not host:port", file: file("admin_addr: localhost\n"), wantErr: "admin_addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(tt.file, tt.environ)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg.AdminAddr)
		})
	}
}

// faultyRecipient is added to the registry by faultyPolicy; evaluating any
// decision for it fails, so each of its copies is held (policy-error).
const faultyRecipient = "fault-injected"

// faultyPolicy writes the built-in policy to a directory with one more
// recipient, a copy of ala-airport, and a module that makes every decision
// for that recipient a Rego conflict error.
func faultyPolicy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, policies.FS))
	regFile := filepath.Join(dir, "data", "recipients.json")
	raw, err := os.ReadFile(regFile)
	require.NoError(t, err)
	var reg map[string][]map[string]any
	require.NoError(t, json.Unmarshal(raw, &reg))
	var copied map[string]any
	for _, r := range reg["recipients"] {
		if r["id"] == "ala-airport" {
			b, err := json.Marshal(r)
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &copied))
		}
	}
	require.NotNil(t, copied, "ala-airport is in the registry")
	copied["id"], copied["name"], copied["topic"] = faultyRecipient, "Fault injection", "dgw.out."+faultyRecipient
	reg["recipients"] = append(reg["recipients"], copied)
	raw, err = json.MarshalIndent(reg, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(regFile, raw, 0o600))
	fault := `package dgw

# Test fault: a second, different value of the complete rule transfer for
# one recipient makes every evaluation for it an eval_conflict_error.
transfer := {"cross_border": false, "mechanism": "fault"} if input.recipient.id == "` + faultyRecipient + `"
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fault.rego"), []byte(fault), 0o600))
	return dir
}

// telBed is a testBed built from a policy directory, with a logger.
func newTelBed(t *testing.T, policyDir string, maxRecord int, log *slog.Logger) *testBed {
	t.Helper()
	p, err := buildParts(t.Context(), policyDir, "", redact.DevKeyring("telemetry"), maxRecord, log)
	require.NoError(t, err)
	sources := defaultSourceTopics(p.set)
	topics := append(append([]string{testDeadLetter, testHeld}, sources...), recipientTopics(p.recipients)...)
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", Partitions: 3, Topics: topics})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	return &testBed{broker: b, brokers: b.Addrs(), parts: p, sources: sources}
}

// liveGateway is runGateway running in the background.
type liveGateway struct {
	cancel  context.CancelFunc
	done    chan struct{} // closed when runGateway has returned
	err     error         // what it returned, once done
	seen    atomic.Int64
	want    int64
	reached chan struct{}
}

// startGateway runs the gateway on tb, with obs's providers and readiness,
// until stopAndWait or the end of the test; wait blocks until it has fully
// processed n records.
func (tb *testBed) startGateway(t *testing.T, group string, n int64, log *slog.Logger, obs *observability, extra ...gateway.Observer) *liveGateway {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	g := &liveGateway{cancel: cancel, done: make(chan struct{}), want: n, reached: make(chan struct{})}
	// The count comes last: the pipeline calls observers in order, so
	// once n events are counted, every other observer has seen them too
	// (counted first, the last event could reach wait before the
	// caller's observers, and a snapshot taken then would miss it).
	obsv := append(slices.Clone(extra), gateway.ObserverFunc(func(*gateway.EventResult) {
		if g.seen.Add(1) == n {
			close(g.reached)
		}
	}))
	go func() {
		defer close(g.done)
		g.err = runGateway(ctx, gatewayOptions{brokers: tb.brokers, clientID: group, group: group, topics: tb.sources,
			deadLetter: testDeadLetter, held: testHeld, workers: 4, queue: 16, parts: tb.parts, log: log,
			observers: obsv, ready: obs.ready, extra: obs.gatewayOptions()})
	}()
	t.Cleanup(func() { _ = g.stopAndWait(t) })
	return g
}

func (g *liveGateway) wait(t *testing.T) {
	t.Helper()
	select {
	case <-g.reached:
	case <-g.done:
		t.Fatalf("gateway stopped after %d of %d records: %v", g.seen.Load(), g.want, g.err)
	case <-time.After(240 * testTimeoutScale()): // a loaded 2-core CI machine with -race is slow
		t.Fatalf("gateway processed %d of %d records before the deadline", g.seen.Load(), g.want)
	}
}

// stopAndWait cancels the gateway, waits until it has drained and
// committed, and returns what runGateway returned.
func (g *liveGateway) stopAndWait(t *testing.T) error {
	t.Helper()
	g.cancel()
	select {
	case <-g.done:
		return g.err
	case <-time.After(60 * testTimeoutScale()):
		t.Error("gateway did not stop within 60s")
		return nil
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// waitFor polls until cond holds, for conditions only another process
// (Prometheus, the broker) can make true.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		}
	}
}

// traceparent is the W3C header of a publisher's span: trace id and span id
// derived from i, sampled.
func traceparent(i int) (header, traceID, spanID string) {
	traceID = fmt.Sprintf("4bf92f3577b34da6%016x", i+1)
	spanID = fmt.Sprintf("00f067aa%08x", i+1)
	return "00-" + traceID + "-" + spanID + "-01", traceID, spanID
}

// documentedMetric is one row of the metric table of deploy/prometheus/README.md.
type documentedMetric struct {
	kind   string   // counter, histogram, gauge
	labels []string // every `code` span of the labels cell
}

func documentedMetrics(t *testing.T) map[string]documentedMetric {
	t.Helper()
	f, err := os.Open("../../deploy/prometheus/README.md")
	require.NoError(t, err)
	defer f.Close()
	out := map[string]documentedMetric{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "| `dgw.") {
			continue
		}
		cells := strings.Split(line, "|")
		require.GreaterOrEqual(t, len(cells), 6, line)
		var codes []string
		for rest := cells[3]; ; {
			_, after, ok := strings.Cut(rest, "`")
			if !ok {
				break
			}
			code, tail, _ := strings.Cut(after, "`")
			codes = append(codes, code)
			rest = tail
		}
		require.NotEmpty(t, codes, line)
		family := codes[0]
		var labels []string
		for rest := strings.Join(cells[4:], "|"); ; {
			_, after, ok := strings.Cut(rest, "`")
			if !ok {
				break
			}
			code, tail, _ := strings.Cut(after, "`")
			labels = append(labels, code)
			rest = tail
		}
		out[family] = documentedMetric{kind: strings.TrimRight(strings.Fields(cells[2])[0], ","), labels: labels}
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, out)
	return out
}

// dashboardExprs returns every PromQL expression of the Grafana dashboard's
// panels (rows' panels included), ready for Prometheus.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../../deploy/grafana/dgw-dashboard.json")
	require.NoError(t, err)
	type panel struct {
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		Panels []json.RawMessage `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(raw, &d))
	expand := strings.NewReplacer("$__rate_interval", "1m", "$__range", "5m", "$job", "dgw")
	var out []string
	var walk func([]json.RawMessage)
	walk = func(ps []json.RawMessage) {
		for _, r := range ps {
			var p panel
			require.NoError(t, json.Unmarshal(r, &p))
			for _, tg := range p.Targets {
				out = append(out, expand.Replace(tg.Expr))
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	require.NotEmpty(t, out)
	return out
}

// TestTelemetryEndToEnd runs the gateway as `dgw run` wires it (SDK meter
// provider, Prometheus exposition, admin server, readiness, W3C propagator)
// on the embedded broker with real Avro and OPA, against a real Prometheus
// server, with a policy variant that holds every copy for one recipient.
// Source records carry a publisher's traceparent; bad records ride along.
// The subtests are the proofs, on one run.
func TestTelemetryEndToEnd(t *testing.T) {
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			t.Logf("last gateway log lines:\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	const maxRecord = 64 << 10
	tb := newTelBed(t, faultyPolicy(t), maxRecord, log)
	p := tb.parts

	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	obs, err := startObservability(t.Context(), observabilityConfig{adminAddr: "127.0.0.1:0", tracer: tp, log: log})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, obs.close(context.Background())) })
	obs.startupChecks().Set(true)
	admin := "http://" + obs.adminAddr

	// Prometheus scrapes from before the traffic, so rates see it arrive.
	prom := telemetrytest.StartPrometheus(t, obs.adminAddr)
	telemetrytest.WaitForSeries(t, prom, `up{job="dgw"} == 1`, 30*time.Second)

	events := generate(t, p, 160, 7)
	published := map[string]string{} // event id → publisher trace id
	publisherSpan := map[string]string{}
	var records []gateway.Disclosure
	for i, e := range events {
		hdr, traceID, spanID := traceparent(i)
		published[e.id], publisherSpan[traceID] = traceID, spanID
		r := e.record
		r.Headers = []gateway.Header{{Key: "traceparent", Value: []byte(hdr)}}
		records = append(records, r)
	}
	// Bad records, each built from an event full of personal data.
	good := events[0].record.Value
	unknown := bytes.Clone(good)
	unknown[2] ^= 0xff
	huge := append(bytes.Clone(good), bytes.Repeat([]byte(events[0].ev.Key+" "), maxRecord/8)...)
	for i, v := range [][]byte{good[:len(good)/2], good[10:], unknown, huge} {
		hdr, traceID, spanID := traceparent(len(events) + i)
		publisherSpan[traceID] = spanID
		records = append(records, gateway.Disclosure{Topic: events[0].record.Topic, Key: []byte(events[0].ev.Key), Value: v,
			Headers: []gateway.Header{{Key: "traceparent", Value: []byte(hdr)}}})
	}

	stats := gateway.NewStats()
	var errMu sync.Mutex
	var errorTexts []string
	collectErrors := gateway.ObserverFunc(func(r *gateway.EventResult) {
		errMu.Lock()
		defer errMu.Unlock()
		if r.Err != nil {
			errorTexts = append(errorTexts, r.Err.Error())
		}
		for _, rr := range r.Recipients {
			if rr.Err != nil {
				errorTexts = append(errorTexts, rr.Err.Error())
			}
			errorTexts = append(errorTexts, rr.Decision.Reasons...)
		}
	})
	gw := tb.startGateway(t, "telemetry", int64(len(records)), log, obs, stats, collectErrors)
	waitFor(t, "readyz", 60*time.Second, func() bool { code, _ := httpGet(t, admin+"/readyz"); return code == http.StatusOK })
	tb.publish(t, records...)
	gw.wait(t)
	snap := stats.Snapshot()

	_, metricsBody := httpGet(t, admin+"/metrics")
	healthCode, healthBody := httpGet(t, admin+"/healthz")
	readyCode, readyBody := httpGet(t, admin+"/readyz")

	t.Run("prometheus finds the delivery counters per recipient", func(t *testing.T) {
		want := map[string]string{}
		for _, r := range snap.Recipients {
			if r.Delivered > 0 {
				want[r.ID] = strconv.FormatInt(r.Delivered, 10)
			}
		}
		require.GreaterOrEqual(t, len(want), 10, "recipients with deliveries: %v", want)
		var got map[string]string
		var held []telemetrytest.Sample
		defer func() {
			if !t.Failed() {
				return
			}
			// Tell a count that differs from one that never arrived: the
			// scrapes that failed (up 0, e.g. past the scrape timeout on a
			// loaded machine) and the slowest one.
			t.Logf("Prometheus last had delivered %v (the gateway counted %v) and held %v (want %d)", got, want, held, len(events))
			for _, q := range []string{`count_over_time(up[5m])`, `sum_over_time(up[5m])`, `max_over_time(scrape_duration_seconds[5m])`} {
				s, err := telemetrytest.Query(context.Background(), prom, q)
				t.Logf("%s: %v %v", q, s, err)
			}
		}()
		// A scrape can fall between the counters one event updates, so wait
		// until one scrape has both the final delivery and held counts.
		waitFor(t, "Prometheus has the final delivery and held counts", 30*time.Second, func() bool {
			samples, err := telemetrytest.Query(t.Context(), prom, `dgw_deliveries_total{outcome="delivered"}`)
			require.NoError(t, err)
			got = map[string]string{}
			for _, s := range samples {
				assert.Equal(t, "dgw", s.Labels["job"])
				got[s.Labels["recipient"]] = s.Value
			}
			held, err = telemetrytest.Query(t.Context(), prom, `dgw_held_total{reason="policy-error"}`)
			require.NoError(t, err)
			return assert.ObjectsAreEqual(want, got) && len(held) == 1 && held[0].Value == strconv.Itoa(len(events))
		})
		require.Len(t, held, 1)
		assert.Equal(t, faultyRecipient, held[0].Labels["recipient"])
		assert.Equal(t, strconv.Itoa(len(events)), held[0].Value, "every copy for the faulty recipient is held")
	})

	t.Run("every dashboard query finds series", func(t *testing.T) {
		for _, expr := range dashboardExprs(t) {
			got := telemetrytest.WaitForSeries(t, prom, expr, 30*time.Second)
			assert.NotEmpty(t, got, expr)
		}
	})

	t.Run("promtool accepts the exposition", func(t *testing.T) {
		telemetrytest.CheckMetrics(t, []byte(metricsBody))
	})

	t.Run("the binary exports exactly the documented metrics", func(t *testing.T) {
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(strings.NewReader(metricsBody))
		require.NoError(t, err)
		documented := documentedMetrics(t)
		kinds := map[dto.MetricType]string{dto.MetricType_COUNTER: "counter", dto.MetricType_HISTOGRAM: "histogram", dto.MetricType_GAUGE: "gauge"}
		var exported []string
		for name, f := range families {
			if !strings.HasPrefix(name, "dgw_") {
				continue
			}
			exported = append(exported, name)
			doc, ok := documented[name]
			if !assert.True(t, ok, "%s is exported but not documented", name) {
				continue
			}
			assert.Equal(t, doc.kind, kinds[f.GetType()], name)
			for _, m := range f.GetMetric() {
				for _, lp := range m.GetLabel() {
					if !strings.HasPrefix(lp.GetName(), "otel_scope_") {
						assert.Contains(t, doc.labels, lp.GetName(), "%s: label %s is not documented", name, lp.GetName())
					}
				}
			}
		}
		var want []string
		for name := range documented {
			want = append(want, name)
		}
		assert.ElementsMatch(t, want, exported, "every documented metric is exported by the running gateway")
	})

	t.Run("health endpoints", func(t *testing.T) {
		assert.Equal(t, http.StatusOK, healthCode)
		assert.Equal(t, "ok\n", healthBody)
		assert.Equal(t, http.StatusOK, readyCode, readyBody)
		assert.Equal(t, "ready\n", readyBody)
	})

	t.Run("trace context from the publisher to the partner", func(t *testing.T) {
		stubs := spans.GetSpans()
		require.NotEmpty(t, stubs)
		// span id → span, per trace.
		disclose := map[string]map[string]string{} // trace id → recipient → span id of dgw.disclose
		consumed := map[string]int{}
		for _, s := range stubs {
			traceID := s.SpanContext.TraceID().String()
			_, ours := publisherSpan[traceID]
			require.True(t, ours, "span %s has trace id %s, which no publisher started", s.Name, traceID)
			if strings.HasPrefix(s.Name, "dgw.consume ") {
				consumed[traceID]++
				assert.True(t, s.Parent.IsRemote(), "the consume span's parent is the publisher's span")
				assert.Equal(t, publisherSpan[traceID], s.Parent.SpanID().String())
			}
			if s.Name == "dgw.disclose" {
				for _, kv := range s.Attributes {
					if kv.Key == "dgw.recipient.id" {
						if disclose[traceID] == nil {
							disclose[traceID] = map[string]string{}
						}
						disclose[traceID][kv.Value.AsString()] = s.SpanContext.SpanID().String()
					}
				}
			}
		}
		assert.Len(t, consumed, len(records), "one consume span per source record, in the publisher's trace")
		for id, n := range consumed {
			assert.Equal(t, 1, n, "trace %s", id)
		}

		got := readAll(t, tb.brokers, recipientTopics(p.recipients)...)
		delivered := 0
		for _, r := range p.recipients {
			for _, rec := range got[r.Topic] {
				delivered++
				traceID := published[rec.Headers[gateway.HeaderEventID]]
				require.NotEmpty(t, traceID, "record of unknown event on %s", r.Topic)
				parts := strings.Split(rec.Headers["traceparent"], "-")
				require.Len(t, parts, 4, "recipient %s: traceparent %q", r.ID, rec.Headers["traceparent"])
				assert.Equal(t, traceID, parts[1], "recipient %s: the publisher's trace id", r.ID)
				assert.Equal(t, disclose[traceID][r.ID], parts[2], "recipient %s: the parent is the gateway's disclose span", r.ID)
				assert.Equal(t, "01", parts[3], "sampled")
			}
		}
		assert.Greater(t, delivered, 0)
	})

	require.NoError(t, gw.stopAndWait(t), "the gateway returns no error")
	readyCodeAfter, readyBodyAfter := httpGet(t, admin+"/readyz")
	t.Run("readyz after the gateway stopped", func(t *testing.T) {
		assert.Equal(t, http.StatusServiceUnavailable, readyCodeAfter)
		assert.Equal(t, "consumer not running\n", readyBodyAfter)
	})

	t.Run("no personal data in logs, spans, metrics, health or errors", func(t *testing.T) {
		parked := readAll(t, tb.brokers, testHeld, testDeadLetter)
		require.Len(t, parked[testDeadLetter], 4, "the bad records are dead-lettered")
		require.Len(t, parked[testHeld], len(events), "the faulty recipient's copies are held")
		errMu.Lock()
		texts := slices.Clone(errorTexts)
		errMu.Unlock()
		for _, topic := range []string{testHeld, testDeadLetter} {
			for _, rec := range parked[topic] {
				texts = append(texts, rec.Headers[gateway.HeaderReasonDetail])
			}
		}

		channels := map[string]string{
			"logs":    logs.String(),
			"spans":   renderSpans(spans.GetSpans()),
			"metrics": metricsBody,
			"health":  strings.Join([]string{healthBody, readyBody, readyBodyAfter}, "\n"),
			"errors":  strings.Join(texts, "\n"),
		}
		// The channels hold the error paths, or the test proves nothing.
		assert.Contains(t, channels["logs"], `"msg":"held for recipient"`)
		assert.Contains(t, channels["logs"], `"msg":"dead-lettered record"`)
		assert.Contains(t, channels["logs"], `"level":"DEBUG"`)
		for _, reason := range []gateway.Reason{gateway.ReasonPolicy, gateway.ReasonDecode, gateway.ReasonBadMagic, gateway.ReasonUnknownSchema, gateway.ReasonTooLarge} {
			assert.Contains(t, channels["spans"], string(reason), "spans record %s", reason)
			assert.Contains(t, channels["metrics"], `reason="`+string(reason)+`"`)
			assert.Contains(t, channels["errors"], string(reason))
		}
		assert.Contains(t, channels["errors"], "eval_conflict_error")
		assert.Contains(t, channels["spans"], "dgw.event.id")

		// Every personal value of every event, the Kafka key (passenger id)
		// first, searched verbatim in every channel...
		var canaries []string
		for _, e := range events {
			cs := synth.Canaries(e.ev)
			require.Equal(t, e.ev.Key, cs[0])
			canaries = append(canaries, cs...)
		}
		require.Greater(t, len(canaries), 5*len(events))
		for name, text := range channels {
			for _, c := range canaries {
				if strings.Contains(text, c) {
					t.Errorf("%s contain the personal value %q", name, c)
				}
			}
		}
		// ...and every canary marker, which also finds masked or partial
		// values. Prometheus's own process metrics are random numbers, so
		// only dgw's series are scanned for markers.
		var dgwSeries []string
		for _, line := range strings.Split(metricsBody, "\n") {
			if strings.Contains(line, "dgw_") {
				dgwSeries = append(dgwSeries, line)
			}
		}
		markers := map[string]string{"logs": channels["logs"], "spans": channels["spans"], "metrics": strings.Join(dgwSeries, "\n"),
			"health": channels["health"], "errors": channels["errors"]}
		for name, text := range markers {
			for i, line := range strings.Split(text, "\n") {
				if synth.ContainsCanary([]byte(line)) {
					t.Errorf("%s, line %d, holds a canary marker: %.300s", name, i+1, line)
				}
			}
		}
	})
}

// renderSpans writes everything an exporter would send about spans, except
// timings: names, kinds, status, attributes, events with their attributes,
// links and resource.
func renderSpans(stubs tracetest.SpanStubs) string {
	var b strings.Builder
	for _, s := range stubs {
		fmt.Fprintf(&b, "span %s kind=%s status=%s %q\n", s.Name, s.SpanKind, s.Status.Code, s.Status.Description)
		for _, kv := range s.Attributes {
			fmt.Fprintf(&b, "  %s=%s\n", kv.Key, kv.Value.Emit())
		}
		for _, ev := range s.Events {
			fmt.Fprintf(&b, "  event %s\n", ev.Name)
			for _, kv := range ev.Attributes {
				fmt.Fprintf(&b, "    %s=%s\n", kv.Key, kv.Value.Emit())
			}
		}
		for _, l := range s.Links {
			for _, kv := range l.Attributes {
				fmt.Fprintf(&b, "  link %s=%s\n", kv.Key, kv.Value.Emit())
			}
		}
		if s.Resource != nil {
			for _, kv := range s.Resource.Attributes() {
				fmt.Fprintf(&b, "  resource %s=%s\n", kv.Key, kv.Value.Emit())
			}
		}
	}
	return b.String()
}

// TestDevTrace runs `dgw dev --trace` as a user would: every span goes to
// stdout as a JSON line, one consume span per record and one disclose span
// per recipient of each, and the summary still follows; the admin server's
// address is announced.
func TestDevTrace(t *testing.T) {
	const events = 30
	out, stderr, code := runCLI(t, nil, "dev", "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
		"--events", strconv.Itoa(events), "--rate", "0", "--corrupt-every", "0", "--json", "--trace")
	require.Equal(t, 0, code, stderr)
	assert.Regexp(t, `metrics on http://127\.0\.0\.1:\d+/metrics`, stderr)

	dec := json.NewDecoder(strings.NewReader(out))
	names := map[string]int{}
	traces := map[string]bool{}
	var summary struct {
		Events     int64 `json:"events"`
		Recipients []struct {
			ID string `json:"id"`
		} `json:"recipients"`
	}
	for dec.More() {
		var obj map[string]json.RawMessage
		require.NoError(t, dec.Decode(&obj))
		if raw, ok := obj["Name"]; ok {
			var name string
			require.NoError(t, json.Unmarshal(raw, &name))
			if strings.HasPrefix(name, "dgw.consume ") {
				name = "dgw.consume"
			}
			names[name]++
			var sc struct{ TraceID string }
			require.NoError(t, json.Unmarshal(obj["SpanContext"], &sc))
			traces[sc.TraceID] = true
			continue
		}
		b, err := json.Marshal(obj)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &summary))
	}
	require.Equal(t, int64(events), summary.Events, "the summary follows the spans")
	assert.Equal(t, events, names["dgw.consume"], "one consume span per record")
	assert.Equal(t, events*len(summary.Recipients), names["dgw.disclose"], "one disclose span per record and recipient")
	assert.Equal(t, events, names["dgw.produce"])
	assert.Len(t, traces, events, "one trace per record")
}

// TestRunServesAdmin runs `dgw run` in-process against an embedded broker:
// JSON logs, the admin server on the configured address, /readyz ready once
// the policy is loaded, the broker answers and the consumer runs, /metrics
// with the active policy revision; SIGTERM-like cancellation ends it with
// exit code 0.
func TestRunServesAdmin(t *testing.T) {
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", Partitions: 1})
	require.NoError(t, err)
	t.Cleanup(b.Close)

	raw, err := policies.FS.ReadFile("data/recipients.json")
	require.NoError(t, err)
	var reg struct {
		Recipients []struct {
			ID string `json:"id"`
		} `json:"recipients"`
	}
	require.NoError(t, json.Unmarshal(raw, &reg))
	environ := []string{"DGW_ADMIN_ADDR=127.0.0.1:0", "DGW_AUDIT_KEY=run-test-audit-key-of-at-least-32-bytes!"}
	for _, r := range reg.Recipients {
		environ = append(environ, redact.EnvName(r.ID)+"=run-test-secret-of-at-least-32-bytes!")
	}
	cfgFile := filepath.Join(t.TempDir(), "dgw.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf("brokers: [%q]\ngroup: run-admin\ncreate_topics: true\npartitions: 1\n", b.Addrs()[0])), 0o600))

	stderr := &syncBuffer{}
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: stderr, environ: environ}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	exit := make(chan int, 1)
	go func() { exit <- a.run(ctx, []string{"run", "--config", cfgFile}) }()

	var addr string
	waitFor(t, "the admin server's address in the logs", 60*time.Second, func() bool {
		for _, line := range strings.Split(stderr.String(), "\n") {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "admin server listening" {
				addr = rec.Addr
			}
		}
		return addr != ""
	})
	base := "http://" + addr
	waitFor(t, "/readyz ready", 60*time.Second, func() bool {
		select {
		case c := <-exit:
			t.Fatalf("dgw run ended with exit code %d before it was ready:\n%s", c, stderr.String())
		default:
		}
		code, _ := httpGet(t, base+"/readyz")
		return code == http.StatusOK
	})
	code, body := httpGet(t, base+"/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)
	// The pipeline registers its gauges as it starts running.
	revision := regexp.MustCompile(`(?m)^dgw_policy_revision\{.*revision="[0-9a-f]+".*\} 1$`)
	var metrics string
	waitFor(t, "the policy revision on /metrics", 30*time.Second, func() bool {
		code, metrics = httpGet(t, base+"/metrics")
		return code == http.StatusOK && revision.MatchString(metrics)
	})
	assert.Contains(t, metrics, `dgw_policy_reloads_total{`)
	assert.Regexp(t, `(?m)^dgw_policy_evaluator\{.*evaluator="plan".*\} 1$`, metrics, "misses are evaluated from the policy's plan")
	assert.Regexp(t, `(?m)^dgw_policy_evaluation_differences_total\{.*\} 0$`, metrics)

	cancel()
	select {
	case c := <-exit:
		assert.Equal(t, 0, c, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatal("dgw run did not stop")
	}
	logs := strings.TrimSpace(stderr.String())
	require.NotEmpty(t, logs)
	for _, line := range strings.Split(logs, "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "run logs JSON lines: %q", line)
		assert.Contains(t, rec, "level")
		assert.Contains(t, rec, "msg")
	}
	assert.Contains(t, logs, `"msg":"gateway stopped"`)
}
