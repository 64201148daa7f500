package telemetry

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The standard OpenTelemetry variables dgw reads from Config.Environ.
// Errors name the variable, never its value: endpoints may carry
// credentials in their user info and headers usually carry tokens.
const (
	envOTLPPrefix        = "OTEL_EXPORTER_OTLP_"
	envTracesExporter    = "OTEL_TRACES_EXPORTER"
	envMetricsExporter   = "OTEL_METRICS_EXPORTER"
	envTracesSampler     = "OTEL_TRACES_SAMPLER"
	envTracesSamplerArg  = "OTEL_TRACES_SAMPLER_ARG"
	envMetricInterval    = "OTEL_METRIC_EXPORT_INTERVAL"
	envMetricTimeout     = "OTEL_METRIC_EXPORT_TIMEOUT"
	envServiceName       = "OTEL_SERVICE_NAME"
	envResourceAttrs     = "OTEL_RESOURCE_ATTRIBUTES"
	defaultOTLPEndpoint  = "http://localhost:4318"
	signalTraces         = "TRACES"
	signalMetrics        = "METRICS"
	protocolHTTPProtobuf = "http/protobuf"
	protocolHTTPJSON     = "http/json"
)

// environ is Config.Environ as a map; empty values count as unset, as the
// OpenTelemetry specification asks, and a later entry wins over an earlier one.
type environ map[string]string

func parseEnviron(kvs []string) environ {
	env := environ{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		if v = strings.TrimSpace(v); v == "" {
			delete(env, k)
			continue
		}
		env[k] = v
	}
	return env
}

// lookup returns the first set variable among names.
func (env environ) lookup(names ...string) (name, value string, ok bool) {
	for _, n := range names {
		if v, ok := env[n]; ok {
			return n, v, true
		}
	}
	return "", "", false
}

// otlpConfig is what dgw decides for one signal's OTLP exporter. Settings not
// here (TLS certificates, compression) the exporter reads from the process
// environment itself; cmd/dgw passes os.Environ() as Config.Environ, so both
// views agree in production.
type otlpConfig struct {
	endpoint string            // full URL, signal path included
	headers  map[string]string // nil: none configured
	json     bool              // http/json instead of http/protobuf
	timeout  time.Duration     // 0: exporter default
}

// otlpFor decides whether signal ("TRACES" or "METRICS") is exported over
// OTLP and how. OTLP is on when OTEL_<SIGNAL>S_EXPORTER lists "otlp", or when
// that variable is unset and any OTEL_EXPORTER_OTLP_* variable that applies
// to the signal is set; "none" (or, for metrics, "prometheus" alone) turns it
// off. The Prometheus endpoint is served in every case.
func (env environ) otlpFor(signal string) (*otlpConfig, error) {
	on, err := env.otlpEnabled(signal)
	if err != nil || !on {
		return nil, err
	}
	sig := envOTLPPrefix + signal + "_"
	cfg := &otlpConfig{}

	if name, v, ok := env.lookup(sig+"PROTOCOL", envOTLPPrefix+"PROTOCOL"); ok {
		switch v {
		case protocolHTTPProtobuf:
		case protocolHTTPJSON:
			if signal != signalTraces {
				return nil, fmt.Errorf("%s: http/json is not supported for metrics, use http/protobuf", name)
			}
			cfg.json = true
		case "grpc":
			return nil, fmt.Errorf("%s: dgw exports OTLP over HTTP only, use http/protobuf (port 4318 on a collector)", name)
		default:
			return nil, fmt.Errorf("%s: unknown protocol (want http/protobuf or http/json)", name)
		}
	}

	signalPath := "/v1/" + strings.ToLower(signal)
	if v, ok := env[sig+"ENDPOINT"]; ok {
		// A per-signal endpoint is used as is (root path when it has none).
		u, err := parseEndpoint(sig+"ENDPOINT", v)
		if err != nil {
			return nil, err
		}
		if u.Path == "" {
			u.Path = "/"
		}
		cfg.endpoint = u.String()
	} else {
		// The base endpoint (or the default) gets the signal's path appended.
		name, v := envOTLPPrefix+"ENDPOINT", defaultOTLPEndpoint
		if set, ok := env[name]; ok {
			v = set
		}
		u, err := parseEndpoint(name, v)
		if err != nil {
			return nil, err
		}
		u.Path = path.Join("/", u.Path, signalPath)
		cfg.endpoint = u.String()
	}

	if name, v, ok := env.lookup(sig+"HEADERS", envOTLPPrefix+"HEADERS"); ok {
		h, err := parseKeyValues(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		cfg.headers = h
	}
	if name, v, ok := env.lookup(sig+"TIMEOUT", envOTLPPrefix+"TIMEOUT"); ok {
		d, err := parseMillis(name, v)
		if err != nil {
			return nil, err
		}
		cfg.timeout = d
	}
	return cfg, nil
}

func (env environ) otlpEnabled(signal string) (bool, error) {
	selector := envTracesExporter
	allowed := map[string]bool{"otlp": true, "none": true}
	if signal == signalMetrics {
		selector = envMetricsExporter
		allowed["prometheus"] = true
	}
	if v, ok := env[selector]; ok {
		on := false
		for _, e := range strings.Split(v, ",") {
			e = strings.ToLower(strings.TrimSpace(e))
			if !allowed[e] {
				return false, fmt.Errorf("%s: unsupported exporter (dgw supports %s)", selector, strings.Join(sortedKeys(allowed), ", "))
			}
			on = on || e == "otlp"
		}
		return on, nil
	}
	for k := range env {
		rest, ok := strings.CutPrefix(k, envOTLPPrefix)
		if !ok {
			continue
		}
		if strings.HasPrefix(rest, signal+"_") {
			return true, nil
		}
		// A general variable applies to every signal; one for another
		// signal (OTEL_EXPORTER_OTLP_LOGS_...) does not.
		if !strings.HasPrefix(rest, signalTraces+"_") && !strings.HasPrefix(rest, signalMetrics+"_") && !strings.HasPrefix(rest, "LOGS_") {
			return true, nil
		}
	}
	return false, nil
}

func parseEndpoint(name, v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s: want an http:// or https:// URL with a host", name)
	}
	return u, nil
}

func parseMillis(name, v string) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > int64(time.Duration(1<<62)/time.Millisecond) {
		return 0, fmt.Errorf("%s: want a non-negative number of milliseconds", name)
	}
	return time.Duration(n) * time.Millisecond, nil
}

// Errors of parseKeyValues. They quote nothing from the input.
var (
	errKVMissingEquals = errors.New("missing '='")
	errKVEmptyKey      = errors.New("empty key")
	errKVBadEscape     = errors.New("bad percent-encoding")
)

// parseKeyValues parses the W3C-Baggage-like list the OpenTelemetry variables
// OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES use:
// "key1=value1,key2=value2", values percent-encoded. Errors give the entry's
// position, never its text.
func parseKeyValues(s string) (map[string]string, error) {
	out := map[string]string{}
	for i, entry := range strings.Split(s, ",") {
		if strings.TrimSpace(entry) == "" {
			continue
		}
		k, v, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("entry %d: %w", i+1, errKVMissingEquals)
		}
		k = strings.TrimSpace(k)
		if k == "" {
			return nil, fmt.Errorf("entry %d: %w", i+1, errKVEmptyKey)
		}
		key, err := url.PathUnescape(k)
		if err != nil {
			return nil, fmt.Errorf("entry %d: key: %w", i+1, errKVBadEscape)
		}
		val, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("entry %d: value: %w", i+1, errKVBadEscape)
		}
		out[key] = val
	}
	return out, nil
}

// sampler reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG. Default:
// parentbased_always_on, which keeps the publisher's sampling decision.
func (env environ) sampler() (sdktrace.Sampler, error) {
	name := strings.ToLower(env[envTracesSampler])
	ratio := 1.0
	if v, ok := env[envTracesSamplerArg]; ok && strings.HasSuffix(name, "traceidratio") {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("%s: want a ratio between 0 and 1", envTracesSamplerArg)
		}
		ratio = r
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	default:
		return nil, fmt.Errorf("%s: unsupported sampler (want always_on, always_off, traceidratio or their parentbased_ forms)", envTracesSampler)
	}
}

// metricExport reads OTEL_METRIC_EXPORT_INTERVAL and _TIMEOUT; zero means the
// SDK default (60 s and 30 s).
func (env environ) metricExport() (interval, timeout time.Duration, err error) {
	if v, ok := env[envMetricInterval]; ok {
		if interval, err = parseMillis(envMetricInterval, v); err != nil {
			return 0, 0, err
		}
	}
	if v, ok := env[envMetricTimeout]; ok {
		if timeout, err = parseMillis(envMetricTimeout, v); err != nil {
			return 0, 0, err
		}
	}
	return interval, timeout, nil
}

// resourceAttrs merges OTEL_RESOURCE_ATTRIBUTES, the configured service name
// and version, and OTEL_SERVICE_NAME, later ones winning.
func (env environ) resourceAttrs(serviceName, serviceVersion string) ([]attribute.KeyValue, error) {
	attrs := map[string]string{}
	if v, ok := env[envResourceAttrs]; ok {
		kv, err := parseKeyValues(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envResourceAttrs, err)
		}
		attrs = kv
	}
	attrs["service.name"] = serviceName
	attrs["service.version"] = serviceVersion
	if v, ok := env[envServiceName]; ok {
		attrs["service.name"] = v
	}
	out := make([]attribute.KeyValue, 0, len(attrs))
	for _, k := range sortedKeys(attrs) {
		out = append(out, attribute.String(k, attrs[k]))
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
