package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/adapters/telemetry"
	"github.com/dgwproject/dgw/adapters/telemetry/telemetrytest"
)

func get(t testing.TB, url string) (int, string) {
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

// startAdmin serves p's metrics on a free loopback port until the test ends.
func startAdmin(t testing.TB, p *telemetry.Providers, ready func() (bool, string)) string {
	t.Helper()
	admin := telemetry.NewAdmin("127.0.0.1:0", p.Metrics, ready)
	addr, err := admin.Start()
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, admin.Shutdown(context.Background())) })
	return addr
}

// TestPromtoolChecksMetrics runs `promtool check metrics` on what /metrics
// serves once every contract instrument has been recorded.
func TestPromtoolChecksMetrics(t *testing.T) {
	p, err := telemetry.Setup(t.Context(), telemetry.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, p.Shutdown(context.Background())) })
	recordContract(t, p.Meter)
	addr := startAdmin(t, p, nil)

	status, body := get(t, "http://"+addr+"/metrics")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "dgw_deliveries_total{", "the contract was recorded")
	telemetrytest.CheckMetrics(t, []byte(body))
}

// TestPromtoolRejectsBadMetrics shows the check above can fail: promtool
// flags a counter without the _total suffix.
func TestPromtoolRejectsBadMetrics(t *testing.T) {
	telemetrytest.RequireTool(t, "promtool")
	out, err := telemetrytest.LintMetrics(t.Context(), []byte("# HELP dgw_bad A counter.\n# TYPE dgw_bad counter\ndgw_bad 1\n"))
	require.Error(t, err)
	assert.Contains(t, out, "_total")
}

// TestPrometheusScrapesAdmin runs a real Prometheus server against the admin
// server and finds the delivery counters per recipient through its HTTP API;
// then it runs every dashboard query there, so a query Prometheus rejects or
// that finds nothing fails.
func TestPrometheusScrapesAdmin(t *testing.T) {
	p, err := telemetry.Setup(t.Context(), telemetry.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, p.Shutdown(context.Background())) })
	recordContract(t, p.Meter)
	addr := startAdmin(t, p, nil)

	prom := telemetrytest.StartPrometheus(t, addr)
	samples := telemetrytest.WaitForSeries(t, prom, "dgw_deliveries_total", 30*time.Second)
	var recipients []string
	for _, s := range samples {
		assert.Equal(t, "dgw", s.Labels["job"])
		assert.Equal(t, addr, s.Labels["instance"])
		recipients = append(recipients, s.Labels["recipient"]+"/"+s.Labels["outcome"]+"="+s.Value)
	}
	slices.Sort(recipients)
	assert.Equal(t, []string{"border-kz/delivered=1", "lounge-ala/held=3", "lounge-ala/refused=2"}, recipients)

	// Rates need two scrapes in the window; 1m covers hundreds of them.
	expand := strings.NewReplacer("$__rate_interval", "1m", "$__range", "5m", "$job", "dgw")
	for _, q := range dashboardQueries(t) {
		if strings.HasPrefix(q.expr, "label_values(") {
			continue // a Grafana function, not PromQL
		}
		expr := expand.Replace(q.expr)
		got := telemetrytest.WaitForSeries(t, prom, expr, 30*time.Second)
		assert.NotEmpty(t, got, "%s: %s", q.where, expr)
	}
}

func TestDeployPrometheusConfig(t *testing.T) {
	telemetrytest.CheckConfig(t, "../../deploy/prometheus/prometheus.yml")
}
