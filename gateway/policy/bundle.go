package policy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"testing/fstest"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
)

// MaxBundleBytes bounds a fetched bundle, compressed and per file.
const MaxBundleBytes = 64 << 20

// bundleKeyID names the one verification key; a bundle's signature is
// checked with it whatever key id the signer put in the token.
const bundleKeyID = "dgw"

// BundleKey verifies the signatures of OPA bundles (the .signatures.json
// that `opa build --signing-key` writes).
type BundleKey struct {
	// Key is a PEM public key or certificate for the RS, PS, ES and EdDSA
	// algorithms, or the shared secret for HS.
	Key string
	// Algorithm is the JWS algorithm: RS256, RS384, RS512, PS256, PS384,
	// PS512, ES256, ES384, ES512, EdDSA, HS256, HS384 or HS512.
	Algorithm string
}

var bundleAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512"}

// LoadBundleKey reads a verification key file. An empty alg is inferred: RS256
// for an RSA key, ES256/ES384/ES512 for an ECDSA key by its curve, EdDSA for
// an Ed25519 key, HS256 for a file that is not PEM (a shared secret).
func LoadBundleKey(file, alg string) (*BundleKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("bundle key: %w", err)
	}
	k, err := parseBundleKey(b, alg)
	if err != nil {
		return nil, fmt.Errorf("bundle key %s: %w", file, err)
	}
	return k, nil
}

func parseBundleKey(b []byte, alg string) (*BundleKey, error) {
	if alg != "" && !slices.Contains(bundleAlgorithms, alg) {
		return nil, fmt.Errorf("unknown algorithm %q (known: %s)", alg, strings.Join(bundleAlgorithms, ", "))
	}
	block, _ := pem.Decode(b)
	if block == nil {
		if bytes.Contains(b, []byte("-----BEGIN")) {
			return nil, errors.New("malformed PEM")
		}
		secret := strings.TrimSpace(string(b))
		if secret == "" {
			return nil, errors.New("empty key")
		}
		if alg == "" {
			alg = "HS256"
		}
		if !strings.HasPrefix(alg, "HS") {
			return nil, fmt.Errorf("algorithm %s needs a PEM public key", alg)
		}
		return &BundleKey{Key: secret, Algorithm: alg}, nil
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("PEM block %q: expected a PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE (never give dgw a private key)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	inferred := ""
	switch k := pub.(type) {
	case *rsa.PublicKey:
		inferred = "RS256"
		if alg != "" && !strings.HasPrefix(alg, "RS") && !strings.HasPrefix(alg, "PS") {
			return nil, fmt.Errorf("algorithm %s does not fit an RSA key", alg)
		}
	case *ecdsa.PublicKey:
		inferred = map[int]string{256: "ES256", 384: "ES384", 521: "ES512"}[k.Curve.Params().BitSize]
		if inferred == "" || (alg != "" && alg != inferred) {
			return nil, fmt.Errorf("algorithm %q does not fit an ECDSA %s key", alg, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		inferred = "EdDSA"
		if alg != "" && alg != inferred {
			return nil, fmt.Errorf("algorithm %s does not fit an Ed25519 key", alg)
		}
	default:
		return nil, fmt.Errorf("unsupported public key type %T", pub)
	}
	if alg == "" {
		alg = inferred
	}
	return &BundleKey{Key: string(pem.EncodeToMemory(block)), Algorithm: alg}, nil
}

// FetchBundle downloads an OPA bundle and returns it as a policy directory
// for NewLive or Load: its modules at their paths, the registry
// (data.data.recipients) as data/recipients.json and the rest of its data
// as data.json. With a key the bundle's signature must verify; nil accepts
// any bundle without checking signatures.
func FetchBundle(ctx context.Context, hc *http.Client, url string, key *BundleKey) (fs.FS, error) {
	raw, _, err := fetchBundle(ctx, hc, url, "")
	if err != nil {
		return nil, fmt.Errorf("policy bundle %s: %w", url, err)
	}
	files, err := readBundle(raw, key)
	if err != nil {
		return nil, fmt.Errorf("policy bundle %s: %w", url, err)
	}
	return files, nil
}

// fetchBundle GETs url. It returns nil bytes when the server answers 304
// to etag.
func fetchBundle(ctx context.Context, hc *http.Client, url, etag string) (raw []byte, newEtag string, err error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", fmt.Errorf("fetch bundle: %w", err)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("fetch bundle: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		return nil, etag, nil
	default:
		return nil, "", fmt.Errorf("fetch bundle: HTTP %s", resp.Status)
	}
	raw, err = io.ReadAll(io.LimitReader(resp.Body, MaxBundleBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("fetch bundle: %w", err)
	}
	if len(raw) > MaxBundleBytes {
		return nil, "", fmt.Errorf("fetch bundle: larger than %d bytes", MaxBundleBytes)
	}
	return raw, resp.Header.Get("ETag"), nil
}

// readBundle reads a bundle (.tar.gz), verifies its signature when key is
// set, and lays it out as a policy directory. Module parse errors come back
// as a *ProblemsError with their file and line.
func readBundle(raw []byte, key *BundleKey) (fstest.MapFS, error) {
	rd := bundle.NewReader(bytes.NewReader(raw)).
		WithRegoVersion(ast.RegoV1).
		WithSizeLimitBytes(MaxBundleBytes)
	if key != nil {
		keys := map[string]*bundle.KeyConfig{bundleKeyID: {Key: key.Key, Algorithm: key.Algorithm}}
		rd = rd.WithBundleVerificationConfig(bundle.NewVerificationConfig(keys, bundleKeyID, "", nil))
	} else {
		rd = rd.WithSkipBundleVerification(true)
	}
	b, err := rd.Read()
	if err != nil {
		var aes ast.Errors
		if errors.As(err, &aes) {
			ps := astProblems(aes)
			for i := range ps {
				ps[i].File = strings.TrimPrefix(ps[i].File, "/")
			}
			return nil, &ProblemsError{Problems: sortProblems(ps)}
		}
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	if b.Type() != bundle.SnapshotBundleType {
		return nil, errors.New("read bundle: delta bundles are not supported; publish a snapshot bundle")
	}
	if len(b.WasmModules)+len(b.PlanModules) > 0 {
		return nil, errors.New("read bundle: wasm and plan modules are not supported; dgw evaluates Rego")
	}
	files := fstest.MapFS{}
	for _, m := range b.Modules {
		name := strings.TrimPrefix(path.Clean("/"+m.Path), "/")
		if !fs.ValidPath(name) || path.Ext(name) != ".rego" {
			return nil, fmt.Errorf("read bundle: module path %q", m.Path)
		}
		if _, dup := files[name]; dup {
			return nil, fmt.Errorf("read bundle: module %s twice", name)
		}
		files[name] = &fstest.MapFile{Data: m.Raw, Mode: 0o444}
	}
	if err := bundleData(files, b.Data); err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	return files, nil
}

// bundleData writes a bundle's data tree as the policy directory's data
// files: the registry (data.data.recipients) as data/recipients.json, where
// the registry checks and their line numbers expect it, everything else as
// data.json at the root. The loader merges them back into the same tree.
func bundleData(files fstest.MapFS, data map[string]any) error {
	rest := maps.Clone(data)
	if inner, ok := rest["data"].(map[string]any); ok {
		if reg, ok := inner["recipients"]; ok {
			b, err := json.MarshalIndent(map[string]any{"recipients": reg}, "", "  ")
			if err != nil {
				return fmt.Errorf("registry: %w", err)
			}
			files[registryFile] = &fstest.MapFile{Data: append(b, '\n'), Mode: 0o444}
			inner = maps.Clone(inner)
			delete(inner, "recipients")
			rest["data"] = inner
			if len(inner) == 0 {
				delete(rest, "data")
			}
		}
	}
	if len(rest) == 0 {
		return nil
	}
	b, err := json.MarshalIndent(rest, "", "  ")
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	files["data.json"] = &fstest.MapFile{Data: append(b, '\n'), Mode: 0o444}
	return nil
}
