package audit_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/audit"
)

// FuzzDecode feeds arbitrary bytes to the decoder `dgw audit verify` uses
// on records read from the audit topic. Invariants: it never panics; an
// error wraps ErrNotEntry or ErrNotCanonical; a record it accepts is
// exactly the canonical encoding of what it returned, so no two byte
// strings decode to the same entry; and the verifier, fed the same bytes,
// never panics and never calls them intact unless the hash matches.
func FuzzDecode(f *testing.F) {
	c := codec(f)
	a := newAuditor(f, c, testKey("k"), "fuzz")
	ds, err := a.Records(&gateway.AuditInput{Worker: 0, Event: event("ev-1", "P1", 1), Results: results()})
	if err != nil {
		f.Fatal(err)
	}
	good := ds[0].Value
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(append(bytes.Clone(good), 0))
	f.Add([]byte{0xC3, 0x01})
	f.Add([]byte{})
	huge := bytes.Clone(good[:10])
	huge = append(huge, 0x02, 0xfe, 0xff, 0xff, 0xff, 0x0f) // a string claiming 2 GiB
	f.Add(huge)
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := c.Decode(raw)
		if err != nil {
			if !errors.Is(err, audit.ErrNotEntry) && !errors.Is(err, audit.ErrNotCanonical) {
				t.Fatalf("untyped error: %v", err)
			}
			if errors.Is(err, audit.ErrNotCanonical) && e == nil {
				t.Fatal("a non-canonical record must still be returned")
			}
		}
		v, verr := audit.NewVerifier(c, testTopic, audit.WithKey(testKey("k")))
		if verr != nil {
			t.Fatal(verr)
		}
		v.Partition(0, 0)
		v.Add(audit.Record{Topic: testTopic, Key: []byte("dgw-fuzz-w0"), Value: raw})
		r := v.Finish()
		if r.OK() && (err != nil || !audit.HashOK(raw, e)) {
			t.Fatal("the verifier accepted a record that is not an intact entry")
		}
	})
}
