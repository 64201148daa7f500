package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"strings"

	keysecret "github.com/dgwproject/dgw/gateway/secret"
)

// MinKeyLen is the shortest audit secret accepted, in bytes after decoding.
const MinKeyLen = 32

// EnvKey is the environment variable KeyFromEnv reads.
const EnvKey = "DGW_AUDIT_KEY"

// ErrNoKey is returned by KeyFromEnv when the variable is not set.
var ErrNoKey = errors.New("no audit key")

// Key is the audit secret. It keys the subject pseudonym,
// HMAC-SHA256(secret, passenger id), and, through a derived key, the MAC
// of every audit entry, so that nobody without the secret can rewrite a
// chain and recompute it.
//
// A Key never shows its secret: String, GoString and every fmt verb print
// where it came from and its id. The zero Key holds no secret.
type Key struct {
	k *keyData
}

type keyData struct {
	secret []byte
	mac    []byte // HMAC-SHA256(secret, "dgw.audit.mac.v1")
	id     string
	source string
}

// NewKey returns a key over secret, which must hold at least MinKeyLen
// bytes. source says where the secret came from, for messages.
func NewKey(secret []byte, source string) (Key, error) {
	if len(secret) < MinKeyLen {
		return Key{}, fmt.Errorf("audit key from %s: %w: %d bytes, need at least %d", source, keysecret.ErrTooShort, len(secret), MinKeyLen)
	}
	s := bytes.Clone(secret)
	mac := hmac.New(sha256.New, s)
	mac.Write([]byte("dgw.audit.mac.v1"))
	idm := hmac.New(sha256.New, s)
	idm.Write([]byte("dgw.audit.key-id.v1"))
	return Key{&keyData{secret: s, mac: mac.Sum(nil), id: hex.EncodeToString(idm.Sum(nil)[:8]), source: source}}, nil
}

// DevKey derives a deterministic key from seed, for `dgw dev` and tests
// only: anyone who knows the seed can recompute every pseudonym and MAC.
func DevKey(seed string) Key {
	sum := sha256.Sum256([]byte("dgw.audit.dev-key.v1\x00" + seed))
	k, _ := NewKey(sum[:], "development seed")
	return k
}

// LoadKey reads a key file: one secret, as raw text or prefixed "base64:"
// or "hex:"; surrounding blanks and a trailing newline are ignored. Errors
// name the file, never the secret.
func LoadKey(file string) (Key, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return Key{}, fmt.Errorf("audit key: %w", err)
	}
	secret, err := keysecret.Decode(strings.TrimSpace(string(b)), MinKeyLen)
	if err != nil {
		return Key{}, fmt.Errorf("audit key file %s: %w", file, err)
	}
	return NewKey(secret, "file "+file)
}

// KeyFromEnv reads DGW_AUDIT_KEY from environ (as os.Environ returns it),
// in LoadKey's format. It returns ErrNoKey when the variable is not set.
func KeyFromEnv(environ []string) (Key, error) {
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || name != EnvKey {
			continue
		}
		secret, err := keysecret.Decode(strings.TrimSpace(val), MinKeyLen)
		if err != nil {
			return Key{}, fmt.Errorf("audit key: variable %s: %w", EnvKey, err)
		}
		return NewKey(secret, "environment "+EnvKey)
	}
	return Key{}, ErrNoKey
}

// Valid reports whether k holds a secret.
func (k Key) Valid() bool { return k.k != nil }

// ID identifies the key (16 hex digits) without revealing it; audit
// entries carry it so a verifier can tell a wrong key from tampering.
func (k Key) ID() string {
	if k.k == nil {
		return ""
	}
	return k.k.id
}

// Pseudonym returns HMAC-SHA256(secret, subjectID) as 64 hex digits: the
// subject field of audit entries.
func (k Key) Pseudonym(subjectID string) string {
	if k.k == nil {
		return ""
	}
	m := hmac.New(sha256.New, k.k.secret)
	m.Write([]byte(subjectID))
	return hex.EncodeToString(m.Sum(nil))
}

// sign returns the MAC of an entry hash.
func (k Key) sign(hash [32]byte) [32]byte {
	var out [32]byte
	if k.k == nil {
		return out
	}
	m := hmac.New(sha256.New, k.k.mac)
	m.Write(hash[:])
	copy(out[:], m.Sum(nil))
	return out
}

// keyMACs are one chain's HMACs under k, reset for every entry instead of
// rebuilt: hmac.New allocates and derives the pads again (issue #7). Not
// safe for concurrent use; a chain uses its own under its lock.
type keyMACs struct {
	pseudonym, mac hash.Hash
	in, sum        []byte
}

func (k Key) macs() *keyMACs {
	if k.k == nil {
		return nil
	}
	return &keyMACs{pseudonym: hmac.New(sha256.New, k.k.secret), mac: hmac.New(sha256.New, k.k.mac)}
}

// pseudonymOf is Key.Pseudonym with m's reused HMAC.
func (m *keyMACs) pseudonymOf(subjectID string) string {
	if m == nil {
		return ""
	}
	m.in = append(m.in[:0], subjectID...)
	m.pseudonym.Reset()
	m.pseudonym.Write(m.in)
	m.sum = m.pseudonym.Sum(m.sum[:0])
	clear(m.in) // the subject id must not linger in the reused buffer
	m.in = hex.AppendEncode(m.in[:0], m.sum)
	return string(m.in)
}

// sign is Key.sign with m's reused HMAC.
func (m *keyMACs) sign(hash [32]byte) [32]byte {
	var out [32]byte
	if m == nil {
		return out
	}
	// Written from the reused buffer: hash[:] handed to the interface
	// method would move the array to the heap, an allocation per entry.
	m.in = append(m.in[:0], hash[:]...)
	m.mac.Reset()
	m.mac.Write(m.in)
	m.sum = m.mac.Sum(m.sum[:0])
	copy(out[:], m.sum)
	return out
}

// verify reports whether mac is the MAC of hash under k.
func (k Key) verify(hash, mac [32]byte) bool {
	want := k.sign(hash)
	return k.k != nil && hmac.Equal(want[:], mac[:])
}

// String describes the key without its secret.
func (k Key) String() string {
	if k.k == nil {
		return "audit.Key{none}"
	}
	return "audit.Key{" + k.k.source + ", id " + k.k.id + ", secret redacted}"
}

// GoString is String, so %#v shows no secret either.
func (k Key) GoString() string { return k.String() }

// Format prints String for every verb.
func (k Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }
