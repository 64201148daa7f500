package gateway_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dgwproject/dgw/gateway"
)

// ExampleCheckHeaders shows which source headers dgw accepts: any value,
// but keys that are well-formed and not dgw's own.
func ExampleCheckHeaders() {
	for _, hs := range [][]gateway.Header{
		{{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")}, {Key: "x-app", Value: []byte{0xff}}},
		{{Key: "dgw-recipient", Value: []byte("kz-police")}},
		{{Key: "x-\xff", Value: nil}},
	} {
		err := gateway.CheckHeaders(hs)
		reason, _ := gateway.ReasonOf(err)
		fmt.Printf("%q %v\n", reason, err)
	}
	// Output:
	// "" <nil>
	// "bad-header" bad-header: header 0: key starts with dgw-, which is reserved for the headers dgw writes
	// "bad-header" bad-header: header 0: key is not valid UTF-8
}

var fixedMessage = regexp.MustCompile(`^bad-header: header [01]: (empty key|key is not valid UTF-8|key contains control characters|key starts with dgw-, which is reserved for the headers dgw writes)$`)

// FuzzCheckHeaders: CheckHeaders never panics, refuses exactly the headers
// whose key is empty, not UTF-8, has control characters or starts with
// "dgw-" (any case), and never quotes a header's key or value.
func FuzzCheckHeaders(f *testing.F) {
	f.Add("traceparent", []byte("00-abc"), "x-app", []byte{0, 1})
	f.Add("dgw-event-id", []byte("e1"), "k", []byte("v"))
	f.Add("", []byte("v"), "DGW-Recipient", []byte("kz"))
	f.Add("k\xff", []byte("\xff"), "a\x00b", []byte(nil))
	f.Fuzz(func(t *testing.T, k1 string, v1 []byte, k2 string, v2 []byte) {
		hs := []gateway.Header{{Key: k1, Value: v1}, {Key: k2, Value: v2}}
		err := gateway.CheckHeaders(hs)
		bad := func(k string) bool {
			return k == "" || !utf8.ValidString(k) || strings.ContainsFunc(k, func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }) ||
				(len(k) >= 4 && strings.EqualFold(k[:4], "dgw-"))
		}
		if want := bad(k1) || bad(k2); want != (err != nil) {
			t.Fatalf("CheckHeaders(%q, %q) = %v, want error %v", k1, k2, err, want)
		}
		if err == nil {
			return
		}
		if r, ok := gateway.ReasonOf(err); !ok || r != gateway.ReasonBadHeader || !r.DeadLetter() {
			t.Fatalf("reason %q, want a dead-letter %s", r, gateway.ReasonBadHeader)
		}
		// The message is one of a few fixed texts: it quotes nothing.
		if !fixedMessage.MatchString(err.Error()) {
			t.Fatalf("unexpected message %q", err.Error())
		}
	})
}
