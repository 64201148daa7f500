package telemetry_test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const dashboardPath = "../../deploy/grafana/dgw-dashboard.json"

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Type       string          `json:"type"`
			Name       string          `json:"name"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *dsRef          `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []dashPanel `json:"panels"`
}

type dashPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *dsRef `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID        string `json:"refId"`
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
		Datasource   *dsRef `json:"datasource"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"` // collapsed rows hold their panels
}

func loadDashboard(t testing.TB) dashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath)
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(raw, &d), "dashboard JSON")
	return d
}

// flatPanels lists every panel, rows' nested panels included, rows excluded.
func flatPanels(ps []dashPanel) []dashPanel {
	var out []dashPanel
	for _, p := range ps {
		if p.Type == "row" {
			out = append(out, flatPanels(p.Panels)...)
			continue
		}
		out = append(out, p)
	}
	return out
}

// dashboardQuery is one PromQL expression of the dashboard.
type dashboardQuery struct {
	where, expr, legend string
}

func dashboardQueries(t testing.TB) []dashboardQuery {
	t.Helper()
	d := loadDashboard(t)
	var out []dashboardQuery
	for _, p := range flatPanels(d.Panels) {
		for _, tg := range p.Targets {
			out = append(out, dashboardQuery{where: fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), expr: tg.Expr, legend: tg.LegendFormat})
		}
	}
	for _, v := range d.Templating.List {
		if v.Definition != "" {
			out = append(out, dashboardQuery{where: "variable " + v.Name, expr: v.Definition})
		}
	}
	return out
}

// A PromQL reader just deep enough for the dashboard's expressions: it finds
// metric names, selectors with their matchers, and grouping labels, and
// rejects any bare identifier it does not know.
var (
	reString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	reSelector = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}`)
	reMatcher  = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$`)
	reGrouping = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	reBraces   = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	reIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	reLegend   = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
	// label_values(metric, label) in variable definitions.
	reLabelValues = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)
)

// promqlFunctions are the functions and aggregations the dashboard may use.
var promqlFunctions = []string{"sum", "max", "min", "avg", "count", "rate", "increase", "irate", "histogram_quantile", "clamp_min", "topk"}

type promqlMatcher struct{ metric, label, op, value string }

type promqlRefs struct {
	metrics  []string
	matchers []promqlMatcher
	grouping []string
}

func parsePromQL(expr string) (promqlRefs, error) {
	var r promqlRefs
	if m := reLabelValues.FindStringSubmatch(expr); m != nil {
		r.metrics = []string{m[1]}
		r.grouping = []string{m[2]}
		return r, nil
	}
	for _, sel := range reSelector.FindAllStringSubmatch(expr, -1) {
		for _, part := range strings.Split(sel[2], ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			m := reMatcher.FindStringSubmatch(part)
			if m == nil {
				return r, fmt.Errorf("matcher %q: not label op \"value\"", part)
			}
			r.matchers = append(r.matchers, promqlMatcher{metric: sel[1], label: m[1], op: m[2], value: m[3]})
		}
	}
	for _, g := range reGrouping.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(g[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				r.grouping = append(r.grouping, l)
			}
		}
	}
	bare := reString.ReplaceAllString(expr, `""`)
	bare = reBraces.ReplaceAllString(bare, " ")
	bare = reGrouping.ReplaceAllString(bare, " ")
	for _, id := range reIdent.FindAllString(bare, -1) {
		name := strings.TrimRight(id, " \t\n(")
		switch {
		case strings.HasSuffix(id, "("):
			if !slices.Contains(promqlFunctions, name) {
				return r, fmt.Errorf("function %s: not in the known list", name)
			}
		case strings.HasPrefix(name, "dgw_"):
			r.metrics = append(r.metrics, name)
		default:
			return r, fmt.Errorf("identifier %s: neither a dgw_ metric nor a known function", name)
		}
	}
	return r, nil
}

func TestParsePromQL(t *testing.T) {
	tests := []struct {
		name, expr string
		want       promqlRefs
		wantErr    string
	}{
		{name: "aggregated rate",
			expr: `sum by (recipient) (rate(dgw_deliveries_total{job=~"$job", outcome="held"}[$__rate_interval]))`,
			want: promqlRefs{metrics: []string{"dgw_deliveries_total"}, grouping: []string{"recipient"},
				matchers: []promqlMatcher{{"dgw_deliveries_total", "job", "=~", "$job"}, {"dgw_deliveries_total", "outcome", "=", "held"}}}},
		{name: "quantile", expr: `histogram_quantile(0.99, sum by (le, cache) (rate(dgw_decision_duration_seconds_bucket[5m])))`,
			want: promqlRefs{metrics: []string{"dgw_decision_duration_seconds_bucket"}, grouping: []string{"le", "cache"}}},
		{name: "label_values", expr: `label_values(dgw_events_consumed_total, job)`,
			want: promqlRefs{metrics: []string{"dgw_events_consumed_total"}, grouping: []string{"job"}}},
		{name: "foreign metric", expr: `sum(rate(http_requests_total[5m]))`, wantErr: "http_requests_total"},
		{name: "unknown function", expr: `absent(dgw_held_total)`, wantErr: "absent"},
		{name: "bad matcher", expr: `dgw_held_total{reason}`, wantErr: "matcher"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePromQL(tt.expr)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// scrapedSeries indexes a scrape by the sample names PromQL can select: a
// histogram family answers to _bucket, _sum and _count.
type scrapedSeries map[string][]*dto.Metric

func indexScrape(families map[string]*dto.MetricFamily) (scrapedSeries, map[string]string) {
	series, family := scrapedSeries{}, map[string]string{}
	for name, f := range families {
		names := []string{name}
		if f.GetType() == dto.MetricType_HISTOGRAM {
			names = []string{name + "_bucket", name + "_sum", name + "_count"}
		}
		for _, n := range names {
			series[n] = f.GetMetric()
			family[n] = name
		}
	}
	return series, family
}

// labelValues lists the values label takes across metric's scraped series;
// targetLabels reports whether Prometheus adds the label at scrape time.
func (s scrapedSeries) labelValues(metric, label string) (values []string, known bool) {
	if label == "job" || label == "instance" || (label == "le" && strings.HasSuffix(metric, "_bucket")) {
		return nil, true
	}
	for _, m := range s[metric] {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label {
				known = true
				values = append(values, lp.GetValue())
			}
		}
	}
	return values, known
}

// TestDashboardMatchesScrape checks every PromQL expression of the Grafana
// dashboard against a real scrape of the metric contract: metric names,
// matcher labels and literal values, grouping labels and legend labels must
// all exist, and every contract metric must be on some panel. Renaming an
// instrument or a label in the gateway without updating the dashboard fails
// here.
func TestDashboardMatchesScrape(t *testing.T) {
	families, _ := contractScrape(t)
	series, familyOf := indexScrape(families)
	covered := map[string]bool{}

	queries := dashboardQueries(t)
	require.NotEmpty(t, queries)
	for _, q := range queries {
		t.Run(q.where, func(t *testing.T) {
			refs, err := parsePromQL(q.expr)
			require.NoError(t, err, q.expr)
			require.NotEmpty(t, refs.metrics, "%s queries no dgw metric", q.expr)
			for _, m := range refs.metrics {
				_, ok := series[m]
				assert.True(t, ok, "%s: %s is not a scraped metric", q.expr, m)
				covered[familyOf[m]] = true
			}
			for _, mt := range refs.matchers {
				values, known := series.labelValues(mt.metric, mt.label)
				assert.True(t, known, "%s: %s has no label %s", q.expr, mt.metric, mt.label)
				if mt.op == "=" && !strings.Contains(mt.value, "$") && values != nil {
					assert.Contains(t, values, mt.value, "%s: %s{%s} never takes this value", q.expr, mt.metric, mt.label)
				}
			}
			labelOK := func(l string) bool {
				for _, m := range refs.metrics {
					if _, known := series.labelValues(m, l); known {
						return true
					}
				}
				return false
			}
			for _, l := range refs.grouping {
				assert.True(t, labelOK(l), "%s: no metric of it has label %s", q.expr, l)
			}
			for _, m := range reLegend.FindAllStringSubmatch(q.legend, -1) {
				if len(refs.grouping) > 0 {
					assert.Contains(t, refs.grouping, m[1], "%s: legend label %s is aggregated away", q.expr, m[1])
				} else {
					assert.True(t, labelOK(m[1]), "%s: legend label %s does not exist", q.expr, m[1])
				}
			}
		})
	}
	for _, in := range contract {
		assert.True(t, covered[in.family], "no panel shows %s (%s)", in.family, in.name)
	}
}

// TestDashboardStructure checks what Grafana needs to import the dashboard
// anywhere: a recent schema, a Prometheus data source variable used by every
// panel and query, unique ids and a layout without overlaps.
func TestDashboardStructure(t *testing.T) {
	d := loadDashboard(t)
	assert.GreaterOrEqual(t, d.SchemaVersion, 38)
	assert.NotEmpty(t, d.UID)
	assert.NotEmpty(t, d.Title)

	var dsVar bool
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && v.Name == "datasource" {
			dsVar = string(v.Query) == `"prometheus"`
		}
		if v.Datasource != nil {
			assert.Equal(t, "${datasource}", v.Datasource.UID, "variable %s", v.Name)
		}
	}
	require.True(t, dsVar, "a datasource variable named datasource, of type prometheus")

	ids := map[int]bool{}
	var all []dashPanel
	all = append(all, d.Panels...)
	for _, p := range d.Panels {
		all = append(all, p.Panels...)
	}
	for _, p := range all {
		assert.False(t, ids[p.ID], "panel id %d used twice", p.ID)
		ids[p.ID] = true
		g := p.GridPos
		assert.True(t, g.W > 0 && g.H > 0 && g.X >= 0 && g.Y >= 0 && g.X+g.W <= 24, "panel %q gridPos %+v", p.Title, g)
	}
	panels := flatPanels(d.Panels)
	for _, p := range panels {
		require.NotNil(t, p.Datasource, "panel %q has no datasource", p.Title)
		assert.Equal(t, "${datasource}", p.Datasource.UID, "panel %q", p.Title)
		assert.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			assert.NotEmpty(t, tg.Expr, "panel %q target %s", p.Title, tg.RefID)
			assert.False(t, refs[tg.RefID], "panel %q: refId %s twice", p.Title, tg.RefID)
			refs[tg.RefID] = true
			if assert.NotNil(t, tg.Datasource, "panel %q target %s", p.Title, tg.RefID) {
				assert.Equal(t, "${datasource}", tg.Datasource.UID)
			}
		}
	}
	for i, p := range d.Panels { // top level, rows included
		for _, q := range d.Panels[i+1:] {
			a, b := p.GridPos, q.GridPos
			overlap := a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H
			assert.False(t, overlap, "panels %q and %q overlap", p.Title, q.Title)
		}
	}
}
