package telemetry

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
)

func TestOTLPFor(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		signal  string
		want    *otlpConfig
		wantErr string
	}{
		{name: "nothing set", signal: signalTraces, want: nil},
		{name: "base endpoint gets the signal path", signal: signalTraces,
			environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=https://collector:4318"},
			want:    &otlpConfig{endpoint: "https://collector:4318/v1/traces"}},
		{name: "base endpoint with path and slash", signal: signalMetrics,
			environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318/otlp/"},
			want:    &otlpConfig{endpoint: "http://collector:4318/otlp/v1/metrics"}},
		{name: "signal endpoint as is, root path when none", signal: signalTraces,
			environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://a:1", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://b:2"},
			want:    &otlpConfig{endpoint: "http://b:2/"}},
		{name: "headers only: default endpoint", signal: signalMetrics,
			environ: []string{"OTEL_EXPORTER_OTLP_HEADERS=api-key=k%2C1"},
			want:    &otlpConfig{endpoint: "http://localhost:4318/v1/metrics", headers: map[string]string{"api-key": "k,1"}}},
		{name: "signal headers replace general ones", signal: signalTraces,
			environ: []string{"OTEL_EXPORTER_OTLP_HEADERS=a=1", "OTEL_EXPORTER_OTLP_TRACES_HEADERS=b=2"},
			want:    &otlpConfig{endpoint: "http://localhost:4318/v1/traces", headers: map[string]string{"b": "2"}}},
		{name: "another signal's variable does not apply", signal: signalTraces,
			environ: []string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=http://m:1"}, want: nil},
		{name: "json traces and timeout", signal: signalTraces,
			environ: []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/json", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=2500"},
			want:    &otlpConfig{endpoint: "http://localhost:4318/v1/traces", json: true, timeout: 2500 * time.Millisecond}},
		{name: "signal protocol wins", signal: signalMetrics,
			environ: []string{"OTEL_EXPORTER_OTLP_PROTOCOL=grpc", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=http/protobuf"},
			want:    &otlpConfig{endpoint: "http://localhost:4318/v1/metrics"}},
		{name: "exporter otlp without endpoint", signal: signalTraces,
			environ: []string{"OTEL_TRACES_EXPORTER=otlp"},
			want:    &otlpConfig{endpoint: "http://localhost:4318/v1/traces"}},
		{name: "exporter none wins over endpoint", signal: signalTraces,
			environ: []string{"OTEL_TRACES_EXPORTER=none", "OTEL_EXPORTER_OTLP_ENDPOINT=http://a:1"}, want: nil},
		{name: "metrics exporter prometheus and otlp", signal: signalMetrics,
			environ: []string{"OTEL_METRICS_EXPORTER=prometheus, OTLP"},
			want:    &otlpConfig{endpoint: "http://localhost:4318/v1/metrics"}},
		{name: "prometheus is not a traces exporter", signal: signalTraces,
			environ: []string{"OTEL_TRACES_EXPORTER=prometheus"}, wantErr: "OTEL_TRACES_EXPORTER"},
		{name: "grpc", signal: signalTraces,
			environ: []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc"}, wantErr: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		{name: "endpoint without host", signal: signalTraces,
			environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http:///v1"}, wantErr: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "negative timeout", signal: signalMetrics,
			environ: []string{"OTEL_EXPORTER_OTLP_TIMEOUT=-1"}, wantErr: "OTEL_EXPORTER_OTLP_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseEnviron(tt.environ).otlpFor(tt.signal)
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

func TestSampler(t *testing.T) {
	tests := []struct {
		environ []string
		want    string // the sampler's Description
	}{
		{nil, "ParentBased{root:AlwaysOnSampler,remoteParentSampled:AlwaysOnSampler,remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,localParentNotSampled:AlwaysOffSampler}"},
		{[]string{"OTEL_TRACES_SAMPLER=always_off"}, "AlwaysOffSampler"},
		{[]string{"OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=0.25"}, "TraceIDRatioBased{0.25}"},
		{[]string{"OTEL_TRACES_SAMPLER=parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG=0.5"}, "ParentBased{root:TraceIDRatioBased{0.5},"},
		{[]string{"OTEL_TRACES_SAMPLER=always_on", "OTEL_TRACES_SAMPLER_ARG=ignored"}, "AlwaysOnSampler"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.environ, " "), func(t *testing.T) {
			s, err := parseEnviron(tt.environ).sampler()
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(s.Description(), tt.want), "got %s", s.Description())
		})
	}
}

func TestResourceAttrs(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    []attribute.KeyValue
	}{
		{name: "config only", want: []attribute.KeyValue{
			attribute.String("service.name", "dgw"), attribute.String("service.version", "v1")}},
		{name: "OTEL_SERVICE_NAME wins", environ: []string{"OTEL_SERVICE_NAME=dgw-eu", "OTEL_RESOURCE_ATTRIBUTES=service.name=x"},
			want: []attribute.KeyValue{attribute.String("service.name", "dgw-eu"), attribute.String("service.version", "v1")}},
		{name: "resource attributes added, decoded", environ: []string{"OTEL_RESOURCE_ATTRIBUTES=k8s.pod.name=dgw-0, deployment.environment.name=prod%20eu"},
			want: []attribute.KeyValue{
				attribute.String("deployment.environment.name", "prod eu"), attribute.String("k8s.pod.name", "dgw-0"),
				attribute.String("service.name", "dgw"), attribute.String("service.version", "v1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseEnviron(tt.environ).resourceAttrs("dgw", "v1")
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseKeyValues(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr error
	}{
		{in: "", want: map[string]string{}},
		{in: "a=1", want: map[string]string{"a": "1"}},
		{in: " a = 1 , b=x%3Dy ,,", want: map[string]string{"a": "1", "b": "x=y"}},
		{in: "a=", want: map[string]string{"a": ""}},
		{in: "a=1=2", want: map[string]string{"a": "1=2"}},
		{in: "a=1,b", wantErr: errKVMissingEquals},
		{in: "=1", wantErr: errKVEmptyKey},
		{in: "a=%", wantErr: errKVBadEscape},
		{in: "%g=1", wantErr: errKVBadEscape},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseKeyValues(tt.in)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// kvErrorForm is every message parseKeyValues may return, digits aside: none
// quotes the input.
var kvErrorForm = regexp.MustCompile(`^entry [0-9]+: ((key|value): )?(missing '='|empty key|bad percent-encoding)$`)

// FuzzParseKeyValues: parsing OTEL_EXPORTER_OTLP_HEADERS and
// OTEL_RESOURCE_ATTRIBUTES never panics, errors never quote the input (it
// holds tokens), and a successful parse yields non-empty keys only.
func FuzzParseKeyValues(f *testing.F) {
	for _, s := range []string{"", "a=1", "Authorization=Bearer%20x,tenant=t", "a", "=b", "a=%zz", ",,a=1,,", "k=v=w", "%41=%42", "a=1,a=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseKeyValues(s)
		if err != nil {
			if !kvErrorForm.MatchString(err.Error()) {
				t.Fatalf("error %q quotes more than position and kind", err)
			}
			return
		}
		for k := range got {
			if k == "" {
				t.Fatalf("empty key from %q", s)
			}
		}
	})
}
