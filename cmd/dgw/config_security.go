package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dgwproject/dgw/adapters/kafka"
)

// TLSConfig is the `tls` section of the run configuration. Any file setting
// turns TLS on; `enabled: true` alone uses the system roots.
type TLSConfig struct {
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of the CAs that sign the brokers' certificates.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate and its key (mutual
	// TLS). Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the host name checked in broker certificates.
	ServerName string `yaml:"server_name"`
}

// SASLConfig is the `sasl` section. The password is never written in the
// configuration file: it comes from password_file or DGW_SASL_PASSWORD.
type SASLConfig struct {
	// Mechanism is plain, scram-sha-256 or scram-sha-512; empty for none.
	Mechanism    string       `yaml:"mechanism"`
	Username     string       `yaml:"username"`
	PasswordFile string       `yaml:"password_file"`
	password     kafka.Secret // DGW_SASL_PASSWORD
}

// String describes the section without the password, which fmt would
// otherwise print from the unexported field.
func (s SASLConfig) String() string {
	pw := ""
	if s.password != "" {
		pw = " password=" + s.password.String()
	}
	return fmt.Sprintf("{mechanism=%s username=%s password_file=%s%s}", s.Mechanism, s.Username, s.PasswordFile, pw)
}

// GoString is String, for %#v.
func (s SASLConfig) GoString() string { return "main.SASLConfig" + s.String() }

var saslMechanisms = map[string]string{
	"plain": kafka.SASLPlain, "scram-sha-256": kafka.SASLScramSHA256, "scram-sha-512": kafka.SASLScramSHA512,
}

// securityEnv applies the DGW_TLS_* and DGW_SASL_* variables.
func (c *Config) securityEnv(env map[string]string) error {
	strs := map[string]*string{
		"DGW_TLS_CA_FILE": &c.TLS.CAFile, "DGW_TLS_CERT_FILE": &c.TLS.CertFile, "DGW_TLS_KEY_FILE": &c.TLS.KeyFile,
		"DGW_TLS_SERVER_NAME": &c.TLS.ServerName, "DGW_SASL_MECHANISM": &c.SASL.Mechanism,
		"DGW_SASL_USERNAME": &c.SASL.Username, "DGW_SASL_PASSWORD_FILE": &c.SASL.PasswordFile,
	}
	for k, p := range strs {
		if v, ok := env[k]; ok {
			*p = v
		}
	}
	if v, ok := env["DGW_SASL_PASSWORD"]; ok {
		c.SASL.password = kafka.Secret(v)
	}
	if v, ok := env["DGW_TLS_ENABLED"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("DGW_TLS_ENABLED: expected true or false, got %q", v)
		}
		c.TLS.Enabled = b
	}
	return nil
}

// validateSecurity checks the tls and sasl sections without reading files.
// No message quotes the password.
func (c *Config) validateSecurity() []error {
	var errs []error
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("tls: cert_file and key_file must be given together"))
	}
	s := &c.SASL
	hasPassword := s.PasswordFile != "" || s.password != ""
	if s.Mechanism == "" {
		if s.Username != "" || hasPassword {
			errs = append(errs, errors.New("sasl: username or password given without sasl.mechanism"))
		}
		return errs
	}
	if _, ok := saslMechanisms[strings.ToLower(s.Mechanism)]; !ok {
		errs = append(errs, fmt.Errorf("sasl.mechanism: expected plain, scram-sha-256 or scram-sha-512, got %q", s.Mechanism))
	}
	if s.Username == "" {
		errs = append(errs, errors.New("sasl.username: required with sasl.mechanism (or DGW_SASL_USERNAME)"))
	}
	switch {
	case !hasPassword:
		errs = append(errs, errors.New("sasl: the password comes from sasl.password_file or DGW_SASL_PASSWORD; neither is set"))
	case s.PasswordFile != "" && s.password != "":
		errs = append(errs, errors.New("sasl: both sasl.password_file and DGW_SASL_PASSWORD are set; keep one"))
	}
	return errs
}

// kafkaSecurity builds the settings every Kafka client gets, reading the
// password file. Errors name files, never their content.
func (c *Config) kafkaSecurity() (kafka.Security, error) {
	sec := kafka.Security{
		TLS: c.TLS.Enabled, CAFile: c.TLS.CAFile, CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile,
		ServerName: c.TLS.ServerName,
		Username:   c.SASL.Username, Password: c.SASL.password,
	}
	if c.SASL.Mechanism != "" {
		sec.SASLMechanism = saslMechanisms[strings.ToLower(c.SASL.Mechanism)]
	}
	if c.SASL.PasswordFile != "" {
		b, err := os.ReadFile(c.SASL.PasswordFile)
		if err != nil {
			return kafka.Security{}, fmt.Errorf("sasl.password_file: %w", err)
		}
		pw := strings.TrimRight(string(b), "\r\n")
		if pw == "" {
			return kafka.Security{}, fmt.Errorf("sasl.password_file %s is empty", c.SASL.PasswordFile)
		}
		sec.Password = kafka.Secret(pw)
	}
	for _, f := range []struct{ key, path string }{
		{"tls.ca_file", sec.CAFile}, {"tls.cert_file", sec.CertFile}, {"tls.key_file", sec.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return kafka.Security{}, fmt.Errorf("%s: %w", f.key, err)
		}
	}
	if err := sec.Validate(); err != nil {
		return kafka.Security{}, err
	}
	return sec, nil
}

// stallTimeout parses stall_timeout: empty for the default (0), else a
// duration of at least 5s, so that a slow broker answering a long poll is
// not mistaken for a stuck fetch.
func (c *Config) stallTimeout() (time.Duration, error) {
	return parseMinDuration("stall_timeout", c.StallTimeout, 5*time.Second, "1m")
}

// sessionTimeout parses session_timeout: empty for the default (0), else a
// duration of at least 2s (members heartbeat a third of it).
func (c *Config) sessionTimeout() (time.Duration, error) {
	return parseMinDuration("session_timeout", c.SessionTimeout, 2*time.Second, "10s")
}

// parseMinDuration parses the duration setting key: 0 when empty, an error
// naming the key, the minimum and an example when v is not a duration of
// at least the minimum.
func parseMinDuration(key, v string, least time.Duration, example string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < least {
		return 0, fmt.Errorf("%s: expected a duration of at least %s such as %s, got %q", key, least, example, v)
	}
	return d, nil
}
