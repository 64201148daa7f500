package broker_test

import (
	"context"
	"fmt"
	"net"

	"github.com/dgwproject/dgw/adapters/broker"
)

// ExampleStart runs an embedded broker on a free loopback port with two
// topics; any Kafka client can use b.Addrs() as bootstrap servers.
func ExampleStart() {
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", Partitions: 3, Topics: []string{"pax.booking", "dgw.held"}})
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer b.Close()
	host, _, err := net.SplitHostPort(b.Addrs()[0])
	if err != nil {
		fmt.Println("addr:", err)
		return
	}
	fmt.Println("listening on", host)

	_, err = broker.Start(broker.Config{Addr: "0.0.0.0:9092"})
	fmt.Println(err)
	// Output:
	// listening on 127.0.0.1
	// broker config: addr "0.0.0.0:9092": the broker advertises its listen address to clients, so it must be dialable; use 127.0.0.1 or a concrete interface address instead of 0.0.0.0
}

// ExampleBroker_CreateTopics adds topics to a running broker; existing
// topics are left alone.
func ExampleBroker_CreateTopics() {
	b, err := broker.Start(broker.Config{Topics: []string{"pax.booking"}})
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer b.Close()
	ctx := context.Background()
	if err := b.CreateTopics(ctx, 3, "dgw.out.kz-border-api", "pax.booking"); err != nil {
		fmt.Println("create:", err)
		return
	}
	fmt.Println(b.CreateTopics(ctx, 3, "not a topic"))
	// Output:
	// create topics: topic "not a topic": only ASCII letters, digits, '.', '_' and '-' are allowed
}
