package telemetry_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/dgwproject/dgw/adapters/telemetry"
)

// The metric contract between the gateway, which records these OpenTelemetry
// instruments, and the operators' Prometheus and Grafana, which read the
// exported names. deploy/prometheus/README.md documents the same table and
// deploy/grafana/dgw-dashboard.json queries it; the tests below keep all
// three in step with what the exporter really produces.

const gatewayScope = "github.com/dgwproject/dgw/gateway"

type kind int

const (
	counter kind = iota
	histogram
	gauge
)

// contractInstrument is one instrument and the observations that exercise
// every label value a dashboard may filter on.
type contractInstrument struct {
	name   string
	kind   kind
	unit   string
	points [][]attribute.KeyValue
	// What the Prometheus exporter must make of it.
	family     string
	familyType dto.MetricType
	labels     []string
}

func attrs(kv ...string) []attribute.KeyValue {
	out := make([]attribute.KeyValue, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		out = append(out, attribute.String(kv[i], kv[i+1]))
	}
	return out
}

var contract = []contractInstrument{
	{name: "dgw.events.consumed", kind: counter,
		points: [][]attribute.KeyValue{attrs("topic", "pax.booking"), attrs("topic", "pax.checkin")},
		family: "dgw_events_consumed_total", familyType: dto.MetricType_COUNTER, labels: []string{"topic"}},
	{name: "dgw.deliveries", kind: counter,
		points: [][]attribute.KeyValue{
			attrs("recipient", "border-kz", "recipient_type", "authority", "outcome", "delivered"),
			attrs("recipient", "lounge-ala", "recipient_type", "lounge_operator", "outcome", "refused"),
			attrs("recipient", "lounge-ala", "recipient_type", "lounge_operator", "outcome", "held"),
		},
		family: "dgw_deliveries_total", familyType: dto.MetricType_COUNTER, labels: []string{"outcome", "recipient", "recipient_type"}},
	{name: "dgw.fields.redacted", kind: counter,
		points: [][]attribute.KeyValue{
			attrs("recipient", "border-kz", "operator", "keep"),
			attrs("recipient", "border-kz", "operator", "mask"),
			attrs("recipient", "border-kz", "operator", "hash"),
			attrs("recipient", "border-kz", "operator", "generalise"),
		},
		family: "dgw_fields_redacted_total", familyType: dto.MetricType_COUNTER, labels: []string{"operator", "recipient"}},
	{name: "dgw.dead_lettered", kind: counter,
		points: [][]attribute.KeyValue{attrs("reason", "decode")},
		family: "dgw_dead_lettered_total", familyType: dto.MetricType_COUNTER, labels: []string{"reason"}},
	{name: "dgw.held", kind: counter,
		points: [][]attribute.KeyValue{attrs("reason", "policy_error", "recipient", "lounge-ala")},
		family: "dgw_held_total", familyType: dto.MetricType_COUNTER, labels: []string{"reason", "recipient"}},
	{name: "dgw.decision.duration", kind: histogram, unit: "s",
		points: [][]attribute.KeyValue{attrs("cache", "hit"), attrs("cache", "miss")},
		family: "dgw_decision_duration_seconds", familyType: dto.MetricType_HISTOGRAM, labels: []string{"cache"}},
	{name: "dgw.decision.cache", kind: counter,
		points: [][]attribute.KeyValue{attrs("result", "hit"), attrs("result", "miss")},
		family: "dgw_decision_cache_total", familyType: dto.MetricType_COUNTER, labels: []string{"result"}},
	{name: "dgw.end_to_end.latency", kind: histogram, unit: "s",
		points: [][]attribute.KeyValue{attrs("recipient", "border-kz")},
		family: "dgw_end_to_end_latency_seconds", familyType: dto.MetricType_HISTOGRAM, labels: []string{"recipient"}},
	{name: "dgw.consumer.lag", kind: gauge,
		points: [][]attribute.KeyValue{append(attrs("topic", "pax.booking"), attribute.Int("partition", 0)), append(attrs("topic", "pax.booking"), attribute.Int("partition", 1))},
		family: "dgw_consumer_lag", familyType: dto.MetricType_GAUGE, labels: []string{"partition", "topic"}},
	{name: "dgw.consumer.stalls", kind: counter,
		points: [][]attribute.KeyValue{nil},
		family: "dgw_consumer_stalls_total", familyType: dto.MetricType_COUNTER},
	{name: "dgw.pipeline.in_flight", kind: gauge,
		points: [][]attribute.KeyValue{nil},
		family: "dgw_pipeline_in_flight", familyType: dto.MetricType_GAUGE},
	{name: "dgw.pipeline.in_flight.bytes", kind: gauge,
		points: [][]attribute.KeyValue{nil},
		family: "dgw_pipeline_in_flight_bytes", familyType: dto.MetricType_GAUGE},
	{name: "dgw.pipeline.queue.longest", kind: gauge,
		points: [][]attribute.KeyValue{nil},
		family: "dgw_pipeline_queue_longest", familyType: dto.MetricType_GAUGE},
	{name: "dgw.policy.revision", kind: gauge,
		points: [][]attribute.KeyValue{attrs("revision", "3f9c2a1b")},
		family: "dgw_policy_revision", familyType: dto.MetricType_GAUGE, labels: []string{"revision"}},
	{name: "dgw.policy.evaluator", kind: gauge,
		points: [][]attribute.KeyValue{attrs("evaluator", "plan")},
		family: "dgw_policy_evaluator", familyType: dto.MetricType_GAUGE, labels: []string{"evaluator"}},
	{name: "dgw.policy.evaluation.checks", kind: counter,
		points: [][]attribute.KeyValue{nil},
		family: "dgw_policy_evaluation_checks_total", familyType: dto.MetricType_COUNTER},
	{name: "dgw.policy.evaluation.differences", kind: counter,
		points: [][]attribute.KeyValue{nil},
		family: "dgw_policy_evaluation_differences_total", familyType: dto.MetricType_COUNTER},
	{name: "dgw.policy.evaluation.fallbacks", kind: counter,
		points: [][]attribute.KeyValue{nil},
		family: "dgw_policy_evaluation_fallbacks_total", familyType: dto.MetricType_COUNTER},
	{name: "dgw.policy.reloads", kind: counter,
		points: [][]attribute.KeyValue{attrs("result", "success"), attrs("result", "failure")},
		family: "dgw_policy_reloads_total", familyType: dto.MetricType_COUNTER, labels: []string{"result"}},
}

// The labels the OpenTelemetry Prometheus exporter adds to every series.
var scopeLabels = []string{"otel_scope_name", "otel_scope_schema_url", "otel_scope_version"}

// recordContract records every contract instrument through mp, as the gateway
// does: with a description, and seconds buckets for the histograms.
func recordContract(t testing.TB, mp metric.MeterProvider) {
	t.Helper()
	ctx := context.Background()
	m := mp.Meter(gatewayScope)
	buckets := metric.WithExplicitBucketBoundaries(0.0001, 0.001, 0.01, 0.1, 1, 10)
	for _, in := range contract {
		desc := metric.WithDescription("Contract test for " + in.name + ".")
		switch in.kind {
		case counter:
			c, err := m.Int64Counter(in.name, desc)
			require.NoError(t, err)
			for i, p := range in.points {
				c.Add(ctx, int64(i+1), metric.WithAttributes(p...))
			}
		case histogram:
			h, err := m.Float64Histogram(in.name, desc, metric.WithUnit(in.unit), buckets)
			require.NoError(t, err)
			for _, p := range in.points {
				h.Record(ctx, 0.002, metric.WithAttributes(p...))
				h.Record(ctx, 0.2, metric.WithAttributes(p...))
			}
		case gauge:
			g, err := m.Int64Gauge(in.name, desc)
			require.NoError(t, err)
			for i, p := range in.points {
				g.Record(ctx, int64(i+1), metric.WithAttributes(p...))
			}
		}
	}
}

// scrape returns the families h serves, parsed from the text format.
func scrape(t testing.TB, h http.Handler) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.Bytes()
	return parseExposition(t, body), body
}

func parseExposition(t testing.TB, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	require.NoError(t, err, "the exposition is not the Prometheus text format")
	return families
}

// contractScrape sets telemetry up, records the contract and scrapes it.
func contractScrape(t testing.TB) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	p, err := telemetry.Setup(context.Background(), telemetry.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, p.Shutdown(context.Background())) })
	recordContract(t, p.Meter)
	return scrape(t, p.Metrics)
}

func labelNames(m *dto.Metric) []string {
	var out []string
	for _, lp := range m.GetLabel() {
		out = append(out, lp.GetName())
	}
	slices.Sort(out)
	return out
}

func TestMetricContract(t *testing.T) {
	families, _ := contractScrape(t)
	for _, in := range contract {
		t.Run(in.name, func(t *testing.T) {
			f, ok := families[in.family]
			require.True(t, ok, "instrument %s: no family %s in the scrape", in.name, in.family)
			assert.Equal(t, in.familyType, f.GetType())
			assert.NotEmpty(t, f.GetHelp(), "HELP text comes from the instrument's description")
			require.Len(t, f.GetMetric(), len(in.points), "one series per recorded attribute set")
			want := slices.Sorted(slices.Values(append(slices.Clone(in.labels), scopeLabels...)))
			for _, m := range f.GetMetric() {
				assert.Equal(t, want, labelNames(m))
			}
		})
	}
	var dgw []string
	for name := range families {
		if strings.HasPrefix(name, "dgw_") {
			dgw = append(dgw, name)
		}
	}
	assert.Len(t, dgw, len(contract), "no other dgw_ family than the contract's: %v", dgw)
	assert.Contains(t, families, "target_info", "resource attributes are exported as target_info")
}

// TestMetricContractDocumented checks that deploy/prometheus/README.md lists
// exactly the contract, with the Prometheus names the exporter produced.
func TestMetricContractDocumented(t *testing.T) {
	f, err := os.Open("../../deploy/prometheus/README.md")
	require.NoError(t, err)
	defer f.Close()
	documented := map[string]string{} // instrument → family
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "| `dgw.") {
			continue
		}
		cells := strings.Split(line, "|")
		require.GreaterOrEqual(t, len(cells), 6, "table row %q", line)
		documented[firstCode(cells[1])] = firstCode(cells[3])
	}
	require.NoError(t, sc.Err())

	families, _ := contractScrape(t)
	want := map[string]string{}
	for _, in := range contract {
		_, scraped := families[in.family]
		require.True(t, scraped, "%s not scraped", in.family)
		want[in.name] = in.family
	}
	assert.Equal(t, want, documented)
}

// TestPolicyRevisionObservableGauge shows how the gateway should publish the
// active revision: an observable gauge whose callback reports only the
// current one, so a reload replaces the series instead of adding one.
// firstCode returns the first `code span` of a Markdown table cell.
func firstCode(cell string) string {
	_, rest, _ := strings.Cut(cell, "`")
	code, _, _ := strings.Cut(rest, "`")
	return code
}

func TestPolicyRevisionObservableGauge(t *testing.T) {
	p, err := telemetry.Setup(context.Background(), telemetry.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, p.Shutdown(context.Background())) })
	revision := "rev-1"
	_, err = p.Meter.Meter(gatewayScope).Int64ObservableGauge("dgw.policy.revision",
		metric.WithDescription("The active policy revision, as a label; value 1."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(1, metric.WithAttributes(attribute.String("revision", revision)))
			return nil
		}))
	require.NoError(t, err)

	revisions := func() []string {
		families, _ := scrape(t, p.Metrics)
		var out []string
		for _, m := range families["dgw_policy_revision"].GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "revision" {
					out = append(out, lp.GetValue())
				}
			}
		}
		return out
	}
	assert.Equal(t, []string{"rev-1"}, revisions())
	revision = "rev-2"
	assert.Equal(t, []string{"rev-2"}, revisions())
}
