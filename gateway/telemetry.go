package gateway

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// instrumentationName names dgw's tracer and meter.
const instrumentationName = "github.com/dgwproject/dgw/gateway"

// WithTracerProvider sets where spans go. Default: no tracing.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tracerProvider = tp })
}

// WithMeterProvider sets where metrics go. Default: no metrics.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meterProvider = mp })
}

// WithPropagator sets how trace context is read from source records and
// written to every output record. Default: W3C Trace Context.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) { c.propagator = p })
}

// HeaderCarrier adapts Kafka record headers to OpenTelemetry propagation.
type HeaderCarrier struct{ Headers *[]Header }

var _ propagation.TextMapCarrier = HeaderCarrier{}

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string {
	for _, h := range *c.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Set replaces key's value.
func (c HeaderCarrier) Set(key, value string) {
	hs := *c.Headers
	for i := range hs {
		if hs[i].Key == key {
			hs[i].Value = []byte(value)
			return
		}
	}
	*c.Headers = append(hs, Header{Key: key, Value: []byte(value)})
}

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	out := make([]string, len(*c.Headers))
	for i, h := range *c.Headers {
		out[i] = h.Key
	}
	return out
}

// instruments are the pipeline's telemetry. Attributes identify events,
// recipients, reasons and revisions, never personal data.
type instruments struct {
	tracer     trace.Tracer
	prop       propagation.TextMapPropagator
	consumed   metric.Int64Counter
	deliveries metric.Int64Counter
	redacted   metric.Int64Counter
	dead       metric.Int64Counter
	held       metric.Int64Counter
	decideDur  metric.Float64Histogram
	cache      metric.Int64Counter
	e2e        metric.Float64Histogram

	// Attribute sets built once: building one per measurement sorts and
	// allocates, per recipient of every event.
	// They are kept as option slices: passing a slice to a variadic
	// parameter allocates nothing.
	hitDur, missDur []metric.RecordOption
	hit, miss       []metric.AddOption
	byRecipient     sync.Map // recipientAttrKey → *recipientAttrs

	// untraced is set without a tracer provider: spans are the no-op
	// API's, which carry their parent's span context and record nothing.
	untraced bool
}

// child starts the span of one step for one recipient. Untraced, the
// no-op span it would start carries its parent's span context (the
// OpenTelemetry API's behaviour without an SDK), so the step runs in its
// parent's context: the outputs get the same trace context, and nothing is
// allocated per recipient.
func (in *instruments) child(ctx context.Context, name string) (context.Context, trace.Span) {
	if in.untraced {
		return ctx, trace.SpanFromContext(context.Background())
	}
	return in.tracer.Start(ctx, name)
}

type recipientAttrKey struct{ id, typ string }

// recipientAttrs are the attribute sets of one recipient's measurements.
type recipientAttrs struct {
	outcome map[Outcome][]metric.AddOption
	op      map[Operator][]metric.AddOption
	e2e     []metric.RecordOption
}

func (in *instruments) attrsOf(r *Recipient) *recipientAttrs {
	k := recipientAttrKey{r.ID, r.Type}
	if a, ok := in.byRecipient.Load(k); ok {
		return a.(*recipientAttrs)
	}
	a := &recipientAttrs{outcome: map[Outcome][]metric.AddOption{}, op: map[Operator][]metric.AddOption{},
		e2e: []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("recipient", r.ID)))}}
	for _, o := range []Outcome{OutcomeDelivered, OutcomeRefused, OutcomeHeld} {
		a.outcome[o] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("recipient", r.ID),
			attribute.String("recipient_type", r.Type), attribute.String("outcome", string(o))))}
	}
	for _, op := range []Operator{OpKeep, OpGeneralise, OpMask, OpHash} {
		a.op[op] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("recipient", r.ID), attribute.String("operator", string(op))))}
	}
	v, _ := in.byRecipient.LoadOrStore(k, a)
	return v.(*recipientAttrs)
}

func newInstruments(c *config) (*instruments, error) {
	tp, mp, prop := c.tracerProvider, c.meterProvider, c.propagator
	untraced := tp == nil
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	if prop == nil {
		prop = propagation.TraceContext{}
	}
	m := mp.Meter(instrumentationName)
	in := &instruments{tracer: tp.Tracer(instrumentationName), prop: prop, untraced: untraced}
	var err error
	counter := func(name, desc string) metric.Int64Counter {
		if err != nil {
			return nil
		}
		var c metric.Int64Counter
		c, err = m.Int64Counter(name, metric.WithDescription(desc))
		return c
	}
	in.consumed = counter("dgw.events.consumed", "Source records consumed, per topic.")
	in.deliveries = counter("dgw.deliveries", "Per-recipient outcomes: delivered, refused or held.")
	in.redacted = counter("dgw.fields.redacted", "Fields released to recipients, per operator.")
	in.dead = counter("dgw.dead_lettered", "Records sent to the dead-letter topic, per reason.")
	in.held = counter("dgw.held", "Per-recipient copies sent to the held topic, per reason.")
	in.cache = counter("dgw.decision.cache", "Decision cache lookups, hit or miss.")
	if err != nil {
		return nil, err
	}
	latency := metric.WithExplicitBucketBoundaries(0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
	if in.decideDur, err = m.Float64Histogram("dgw.decision.duration", metric.WithUnit("s"),
		metric.WithDescription("Time to decide one (event, recipient)."), latency); err != nil {
		return nil, err
	}
	in.hitDur = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("cache", "hit")))}
	in.missDur = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("cache", "miss")))}
	in.hit = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "hit")))}
	in.miss = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "miss")))}
	if in.e2e, err = m.Float64Histogram("dgw.end_to_end.latency", metric.WithUnit("s"),
		metric.WithDescription("From the source record's timestamp to the recipient's acknowledged delivery."), latency); err != nil {
		return nil, err
	}
	return in, nil
}

func (in *instruments) decided(ctx context.Context, d *Decision, took time.Duration) {
	// The cache counter's label is "result", as the metric contract says
	// (deploy/prometheus/README.md); the histogram's is "cache".
	dur, res := in.missDur, in.miss
	if d.Cached {
		dur, res = in.hitDur, in.hit
	}
	in.decideDur.Record(ctx, took.Seconds(), dur...)
	in.cache.Add(ctx, 1, res...)
}

func (in *instruments) observe(ctx context.Context, res *EventResult, now time.Time) {
	if res.DeadLetter != "" {
		in.dead.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", string(res.DeadLetter))))
		return
	}
	for i := range res.Recipients {
		rr := &res.Recipients[i]
		r := rr.Recipient
		a := in.attrsOf(r)
		if o, ok := a.outcome[rr.Outcome]; ok {
			in.deliveries.Add(ctx, 1, o...)
		} else {
			in.deliveries.Add(ctx, 1, metric.WithAttributes(attribute.String("recipient", r.ID),
				attribute.String("recipient_type", r.Type), attribute.String("outcome", string(rr.Outcome))))
		}
		switch rr.Outcome {
		case OutcomeHeld:
			in.held.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", string(rr.Reason)), attribute.String("recipient", r.ID)))
		case OutcomeDelivered:
			var keep, gen, mask, hash int64
			var other map[Operator]int64
			for _, op := range rr.Decision.Fields {
				switch op {
				case OpDrop:
				case OpKeep:
					keep++
				case OpGeneralise:
					gen++
				case OpMask:
					mask++
				case OpHash:
					hash++
				default:
					if other == nil {
						other = map[Operator]int64{}
					}
					other[op]++
				}
			}
			for _, c := range [...]struct {
				op Operator
				n  int64
			}{{OpKeep, keep}, {OpGeneralise, gen}, {OpMask, mask}, {OpHash, hash}} {
				if c.n > 0 {
					in.redacted.Add(ctx, c.n, a.op[c.op]...)
				}
			}
			for op, n := range other {
				in.redacted.Add(ctx, n, metric.WithAttributes(attribute.String("recipient", r.ID), attribute.String("operator", string(op))))
			}
			if !res.SourceTime.IsZero() {
				in.e2e.Record(ctx, now.Sub(res.SourceTime).Seconds(), a.e2e...)
			}
		}
	}
}
