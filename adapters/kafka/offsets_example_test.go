package kafka_test

import (
	"context"
	"fmt"
	"time"

	"github.com/dgwproject/dgw/adapters/broker"
	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
)

// ExampleAdminConfig_GroupOffsets shows how much of a topic a consumer
// group has still to read, as `dgw redrive` does before replaying the
// held topic.
func ExampleAdminConfig_GroupOffsets() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", Partitions: 1, Topics: []string{"dgw.held"}})
	if err != nil {
		fmt.Println("broker:", err)
		return
	}
	defer b.Close()
	sink, err := kafka.NewSink(kafka.SinkConfig{Brokers: b.Addrs()})
	if err != nil {
		fmt.Println("sink:", err)
		return
	}
	defer sink.Close(ctx)
	if err := sink.Write(ctx, gateway.Disclosure{Topic: "dgw.held", Value: []byte("a")},
		gateway.Disclosure{Topic: "dgw.held", Value: []byte("b")}); err != nil {
		fmt.Println("write:", err)
		return
	}

	offsets, err := kafka.AdminConfig{Brokers: b.Addrs()}.GroupOffsets(ctx, "dgw-redrive", "dgw.held")
	if err != nil {
		fmt.Println("offsets:", err)
		return
	}
	for _, o := range offsets {
		fmt.Printf("%s/%d: committed %d, end %d, remaining %d\n", o.Topic, o.Partition, o.Committed, o.End, o.Remaining())
	}
	// Output:
	// dgw.held/0: committed -1, end 2, remaining 2
}
