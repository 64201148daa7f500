package gateway

import (
	"context"
	"fmt"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
)

// PartitionLag is the backlog of one source partition: how many records at
// or after the first one this process has not finished yet.
type PartitionLag struct {
	Topic     string
	Partition int
	Lag       int64
}

// LagReporter is an optional interface of a Source. When the pipeline's
// source implements it, the pipeline exports Lag as the gauge
// dgw.consumer.lag{topic, partition} while Run runs. Lag is called from the
// metrics collector's goroutine and must be safe for concurrent use.
type LagReporter interface {
	Lag() []PartitionLag
}

// StallReporter is an optional interface of a Source: how many times it
// found an assigned partition with records to read and no fetch progress
// (and restarted its fetch). When the pipeline's source implements it, the
// pipeline exports Stalls as the counter dgw.consumer.stalls while Run
// runs: a rising count is a broker or network fault worth an alert even
// though the source recovers on its own. Stalls must be safe for
// concurrent use.
type StallReporter interface {
	Stalls() int64
}

// RevisionReporter is an optional interface of a Decider: the revision of
// the policy it decides with now. When the pipeline's decider implements
// it, the pipeline exports the gauge dgw.policy.revision{revision} = 1 for
// the current revision only while Run runs, so a reload replaces the series.
type RevisionReporter interface {
	Revision() string
}

// EvaluationReporter is an optional interface of a Decider that evaluates
// the decisions its cache does not hold with a fast evaluator checked
// against a reference one (gateway/policy: the policy's plan against OPA's
// interpreter). When the pipeline's decider implements it, the pipeline
// exports while Run runs the gauge dgw.policy.evaluator{evaluator} = 1 for
// the evaluator in use, and the counters dgw.policy.evaluation.checks
// (evaluations also made by the reference), dgw.policy.evaluation.differences
// (checks that found another decision: the fast evaluator is turned off;
// alert on any) and dgw.policy.evaluation.fallbacks (evaluations the fast
// evaluator failed and the reference answered). Evaluation must be safe for
// concurrent use, its counts never decrease.
type EvaluationReporter interface {
	Evaluation() EvaluationStats
}

// EvaluationStats is what an EvaluationReporter reports.
type EvaluationStats struct {
	Evaluator                      string
	Checks, Differences, Fallbacks int64
}

// inFlight is the work Run holds: events read and not finished, the
// record bytes handed to workers, and the workers' queues.
type inFlight struct {
	events atomic.Int64
	budget *byteBudget
	queues []*workQueue
}

// longestQueue is the most events waiting for one worker.
func (w *inFlight) longestQueue() int64 {
	var n int
	for _, q := range w.queues {
		n = max(n, q.waiting())
	}
	return int64(n)
}

// registerGauges registers the pipeline's observable gauges; the returned
// func unregisters them. Without a meter provider nothing is registered.
func (p *Pipeline) registerGauges(work *inFlight) (unregister func(), err error) {
	lagger, hasLag := p.src.(LagReporter)
	reviser, hasRevision := p.decider.(RevisionReporter)
	staller, hasStalls := p.src.(StallReporter)
	evaluation, hasEvaluation := p.decider.(EvaluationReporter)
	if p.cfg.meterProvider == nil {
		return func() {}, nil
	}
	m := p.cfg.meterProvider.Meter(instrumentationName)
	var observables []metric.Observable
	var lag, revision metric.Int64ObservableGauge
	var stalls metric.Int64ObservableCounter
	// The work in flight against its bounds (workers × (queue+1) events,
	// max in-flight bytes): at the bound while the lag grows, the gateway
	// is the bottleneck; well under it, the source or the brokers are.
	events, err := m.Int64ObservableGauge("dgw.pipeline.in_flight",
		metric.WithDescription("Events read from the source and not finished yet (at most workers × (queue+1))."))
	if err != nil {
		return nil, fmt.Errorf("in-flight events gauge: %w", err)
	}
	bytes, err := m.Int64ObservableGauge("dgw.pipeline.in_flight.bytes",
		metric.WithDescription("Record bytes (key and value) of the events handed to workers and not finished yet (at most max_in_flight_bytes)."))
	if err != nil {
		return nil, fmt.Errorf("in-flight bytes gauge: %w", err)
	}
	// A worker's queue may take any part of the window: one that holds
	// most of it is one key's burst, or a worker held up by its writes,
	// that the other workers do not wait for until the window is full.
	longest, err := m.Int64ObservableGauge("dgw.pipeline.queue.longest",
		metric.WithDescription("Events waiting for the busiest worker (its own queue; all queues share the workers × (queue+1) window)."))
	if err != nil {
		return nil, fmt.Errorf("longest queue gauge: %w", err)
	}
	observables = append(observables, events, bytes, longest)
	if hasLag {
		if lag, err = m.Int64ObservableGauge("dgw.consumer.lag",
			metric.WithDescription("Records of a source partition at or after the first one this process has not finished.")); err != nil {
			return nil, fmt.Errorf("consumer lag gauge: %w", err)
		}
		observables = append(observables, lag)
	}
	if hasRevision {
		if revision, err = m.Int64ObservableGauge("dgw.policy.revision",
			metric.WithDescription("The active policy revision, as the revision label; the value is always 1.")); err != nil {
			return nil, fmt.Errorf("policy revision gauge: %w", err)
		}
		observables = append(observables, revision)
	}
	if hasStalls {
		if stalls, err = m.Int64ObservableCounter("dgw.consumer.stalls",
			metric.WithDescription("Times an assigned source partition had records to read but no fetch progress, and its fetch was restarted.")); err != nil {
			return nil, fmt.Errorf("consumer stalls counter: %w", err)
		}
		observables = append(observables, stalls)
	}
	var evaluator metric.Int64ObservableGauge
	var evalCounts [3]metric.Int64ObservableCounter
	if hasEvaluation {
		if evaluator, err = m.Int64ObservableGauge("dgw.policy.evaluator",
			metric.WithDescription("How decisions the cache does not hold are evaluated, as the evaluator label (plan or interpreter); the value is always 1.")); err != nil {
			return nil, fmt.Errorf("policy evaluator gauge: %w", err)
		}
		observables = append(observables, evaluator)
		for i, c := range [...]struct{ name, desc string }{
			{"dgw.policy.evaluation.checks", "Decision evaluations of the policy's plan also made by OPA's interpreter."},
			{"dgw.policy.evaluation.differences", "Checked evaluations the interpreter decided otherwise (the plan is then turned off; alert on any)."},
			{"dgw.policy.evaluation.fallbacks", "Evaluations the policy's plan failed and OPA's interpreter answered."},
		} {
			if evalCounts[i], err = m.Int64ObservableCounter(c.name, metric.WithDescription(c.desc)); err != nil {
				return nil, fmt.Errorf("%s counter: %w", c.name, err)
			}
			observables = append(observables, evalCounts[i])
		}
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(events, work.events.Load())
		o.ObserveInt64(bytes, work.budget.used())
		o.ObserveInt64(longest, work.longestQueue())
		if hasLag {
			for _, l := range lagger.Lag() {
				o.ObserveInt64(lag, l.Lag, metric.WithAttributes(
					attribute.String("topic", l.Topic), attribute.Int("partition", l.Partition)))
			}
		}
		if hasStalls {
			o.ObserveInt64(stalls, staller.Stalls())
		}
		if hasRevision {
			if rev := reviser.Revision(); rev != "" {
				o.ObserveInt64(revision, 1, metric.WithAttributes(attribute.String("revision", rev)))
			}
		}
		if hasEvaluation {
			e := evaluation.Evaluation()
			if e.Evaluator != "" {
				o.ObserveInt64(evaluator, 1, metric.WithAttributes(attribute.String("evaluator", e.Evaluator)))
			}
			o.ObserveInt64(evalCounts[0], e.Checks)
			o.ObserveInt64(evalCounts[1], e.Differences)
			o.ObserveInt64(evalCounts[2], e.Fallbacks)
		}
		return nil
	}, observables...)
	if err != nil {
		return nil, fmt.Errorf("register gauges: %w", err)
	}
	return func() {
		if err := reg.Unregister(); err != nil {
			p.log.Warn("unregister pipeline gauges", "error", err.Error())
		}
	}, nil
}

// Policy reload results, the result label of dgw.policy.reloads.
const (
	reloadSuccess = "success"
	reloadFailure = "failure"
)

// PolicyReloads counts policy reload attempts as the counter
// dgw.policy.reloads{result="success"|"failure"}. Whatever reloads the
// policy (a file watcher, a signal handler, the policy package through a
// hook) calls Record once per attempt. Loading the policy at start is not a
// reload. A nil *PolicyReloads records nothing.
type PolicyReloads struct {
	counter metric.Int64Counter
}

// NewPolicyReloads registers the counter with mp (nil: no metrics). Both
// series start at zero, so an alert on failures has a series to watch
// before the first reload.
func NewPolicyReloads(ctx context.Context, mp metric.MeterProvider) (*PolicyReloads, error) {
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	c, err := mp.Meter(instrumentationName).Int64Counter("dgw.policy.reloads",
		metric.WithDescription("Policy reload attempts, per result."))
	if err != nil {
		return nil, fmt.Errorf("policy reloads counter: %w", err)
	}
	for _, result := range []string{reloadSuccess, reloadFailure} {
		c.Add(ctx, 0, metric.WithAttributes(attribute.String("result", result)))
	}
	return &PolicyReloads{counter: c}, nil
}

// Record counts one reload attempt: a success when err is nil.
func (r *PolicyReloads) Record(ctx context.Context, err error) {
	if r == nil {
		return
	}
	result := reloadSuccess
	if err != nil {
		result = reloadFailure
	}
	r.counter.Add(ctx, 1, metric.WithAttributes(attribute.String("result", result)))
}
