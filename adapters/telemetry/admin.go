package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// DefaultAdminAddr is where dgw serves /metrics, /healthz and /readyz unless
// configured otherwise: loopback only, on the port OpenTelemetry's Prometheus
// exporters conventionally use.
const DefaultAdminAddr = "127.0.0.1:9464"

// Admin is dgw's admin HTTP server:
//
//   - GET /metrics: the Prometheus text exposition format (Providers.Metrics);
//   - GET /healthz: 200 "ok" while the process serves at all;
//   - GET /readyz: 200 "ready" when ready reports true, else 503 with the
//     reason ready gave ("policy not loaded", "subject state catching up",
//     "broker unreachable: ...").
//
// Reasons are passed through as they are, so ready must build them from
// dgw's own state (ids, counts, broker addresses), never from record data.
type Admin struct {
	srv *http.Server

	mu      sync.Mutex
	ln      net.Listener
	served  chan error // the result of Serve, once it returns
	started bool

	waitOnce sync.Once
	serveErr error
}

// NewAdmin returns an admin server for addr (host:port; port 0 picks a free
// one). A nil metrics handler leaves /metrics unserved (404); a nil ready
// function means always ready. Start serves it.
func NewAdmin(addr string, metrics http.Handler, ready func() (bool, string)) *Admin {
	mux := http.NewServeMux()
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, reason := true, ""
		if ready != nil {
			ok, reason = ready()
		}
		if ok {
			writeText(w, http.StatusOK, "ready")
			return
		}
		if reason == "" {
			reason = "not ready"
		}
		writeText(w, http.StatusServiceUnavailable, reason)
	})
	return &Admin{srv: &http.Server{
		Addr:              addr,
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}}
}

func writeText(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body+"\n")
}

// Handler is the admin mux, for tests and for mounting elsewhere.
func (a *Admin) Handler() http.Handler { return a.srv.Handler }

// Start listens on the configured address and serves in the background. It
// returns the address actually bound (host:port), which differs from the
// configured one when that has port 0. A second Start is an error.
func (a *Admin) Start() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started {
		return "", errors.New("admin server: already started")
	}
	ln, err := net.Listen("tcp", a.srv.Addr)
	if err != nil {
		return "", fmt.Errorf("admin server: %w", err)
	}
	a.started, a.ln, a.served = true, ln, make(chan error, 1)
	go func() { a.served <- a.srv.Serve(ln) }()
	return ln.Addr().String(), nil
}

// Shutdown stops accepting connections and waits, until ctx ends, for
// requests in flight. It returns the serving error, if serving failed for
// another reason than this shutdown. Shutdown before Start does nothing.
func (a *Admin) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	started := a.started
	a.mu.Unlock()
	if !started {
		return nil
	}
	shutdownErr := a.srv.Shutdown(ctx)
	// Serve returns as soon as Shutdown begins.
	a.waitOnce.Do(func() { a.serveErr = <-a.served })
	if a.serveErr != nil && !errors.Is(a.serveErr, http.ErrServerClosed) {
		return fmt.Errorf("admin server: %w", a.serveErr)
	}
	if shutdownErr != nil {
		return fmt.Errorf("admin server shutdown: %w", shutdownErr)
	}
	return nil
}
