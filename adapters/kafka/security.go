package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	fsasl "github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms accepted in Security.SASLMechanism.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Security holds the optional TLS and SASL settings shared by Source, Sink
// and EnsureTopics. The zero value is plaintext without authentication.
//
// Its String and LogValue methods never show the password or key
// material, so a config can be logged as a whole.
type Security struct {
	// TLS enables TLS. It is implied by any of the file settings below.
	TLS bool
	// CAFile is a PEM bundle of the CAs that sign the brokers'
	// certificates. Default: the system roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// brokers that require mutual TLS. Both or neither.
	CertFile string
	KeyFile  string
	// ServerName overrides the name checked in the brokers' certificates.
	ServerName string
	// InsecureSkipVerify disables certificate verification. Tests only.
	InsecureSkipVerify bool

	// SASLMechanism is "", PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	SASLMechanism string
	// Username and Password authenticate with SASLMechanism.
	Username string
	Password Secret
}

// Secret is a string that does not print: fmt, slog, encoding/json and
// YAML encoders see "[redacted]" (or "" when it is empty). Decoders fill it
// like a plain string.
type Secret string

const redacted = "[redacted]"

// String returns "[redacted]", or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString is String, for %#v.
func (s Secret) GoString() string { return s.String() }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler, used by JSON and YAML encoders.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// tlsEnabled reports whether any TLS setting is present.
func (s *Security) tlsEnabled() bool {
	return s.TLS || s.CAFile != "" || s.CertFile != "" || s.KeyFile != "" || s.ServerName != "" || s.InsecureSkipVerify
}

// Validate checks the settings without reading the files.
func (s *Security) Validate() error {
	var errs []error
	if (s.CertFile == "") != (s.KeyFile == "") {
		errs = append(errs, errors.New("security: cert_file and key_file must be given together"))
	}
	switch strings.ToUpper(s.SASLMechanism) {
	case "":
		if s.Username != "" || s.Password != "" {
			errs = append(errs, errors.New("security: username/password given without a SASL mechanism"))
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if s.Username == "" || s.Password == "" {
			errs = append(errs, fmt.Errorf("security: SASL %s needs a username and a password", strings.ToUpper(s.SASLMechanism)))
		}
	default:
		errs = append(errs, fmt.Errorf("security: unknown SASL mechanism %q (expected %s, %s or %s)",
			s.SASLMechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512))
	}
	return errors.Join(errs...)
}

// String describes the settings without secrets.
func (s Security) String() string {
	var parts []string
	if s.tlsEnabled() {
		t := "tls"
		if s.CAFile != "" {
			t += " ca=" + s.CAFile
		}
		if s.CertFile != "" {
			t += " cert=" + s.CertFile
		}
		if s.InsecureSkipVerify {
			t += " insecure-skip-verify"
		}
		parts = append(parts, t)
	}
	if s.SASLMechanism != "" {
		pw := ""
		if s.Password != "" {
			pw = " password=" + redacted
		}
		parts = append(parts, "sasl "+strings.ToUpper(s.SASLMechanism)+" user="+s.Username+pw)
	}
	if len(parts) == 0 {
		return "plaintext"
	}
	return strings.Join(parts, ", ")
}

// GoString is String, so %#v does not print the password either.
func (s Security) GoString() string { return "kafka.Security{" + s.String() + "}" }

// LogValue implements slog.LogValuer without secrets.
func (s Security) LogValue() slog.Value { return slog.StringValue(s.String()) }

// tlsConfig builds the client TLS configuration, or nil for plaintext.
func (s *Security) tlsConfig() (*tls.Config, error) {
	if !s.tlsEnabled() {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.ServerName, InsecureSkipVerify: s.InsecureSkipVerify} //nolint:gosec // opt-in, documented as tests only
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("security: read ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("security: ca_file %s holds no PEM certificate", s.CAFile)
		}
		c.RootCAs = pool
	}
	if s.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			// The error names files and PEM problems, never key bytes.
			return nil, fmt.Errorf("security: load client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// mechanism builds the SASL mechanism, or nil without SASL.
func (s *Security) mechanism() sasl.Mechanism {
	switch strings.ToUpper(s.SASLMechanism) {
	case SASLPlain:
		return plain.Mechanism{Username: s.Username, Password: string(s.Password)}
	case SASLScramSHA256:
		return scramMechanism{scram.Auth{User: s.Username, Pass: string(s.Password)}.AsSha256Mechanism()}
	case SASLScramSHA512:
		return scramMechanism{scram.Auth{User: s.Username, Pass: string(s.Password)}.AsSha512Mechanism()}
	}
	return nil
}

// scramMechanism adapts franz-go's SCRAM client (standard library only, and
// already a dependency through the embedded broker) to kafka-go's SASL
// interface, which avoids adding xdg-go/scram to the module. The two state
// machines match: the client-first message starts the exchange, the
// server-first challenge is answered with the client-final message, and the
// server-final challenge is verified and ends it.
type scramMechanism struct{ m fsasl.Mechanism }

func (m scramMechanism) Name() string { return m.m.Name() }

func (m scramMechanism) Start(ctx context.Context) (sasl.StateMachine, []byte, error) {
	host := ""
	if md := sasl.MetadataFromContext(ctx); md != nil {
		host = md.Host
	}
	sess, first, err := m.m.Authenticate(ctx, host)
	if err != nil {
		return nil, nil, err
	}
	return scramSession{sess}, first, nil
}

type scramSession struct{ s fsasl.Session }

func (s scramSession) Next(_ context.Context, challenge []byte) (bool, []byte, error) {
	done, resp, err := s.s.Challenge(challenge)
	if err != nil {
		return false, nil, err
	}
	if done && len(resp) > 0 {
		// kafka-go cannot send a final message after completion; SCRAM
		// never asks for one.
		return false, nil, errors.New("sasl: mechanism wants to send a message after completing")
	}
	return done, resp, nil
}
