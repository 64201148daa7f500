package kafka_test

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dgwproject/dgw/gateway"
)

// BenchmarkSinkWrite: concurrent writers of 1.5 KB records with three
// headers, each write for one of 16 topics of 3 partitions, as the
// gateway's workers write deliveries. The embedded broker runs in the
// same process, so the figures include its work; compare builds with it.
// cpu-ns/op is the process's CPU time per write: on a shared machine,
// waiting for a CPU inflates ns/op, not cpu-ns/op.
func BenchmarkSinkWrite(b *testing.B) {
	topics := make([]string, 16)
	for i := range topics {
		topics[i] = fmt.Sprintf("out.%d", i)
	}
	brokers := startBroker(b, 3, topics...)
	s := newSink(b, brokers)
	value := bytes.Repeat([]byte("v"), 1500)
	headers := []gateway.Header{{Key: "dgw-event-id", Value: []byte("e-0123456789")},
		{Key: "dgw-recipient", Value: []byte("recipient-x")}, {Key: "dgw-policy", Value: []byte("b3132902f699")}}
	var n atomic.Int64
	b.SetParallelism(16) // 32 writers on 2 CPUs, as the bench's workers
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			d := gateway.Disclosure{Topic: topics[i%16], Key: fmt.Appendf(nil, "pax-%d", i%1000), Value: value, Headers: headers}
			if err := s.Write(b.Context(), d); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
