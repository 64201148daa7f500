package redact

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	keysecret "github.com/dgwproject/dgw/gateway/secret"
)

// MinKeyLen is the shortest hash secret accepted, in bytes (after decoding).
const MinKeyLen = 32

// EnvPrefix starts the environment variables KeyringFromEnv reads.
const EnvPrefix = "DGW_HASH_KEY_"

// Keyring holds the per-recipient secrets of the hash operator.
//
// A Keyring never shows its secrets: String, GoString and every fmt verb
// print only where the keys came from and which recipients have one. The
// secrets live behind a pointer, so even a struct that embeds a Keyring in
// an unexported field prints an address, not key bytes. The zero Keyring
// holds no keys.
type Keyring struct {
	k *keys
}

type keys struct {
	source string            // "development", "file <name>", "environment"
	seed   []byte            // development keyrings derive every key from the seed
	byName map[string][]byte // recipient id (file) or DGW_HASH_KEY_ suffix (environment) → secret
	env    bool              // byName is keyed by EnvName suffix
}

// DevKeyring derives a deterministic key for any recipient from seed. It is
// for development, eval and tests only: anyone who knows the seed can
// recompute every pseudonym.
func DevKeyring(seed string) Keyring {
	return Keyring{&keys{source: "development", seed: []byte(seed)}}
}

// key returns the secret of recipient id.
func (k Keyring) key(id string) ([]byte, bool) {
	if k.k == nil {
		return nil, false
	}
	if k.k.seed != nil {
		m := hmac.New(sha256.New, k.k.seed)
		m.Write([]byte("dgw-dev-hash-key\x00" + id))
		return m.Sum(nil), true
	}
	name := id
	if k.k.env {
		name = envSuffix(id)
	}
	b, ok := k.k.byName[name]
	return b, ok
}

// EnvName is the environment variable KeyringFromEnv reads for recipient id:
// DGW_HASH_KEY_ and the id upper-cased with '-' and '.' replaced by '_'.
func EnvName(id string) string { return EnvPrefix + envSuffix(id) }

func envSuffix(id string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '.' {
			return '_'
		}
		return r
	}, strings.ToUpper(id))
}

// LoadKeyring reads a keys file: one "recipient-id = secret" per line;
// blank lines and lines starting with '#' are ignored. A secret is taken as
// raw text, or decoded when prefixed "base64:" or "hex:"; it must be at
// least MinKeyLen bytes after decoding. Errors name the file, line and
// recipient, never the secret.
func LoadKeyring(file string) (Keyring, error) {
	f, err := os.Open(file)
	if err != nil {
		return Keyring{}, fmt.Errorf("hash keys: %w", err)
	}
	defer f.Close()
	m, err := parseKeys(f, file)
	if err != nil {
		return Keyring{}, err
	}
	return Keyring{&keys{source: "file " + file, byName: m}}, nil
}

func parseKeys(r io.Reader, file string) (map[string][]byte, error) {
	out := map[string][]byte{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		id, secret, ok := strings.Cut(line, "=")
		id, secret = strings.TrimSpace(id), strings.TrimSpace(secret)
		if !ok || id == "" {
			return nil, fmt.Errorf("hash keys %s:%d: expected \"recipient-id = secret\"", file, n)
		}
		if strings.ContainsAny(id, " \t") {
			return nil, fmt.Errorf("hash keys %s:%d: recipient id contains blanks", file, n)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("hash keys %s:%d: recipient %s has two keys", file, n, id)
		}
		b, err := keysecret.Decode(secret, MinKeyLen)
		if err != nil {
			return nil, fmt.Errorf("hash keys %s:%d: recipient %s: %w", file, n, id, err)
		}
		out[id] = b
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("hash keys %s: %w", file, err)
	}
	return out, nil
}

// KeyringFromEnv reads DGW_HASH_KEY_<ID> variables from environ (as
// os.Environ returns it); <ID> is the recipient id upper-cased with '-' and
// '.' replaced by '_' (see EnvName). Secrets use the format of LoadKeyring.
// Without any such variable the keyring is empty, and New reports each
// recipient that needs a key.
func KeyringFromEnv(environ []string) (Keyring, error) {
	m := map[string][]byte{}
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		suffix := name[len(EnvPrefix):]
		if suffix == "" {
			return Keyring{}, fmt.Errorf("hash keys: variable %s names no recipient", name)
		}
		if _, dup := m[suffix]; dup {
			return Keyring{}, fmt.Errorf("hash keys: variable %s is set twice", name)
		}
		b, err := keysecret.Decode(strings.TrimSpace(val), MinKeyLen)
		if err != nil {
			return Keyring{}, fmt.Errorf("hash keys: variable %s: %w", name, err)
		}
		m[suffix] = b
	}
	return Keyring{&keys{source: "environment", byName: m, env: true}}, nil
}

// describe is the only text a Keyring ever prints.
func (k Keyring) describe() string {
	if k.k == nil {
		return "redact.Keyring{empty}"
	}
	if k.k.seed != nil {
		return "redact.Keyring{development keys, secrets redacted}"
	}
	names := make([]string, 0, len(k.k.byName))
	for n := range k.k.byName {
		if k.k.env {
			n = EnvPrefix + n
		}
		names = append(names, n)
	}
	slices.Sort(names)
	return fmt.Sprintf("redact.Keyring{%s: %s, secrets redacted}", k.k.source, strings.Join(names, " "))
}

// String describes the keyring without its secrets.
func (k Keyring) String() string { return k.describe() }

// GoString describes the keyring without its secrets.
func (k Keyring) GoString() string { return k.describe() }

// Format prints the description for every verb (%v, %+v, %#v, %s, %x, ...).
func (k Keyring) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.describe()) }
