package policy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/policies"
)

// shippedBundle is the shipped policy as `opa build policies/` lays it
// out: every module, and one data.json with the merged data tree.
func shippedBundle(tb testing.TB) []byte {
	tb.Helper()
	src, problems := read(policies.FS)
	require.Empty(tb, problems)
	b := bundle.Bundle{Data: src.docs}
	for _, name := range sortedKeys(src.files) {
		if path := "/" + name; len(name) > 5 && name[len(name)-5:] == ".rego" {
			b.Modules = append(b.Modules, bundle.ModuleFile{URL: path, Path: path, Raw: src.files[name]})
		}
	}
	var buf bytes.Buffer
	require.NoError(tb, bundle.NewWriter(&buf).Write(b))
	return buf.Bytes()
}

// TestReadBundle: a bundle of the shipped policy reads back as a policy
// directory with the same modules and the same data, the registry where
// the registry checks expect it.
func TestReadBundle(t *testing.T) {
	files, err := readBundle(shippedBundle(t), nil)
	require.NoError(t, err)
	want, problems := read(policies.FS)
	require.Empty(t, problems)
	got, problems := read(files)
	require.Empty(t, problems, "a bundle of the shipped policy loads")
	for name, b := range want.files {
		if len(name) > 5 && name[len(name)-5:] == ".rego" {
			assert.Equal(t, b, got.files[name], name)
		}
	}
	assert.Equal(t, want.docs, got.docs, "the same data tree")
	var reg struct {
		Recipients []*gateway.Recipient `json:"recipients"`
	}
	require.NoError(t, json.Unmarshal(files[registryFile].Data, &reg))
	assert.Len(t, reg.Recipients, 16)
	assert.Contains(t, files, "data.json", "the country lists")
}

// FuzzReadBundle: any bytes give a policy directory or an error, never a
// panic; a directory holds only files the policy loader reads, at valid
// paths.
func FuzzReadBundle(f *testing.F) {
	f.Add(shippedBundle(f))
	var buf bytes.Buffer
	require.NoError(f, bundle.NewWriter(&buf).Write(bundle.Bundle{Data: map[string]any{"x": 1},
		Modules: []bundle.ModuleFile{{URL: "/../../etc/x.rego", Path: "/../../etc/x.rego", Raw: []byte("package x\n")}}}))
	f.Add(buf.Bytes())
	f.Add([]byte{0x1f, 0x8b, 0x08})
	f.Add([]byte("not a bundle"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		files, err := readBundle(raw, nil)
		if err != nil {
			return
		}
		for name := range files {
			assert.True(t, fs.ValidPath(name), name)
			assert.True(t, loadable(name), name)
		}
	})
}

func TestBundleData(t *testing.T) {
	tests := []struct {
		name string
		data map[string]any
		want []string
	}{
		{"registry and more", map[string]any{"data": map[string]any{"recipients": []any{}, "countries": map[string]any{}}}, []string{"data.json", registryFile}},
		{"registry only", map[string]any{"data": map[string]any{"recipients": []any{}}}, []string{registryFile}},
		{"no registry", map[string]any{"other": 1}, []string{"data.json"}},
		{"nothing", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := fstest.MapFS{}
			require.NoError(t, bundleData(files, tt.data))
			assert.ElementsMatch(t, tt.want, sortedKeys(files))
			if f, ok := files["data.json"]; ok {
				assert.NotContains(t, string(f.Data), "recipients", "the registry is written once")
			}
		})
	}
}

func TestParseBundleKey(t *testing.T) {
	pemOf := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	ec := func(c elliptic.Curve) []byte {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		require.NoError(t, err)
		b, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		require.NoError(t, err)
		return pemOf("PUBLIC KEY", b)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	ed, err := x509.MarshalPKIXPublicKey(edPub)
	require.NoError(t, err)
	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	privDER, err := x509.MarshalECPrivateKey(ecPriv)
	require.NoError(t, err)
	tests := []struct {
		name, key, alg string
		want, wantErr  string
	}{
		{"P-256", string(ec(elliptic.P256())), "", "ES256", ""},
		{"P-384", string(ec(elliptic.P384())), "", "ES384", ""},
		{"Ed25519", string(pemOf("PUBLIC KEY", ed)), "", "EdDSA", ""},
		{"secret", "s3cret\n", "", "HS256", ""},
		{"secret HS512", "s3cret", "HS512", "HS512", ""},
		{"secret with RS256", "s3cret", "RS256", "", "needs a PEM public key"},
		{"curve mismatch", string(ec(elliptic.P256())), "ES384", "", "does not fit"},
		{"unknown algorithm", "s3cret", "none", "", "unknown algorithm"},
		{"private key", string(pemOf("EC PRIVATE KEY", privDER)), "", "", "never give dgw a private key"},
		{"malformed PEM", "-----BEGIN PUBLIC KEY-----\nxx\n", "", "", "malformed PEM"},
		{"empty", " \n", "", "", "empty key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := parseBundleKey([]byte(tt.key), tt.alg)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, k.Algorithm)
		})
	}
}

func TestRegistryChanges(t *testing.T) {
	raw := []byte(tinyRegistryForInternal)
	base := []*gateway.Recipient{
		{ID: "a", Type: "payment_processor", Country: "KZ", Topic: "t.a"},
		{ID: "b", Type: "payment_processor", Country: "KZ", Topic: "t.b", Safeguards: []string{}},
	}
	clone := func() []*gateway.Recipient {
		out := make([]*gateway.Recipient, len(base))
		for i, r := range base {
			c := *r
			out[i] = &c
		}
		return out
	}
	changedTopic := clone()
	changedTopic[1].Topic = "t.x"
	nilSafeguards := clone()
	nilSafeguards[1].Safeguards = nil
	tests := []struct {
		name string
		next []*gateway.Recipient
		want []string
	}{
		{"same", clone(), nil},
		{"empty and absent safeguards alike", nilSafeguards, nil},
		{"changed", changedTopic, []string{"data/recipients.json:3: recipient b changed"}},
		{"removed", clone()[:1], []string{"data/recipients.json: recipient b was removed"}},
		{"added", append(clone(), &gateway.Recipient{ID: "c"}), []string{"data/recipients.json: recipient c is new"}},
		{"moved", []*gateway.Recipient{clone()[1], clone()[0]}, []string{"data/recipients.json:3: recipient b moved",
			"data/recipients.json:2: recipient a moved"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := registryChanges(raw, base, tt.next)
			require.Len(t, got, len(tt.want), "%v", got)
			for i, w := range tt.want {
				assert.Contains(t, got[i].String(), w)
			}
		})
	}
}

const tinyRegistryForInternal = `{"recipients": [
  {"id": "a"},
  {"id": "b"}
]}`

// FuzzParseBundleKey: any key file gives a key or an error, never a panic;
// a key always has a known algorithm.
func FuzzParseBundleKey(f *testing.F) {
	f.Add([]byte("secret"), "")
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"), "ES256")
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "")
	f.Add([]byte(""), "HS512")
	f.Fuzz(func(t *testing.T, b []byte, alg string) {
		k, err := parseBundleKey(b, alg)
		if err != nil {
			return
		}
		assert.Contains(t, bundleAlgorithms, k.Algorithm)
		assert.NotEmpty(t, k.Key)
	})
}
