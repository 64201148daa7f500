package audit_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway/audit"
)

const secret = "correct-horse-battery-staple-0123456789"

func TestKeySources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		f := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(f, []byte(text), 0o600))
		return f
	}
	tests := []struct {
		name    string
		load    func() (audit.Key, error)
		wantErr string
	}{
		{name: "raw file with newline", load: func() (audit.Key, error) { return audit.LoadKey(write("raw", secret+"\n")) }},
		{name: "base64 file", load: func() (audit.Key, error) {
			return audit.LoadKey(write("b64", "base64:"+base64.StdEncoding.EncodeToString([]byte(secret))))
		}},
		{name: "hex env", load: func() (audit.Key, error) {
			return audit.KeyFromEnv([]string{"PATH=/bin", "DGW_AUDIT_KEY=hex:" + hex.EncodeToString([]byte(secret))})
		}},
		{name: "short secret", wantErr: "secret too short: 5 bytes",
			load: func() (audit.Key, error) { return audit.LoadKey(write("short", "short")) }},
		{name: "bad base64", wantErr: "not valid base64",
			load: func() (audit.Key, error) { return audit.LoadKey(write("bad", "base64:"+secret+"!!")) }},
		{name: "missing file", wantErr: "no such file",
			load: func() (audit.Key, error) { return audit.LoadKey(filepath.Join(dir, "nope")) }},
		{name: "no variable", wantErr: audit.ErrNoKey.Error(),
			load: func() (audit.Key, error) { return audit.KeyFromEnv([]string{"DGW_AUDIT_KEYS=x"}) }},
	}
	want := hmac.New(sha256.New, []byte(secret))
	want.Write([]byte("P123"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := tt.load()
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				assert.NotContains(t, err.Error(), secret[:10], "errors never quote the secret")
				assert.False(t, k.Valid())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, hex.EncodeToString(want.Sum(nil)), k.Pseudonym("P123"), "the pseudonym is HMAC-SHA256(key, passenger id)")
			assert.Len(t, k.ID(), 16)
		})
	}
}

func TestKeyNeverPrintsItsSecret(t *testing.T) {
	k, err := audit.NewKey([]byte(secret), "test")
	require.NoError(t, err)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		out := fmt.Sprintf(verb, k)
		assert.NotContains(t, out, secret[:10], verb)
		assert.NotContains(t, strings.ToLower(out), hex.EncodeToString([]byte(secret))[:20], verb)
		assert.Contains(t, out, k.ID(), verb)
	}
	assert.NotContains(t, fmt.Sprintf("%+v", struct{ K audit.Key }{k}), secret[:10])
}

func TestKeysDiffer(t *testing.T) {
	a, b := audit.DevKey("a"), audit.DevKey("b")
	assert.Equal(t, audit.DevKey("a").Pseudonym("P1"), a.Pseudonym("P1"), "dev keys are deterministic")
	assert.NotEqual(t, a.Pseudonym("P1"), b.Pseudonym("P1"))
	assert.NotEqual(t, a.Pseudonym("P1"), a.Pseudonym("P2"))
	assert.NotEqual(t, a.ID(), b.ID())
	var zero audit.Key
	assert.False(t, zero.Valid())
	assert.Empty(t, zero.Pseudonym("P1"))
}
