package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dgwproject/dgw/adapters/broker"
)

type brokerOptions struct {
	addr       string
	dataDir    string
	sync       bool
	partitions int
	topics     []string
	logLevel   string
}

func (a *app) brokerCmd() *cobra.Command {
	var o brokerOptions
	cmd := &cobra.Command{
		Use:   "broker [--addr 127.0.0.1:9092] [--data-dir DIR] [--topics a,b]",
		Short: "Run the embedded Kafka-protocol broker on its own (tests, fault runs)",
		Long: `broker runs the embedded Kafka-protocol broker of dev as a process of its own,
until SIGTERM or SIGINT. It prints "dgw broker: listening on ADDR" once it
accepts connections. With --data-dir it keeps topics, records, committed
offsets and producer state in DIR, writing every record there before
acknowledging it, and a broker started again on DIR carries on where the last
one stopped or was killed (--sync also fsyncs each write, so that a machine
crash loses nothing either; much slower). --topics are created at start (those DIR already has are
kept as they are). It is one node for development and fault testing, not a
production Kafka.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.broker(cmd.Context(), o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:9092", "address to listen on and advertise (port 0: any free port)")
	f.StringVar(&o.dataDir, "data-dir", "", "directory that keeps the broker's state across restarts (empty: memory only)")
	f.BoolVar(&o.sync, "sync", false, "with --data-dir, fsync every write before acknowledging it")
	f.IntVar(&o.partitions, "partitions", 3, "partitions of the topics created")
	f.StringSliceVar(&o.topics, "topics", nil, "topics to create at start")
	f.StringVar(&o.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	return cmd
}

func (a *app) broker(ctx context.Context, o brokerOptions) error {
	log, err := newLogger("text", o.logLevel, a.stderr)
	if err != nil {
		return failWith(2, err)
	}
	b, err := broker.Start(broker.Config{Addr: o.addr, Partitions: o.partitions, Topics: o.topics, DataDir: o.dataDir, Sync: o.sync, Logger: log})
	if err != nil {
		return failWith(2, err)
	}
	fmt.Fprintf(a.stdout, "dgw broker: listening on %s\n", b.Addrs()[0])
	<-ctx.Done()
	b.Close() // saves the state to the data directory
	fmt.Fprintln(a.stderr, "dgw broker: stopped")
	return nil
}
