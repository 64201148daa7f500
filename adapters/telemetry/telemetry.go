// Package telemetry is dgw's OpenTelemetry edge: it builds the SDK tracer and
// meter providers the core records through (the core itself sees only the
// OpenTelemetry API), exports metrics in the Prometheus text format and, when
// the standard OTEL_EXPORTER_OTLP_* variables say so, over OTLP/HTTP, and
// serves the admin endpoints /metrics, /healthz and /readyz.
//
// Nothing here is global: Setup registers no global provider, propagator or
// Prometheus registry, so tests and several gateways in one process do not
// interfere.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// DefaultServiceName is the service.name resource attribute unless
// Config.ServiceName or OTEL_SERVICE_NAME says otherwise.
const DefaultServiceName = "dgw"

// Config says where telemetry goes. The zero value is valid: Prometheus
// metrics only, no span export.
type Config struct {
	// ServiceName is the service.name resource attribute. Default "dgw";
	// OTEL_SERVICE_NAME in Environ overrides it.
	ServiceName string
	// ServiceVersion is the service.version resource attribute. Default: the
	// main module's version from the build information, or "(devel)".
	ServiceVersion string
	// StdoutTraces, when set, receives every span as one JSON object per
	// line as soon as it ends (dgw dev --trace). Meant for development: the
	// export is synchronous.
	StdoutTraces io.Writer
	// Environ holds the process environment in os.Environ form. Setup reads
	// the standard OpenTelemetry variables from here, never from the process:
	// OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]{ENDPOINT,PROTOCOL,HEADERS,TIMEOUT}
	// turn on and direct the OTLP exporters (OTLP/HTTP; protocol
	// http/protobuf, or http/json for traces), OTEL_TRACES_EXPORTER and
	// OTEL_METRICS_EXPORTER (otlp, none; prometheus for metrics) select them
	// explicitly, OTEL_TRACES_SAMPLER[_ARG], OTEL_METRIC_EXPORT_INTERVAL and
	// _TIMEOUT, OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES do what the
	// specification says. TLS files and compression, which decide nothing
	// about whether or where data goes, are left to the exporters, which read
	// them from the process environment.
	Environ []string
}

func (c *Config) setDefaults() {
	if c.ServiceName == "" {
		c.ServiceName = DefaultServiceName
	}
	if c.ServiceVersion == "" {
		c.ServiceVersion = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			c.ServiceVersion = bi.Main.Version
		}
	}
}

// Providers are what the gateway records through, and the Prometheus
// endpoint that exposes its metrics.
type Providers struct {
	// Tracer is an SDK tracer provider when some span exporter is
	// configured. Without one it is a no-op provider: nothing is recorded,
	// and trace context extracted from a source record still passes through
	// to the output records unchanged.
	Tracer trace.TracerProvider
	// Meter is an SDK meter provider read by the Prometheus exporter (and by
	// a periodic OTLP exporter when configured).
	Meter metric.MeterProvider
	// Metrics serves the Prometheus text exposition format of Meter's
	// instruments plus the Go runtime and process collectors, from a
	// registry of its own.
	Metrics http.Handler

	shutdowns []func(context.Context) error
	once      sync.Once
	err       error
}

// Setup builds the providers cfg asks for. Call Shutdown when done, to flush
// what the exporters still hold. Configuration errors name the variable at
// fault, never its value.
func Setup(ctx context.Context, cfg Config) (_ *Providers, err error) {
	cfg.setDefaults()
	env := parseEnviron(cfg.Environ)

	attrs, err := env.resourceAttrs(cfg.ServiceName, cfg.ServiceVersion)
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithAttributes(attrs...))
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}

	p := &Providers{}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.Shutdown(ctx))
		}
	}()
	if err := p.setupTraces(ctx, env, res, cfg.StdoutTraces); err != nil {
		return nil, fmt.Errorf("telemetry traces: %w", err)
	}
	if err := p.setupMetrics(ctx, env, res); err != nil {
		return nil, fmt.Errorf("telemetry metrics: %w", err)
	}
	return p, nil
}

func (p *Providers) setupTraces(ctx context.Context, env environ, res *resource.Resource, stdout io.Writer) error {
	sampler, err := env.sampler()
	if err != nil {
		return err
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(sampler)}
	if stdout != nil {
		exp, err := stdouttrace.New(stdouttrace.WithWriter(stdout))
		if err != nil {
			return fmt.Errorf("stdout exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithSyncer(exp))
	}
	otlp, err := env.otlpFor(signalTraces)
	if err != nil {
		return err
	}
	if otlp != nil {
		hopts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(otlp.endpoint)}
		if otlp.headers != nil {
			hopts = append(hopts, otlptracehttp.WithHeaders(otlp.headers))
		}
		encoding := otlptracehttp.EncodingProtobuf
		if otlp.json {
			encoding = otlptracehttp.EncodingJSON
		}
		hopts = append(hopts, otlptracehttp.WithEncoding(encoding))
		if otlp.timeout > 0 {
			hopts = append(hopts, otlptracehttp.WithTimeout(otlp.timeout))
		}
		exp, err := otlptracehttp.New(ctx, hopts...)
		if err != nil {
			return fmt.Errorf("otlp exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	if stdout == nil && otlp == nil {
		p.Tracer = tracenoop.NewTracerProvider()
		return nil
	}
	tp := sdktrace.NewTracerProvider(opts...)
	p.Tracer = tp
	p.shutdowns = append(p.shutdowns, tp.Shutdown)
	return nil
}

func (p *Providers) setupMetrics(ctx context.Context, env environ, res *resource.Resource) error {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return fmt.Errorf("go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return fmt.Errorf("process collector: %w", err)
	}
	promExp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return fmt.Errorf("prometheus exporter: %w", err)
	}
	opts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(promExp)}

	otlp, err := env.otlpFor(signalMetrics)
	if err != nil {
		return err
	}
	if otlp != nil {
		interval, timeout, err := env.metricExport()
		if err != nil {
			return err
		}
		hopts := []otlpmetrichttp.Option{otlpmetrichttp.WithEndpointURL(otlp.endpoint)}
		if otlp.headers != nil {
			hopts = append(hopts, otlpmetrichttp.WithHeaders(otlp.headers))
		}
		if otlp.timeout > 0 {
			hopts = append(hopts, otlpmetrichttp.WithTimeout(otlp.timeout))
		}
		exp, err := otlpmetrichttp.New(ctx, hopts...)
		if err != nil {
			return fmt.Errorf("otlp exporter: %w", err)
		}
		var ropts []sdkmetric.PeriodicReaderOption
		if interval > 0 {
			ropts = append(ropts, sdkmetric.WithInterval(interval))
		}
		if timeout > 0 {
			ropts = append(ropts, sdkmetric.WithTimeout(timeout))
		}
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, ropts...)))
	}
	mp := sdkmetric.NewMeterProvider(opts...)
	p.Meter = mp
	p.Metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	p.shutdowns = append(p.shutdowns, mp.Shutdown)
	return nil
}

// Shutdown flushes and stops every exporter: spans still batched and a last
// collection of metrics go out before it returns, or when ctx ends. Only the
// first call does anything; later calls return its result.
func (p *Providers) Shutdown(ctx context.Context) error {
	p.once.Do(func() {
		var errs []error
		for _, shutdown := range p.shutdowns {
			if err := shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			p.err = fmt.Errorf("telemetry shutdown: %w", err)
		}
	})
	return p.err
}

// Propagator is the W3C Trace Context and W3C Baggage propagator, for
// gateway.WithPropagator.
//
// Baggage is whatever the publisher put there and passes through to every
// recipient's records unchanged; a publisher must not put personal data in
// it. Use propagation.TraceContext{} alone where that cannot be promised.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}
