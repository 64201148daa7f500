package telemetry_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/dgwproject/dgw/adapters/telemetry"
)

// publisherContext is a context carrying a sampled remote span, as extracted
// from a source record's traceparent header.
func publisherContext(t testing.TB) (context.Context, trace.SpanContext) {
	t.Helper()
	tid, err := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	require.NoError(t, err)
	sid, err := trace.SpanIDFromHex("00f067aa0ba902b7")
	require.NoError(t, err)
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	return trace.ContextWithRemoteSpanContext(context.Background(), sc), sc
}

// stdoutSpan is the part of stdouttrace's JSON the tests read.
type stdoutSpan struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ TraceID, SpanID string }
	Attributes  []struct {
		Key   string
		Value struct{ Value any }
	}
	Resource []struct {
		Key   string
		Value struct{ Value any }
	}
}

func TestSetupStdoutTraces(t *testing.T) {
	var out bytes.Buffer
	p, err := telemetry.Setup(t.Context(), telemetry.Config{ServiceName: "dgw-test", ServiceVersion: "v1.2.3", StdoutTraces: &out})
	require.NoError(t, err)

	ctx, publisher := publisherContext(t)
	tr := p.Tracer.Tracer("github.com/dgwproject/dgw/gateway")
	ctx, consume := tr.Start(ctx, "consume pax.booking", trace.WithAttributes(attribute.String("dgw.event.id", "evt-1")))
	_, decide := tr.Start(ctx, "decide border-kz")
	decide.End()
	consume.End()
	require.NoError(t, p.Shutdown(context.Background()))

	var spans []stdoutSpan
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var s stdoutSpan
		require.NoError(t, json.Unmarshal(sc.Bytes(), &s), "one JSON span per line: %s", sc.Text())
		spans = append(spans, s)
	}
	require.Len(t, spans, 2, "spans are written as they end")
	assert.Equal(t, "decide border-kz", spans[0].Name)
	assert.Equal(t, "consume pax.booking", spans[1].Name)
	for _, s := range spans {
		assert.Equal(t, publisher.TraceID().String(), s.SpanContext.TraceID, "the publisher's trace continues")
	}
	assert.Equal(t, publisher.SpanID().String(), spans[1].Parent.SpanID)
	assert.Equal(t, spans[1].SpanContext.SpanID, spans[0].Parent.SpanID)
	require.Len(t, spans[1].Attributes, 1)
	assert.Equal(t, "dgw.event.id", spans[1].Attributes[0].Key)

	res := map[string]any{}
	for _, kv := range spans[0].Resource {
		res[kv.Key] = kv.Value.Value
	}
	assert.Equal(t, "dgw-test", res["service.name"])
	assert.Equal(t, "v1.2.3", res["service.version"])
}

// collector is an OTLP/HTTP receiver that keeps what it is sent.
type collector struct {
	mu       sync.Mutex
	requests []collected
}

type collected struct {
	path, contentType, auth string
	body                    []byte
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.requests = append(c.requests, collected{r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), body})
	c.mu.Unlock()
	w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
	w.WriteHeader(http.StatusOK)
}

func (c *collector) received() []collected {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.requests)
}

func (c *collector) paths() []string {
	var out []string
	for _, r := range c.received() {
		if !slices.Contains(out, r.path) {
			out = append(out, r.path)
		}
	}
	slices.Sort(out)
	return out
}

func attrValue(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

// recordSample records one span and one counter increment through p.
func recordSample(t testing.TB, p *telemetry.Providers) {
	t.Helper()
	ctx, _ := publisherContext(t)
	_, span := p.Tracer.Tracer("github.com/dgwproject/dgw/gateway").Start(ctx, "consume pax.booking")
	span.End()
	c, err := p.Meter.Meter("github.com/dgwproject/dgw/gateway").Int64Counter("dgw.deliveries", metric.WithDescription("Per-recipient outcomes."))
	require.NoError(t, err)
	c.Add(ctx, 1, metric.WithAttributes(attribute.String("recipient", "border-kz")))
}

func TestSetupOTLP(t *testing.T) {
	tests := []struct {
		name      string
		environ   func(url string) []string
		wantPaths []string
	}{
		{name: "base endpoint, both signals",
			environ:   func(url string) []string { return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + url + "/otlp"} },
			wantPaths: []string{"/otlp/v1/metrics", "/otlp/v1/traces"}},
		{name: "traces endpoint only, used as is",
			environ:   func(url string) []string { return []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=" + url + "/custom"} },
			wantPaths: []string{"/custom"}},
		{name: "metrics endpoint only",
			environ: func(url string) []string {
				return []string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=" + url + "/v1/metrics"}
			},
			wantPaths: []string{"/v1/metrics"}},
		{name: "traces exporter none",
			environ: func(url string) []string {
				return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + url, "OTEL_TRACES_EXPORTER=none"}
			},
			wantPaths: []string{"/v1/metrics"}},
		{name: "metrics exporter prometheus",
			environ: func(url string) []string {
				return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + url, "OTEL_METRICS_EXPORTER=prometheus"}
			},
			wantPaths: []string{"/v1/traces"}},
		{name: "later entry wins, empty is unset",
			environ: func(url string) []string {
				return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + url + "/old", "OTEL_EXPORTER_OTLP_ENDPOINT=" + url, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT="}
			},
			wantPaths: []string{"/v1/metrics", "/v1/traces"}},
		{name: "no OTLP variable, no export",
			environ: func(string) []string {
				return []string{"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=http://127.0.0.1:1", "PATH=/usr/bin"}
			},
			wantPaths: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &collector{}
			srv := httptest.NewServer(c)
			t.Cleanup(srv.Close)
			p, err := telemetry.Setup(t.Context(), telemetry.Config{Environ: tt.environ(srv.URL)})
			require.NoError(t, err)
			recordSample(t, p)
			require.NoError(t, p.Shutdown(context.Background()), "shutdown flushes both exporters")
			assert.Equal(t, tt.wantPaths, c.paths())
		})
	}
}

// TestSetupOTLPContent decodes what the OTLP exporters send: protobuf
// payloads with dgw's resource, span and metric, and the configured headers.
func TestSetupOTLPContent(t *testing.T) {
	c := &collector{}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	p, err := telemetry.Setup(t.Context(), telemetry.Config{Environ: []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + srv.URL,
		"OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20t0ken,x-tenant=ops",
		"OTEL_SERVICE_NAME=dgw-eu",
		"OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=test,service.name=ignored",
	}})
	require.NoError(t, err)
	recordSample(t, p)
	require.NoError(t, p.Shutdown(context.Background()))

	var sawTrace, sawMetric bool
	for _, r := range c.received() {
		assert.Equal(t, "application/x-protobuf", r.contentType, r.path)
		assert.Equal(t, "Bearer t0ken", r.auth, "OTEL_EXPORTER_OTLP_HEADERS, percent-decoded")
		switch r.path {
		case "/v1/traces":
			var req coltracepb.ExportTraceServiceRequest
			require.NoError(t, proto.Unmarshal(r.body, &req))
			for _, rs := range req.GetResourceSpans() {
				assert.Equal(t, "dgw-eu", attrValue(rs.GetResource().GetAttributes(), "service.name"))
				assert.Equal(t, "test", attrValue(rs.GetResource().GetAttributes(), "deployment.environment.name"))
				for _, ss := range rs.GetScopeSpans() {
					for _, s := range ss.GetSpans() {
						assert.Equal(t, "consume pax.booking", s.GetName())
						sawTrace = true
					}
				}
			}
		case "/v1/metrics":
			var req colmetricpb.ExportMetricsServiceRequest
			require.NoError(t, proto.Unmarshal(r.body, &req))
			for _, rm := range req.GetResourceMetrics() {
				assert.Equal(t, "dgw-eu", attrValue(rm.GetResource().GetAttributes(), "service.name"))
				for _, sm := range rm.GetScopeMetrics() {
					for _, m := range sm.GetMetrics() {
						sawMetric = sawMetric || m.GetName() == "dgw.deliveries"
					}
				}
			}
		}
	}
	assert.True(t, sawTrace, "the span reached the collector")
	assert.True(t, sawMetric, "the counter reached the collector")
}

// TestSetupReadsEnvironNotProcess: the process environment neither turns
// OTLP on nor changes the sampler; only Config.Environ does.
func TestSetupReadsEnvironNotProcess(t *testing.T) {
	c := &collector{}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")

	var out bytes.Buffer
	p, err := telemetry.Setup(t.Context(), telemetry.Config{StdoutTraces: &out})
	require.NoError(t, err)
	recordSample(t, p)
	require.NoError(t, p.Shutdown(context.Background()))
	assert.Empty(t, c.received(), "nothing exported over OTLP")
	assert.Contains(t, out.String(), "consume pax.booking", "the span was sampled")

	// Environ turns OTLP on; the process's protocol does not leak in.
	p, err = telemetry.Setup(t.Context(), telemetry.Config{Environ: []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=" + srv.URL + "/v1/traces"}})
	require.NoError(t, err)
	recordSample(t, p)
	require.NoError(t, p.Shutdown(context.Background()))
	received := c.received()
	require.Len(t, received, 1)
	assert.Equal(t, "/v1/traces", received[0].path)
	assert.Equal(t, "application/x-protobuf", received[0].contentType)
}

// TestSetupWithoutSpanExporter: with nowhere to send spans nothing is
// recorded, and the publisher's trace context passes through unchanged.
func TestSetupWithoutSpanExporter(t *testing.T) {
	p, err := telemetry.Setup(t.Context(), telemetry.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, p.Shutdown(context.Background())) })
	ctx, publisher := publisherContext(t)
	_, span := p.Tracer.Tracer("x").Start(ctx, "consume")
	defer span.End()
	assert.False(t, span.IsRecording())
	assert.Equal(t, publisher.TraceID(), span.SpanContext().TraceID())
	assert.True(t, span.SpanContext().IsSampled())
}

// TestSetupConfigErrors: bad settings fail Setup, naming the variable and
// never quoting its value (endpoints and headers carry credentials).
func TestSetupConfigErrors(t *testing.T) {
	const canary = "s3cr3t-CANARY"
	tests := []struct {
		name     string
		environ  []string
		wantName string
	}{
		{"endpoint not a URL", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + canary}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"endpoint with credentials and bad scheme", []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=ftp://u:" + canary + "@host"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{"header without =", []string{"OTEL_EXPORTER_OTLP_HEADERS=authorization=ok," + canary}, "OTEL_EXPORTER_OTLP_HEADERS"},
		{"header bad escape", []string{"OTEL_EXPORTER_OTLP_METRICS_HEADERS=authorization=" + canary + "%zz"}, "OTEL_EXPORTER_OTLP_METRICS_HEADERS"},
		{"grpc", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"json metrics", []string{"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=http/json"}, "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"},
		{"unknown protocol", []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=" + canary}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		{"bad timeout", []string{"OTEL_EXPORTER_OTLP_TIMEOUT=" + canary}, "OTEL_EXPORTER_OTLP_TIMEOUT"},
		{"unknown traces exporter", []string{"OTEL_TRACES_EXPORTER=" + canary}, "OTEL_TRACES_EXPORTER"},
		{"unknown metrics exporter", []string{"OTEL_METRICS_EXPORTER=otlp," + canary}, "OTEL_METRICS_EXPORTER"},
		{"unknown sampler", []string{"OTEL_TRACES_SAMPLER=" + canary}, "OTEL_TRACES_SAMPLER"},
		{"bad sampler ratio", []string{"OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=" + canary}, "OTEL_TRACES_SAMPLER_ARG"},
		{"bad export interval", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318", "OTEL_METRIC_EXPORT_INTERVAL=" + canary}, "OTEL_METRIC_EXPORT_INTERVAL"},
		{"bad resource attributes", []string{"OTEL_RESOURCE_ATTRIBUTES=" + canary}, "OTEL_RESOURCE_ATTRIBUTES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := telemetry.Setup(t.Context(), telemetry.Config{Environ: tt.environ})
			require.Error(t, err)
			assert.Nil(t, p)
			assert.Contains(t, err.Error(), tt.wantName)
			assert.NotContains(t, err.Error(), canary)
			assert.NotContains(t, err.Error(), "CANARY")
		})
	}
}

func TestShutdownIsIdempotent(t *testing.T) {
	p, err := telemetry.Setup(t.Context(), telemetry.Config{StdoutTraces: io.Discard})
	require.NoError(t, err)
	require.NoError(t, p.Shutdown(context.Background()))
	assert.NoError(t, p.Shutdown(context.Background()))
}

func TestPropagator(t *testing.T) {
	ctx, publisher := publisherContext(t)
	member, err := baggage.NewMember("tenant", "ops")
	require.NoError(t, err)
	bag, err := baggage.New(member)
	require.NoError(t, err)
	ctx = baggage.ContextWithBaggage(ctx, bag)

	carrier := propagation.MapCarrier{}
	telemetry.Propagator().Inject(ctx, carrier)
	assert.Equal(t, "00-"+publisher.TraceID().String()+"-"+publisher.SpanID().String()+"-01", carrier["traceparent"])
	assert.Equal(t, "tenant=ops", carrier["baggage"])

	back := telemetry.Propagator().Extract(context.Background(), carrier)
	assert.Equal(t, publisher.TraceID(), trace.SpanContextFromContext(back).TraceID())
	assert.Equal(t, "ops", baggage.FromContext(back).Member("tenant").Value())
}

func TestSetupOTLPJSONTraces(t *testing.T) {
	c := &collector{}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	p, err := telemetry.Setup(t.Context(), telemetry.Config{Environ: []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + srv.URL, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json"}})
	require.NoError(t, err)
	recordSample(t, p)
	require.NoError(t, p.Shutdown(context.Background()))
	types := map[string]string{}
	for _, r := range c.received() {
		types[r.path] = r.contentType
	}
	assert.Equal(t, map[string]string{"/v1/traces": "application/json", "/v1/metrics": "application/x-protobuf"}, types)
}
