// Package telemetrytest runs the real Prometheus tools against dgw in tests:
// `promtool check metrics` on an exposition, and a `prometheus` server that
// scrapes a running admin endpoint and answers PromQL over its HTTP API.
//
// Both come from the Debian package `prometheus`. A missing binary fails the
// test, it does not skip it: CI installs the package, and a silently skipped
// check proves nothing.
package telemetrytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ScrapeInterval is how often StartPrometheus's server scrapes its target.
const ScrapeInterval = 200 * time.Millisecond

// RequireTool returns the path of the named binary on PATH, or fails t saying
// how to install it.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found on PATH: install the Debian package `prometheus` (apt-get install -y prometheus); CI's .ci/run does", name)
	}
	return p
}

// CheckMetrics runs `promtool check metrics` on a Prometheus text exposition
// and fails t with promtool's findings if it reports any.
func CheckMetrics(t testing.TB, exposition []byte) {
	t.Helper()
	RequireTool(t, "promtool")
	if out, err := LintMetrics(context.Background(), exposition); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// LintMetrics runs `promtool check metrics` on exposition and returns its
// output; the error is non-nil when promtool found problems or did not run.
func LintMetrics(ctx context.Context, exposition []byte) (string, error) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		return "", fmt.Errorf("promtool: %w", err)
	}
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("promtool check metrics: %w", err)
	}
	return string(out), nil
}

// CheckConfig runs `promtool check config` on a Prometheus configuration file.
func CheckConfig(t testing.TB, path string) {
	t.Helper()
	promtool := RequireTool(t, "promtool")
	out, err := exec.CommandContext(context.Background(), promtool, "check", "config", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config %s: %v\n%s", path, err, out)
	}
}

// StartPrometheus starts a real Prometheus server on 127.0.0.1 that scrapes
// http://scrapeTarget/metrics (scrapeTarget is host:port) every
// ScrapeInterval under job "dgw", waits until the server is ready, and
// returns the base URL of its HTTP API ("http://127.0.0.1:PORT"; queries go
// to baseURL+"/api/v1/query", or use Query and WaitForSeries). The process
// is killed when the test ends; its log is printed if the test failed.
func StartPrometheus(t testing.TB, scrapeTarget string) (baseURL string) {
	t.Helper()
	bin := RequireTool(t, "prometheus")
	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	interval := ScrapeInterval.String()
	yml := fmt.Sprintf(`global:
  scrape_interval: %s
  scrape_timeout: %s
  evaluation_interval: %s
scrape_configs:
  - job_name: dgw
    metrics_path: /metrics
    static_configs:
      - targets: [%q]
`, interval, interval, interval, scrapeTarget)
	if err := os.WriteFile(config, []byte(yml), 0o600); err != nil {
		t.Fatalf("write prometheus config: %v", err)
	}
	// Prometheus cannot report a port it picked itself, so pick a free one
	// and try again should another process take it first.
	var lastLog string
	for attempt := 0; attempt < 3; attempt++ {
		url, log, err := startPrometheus(t, bin, config, filepath.Join(dir, "data"+strconv.Itoa(attempt)))
		if err == nil {
			return url
		}
		lastLog = log
		if !strings.Contains(log, "address already in use") {
			t.Fatalf("prometheus: %v\n%s", err, log)
		}
	}
	t.Fatalf("prometheus: no free port after 3 attempts\n%s", lastLog)
	return ""
}

// startPrometheus runs one attempt. On success the process stays up until the
// test's cleanup; on failure it is gone and its log returned.
func startPrometheus(t testing.TB, bin, config, data string) (baseURL, log string, err error) {
	t.Helper()
	port, err := freePort()
	if err != nil {
		return "", "", err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	out := &lockedBuffer{}
	cmd := exec.Command(bin,
		"--config.file="+config,
		"--storage.tsdb.path="+data,
		"--web.listen-address="+addr,
		"--log.level=info",
	)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", "", fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	baseURL = "http://" + addr
	ready := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/-/ready", nil)
		if err != nil {
			return false
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !ready() {
		select {
		case err := <-exited:
			return "", out.String(), fmt.Errorf("prometheus exited before it was ready: %w", err)
		case <-deadline.C:
			_ = cmd.Process.Kill()
			<-exited
			return "", out.String(), fmt.Errorf("prometheus not ready on %s after 30s", addr)
		case <-tick.C:
		}
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("prometheus log:\n%s", out.String())
		}
	})
	return baseURL, "", nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Sample is one element of an instant vector.
type Sample struct {
	Labels map[string]string // __name__ included when the query keeps it
	Value  string            // as Prometheus formats it: "1", "0.5", "NaN"
}

// Query evaluates an instant PromQL query at the current time on the
// Prometheus server at baseURL. A query Prometheus rejects is an error.
// Only vector and scalar results are supported.
func Query(ctx context.Context, baseURL, promql string) ([]Sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		baseURL+"/api/v1/query?query="+url.QueryEscape(promql), nil)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %q: HTTP %d: decode response: %w", promql, resp.StatusCode, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s: %s", promql, body.ErrorType, body.Error)
	}
	switch body.Data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(body.Data.Result, &vec); err != nil {
			return nil, fmt.Errorf("query %q: decode vector: %w", promql, err)
		}
		out := make([]Sample, len(vec))
		for i, s := range vec {
			v, _ := s.Value[1].(string)
			out[i] = Sample{Labels: s.Metric, Value: v}
		}
		return out, nil
	case "scalar":
		var s [2]any
		if err := json.Unmarshal(body.Data.Result, &s); err != nil {
			return nil, fmt.Errorf("query %q: decode scalar: %w", promql, err)
		}
		v, _ := s[1].(string)
		return []Sample{{Labels: map[string]string{}, Value: v}}, nil
	default:
		return nil, fmt.Errorf("query %q: unsupported result type %q", promql, body.Data.ResultType)
	}
}

// WaitForSeries polls the instant query promql until it returns at least one
// sample, and returns them; it fails t if the query is rejected or nothing
// appears within timeout. Prometheus scrapes on its own schedule, so polling
// is the only way to wait for it.
func WaitForSeries(t testing.TB, baseURL, promql string, timeout time.Duration) []Sample {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(ScrapeInterval / 2)
	defer tick.Stop()
	for {
		samples, err := Query(ctx, baseURL, promql)
		if err != nil && ctx.Err() == nil {
			t.Fatalf("%v", err)
		}
		if len(samples) > 0 {
			return samples
		}
		select {
		case <-ctx.Done():
			t.Fatalf("query %q: no series after %s", promql, timeout)
			return nil
		case <-tick.C:
		}
	}
}
