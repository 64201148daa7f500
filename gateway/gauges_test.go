package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/gatewaytest"
)

// lagSource is a MemSource that reports a fixed lag.
type lagSource struct {
	*gatewaytest.MemSource
	lag    []gateway.PartitionLag
	stalls atomic.Int64
}

func (s *lagSource) Lag() []gateway.PartitionLag { return s.lag }

func (s *lagSource) Stalls() int64 { return s.stalls.Load() }

// revisionDecider allows everything and reports a revision that can change.
type revisionDecider struct {
	mu   sync.Mutex
	rev  string
	eval gateway.EvaluationStats
}

func (d *revisionDecider) Decide(ctx context.Context, dc *gateway.DecisionContext, r *gateway.Recipient) (gateway.Decision, error) {
	return allowAll(ctx, dc, r)
}

func (d *revisionDecider) Revision() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rev
}

func (d *revisionDecider) Evaluation() gateway.EvaluationStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.eval
}

func (d *revisionDecider) setEvaluation(e gateway.EvaluationStats) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.eval = e
}

func (d *revisionDecider) set(rev string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rev = rev
}

// point is one data point of a collected metric: its attributes and value.
type point struct {
	attrs map[string]string
	value int64
}

// collect returns the int64 data points of the named metric.
func collect(t *testing.T, r *sdkmetric.ManualReader, name string) []point {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	var out []point
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			var dps []metricdata.DataPoint[int64]
			switch data := m.Data.(type) {
			case metricdata.Gauge[int64]:
				dps = data.DataPoints
			case metricdata.Sum[int64]:
				dps = data.DataPoints
			default:
				t.Fatalf("%s: unexpected data %T", name, m.Data)
			}
			for _, dp := range dps {
				p := point{attrs: map[string]string{}, value: dp.Value}
				for _, kv := range dp.Attributes.ToSlice() {
					p.attrs[string(kv.Key)] = kv.Value.Emit()
				}
				out = append(out, p)
			}
		}
	}
	return out
}

// TestPipelineGauges: while Run runs, the source's lag and stall count and
// the decider's current revision are exported; a new revision replaces the old series;
// once Run returns both are gone.
func TestPipelineGauges(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })

	src := &lagSource{MemSource: gatewaytest.NewMemSource(false, msgs("e1", "e2")...),
		lag: []gateway.PartitionLag{{Topic: "pax.booking", Partition: 0, Lag: 7}, {Topic: "pax.booking", Partition: 2, Lag: 0}}}
	dec := &revisionDecider{rev: "rev-1", eval: gateway.EvaluationStats{Evaluator: "plan", Checks: 3}}
	var handled atomic.Int64
	done := make(chan struct{})
	p, err := gateway.New(src, decoder(), dec, redactor(), &gatewaytest.MemSink{}, []*gateway.Recipient{recipient("ok")},
		gateway.WithMeterProvider(mp),
		gateway.WithObserver(gateway.ObserverFunc(func(*gateway.EventResult) {
			if handled.Add(1) == 2 {
				close(done)
			}
		})))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx) }()
	<-done

	assert.ElementsMatch(t, []point{
		{attrs: map[string]string{"topic": "pax.booking", "partition": "0"}, value: 7},
		{attrs: map[string]string{"topic": "pax.booking", "partition": "2"}, value: 0},
	}, collect(t, reader, "dgw.consumer.lag"))
	assert.Equal(t, []point{{attrs: map[string]string{"revision": "rev-1"}, value: 1}}, collect(t, reader, "dgw.policy.revision"))
	assert.Equal(t, []point{{attrs: map[string]string{}, value: 0}}, collect(t, reader, "dgw.consumer.stalls"))
	src.stalls.Add(2)
	assert.Equal(t, []point{{attrs: map[string]string{}, value: 2}}, collect(t, reader, "dgw.consumer.stalls"),
		"the counter follows the source's stall count")
	dec.set("rev-2")
	assert.Equal(t, []point{{attrs: map[string]string{"revision": "rev-2"}, value: 1}}, collect(t, reader, "dgw.policy.revision"),
		"a reload replaces the revision series")
	assert.Equal(t, []point{{attrs: map[string]string{"result": "miss"}, value: 2}}, collect(t, reader, "dgw.decision.cache"),
		"the cache counter is labelled result, as the metric contract says")
	assert.Equal(t, []point{{attrs: map[string]string{"evaluator": "plan"}, value: 1}}, collect(t, reader, "dgw.policy.evaluator"))
	assert.Equal(t, []point{{attrs: map[string]string{}, value: 3}}, collect(t, reader, "dgw.policy.evaluation.checks"))
	assert.Equal(t, []point{{attrs: map[string]string{}, value: 0}}, collect(t, reader, "dgw.policy.evaluation.differences"))
	dec.setEvaluation(gateway.EvaluationStats{Evaluator: "interpreter", Checks: 4, Differences: 1, Fallbacks: 2})
	assert.Equal(t, []point{{attrs: map[string]string{"evaluator": "interpreter"}, value: 1}}, collect(t, reader, "dgw.policy.evaluator"),
		"a plan turned off replaces the evaluator series")
	assert.Equal(t, []point{{attrs: map[string]string{}, value: 1}}, collect(t, reader, "dgw.policy.evaluation.differences"))
	assert.Equal(t, []point{{attrs: map[string]string{}, value: 2}}, collect(t, reader, "dgw.policy.evaluation.fallbacks"))

	cancel()
	require.NoError(t, <-runErr)
	assert.Empty(t, collect(t, reader, "dgw.consumer.lag"), "a stopped pipeline reports no lag")
	assert.Empty(t, collect(t, reader, "dgw.policy.revision"))
	assert.Empty(t, collect(t, reader, "dgw.consumer.stalls"))
	assert.Empty(t, collect(t, reader, "dgw.policy.evaluator"))
}

func TestPolicyReloads(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	r, err := gateway.NewPolicyReloads(t.Context(), mp)
	require.NoError(t, err)
	byResult := func() map[string]int64 {
		out := map[string]int64{}
		for _, p := range collect(t, reader, "dgw.policy.reloads") {
			out[p.attrs["result"]] = p.value
		}
		return out
	}
	assert.Equal(t, map[string]int64{"success": 0, "failure": 0}, byResult(), "both series exist from the start")
	r.Record(t.Context(), nil)
	r.Record(t.Context(), nil)
	r.Record(t.Context(), errors.New("compile: 1 error"))
	assert.Equal(t, map[string]int64{"success": 2, "failure": 1}, byResult())

	var none *gateway.PolicyReloads
	none.Record(t.Context(), nil) // a nil counter records nothing and does not panic
}

// ExampleNewPolicyReloads counts reload attempts of whatever reloads the
// policy.
func ExampleNewPolicyReloads() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	ctx := context.Background()
	reloads, err := gateway.NewPolicyReloads(ctx, mp)
	if err != nil {
		fmt.Println(err)
		return
	}
	reloads.Record(ctx, nil)                              // the new revision is active
	reloads.Record(ctx, errors.New("policy: 2 problems")) // the old one stays

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		fmt.Println(err)
		return
	}
	for _, dp := range rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Sum[int64]).DataPoints {
		result, _ := dp.Attributes.Value("result")
		fmt.Println(rm.ScopeMetrics[0].Metrics[0].Name, result.AsString(), dp.Value)
	}
	// Unordered output:
	// dgw.policy.reloads success 1
	// dgw.policy.reloads failure 1
}

// TestPipelineInFlightGauges: the events read and not finished, and their
// record bytes, are exported while Run runs, and gone once it returns.
func TestPipelineInFlightGauges(t *testing.T) {
	in := msgs("e1", "e2")
	reader, sink, cancel, runErr := runGated(t, in)

	// Both events are in their workers' deliveries (their keys go to two
	// workers), so both are in flight.
	<-sink.entered
	<-sink.entered
	var bytes int64
	for _, m := range in {
		bytes += int64(len(m.Key) + len(m.Value))
	}
	assert.Equal(t, []point{{attrs: map[string]string{}, value: 2}}, collect(t, reader, "dgw.pipeline.in_flight"))
	assert.Equal(t, []point{{attrs: map[string]string{}, value: bytes}}, collect(t, reader, "dgw.pipeline.in_flight.bytes"))

	sink.openAll() // the two events' writes were the only ones
	cancel()
	require.NoError(t, <-runErr)
	assert.Len(t, sink.Topic("out.ok"), 2)
	assert.Empty(t, collect(t, reader, "dgw.pipeline.in_flight"), "a stopped pipeline reports nothing in flight")
	assert.Empty(t, collect(t, reader, "dgw.pipeline.in_flight.bytes"))
}

// TestPipelineLongestQueueGauge: the events waiting for the busiest worker
// are exported (not the one it handles), and gone once Run returns.
func TestPipelineLongestQueueGauge(t *testing.T) {
	// Three events of key A, then one of key B (another worker: FNV-1a of
	// one byte keeps its parity).
	var in []gateway.Message
	for i, k := range []string{"A", "A", "A", "B"} {
		in = append(in, gateway.Message{Topic: "src", Offset: int64(i + 1), Key: []byte(k), Value: []byte("e" + strconv.Itoa(i))})
	}
	reader, sink, cancel, runErr := runGated(t, in)

	// A's first event and B's are in their workers' writes; B was read
	// after A's other two were queued, so those two wait.
	<-sink.entered
	<-sink.entered
	assert.Equal(t, []point{{attrs: map[string]string{}, value: 2}}, collect(t, reader, "dgw.pipeline.queue.longest"))

	sink.openAll()
	<-sink.entered // the two queued events' writes
	<-sink.entered
	cancel()
	require.NoError(t, <-runErr)
	assert.Len(t, sink.Topic("out.ok"), 4)
	assert.Empty(t, collect(t, reader, "dgw.pipeline.queue.longest"), "a stopped pipeline reports no queue")
}

// runGated runs a pipeline with metrics on the messages in (then a source
// that waits) and a gatedSink that says when each write starts; cancel
// stops it, runErr gives Run's result.
func runGated(t *testing.T, in []gateway.Message) (*sdkmetric.ManualReader, *gatedSink, context.CancelFunc, <-chan error) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	sink := newGatedSink()
	sink.entered = make(chan struct{})
	p, err := gateway.New(gatewaytest.NewMemSource(false, in...), decoder(), gatewaytest.DeciderFunc(allowAll), redactor(), sink,
		[]*gateway.Recipient{recipient("ok")}, gateway.WithMeterProvider(mp))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx) }()
	return reader, sink, cancel, runErr
}
