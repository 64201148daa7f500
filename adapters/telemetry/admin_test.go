package telemetry_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/adapters/telemetry"
)

// readiness is a ready function whose answer the test changes.
type readiness struct {
	mu     sync.Mutex
	ok     bool
	reason string
}

func (r *readiness) set(ok bool, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ok, r.reason = ok, reason
}

func (r *readiness) ready() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ok, r.reason
}

func TestAdminReadiness(t *testing.T) {
	p, err := telemetry.Setup(t.Context(), telemetry.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, p.Shutdown(context.Background())) })
	r := &readiness{}
	base := "http://" + startAdmin(t, p, r.ready)

	steps := []struct {
		ok             bool
		reason         string
		wantStatus     int
		wantBody       string
		wantHealthBody string
	}{
		{false, "policy not loaded", http.StatusServiceUnavailable, "policy not loaded\n", "ok\n"},
		{false, "subject state catching up", http.StatusServiceUnavailable, "subject state catching up\n", "ok\n"},
		{false, "broker unreachable: dial tcp 127.0.0.1:9092: connection refused", http.StatusServiceUnavailable, "broker unreachable: dial tcp 127.0.0.1:9092: connection refused\n", "ok\n"},
		{false, "", http.StatusServiceUnavailable, "not ready\n", "ok\n"},
		{true, "", http.StatusOK, "ready\n", "ok\n"},
	}
	for _, s := range steps {
		r.set(s.ok, s.reason)
		status, body := get(t, base+"/readyz")
		assert.Equal(t, s.wantStatus, status, "readyz with %q", s.reason)
		assert.Equal(t, s.wantBody, body)
		status, body = get(t, base+"/healthz")
		assert.Equal(t, http.StatusOK, status, "healthz does not depend on readiness")
		assert.Equal(t, s.wantHealthBody, body)
	}
}

func TestAdminRoutes(t *testing.T) {
	p, err := telemetry.Setup(t.Context(), telemetry.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, p.Shutdown(context.Background())) })
	recordContract(t, p.Meter)
	base := "http://" + startAdmin(t, p, nil)

	tests := []struct {
		method, path string
		wantStatus   int
		wantBody     string
	}{
		{http.MethodGet, "/metrics", http.StatusOK, "# TYPE dgw_deliveries_total counter"},
		{http.MethodGet, "/readyz", http.StatusOK, "ready"}, // nil ready: always ready
		{http.MethodGet, "/healthz", http.StatusOK, "ok"},
		{http.MethodHead, "/healthz", http.StatusOK, ""},
		{http.MethodPost, "/readyz", http.StatusMethodNotAllowed, ""},
		{http.MethodGet, "/", http.StatusNotFound, ""},
		{http.MethodGet, "/debug/pprof/", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, base+tt.path, nil)
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tt.wantStatus, resp.StatusCode)
			assert.Contains(t, string(body), tt.wantBody)
		})
	}
}

func TestAdminWithoutMetrics(t *testing.T) {
	admin := telemetry.NewAdmin("127.0.0.1:0", nil, nil)
	addr, err := admin.Start()
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, admin.Shutdown(context.Background())) })
	status, _ := get(t, "http://"+addr+"/metrics")
	assert.Equal(t, http.StatusNotFound, status)
}

func TestAdminLifecycle(t *testing.T) {
	admin := telemetry.NewAdmin("127.0.0.1:0", nil, nil)
	require.NoError(t, admin.Shutdown(context.Background()), "shutdown before start does nothing")

	addr, err := admin.Start()
	require.NoError(t, err)
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", host)
	assert.NotEqual(t, "0", port, "Start reports the bound port")

	_, err = admin.Start()
	assert.Error(t, err, "second start")

	// The address is taken: another admin server on it fails to start.
	other := telemetry.NewAdmin(addr, nil, nil)
	_, err = other.Start()
	assert.Error(t, err)

	require.NoError(t, admin.Shutdown(context.Background()))
	require.NoError(t, admin.Shutdown(context.Background()), "second shutdown")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/healthz", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	assert.Error(t, err, "nothing serves after shutdown")
}
