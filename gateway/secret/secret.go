// Package secret decodes the key material dgw reads from files and
// environment variables (hash keys per recipient, the audit key). Errors
// never quote the secret or any byte of it.
package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrTooShort means a secret has fewer bytes than its use requires.
var ErrTooShort = errors.New("secret too short")

// Decode reads a secret written as raw text, "base64:<standard base64>" or
// "hex:<hex digits>", and requires at least min bytes after decoding. The
// result is a copy the caller owns.
func Decode(s string, min int) ([]byte, error) {
	var b []byte
	switch {
	case strings.HasPrefix(s, "base64:"):
		var err error
		if b, err = base64.StdEncoding.DecodeString(s[len("base64:"):]); err != nil {
			// The decoder's error quotes an offset and the bad byte: drop it.
			return nil, errors.New("secret is not valid base64")
		}
	case strings.HasPrefix(s, "hex:"):
		var err error
		if b, err = hex.DecodeString(s[len("hex:"):]); err != nil {
			return nil, errors.New("secret is not valid hex")
		}
	default:
		b = []byte(s)
	}
	if len(b) < min {
		return nil, fmt.Errorf("%w: %d bytes, need at least %d", ErrTooShort, len(b), min)
	}
	return bytes.Clone(b), nil
}
