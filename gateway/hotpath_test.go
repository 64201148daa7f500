package gateway_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/gatewaytest"
)

func TestFingerprintHex(t *testing.T) {
	for _, fp := range []uint64{0, 1, 0xf, 0x10, 0xdeadbeef, 1 << 63, ^uint64(0), 0x0123456789abcdef} {
		require.Equal(t, fmt.Sprintf("%016x", fp), gateway.FingerprintHex(fp))
	}
}

// TestDeliveryHeaders: the headers of a delivery share one buffer, and
// each value is its own: writing past one cannot change the next.
func TestDeliveryHeaders(t *testing.T) {
	r := &gateway.Recipient{ID: "r1", Type: "t", Topic: "dgw.out.r1"}
	msg := gateway.Message{Topic: "pax.booking", Partition: 7, Offset: 123456, Key: []byte("k"), Value: []byte("v")}
	dec := gatewaytest.DecoderFunc(func(m gateway.Message) (*gateway.Event, error) {
		return &gateway.Event{Msg: m, ID: "ev-1", Schema: gateway.SchemaRef{EventType: "booking", Fingerprint: 0xabc}}, nil
	})
	decider := gatewaytest.DeciderFunc(func(context.Context, *gateway.DecisionContext, *gateway.Recipient) (gateway.Decision, error) {
		return gateway.Decision{Allow: true, Fields: map[string]gateway.Operator{"a": gateway.OpKeep}, Revision: "rev9"}, nil
	})
	red := gatewaytest.RedactorFunc(func(*gateway.Event, *gateway.Recipient, *gateway.Decision) ([]byte, uint64, error) {
		return []byte("out"), 0x1234, nil
	})
	r.Scope = gateway.Scope{"booking": {"a": {gateway.OpKeep}}}
	src := gatewaytest.NewMemSource(true, msg)
	sink := &gatewaytest.MemSink{}
	p, err := gateway.New(src, dec, decider, red, sink, []*gateway.Recipient{r})
	require.NoError(t, err)
	require.NoError(t, p.Run(t.Context()))
	out := sink.Topic("dgw.out.r1")
	require.Len(t, out, 1)
	want := map[string]string{
		gateway.HeaderEventID: "ev-1", gateway.HeaderEventType: "booking", gateway.HeaderSchema: "0000000000001234",
		gateway.HeaderSourceSchema: "0000000000000abc", gateway.HeaderPolicyRevision: "rev9", gateway.HeaderRecipient: "r1",
		gateway.HeaderSourceTopic: "pax.booking", gateway.HeaderSourcePartition: "7", gateway.HeaderSourceOffset: "123456",
	}
	got := map[string]string{}
	for _, h := range out[0].Headers {
		if _, ok := want[h.Key]; ok {
			got[h.Key] = string(h.Value)
			require.Equal(t, len(h.Value), cap(h.Value), "header %s is capped", h.Key)
		}
	}
	require.Equal(t, want, got)
	for _, h := range out[0].Headers {
		_ = append(h.Value, "XXXXXXXX"...)
	}
	for _, h := range out[0].Headers {
		if w, ok := want[h.Key]; ok {
			require.Equal(t, w, string(h.Value), "appending to one header leaves %s unchanged", h.Key)
		}
	}
}
