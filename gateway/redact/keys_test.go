package redact

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
)

const (
	rawSecret = "correct horse battery staple 0123456789" // 39 bytes
	hexSecret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
)

var b64Secret = base64.StdEncoding.EncodeToString([]byte("base64 secret of more than 32 bytes!!"))

func writeFile(t *testing.T, text string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "hash-keys")
	require.NoError(t, os.WriteFile(f, []byte(text), 0o600))
	return f
}

func TestLoadKeyring(t *testing.T) {
	f := writeFile(t, "# dgw hash keys\n\nfraudshield = "+rawSecret+"\npulse-research=hex:"+hexSecret+
		"\n  legal-partners =  base64:"+b64Secret+"  \n")
	k, err := LoadKeyring(f)
	require.NoError(t, err)
	for id, want := range map[string]string{
		"fraudshield":    rawSecret,
		"pulse-research": string(must(hex.DecodeString(hexSecret))),
		"legal-partners": string(must(base64.StdEncoding.DecodeString(b64Secret))),
	} {
		got, ok := k.key(id)
		require.True(t, ok, id)
		assert.Equal(t, want, string(got), id)
	}
	_, ok := k.key("kz-police")
	assert.False(t, ok)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestLoadKeyringRejects(t *testing.T) {
	short := "only-31-bytes-long-secret-value"
	tests := []struct {
		name, text, want string
	}{
		{"short secret", "fraudshield = " + short + "\n", "hash-keys:1: recipient fraudshield: secret too short: 31 bytes"},
		{"short decoded secret", "a = hex:00112233\n", "recipient a: secret too short: 4 bytes"},
		{"bad hex", "a = hex:zz" + strings.Repeat("0", 64) + "\n", "recipient a: secret is not valid hex"},
		{"bad base64", "a = base64:!!" + strings.Repeat("A", 64) + "\n", "recipient a: secret is not valid base64"},
		{"no equals sign", "# keys\nfraudshield " + rawSecret + "\n", "hash-keys:2: expected \"recipient-id = secret\""},
		{"no id", "= " + rawSecret + "\n", "hash-keys:1: expected"},
		{"twice", "a = " + rawSecret + "\na = " + rawSecret + "x\n", "hash-keys:2: recipient a has two keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadKeyring(writeFile(t, tt.text))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			for _, secret := range []string{short, rawSecret, "00112233", "zz000", "!!AAA", "horse"} {
				assert.NotContains(t, err.Error(), secret, "errors never quote a secret")
			}
		})
	}
	_, err := LoadKeyring(filepath.Join(t.TempDir(), "missing"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestKeyringFromEnv(t *testing.T) {
	assert.Equal(t, "DGW_HASH_KEY_KZ_BORDER_API", EnvName("kz-border-api"))
	assert.Equal(t, "DGW_HASH_KEY_PARTNER_V2_EU", EnvName("partner.v2-eu"))

	k, err := KeyringFromEnv([]string{
		"HOME=/root",
		"DGW_HASH_KEY_FRAUDSHIELD=" + rawSecret,
		"DGW_HASH_KEY_PULSE_RESEARCH=hex:" + hexSecret,
		"DGW_HASH_KEY_PARTNER_V2_EU=base64:" + b64Secret,
		"DGW_HASH_KEYS_FILE=/etc/keys", // not a key variable
	})
	require.NoError(t, err)
	got, ok := k.key("fraudshield")
	require.True(t, ok)
	assert.Equal(t, rawSecret, string(got))
	_, ok = k.key("pulse-research")
	assert.True(t, ok)
	_, ok = k.key("partner.v2-eu")
	assert.True(t, ok)
	_, ok = k.key("kz-police")
	assert.False(t, ok)

	empty, err := KeyringFromEnv([]string{"PATH=/bin"})
	require.NoError(t, err)
	_, ok = empty.key("fraudshield")
	assert.False(t, ok)

	_, err = KeyringFromEnv([]string{"DGW_HASH_KEY_FRAUDSHIELD=short"})
	require.ErrorContains(t, err, "DGW_HASH_KEY_FRAUDSHIELD: secret too short")
	assert.NotContains(t, err.Error(), "=short")
	_, err = KeyringFromEnv([]string{"DGW_HASH_KEY_=" + rawSecret})
	require.ErrorContains(t, err, "names no recipient")
	assert.NotContains(t, err.Error(), rawSecret)
}

func TestDevKeyring(t *testing.T) {
	a1, ok := DevKeyring("seed").key("a")
	require.True(t, ok)
	a2, _ := DevKeyring("seed").key("a")
	b, _ := DevKeyring("seed").key("b")
	other, _ := DevKeyring("other").key("a")
	assert.Len(t, a1, 32)
	assert.Equal(t, a1, a2, "deterministic")
	assert.NotEqual(t, a1, b, "per recipient")
	assert.NotEqual(t, a1, other, "per seed")
	_, ok = Keyring{}.key("a")
	assert.False(t, ok)
}

func TestKeyringNeverPrintsSecrets(t *testing.T) {
	fileKeys, err := LoadKeyring(writeFile(t, "fraudshield = "+rawSecret+"\nother = hex:"+hexSecret+"\n"))
	require.NoError(t, err)
	envKeys, err := KeyringFromEnv([]string{"DGW_HASH_KEY_FRAUDSHIELD=" + rawSecret})
	require.NoError(t, err)
	dev := DevKeyring("dev-seed-value")
	devKey, _ := dev.key("fraudshield")

	secrets := []string{rawSecret, hexSecret, "horse", string(devKey), hex.EncodeToString(devKey), "dev-seed-value",
		fmt.Sprintf("%v", []byte(rawSecret)[:8]), hex.EncodeToString([]byte(rawSecret))[:16]}
	type holder struct {
		keys Keyring // unexported: fmt cannot call its methods
		Keys Keyring
		ptr  *Keyring
	}
	for name, k := range map[string]Keyring{"file": fileKeys, "env": envKeys, "dev": dev} {
		t.Run(name, func(t *testing.T) {
			h := holder{keys: k, Keys: k, ptr: &k}
			out := fmt.Sprintf("%v %+v %#v %s %q %x %X %d", k, k, k, k, k, k, k, k) +
				fmt.Sprintf("%v %+v %#v", &k, &k, &k) +
				fmt.Sprintf("%v %+v %#v", h, h, h) + fmt.Sprint(k) + k.String() + k.GoString()
			for _, s := range secrets {
				assert.NotContains(t, out, s)
			}
			assert.Contains(t, out, "secrets redacted")
		})
	}
	assert.Contains(t, fileKeys.String(), "fraudshield", "names who has a key")
	assert.Contains(t, envKeys.String(), "DGW_HASH_KEY_FRAUDSHIELD")

	// The redactor built from keys does not print them either.
	set := loadSet(t)
	r := &gateway.Recipient{ID: "fraudshield", Scope: gateway.Scope{"booking": {"contact.email": ops(oHash)}}}
	x, err := New(set, []*gateway.Recipient{r}, fileKeys)
	require.NoError(t, err)
	out := fmt.Sprintf("%v %+v %#v", x, x, *x)
	for _, s := range secrets {
		assert.NotContains(t, out, s)
	}
}

// FuzzParseKeys feeds arbitrary keys files to the parser: it never panics,
// every key it accepts is long enough, and its errors never quote a secret.
func FuzzParseKeys(f *testing.F) {
	f.Add("fraudshield = " + rawSecret + "\n")
	f.Add("# c\n\na=hex:" + hexSecret + "\nb = base64:" + b64Secret)
	f.Add("a = short\n")
	f.Add("= x\nno separator\n")
	f.Add("a = hex:zz\n")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := parseKeys(strings.NewReader(text), "keys")
		if err == nil {
			for id, k := range m {
				if len(k) < MinKeyLen {
					t.Fatalf("accepted a %d-byte key for %s", len(k), id)
				}
			}
			return
		}
		lines := strings.Split(text, "\n")
		ids := ""
		for _, line := range lines {
			id, _, _ := strings.Cut(line, "=")
			ids += id + "\n"
		}
		for _, line := range lines {
			_, secret, ok := strings.Cut(line, "=")
			secret = strings.TrimSpace(secret)
			// A "secret" that is also an id, or part of the message, may appear.
			if !ok || len(secret) < 16 || strings.Contains(ids, secret) || strings.Contains(`hash keys keys: expected "recipient-id = secret"`, secret) {
				continue
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error quotes a secret: %v", err)
			}
		}
	})
}
