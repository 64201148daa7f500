package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
)

// gatewayOptions is what dev and run share to start the pipeline.
type gatewayOptions struct {
	brokers    []string
	clientID   string
	group      string
	topics     []string
	deadLetter string
	held       string
	workers    int
	queue      int
	// maxInFlightBytes bounds the record bytes in flight (0:
	// gateway.DefaultMaxInFlightBytes).
	maxInFlightBytes int64
	drainTimeout     time.Duration
	parts            *parts
	log              *slog.Logger
	observers        []gateway.Observer
	extra            []gateway.Option
	// security applies to every Kafka connection: TLS and SASL.
	security kafka.Security
	// sessionTimeout, when set, is the consumer group session timeout;
	// members heartbeat every third of it.
	sessionTimeout time.Duration
	// stallTimeout, when set, is how long a partition with records to read
	// may make no fetch progress before the source restarts its fetch.
	stallTimeout time.Duration
	// wrapSource, when set, wraps the Kafka source (redrive rewrites held
	// records and stops at the end offsets it found at start).
	wrapSource func(gateway.Source) gateway.Source
	// sink, when set, replaces the Kafka sink (redrive --dry-run).
	sink gateway.Sink
	// ready, when set, gets the "broker" and "consumer" readiness checks.
	ready *readiness
	// acct, when set, makes the run accountable: subject state read from
	// the subject topic before serving and kept live, and every decision
	// written to the audit trail before any delivery (accountability.go).
	acct *accountability
}

// runGateway runs the pipeline until ctx ends, then drains, commits what
// was delivered and closes the Kafka clients.
func runGateway(ctx context.Context, o gatewayOptions) error {
	var dec gateway.Decoder = o.parts.decoder
	var acctOpts []gateway.Option
	parent := ctx
	ctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	if o.acct != nil {
		run, err := o.acct.start(ctx, &o, fail)
		if errors.Is(err, errStopped) {
			return nil
		}
		if err != nil {
			return err
		}
		defer run.stop()
		dec, acctOpts = run.decoder, run.options
	}
	src, err := kafka.NewSource(kafka.SourceConfig{
		Brokers: o.brokers, ClientID: o.clientID, GroupID: o.group, Topics: o.topics, Security: o.security,
		SessionTimeout: o.sessionTimeout, HeartbeatInterval: o.sessionTimeout / 3, StallTimeout: o.stallTimeout,
	}, o.log)
	if err != nil {
		return fmt.Errorf("kafka source: %w", err)
	}
	sink := o.sink
	if sink == nil {
		ks, err := kafka.NewSink(kafka.SinkConfig{Brokers: o.brokers, ClientID: o.clientID, Security: o.security})
		if err != nil {
			src.Close(context.WithoutCancel(ctx))
			return fmt.Errorf("kafka sink: %w", err)
		}
		sink = ks
	}
	var in gateway.Source = src
	if o.wrapSource != nil {
		in = o.wrapSource(src)
	}
	if o.maxInFlightBytes == 0 {
		o.maxInFlightBytes = gateway.DefaultMaxInFlightBytes
	}
	opts := []gateway.Option{
		gateway.WithWorkers(o.workers), gateway.WithQueue(o.queue), gateway.WithMaxInFlightBytes(o.maxInFlightBytes),
		gateway.WithDeadLetterTopic(o.deadLetter), gateway.WithHeldTopic(o.held),
		gateway.WithLogger(o.log),
	}
	if o.drainTimeout > 0 {
		opts = append(opts, gateway.WithDrainTimeout(o.drainTimeout))
	}
	for _, ob := range o.observers {
		opts = append(opts, gateway.WithObserver(ob))
	}
	opts = append(opts, o.extra...)
	opts = append(opts, acctOpts...)
	p, err := gateway.New(in, dec, o.parts.decider, o.parts.redactor, sink, o.parts.recipients, opts...)
	if err != nil {
		src.Close(context.WithoutCancel(ctx))
		sink.Close(context.WithoutCancel(ctx))
		return err
	}
	o.log.Info("gateway started", "group", o.group, "topics", len(o.topics), "recipients", len(o.parts.recipients),
		"policy_revision", o.parts.decider.Revision(), "security", o.security,
		"workers", o.workers, "queue", o.queue, "max_in_flight_bytes", o.maxInFlightBytes)
	stopped := o.ready.watchGateway(src)
	runErr := p.Run(ctx)
	stopped()
	if runErr == nil && parent.Err() == nil && ctx.Err() != nil {
		runErr = context.Cause(ctx) // stopped by a failure, not by its owner
	}
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := src.Close(closeCtx); err != nil && runErr == nil {
		runErr = fmt.Errorf("close source (final commit): %w", err)
	}
	if err := sink.Close(closeCtx); err != nil && runErr == nil {
		runErr = fmt.Errorf("close sink: %w", err)
	}
	o.log.Info("gateway stopped")
	return runErr
}
