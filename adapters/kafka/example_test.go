package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgwproject/dgw/adapters/broker"
	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
)

// Example publishes records with a Sink and consumes them with a Source,
// acking each one so that Close commits the group's progress. It runs
// against the embedded broker; a real cluster takes the same code.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", Partitions: 1})
	if err != nil {
		fmt.Println("broker:", err)
		return
	}
	defer b.Close()
	if err := kafka.EnsureTopics(ctx, b.Addrs(), 1, 1, "pax.booking"); err != nil {
		fmt.Println("topics:", err)
		return
	}

	sink, err := kafka.NewSink(kafka.SinkConfig{Brokers: b.Addrs(), ClientID: "example"})
	if err != nil {
		fmt.Println("sink:", err)
		return
	}
	err = sink.Write(ctx,
		gateway.Disclosure{Topic: "pax.booking", Key: []byte("P1"), Value: []byte("first"),
			Headers: []gateway.Header{{Key: "dgw-event-id", Value: []byte("e-1")}}},
		gateway.Disclosure{Topic: "pax.booking", Key: []byte("P2"), Value: []byte("second")})
	if err != nil {
		fmt.Println("write:", err) // a gateway.DeliveryErrors tells which records failed
		return
	}
	if err := sink.Close(ctx); err != nil {
		fmt.Println("close sink:", err)
		return
	}

	src, err := kafka.NewSource(kafka.SourceConfig{Brokers: b.Addrs(), ClientID: "example", GroupID: "dgw",
		Topics: []string{"pax.booking"}}, nil)
	if err != nil {
		fmt.Println("source:", err)
		return
	}
	for range 2 {
		msg, ack, err := src.Read(ctx)
		if err != nil {
			fmt.Println("read:", err)
			return
		}
		fmt.Printf("%s/%d@%d key=%s value=%s event=%s\n", msg.Topic, msg.Partition, msg.Offset, msg.Key, msg.Value, msg.Header("dgw-event-id"))
		if err := ack(ctx); err != nil {
			fmt.Println("ack:", err)
			return
		}
	}
	if err := src.Close(ctx); err != nil {
		fmt.Println("close source:", err)
		return
	}
	_, _, err = src.Read(ctx)
	fmt.Println("after close:", err)
	// Output:
	// pax.booking/0@0 key=P1 value=first event=e-1
	// pax.booking/0@1 key=P2 value=second event=
	// after close: source closed
}

// ExampleSink_Write shows a partial failure: one record per entry of the
// gateway.DeliveryErrors, nil for the acknowledged ones.
func ExampleSink_Write() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Start(broker.Config{Topics: []string{"dgw.out.kz-border-api"}})
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
	defer func() {
		if err := sink.Close(ctx); err != nil {
			fmt.Println("close:", err)
		}
	}()

	err = sink.Write(ctx,
		gateway.Disclosure{Topic: "dgw.out.kz-border-api", Key: []byte("P1"), Value: []byte("redacted record")},
		gateway.Disclosure{Topic: "dgw.out.unknown", Key: []byte("P1"), Value: []byte("redacted record")})
	var de gateway.DeliveryErrors
	if errors.As(err, &de) {
		for i, e := range de {
			fmt.Printf("record %d delivered: %t\n", i, e == nil)
		}
	}
	// Output:
	// record 0 delivered: true
	// record 1 delivered: false
}
