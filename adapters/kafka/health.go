package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/dgwproject/dgw/gateway"
)

var _ gateway.LagReporter = (*Source)(nil)

// Lag reports, for every partition of this member's latest generation, how many
// records lie at or after the first one not acked yet: the high-water mark
// the broker sent with the last fetch of that partition minus that offset.
// A partition whose every record was handed out and acked has lag
// high-water mark − (last offset + 1), 0 once caught up.
//
// The high-water mark is as fresh as the last fetch that returned records:
// while the pipeline is saturated and fetches nothing new, newer records on
// the broker are not counted yet (the stall watchdog refreshes it for a
// partition whose fetch waits). Lag is safe for concurrent use.
func (s *Source) Lag() []gateway.PartitionLag {
	s.mu.Lock()
	out := make([]gateway.PartitionLag, 0, len(s.parts))
	for k, p := range s.parts {
		next := p.last + 1
		if len(p.inflight) > 0 {
			next = p.inflight[0].offset
		}
		out = append(out, gateway.PartitionLag{Topic: k.topic, Partition: k.partition, Lag: max(p.hwm-next, 0)})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b gateway.PartitionLag) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}

// Ping checks that some bootstrap broker accepts a connection with the
// Source's TLS and SASL settings and answers a metadata request. It tries
// the brokers in order until one answers, within ctx. The error names the
// broker addresses and the causes; it is meant for readiness probes.
func (s *Source) Ping(ctx context.Context) error {
	var errs []error
	for _, addr := range s.cfg.Brokers {
		err := ping(ctx, s.dialer, addr)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("no broker answered: %w", errors.Join(errs...))
}

func ping(ctx context.Context, d *kafkago.Dialer, addr string) error {
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	_, err = conn.Brokers()
	return err
}
