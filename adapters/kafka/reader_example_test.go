package kafka_test

import (
	"context"
	"fmt"
	"time"

	"github.com/dgwproject/dgw/adapters/broker"
	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
)

// ExampleScan reads what a topic holds, as `dgw audit verify` reads the
// audit topic; Follow reads the same and keeps reading, as the gateway
// follows the compacted subject topic created with EnsureTopicsWithConfig.
func ExampleScan() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", Partitions: 1})
	if err != nil {
		fmt.Println("broker:", err)
		return
	}
	defer b.Close()
	admin := kafka.AdminConfig{Brokers: b.Addrs()}
	if err := admin.EnsureTopicsWithConfig(ctx, 1, 1, map[string]string{"cleanup.policy": "compact"}, "subject.requests"); err != nil {
		fmt.Println("topics:", err)
		return
	}
	sink, err := kafka.NewSink(kafka.SinkConfig{Brokers: b.Addrs()})
	if err != nil {
		fmt.Println("sink:", err)
		return
	}
	defer sink.Close(ctx)
	if err := sink.Write(ctx, gateway.Disclosure{Topic: "subject.requests", Key: []byte("k1"), Value: []byte("v1")},
		gateway.Disclosure{Topic: "subject.requests", Key: []byte("k2"), Value: []byte("v2")}); err != nil {
		fmt.Println("write:", err)
		return
	}
	err = kafka.Scan(ctx, kafka.ReaderConfig{Brokers: b.Addrs(), Topic: "subject.requests"},
		func(s kafka.PartitionSpan) {
			fmt.Printf("partition %d holds offsets %d..%d\n", s.Partition, s.First, s.End)
		},
		func(m gateway.Message) error {
			fmt.Println(m.Offset, string(m.Key), string(m.Value))
			return nil
		})
	if err != nil {
		fmt.Println("scan:", err)
	}
	cfg, err := admin.TopicConfig(ctx, "subject.requests")
	if err != nil {
		fmt.Println("config:", err)
		return
	}
	fmt.Println("cleanup.policy =", cfg["cleanup.policy"])

	// Follow reads the same records, says when it has caught up, and
	// keeps reading until its context ends.
	fctx, stop := context.WithCancel(ctx)
	n := 0
	err = kafka.Follow(fctx, kafka.ReaderConfig{Brokers: b.Addrs(), Topic: "subject.requests"},
		func(gateway.Message) error { n++; return nil },
		func() { fmt.Println("caught up after", n, "records"); stop() })
	fmt.Println("follow:", err)
	// Output:
	// partition 0 holds offsets 0..2
	// 0 k1 v1
	// 1 k2 v2
	// cleanup.policy = compact
	// caught up after 2 records
	// follow: <nil>
}
