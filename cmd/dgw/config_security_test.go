package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/policies"
	"github.com/dgwproject/dgw/schemas"
)

const testPassword = "s3cr3t-Kafka-pa55word"

func TestConfigSecurity(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	require.NoError(t, os.WriteFile(pwFile, []byte(testPassword+"\n"), 0o600))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	ca := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(ca, []byte("-"), 0o600))
	tests := []struct {
		name    string
		yaml    string
		env     []string
		want    kafka.Security
		wantErr string
	}{
		{name: "plaintext by default", want: kafka.Security{}},
		{name: "TLS and SCRAM from the file",
			yaml: fmt.Sprintf("tls:\n  ca_file: %s\n  cert_file: %[1]s\n  key_file: %[1]s\n  server_name: kafka.internal\nsasl:\n  mechanism: scram-sha-512\n  username: dgw\n  password_file: %s\n", ca, pwFile),
			want: kafka.Security{CAFile: ca, CertFile: ca, KeyFile: ca, ServerName: "kafka.internal",
				SASLMechanism: kafka.SASLScramSHA512, Username: "dgw", Password: testPassword}},
		{name: "everything from the environment",
			env: []string{"DGW_TLS_ENABLED=true", "DGW_TLS_SERVER_NAME=k", "DGW_SASL_MECHANISM=PLAIN", "DGW_SASL_USERNAME=u",
				"DGW_SASL_PASSWORD=" + testPassword},
			want: kafka.Security{TLS: true, ServerName: "k", SASLMechanism: kafka.SASLPlain, Username: "u", Password: testPassword}},
		{name: "environment overrides the file",
			yaml: fmt.Sprintf("sasl:\n  mechanism: plain\n  username: file-user\n  password_file: %s\n", pwFile),
			env:  []string{"DGW_SASL_USERNAME=env-user", "DGW_SASL_MECHANISM=scram-sha-256"},
			want: kafka.Security{SASLMechanism: kafka.SASLScramSHA256, Username: "env-user", Password: testPassword}},
		{name: "unknown mechanism", yaml: "sasl:\n  mechanism: gssapi\n  username: u\n", env: []string{"DGW_SASL_PASSWORD=" + testPassword},
			wantErr: `sasl.mechanism: expected plain, scram-sha-256 or scram-sha-512, got "gssapi"`},
		{name: "no username", yaml: "sasl:\n  mechanism: plain\n", env: []string{"DGW_SASL_PASSWORD=" + testPassword},
			wantErr: "sasl.username: required"},
		{name: "no password", yaml: "sasl:\n  mechanism: plain\n  username: u\n", wantErr: "neither is set"},
		{name: "two passwords", yaml: fmt.Sprintf("sasl:\n  mechanism: plain\n  username: u\n  password_file: %s\n", pwFile),
			env: []string{"DGW_SASL_PASSWORD=" + testPassword}, wantErr: "keep one"},
		{name: "password without mechanism", env: []string{"DGW_SASL_PASSWORD=" + testPassword}, wantErr: "without sasl.mechanism"},
		{name: "password written in the file is refused", yaml: "sasl:\n  mechanism: plain\n  username: u\n  password: " + testPassword + "\n",
			wantErr: "password"},
		{name: "missing password file", yaml: "sasl:\n  mechanism: plain\n  username: u\n  password_file: " + filepath.Join(dir, "nope") + "\n",
			wantErr: "sasl.password_file"},
		{name: "empty password file", yaml: "sasl:\n  mechanism: plain\n  username: u\n  password_file: " + empty + "\n",
			wantErr: "is empty"},
		{name: "certificate without key", yaml: "tls:\n  cert_file: " + ca + "\n", wantErr: "cert_file and key_file must be given together"},
		{name: "missing CA file", yaml: "tls:\n  ca_file: " + filepath.Join(dir, "no-ca.pem") + "\n", wantErr: "tls.ca_file"},
		{name: "bad boolean", env: []string{"DGW_TLS_ENABLED=maybe"}, wantErr: "DGW_TLS_ENABLED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "dgw.yaml")
			require.NoError(t, os.WriteFile(file, []byte("brokers: [\"127.0.0.1:9092\"]\n"+tt.yaml), 0o600))
			cfg, err := loadConfig(file, tt.env)
			var sec kafka.Security
			if err == nil {
				sec, err = cfg.kafkaSecurity()
			}
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.NotContains(t, err.Error(), testPassword, "an error quotes the password")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, sec)
			assert.NotContains(t, fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg), testPassword, "the configuration prints the password")
		})
	}
}

// safeBuffer is a bytes.Buffer for concurrent writers.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunOverTLSAndSASL runs `dgw run` and `dgw redrive` from a
// configuration file against a broker that accepts only mutual TLS with a
// certificate for another host name, and SCRAM-SHA-512: topic creation,
// source, sink and redrive all connect, and no log line holds the password.
func TestRunOverTLSAndSASL(t *testing.T) {
	dir := t.TempDir()
	caCert, caKey := testCA(t)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	serverCert := testIssue(t, caCert, caKey, "kafka.internal", false)
	client := testIssue(t, caCert, caKey, "dgw", true)
	writeTestPEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", caCert.Raw)
	writeTestPEM(t, filepath.Join(dir, "client.pem"), "CERTIFICATE", client.Certificate[0])
	keyDER, err := x509.MarshalPKCS8PrivateKey(client.PrivateKey)
	require.NoError(t, err)
	writeTestPEM(t, filepath.Join(dir, "client.key"), "PRIVATE KEY", keyDER)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "password"), []byte(testPassword), 0o600))

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.Superuser(kafka.SASLScramSHA512, "dgw", testPassword),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}))
	require.NoError(t, err)
	t.Cleanup(cluster.Close)
	brokers := cluster.ListenAddrs()

	set, err := schema.Load(schemas.FS)
	require.NoError(t, err)
	p := &parts{set: set}
	security := fmt.Sprintf("create_topics: true\npartitions: 1\n"+
		"tls:\n  ca_file: %s\n  cert_file: %s\n  key_file: %s\n  server_name: kafka.internal\n"+
		"sasl:\n  mechanism: scram-sha-512\n  username: dgw\n  password_file: %s\n",
		filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key"), filepath.Join(dir, "password"))
	// The registry's ids and topics, read as a partner would.
	var registry struct {
		Recipients []*gateway.Recipient `json:"recipients"`
	}
	raw, err := fs.ReadFile(policies.FS, "data/recipients.json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &registry))
	p.recipients = registry.Recipients
	cfgFile := runConfig(t, p, brokers, security)
	cfg, err := loadConfig(cfgFile, nil)
	require.NoError(t, err)
	sec, err := cfg.kafkaSecurity()
	require.NoError(t, err)

	// The source and recipient topics exist before the publisher and the
	// reader start; run creates the others and finds these, through the
	// same secured connection.
	outTopics := recipientTopics(p.recipients)
	topics := append(defaultSourceTopics(set), outTopics...)
	require.NoError(t, kafka.AdminConfig{Brokers: brokers, Security: sec}.EnsureTopics(t.Context(), 1, 1, topics...))
	sink, err := kafka.NewSink(kafka.SinkConfig{Brokers: brokers, Security: sec})
	require.NoError(t, err)
	var records []gateway.Disclosure
	for _, e := range generate(t, p, 20, 3) {
		records = append(records, e.record)
	}
	require.NoError(t, sink.Write(t.Context(), records...))
	require.NoError(t, sink.Close(t.Context()))

	var stdout, stderr safeBuffer
	a := &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, environ: []string{"DGW_ADMIN_ADDR=", "DGW_LOG_LEVEL=info"}}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	code := make(chan int, 1)
	go func() { code <- a.run(ctx, []string{"run", "--config", cfgFile}) }()

	// A reader over the same secured connection waits for the first
	// delivery, unless run stops first.
	readCtx, readCancel := context.WithTimeout(t.Context(), 180*testTimeoutScale())
	defer readCancel()
	src, err := kafka.NewSource(kafka.SourceConfig{Brokers: brokers, GroupID: "reader", Topics: outTopics, Security: sec,
		MaxWait: 100 * time.Millisecond}, nil)
	require.NoError(t, err)
	defer src.Close(context.Background())
	type read struct {
		msg gateway.Message
		err error
	}
	got := make(chan read, 1)
	go func() {
		msg, _, err := src.Read(readCtx)
		got <- read{msg, err}
	}()
	select {
	case r := <-got:
		require.NoError(t, r.err, "no delivery over TLS+SASL; gateway log:\n%s", stderr.String())
		assert.NotEmpty(t, string(r.msg.Header(gateway.HeaderEventID)))
	case c := <-code:
		t.Fatalf("run stopped with exit code %d before delivering; log:\n%s", c, stderr.String())
	}
	cancel()
	require.Equal(t, 0, <-code, stderr.String())

	// redrive connects the same way: nothing is held.
	var rout, rerr safeBuffer
	r := &app{stdin: strings.NewReader(""), stdout: &rout, stderr: &rerr, environ: nil}
	require.Equal(t, 0, r.run(t.Context(), []string{"redrive", "--config", cfgFile}), rerr.String())
	assert.Contains(t, rout.String(), "0 pending")

	logs := stderr.String() + rerr.String()
	assert.Contains(t, logs, "sasl SCRAM-SHA-512 user=dgw password=[redacted]", "the started line names the security settings")
	assert.NotContains(t, logs+stdout.String()+rout.String(), testPassword, "the password reached a log")

	// A wrong password fails, and the error does not quote it either.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "password"), []byte("wrong-"+testPassword), 0o600))
	var werr safeBuffer
	w := &app{stdin: strings.NewReader(""), stdout: &safeBuffer{}, stderr: &werr, environ: nil}
	wctx, wcancel := context.WithTimeout(t.Context(), 60*testTimeoutScale())
	defer wcancel()
	assert.NotEqual(t, 0, w.run(wctx, []string{"redrive", "--config", cfgFile}))
	assert.NotContains(t, werr.String(), testPassword)
}

func testCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dgw test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert, key
}

// testIssue issues a server certificate for the DNS name (and not for the
// address the broker listens on) or a client certificate.
func testIssue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, client bool) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{name},
	}
	if client {
		tmpl.ExtKeyUsage, tmpl.DNSNames = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writeTestPEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
}

func TestConfigDurations(t *testing.T) {
	tests := []struct {
		name, key, yaml string
		env             []string
		want            time.Duration
		wantErr         bool
	}{
		{name: "session default", key: "session_timeout", want: 0},
		{name: "session from the file", key: "session_timeout", yaml: "session_timeout: 6s\n", want: 6 * time.Second},
		{name: "session from the environment", key: "session_timeout", yaml: "session_timeout: 6s\n", env: []string{"DGW_SESSION_TIMEOUT=45s"}, want: 45 * time.Second},
		{name: "session too short", key: "session_timeout", yaml: "session_timeout: 500ms\n", wantErr: true},
		{name: "session not a duration", key: "session_timeout", env: []string{"DGW_SESSION_TIMEOUT=soon"}, wantErr: true},
		{name: "stall default", key: "stall_timeout", want: 0},
		{name: "stall from the file", key: "stall_timeout", yaml: "stall_timeout: 2m\n", want: 2 * time.Minute},
		{name: "stall from the environment", key: "stall_timeout", yaml: "stall_timeout: 2m\n", env: []string{"DGW_STALL_TIMEOUT=30s"}, want: 30 * time.Second},
		{name: "stall too short", key: "stall_timeout", yaml: "stall_timeout: 1s\n", wantErr: true},
		{name: "stall not a duration", key: "stall_timeout", env: []string{"DGW_STALL_TIMEOUT=later"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "dgw.yaml")
			require.NoError(t, os.WriteFile(file, []byte("brokers: [\"127.0.0.1:9092\"]\n"+tt.yaml), 0o600))
			cfg, err := loadConfig(file, tt.env)
			if tt.wantErr {
				assert.ErrorContains(t, err, tt.key)
				return
			}
			require.NoError(t, err)
			parse := map[string]func() (time.Duration, error){"session_timeout": cfg.sessionTimeout, "stall_timeout": cfg.stallTimeout}[tt.key]
			got, err := parse()
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
