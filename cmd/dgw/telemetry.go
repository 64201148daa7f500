package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/adapters/telemetry"
	"github.com/dgwproject/dgw/gateway"
)

// observability is the process's telemetry: the OpenTelemetry providers the
// gateway records through, the admin server (/metrics, /healthz, /readyz)
// and the readiness checks behind /readyz.
type observability struct {
	providers *telemetry.Providers
	tracer    trace.TracerProvider
	// ready holds the named checks /readyz runs. Components add theirs as
	// they start: "policy" (dev, run), "broker" and "consumer" (runGateway),
	// and whatever else must hold before traffic counts as served (subject
	// state caught up, ...).
	ready *readiness
	// reloads counts policy reloads (dgw.policy.reloads); whatever reloads
	// the policy calls reloads.Record once per attempt.
	reloads   *gateway.PolicyReloads
	admin     *telemetry.Admin
	adminAddr string // the address the admin server bound; empty without one
}

type observabilityConfig struct {
	// adminAddr is host:port for the admin server (port 0 picks one); empty
	// for none.
	adminAddr string
	// traces, when set, receives every span as a JSON line (dev --trace).
	traces io.Writer
	// environ is the process environment: the OTEL_* variables turn on and
	// direct the OTLP exporters (see adapters/telemetry).
	environ []string
	// tracer replaces the tracer provider built from the configuration;
	// tests pass one with an in-memory exporter.
	tracer trace.TracerProvider
	log    *slog.Logger
}

// startObservability builds the providers and starts the admin server.
// Close it when the gateway has stopped.
func startObservability(ctx context.Context, cfg observabilityConfig) (*observability, error) {
	p, err := telemetry.Setup(ctx, telemetry.Config{StdoutTraces: cfg.traces, Environ: cfg.environ})
	if err != nil {
		return nil, err
	}
	o := &observability{providers: p, tracer: p.Tracer, ready: newReadiness()}
	if cfg.tracer != nil {
		o.tracer = cfg.tracer
	}
	if o.reloads, err = gateway.NewPolicyReloads(ctx, p.Meter); err != nil {
		return nil, errors.Join(err, p.Shutdown(ctx))
	}
	if cfg.adminAddr != "" {
		o.admin = telemetry.NewAdmin(cfg.adminAddr, p.Metrics, o.ready.Ready)
		if o.adminAddr, err = o.admin.Start(); err != nil {
			return nil, errors.Join(err, p.Shutdown(ctx))
		}
		cfg.log.Info("admin server listening", "addr", o.adminAddr, "paths", "/metrics /healthz /readyz")
	}
	return o, nil
}

// gatewayOptions hand the providers and the W3C propagator to the pipeline.
func (o *observability) gatewayOptions() []gateway.Option {
	return []gateway.Option{
		gateway.WithTracerProvider(o.tracer),
		gateway.WithMeterProvider(o.providers.Meter),
		gateway.WithPropagator(telemetry.Propagator()),
	}
}

// close stops the admin server, then flushes the exporters (spans still
// batched for OTLP, a last metrics export).
func (o *observability) close(ctx context.Context) error {
	var errs []error
	if o.admin != nil {
		errs = append(errs, o.admin.Shutdown(ctx))
	}
	errs = append(errs, o.providers.Shutdown(ctx))
	return errors.Join(errs...)
}

// startupChecks registers the readiness checks every gateway command has
// from its first moment: "policy", returned to be set once the policy is
// loaded, and "consumer", which runGateway takes over (watchGateway), so
// /readyz does not report ready between loading the policy and starting
// the consumer.
func (o *observability) startupChecks() (policyLoaded *readyFlag) {
	policyLoaded = o.ready.Flag("policy", "policy not loaded")
	o.ready.Flag("consumer", "consumer not running")
	return policyLoaded
}

// closeObservability closes o within a bounded time and logs what failed:
// telemetry that could not be flushed does not fail the command.
func closeObservability(ctx context.Context, o *observability, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := o.close(ctx); err != nil {
		log.Warn("telemetry shutdown failed", "error", err.Error())
	}
}

// readiness is the registry behind /readyz: an ordered list of named
// checks. The process is ready when every check passes; otherwise /readyz
// answers 503 with the reasons of the failing checks. Checks must be quick
// (each call is bounded by a timeout) and their reasons must come from
// dgw's own state (ids, counts, addresses), never from record data. A
// readiness with no checks is ready.
type readiness struct {
	mu      sync.Mutex
	checks  []readyCheck
	timeout time.Duration
}

type readyCheck struct {
	name  string
	check func(ctx context.Context) error
}

func newReadiness() *readiness { return &readiness{timeout: 2 * time.Second} }

// Add registers check under name; a check already registered under that
// name is replaced in place. check returns nil when ready, or an error whose
// text is the reason it is not.
func (r *readiness) Add(name string, check func(ctx context.Context) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.checks {
		if r.checks[i].name == name {
			r.checks[i].check = check
			return
		}
	}
	r.checks = append(r.checks, readyCheck{name: name, check: check})
}

// readyFlag is a check a component sets itself.
type readyFlag struct{ ok atomic.Bool }

// Set marks the component ready or not.
func (f *readyFlag) Set(ok bool) { f.ok.Store(ok) }

// Flag registers a check under name that fails with reason until the
// returned flag is set.
func (r *readiness) Flag(name, reason string) *readyFlag {
	f := &readyFlag{}
	notReady := errors.New(reason)
	r.Add(name, func(context.Context) error {
		if f.ok.Load() {
			return nil
		}
		return notReady
	})
	return f
}

// Check runs every check in order and returns nil when all pass, or one
// error listing every failing check's reason, separated by "; ".
func (r *readiness) Check(ctx context.Context) error {
	r.mu.Lock()
	checks := append([]readyCheck(nil), r.checks...)
	r.mu.Unlock()
	var reasons []string
	for _, c := range checks {
		if err := c.check(ctx); err != nil {
			reasons = append(reasons, err.Error())
		}
	}
	if len(reasons) == 0 {
		return nil
	}
	return errors.New(strings.Join(reasons, "; "))
}

// Ready is Check in the form telemetry.NewAdmin wants, bounded by the
// readiness timeout.
func (r *readiness) Ready() (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	if err := r.Check(ctx); err != nil {
		return false, err.Error()
	}
	return true, ""
}

// watchGateway adds the checks of a running gateway: a broker answers, no
// assigned partition is stalled, and the consumer runs. Call the returned func when the pipeline has stopped.
// A nil readiness watches nothing.
func (r *readiness) watchGateway(src *kafka.Source) (stopped func()) {
	if r == nil {
		return func() {}
	}
	r.Add("broker", func(ctx context.Context) error {
		if err := src.Ping(ctx); err != nil {
			return fmt.Errorf("broker unreachable: %w", err)
		}
		return nil
	})
	// Partitions the Source's watchdog found stalled and that have not read
	// since (topic, partition and offset only).
	r.Add("partitions", func(context.Context) error { return src.Stalled() })
	running := r.Flag("consumer", "consumer not running")
	running.Set(true)
	return func() { running.Set(false) }
}
