package kafka_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"gopkg.in/yaml.v3"

	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
)

// The embedded broker of adapters/broker is plaintext, as `dgw dev` needs;
// these tests configure kfake directly for SASL and TLS.
func startCluster(t *testing.T, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(1, "pax")}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// roundTrip writes one record with a sink and reads it back with a source,
// both using sec.
func roundTrip(t *testing.T, brokers []string, sec kafka.Security) {
	t.Helper()
	sink, err := kafka.NewSink(kafka.SinkConfig{Brokers: brokers, Security: sec})
	require.NoError(t, err)
	defer func() { require.NoError(t, sink.Close(testCtx(t))) }()
	require.NoError(t, sink.Write(testCtx(t), gateway.Disclosure{Topic: "pax", Key: []byte("k"), Value: []byte("secured")}))

	cfg := fastSource(brokers, "g", "pax")
	cfg.Security = sec
	src := newSource(t, cfg)
	rs := readN(t, src, 1)
	assert.Equal(t, "secured", string(rs[0].msg.Value))
	require.NoError(t, rs[0].ack(testCtx(t)))
	require.NoError(t, src.Close(testCtx(t)))
	require.NoError(t, kafka.AdminConfig{Brokers: brokers, Security: sec}.EnsureTopics(testCtx(t), 1, 1, "created.securely"))
}

func TestSASL(t *testing.T) {
	brokers := startCluster(t, kfake.EnableSASL(),
		kfake.Superuser(kafka.SASLPlain, "plain-user", "plain-secret"),
		kfake.Superuser(kafka.SASLScramSHA256, "scram256-user", "scram256-secret"),
		kfake.Superuser(kafka.SASLScramSHA512, "scram512-user", "scram512-secret"))
	tests := []struct{ mech, user, pass string }{
		{kafka.SASLPlain, "plain-user", "plain-secret"},
		{kafka.SASLScramSHA256, "scram256-user", "scram256-secret"},
		{"scram-sha-512", "scram512-user", "scram512-secret"}, // mechanism names are case-insensitive
	}
	for _, tt := range tests {
		t.Run(tt.mech, func(t *testing.T) {
			roundTrip(t, brokers, kafka.Security{SASLMechanism: tt.mech, Username: tt.user, Password: kafka.Secret(tt.pass)})

			wrong := kafka.Security{SASLMechanism: tt.mech, Username: tt.user, Password: "wrong-password"}
			sink, err := kafka.NewSink(kafka.SinkConfig{Brokers: brokers, Security: wrong, MaxAttempts: 1})
			require.NoError(t, err)
			defer func() { require.NoError(t, sink.Close(testCtx(t))) }()
			err = sink.Write(testCtx(t), gateway.Disclosure{Topic: "pax", Value: []byte("v")})
			// kfake closes the connection on a failed exchange, which kafka-go
			// reports as an unexpected EOF; a real broker names the failure.
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "wrong-password")
		})
	}
}

func TestSASLWithoutCredentialsRefused(t *testing.T) {
	brokers := startCluster(t, kfake.EnableSASL(), kfake.Superuser(kafka.SASLPlain, "u", "p"))
	sink, err := kafka.NewSink(kafka.SinkConfig{Brokers: brokers, MaxAttempts: 1})
	require.NoError(t, err)
	defer func() { require.NoError(t, sink.Close(testCtx(t))) }()
	require.Error(t, sink.Write(testCtx(t), gateway.Disclosure{Topic: "pax", Value: []byte("v")}),
		"a SASL broker refuses an unauthenticated client")
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t)
	serverCert := issue(t, ca, caKey, "broker", false)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	client := issue(t, ca, caKey, "dgw", true)
	writePEM(t, filepath.Join(dir, "client.pem"), "CERTIFICATE", client.Certificate[0])
	keyDER, err := x509.MarshalPKCS8PrivateKey(client.PrivateKey)
	require.NoError(t, err)
	writePEM(t, filepath.Join(dir, "client.key"), "PRIVATE KEY", keyDER)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	brokers := startCluster(t, kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}))

	sec := kafka.Security{CAFile: filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "client.pem"), KeyFile: filepath.Join(dir, "client.key")}
	roundTrip(t, brokers, sec)

	// Without the client certificate the broker refuses the connection.
	noCert := kafka.Security{CAFile: filepath.Join(dir, "ca.pem")}
	sink, err := kafka.NewSink(kafka.SinkConfig{Brokers: brokers, Security: noCert, MaxAttempts: 1})
	require.NoError(t, err)
	defer func() { require.NoError(t, sink.Close(testCtx(t))) }()
	require.Error(t, sink.Write(testCtx(t), gateway.Disclosure{Topic: "pax", Value: []byte("v")}))

	// A CA that did not sign the broker's certificate is refused too.
	other, _ := newCA(t)
	writePEM(t, filepath.Join(dir, "other.pem"), "CERTIFICATE", other.Raw)
	wrongCA := sec
	wrongCA.CAFile = filepath.Join(dir, "other.pem")
	sink2, err := kafka.NewSink(kafka.SinkConfig{Brokers: brokers, Security: wrongCA, MaxAttempts: 1})
	require.NoError(t, err)
	defer func() { require.NoError(t, sink2.Close(testCtx(t))) }()
	err = sink2.Write(testCtx(t), gateway.Disclosure{Topic: "pax", Value: []byte("v")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate")
}

func TestSecurityFileErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	_, err := kafka.NewSink(kafka.SinkConfig{Brokers: []string{"h:1"}, Security: kafka.Security{CAFile: notPEM}})
	require.ErrorContains(t, err, "holds no PEM certificate")
	_, err = kafka.NewSink(kafka.SinkConfig{Brokers: []string{"h:1"}, Security: kafka.Security{CertFile: notPEM, KeyFile: notPEM}})
	require.ErrorContains(t, err, "load client certificate")
	assert.NotContains(t, err.Error(), "not a certificate", "file contents are never quoted")
}

func TestSecurityNeverPrintsSecrets(t *testing.T) {
	sec := kafka.Security{TLS: true, CAFile: "/etc/ca.pem", SASLMechanism: kafka.SASLScramSHA512, Username: "dgw", Password: "hunter2-very-secret"}
	cfg := kafka.SourceConfig{Brokers: []string{"h:1"}, GroupID: "g", Topics: []string{"t"}, Security: sec}
	var jsonLog, textLog bytes.Buffer
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("config", "security", sec, "source", cfg, "password", sec.Password)
	slog.New(slog.NewTextHandler(&textLog, nil)).Info("config", "security", sec, "source", cfg, "password", sec.Password)
	asJSON, err := json.Marshal(cfg)
	require.NoError(t, err)
	asYAML, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	for _, s := range []string{fmt.Sprint(sec), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%v", &cfg),
		jsonLog.String(), textLog.String(), string(asJSON), string(asYAML)} {
		assert.NotContains(t, s, "hunter2", s)
	}
	assert.Contains(t, string(asJSON), `"Password":"[redacted]"`)

	// Decoding still fills a secret like a string.
	var back kafka.Security
	require.NoError(t, json.Unmarshal([]byte(`{"Password":"from-file"}`), &back))
	assert.Equal(t, kafka.Secret("from-file"), back.Password)
	assert.Equal(t, "tls ca=/etc/ca.pem, sasl SCRAM-SHA-512 user=dgw password=[redacted]", sec.String())
	assert.Equal(t, "plaintext", kafka.Security{}.String())
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "dgw test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert, key
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, client bool) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.IPAddresses = nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
}
