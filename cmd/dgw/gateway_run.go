package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
)

// gatewayOptions is what dev and run share to start the pipeline.
type gatewayOptions struct {
	brokers      []string
	clientID     string
	group        string
	topics       []string
	deadLetter   string
	held         string
	workers      int
	queue        int
	drainTimeout time.Duration
	parts        *parts
	log          *slog.Logger
	observers    []gateway.Observer
	extra        []gateway.Option
}

// runGateway runs the pipeline until ctx ends, then drains, commits what
// was delivered and closes the Kafka clients.
func runGateway(ctx context.Context, o gatewayOptions) error {
	src, err := kafka.NewSource(kafka.SourceConfig{
		Brokers: o.brokers, ClientID: o.clientID, GroupID: o.group, Topics: o.topics,
	}, o.log)
	if err != nil {
		return fmt.Errorf("kafka source: %w", err)
	}
	sink, err := kafka.NewSink(kafka.SinkConfig{Brokers: o.brokers, ClientID: o.clientID})
	if err != nil {
		src.Close(context.WithoutCancel(ctx))
		return fmt.Errorf("kafka sink: %w", err)
	}
	opts := []gateway.Option{
		gateway.WithWorkers(o.workers), gateway.WithQueue(o.queue),
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
	p, err := gateway.New(src, o.parts.decoder, o.parts.decider, o.parts.redactor, sink, o.parts.recipients, opts...)
	if err != nil {
		src.Close(context.WithoutCancel(ctx))
		sink.Close(context.WithoutCancel(ctx))
		return err
	}
	o.log.Info("gateway started", "group", o.group, "topics", len(o.topics), "recipients", len(o.parts.recipients),
		"policy_revision", o.parts.decider.Revision())
	runErr := p.Run(ctx)
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
