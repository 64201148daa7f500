package audit_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/audit"
	"github.com/dgwproject/dgw/schemas"
)

func sealed(t *testing.T) (*audit.Codec, []byte) {
	t.Helper()
	c := codec(t)
	a := newAuditor(t, c, testKey("k"), "i1")
	ds, err := a.Records(&gateway.AuditInput{Worker: 0, Event: event("ev-1", "P1", 7), Results: results(), TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	return c, ds[0].Value
}

func TestEntryHashCoversEveryByteBeforeIt(t *testing.T) {
	c, raw := sealed(t)
	e, err := c.Decode(raw)
	require.NoError(t, err)
	want := sha256.Sum256(append([]byte("dgw.audit.v1\n"), raw[:len(raw)-64]...))
	assert.Equal(t, want, e.Hash, "hash = SHA-256(domain, header, body without hash and mac)")
	assert.Equal(t, e.Hash[:], raw[len(raw)-64:len(raw)-32], "the hash is stored where the hash field is")
	assert.True(t, audit.HashOK(raw, e))
	assert.Equal(t, []byte{0xC3, 0x01}, raw[:2], "single-object encoding")

	// Any byte change is seen: either the record no longer decodes the
	// way dgw writes it, or its hash no longer matches.
	for i := 0; i < len(raw)-64; i++ {
		mod := bytes.Clone(raw)
		mod[i] ^= 0x01
		me, err := c.Decode(mod)
		if err == nil {
			assert.False(t, audit.HashOK(mod, me), "byte %d changed unseen", i)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	c, raw := sealed(t)
	other := bytes.Clone(raw)
	other[5] ^= 0xff
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{name: "empty", raw: nil, want: audit.ErrNotEntry},
		{name: "no header", raw: raw[10:], want: audit.ErrNotEntry},
		{name: "other schema", raw: other, want: audit.ErrNotEntry},
		{name: "truncated", raw: raw[:len(raw)/2], want: audit.ErrNotEntry},
		{name: "trailing byte", raw: append(bytes.Clone(raw), 0), want: audit.ErrNotCanonical},
		{name: "too large", raw: make([]byte, audit.MaxEntrySize+1), want: audit.ErrNotEntry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Decode(tt.raw)
			require.Error(t, err)
			assert.True(t, errors.Is(err, tt.want), "got %v", err)
		})
	}
}

func TestNewCodecChecksTheSchema(t *testing.T) {
	good, err := fs.ReadFile(schemas.FS, "audit.avsc")
	require.NoError(t, err)
	tests := []struct {
		name, avsc, want string
	}{
		{name: "not avro", avsc: "{", want: "audit schema"},
		{name: "other record", avsc: `{"type":"record","name":"X","fields":[]}`, want: "expected record dgw.audit.AuditEntry"},
		{name: "mac not last", avsc: strings.Replace(string(good), `"name": "mac"`, `"name": "seal"`, 1), want: "last two fields must be hash and mac"},
		{name: "missing field", avsc: strings.Replace(string(good), `"name": "purpose"`, `"name": "aim"`, 1), want: "does not match audit.Entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := audit.NewCodec([]byte(tt.avsc))
			require.ErrorContains(t, err, tt.want)
		})
	}
}
