package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadConfig: any configuration file and environment either loads
// into a configuration that passes validation or is refused with an
// error; neither the error nor the printed configuration ever shows the
// SASL password.
// envValue is what the fuzzed variable is set to: another variable's
// value may be quoted in an error, the password may not.
const envValue = "fuzzed value 1"

func FuzzLoadConfig(f *testing.F) {
	sample, err := os.ReadFile(filepath.Join("..", "..", "deploy", "dgw.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(sample), "")
	f.Add("brokers: [\"127.0.0.1:9092\"]\nsasl:\n  mechanism: scram-sha-512\n  username: dgw\n", "DGW_SASL_PASSWORD")
	f.Add("brokers: [a:1]\ntls:\n  ca_file: /nope\n  cert_file: x\n", "DGW_TLS_ENABLED")
	f.Add("brokers: [a:1]\nsession_timeout: 1h\nworkers: -1\n", "DGW_WORKERS")
	f.Add("brokers: [a:1]\nsasl: {mechanism: plain, username: u, password: "+testPassword+"}\n", "")
	f.Add("{{{", "DGW_BROKERS")
	f.Fuzz(func(t *testing.T, yaml, envName string) {
		file := filepath.Join(t.TempDir(), "dgw.yaml")
		if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		env := []string{"DGW_SASL_PASSWORD=" + testPassword}
		if strings.HasPrefix(envName, "DGW_") && !strings.ContainsAny(envName, "=\x00") {
			env = append(env, envName+"="+envValue)
		}
		cfg, err := loadConfig(file, env)
		if err != nil {
			if strings.Contains(err.Error(), testPassword) && !strings.Contains(yaml, testPassword) {
				t.Fatalf("the error shows the password: %v", err)
			}
			return
		}
		if err := cfg.validate(); err != nil {
			t.Fatalf("loaded a configuration that does not validate: %v", err)
		}
		for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), cfg.SASL.String()} {
			if strings.Contains(s, testPassword) && !strings.Contains(yaml, testPassword) {
				t.Fatalf("the configuration prints the password: %s", s)
			}
		}
		if _, err := cfg.kafkaSecurity(); err != nil && strings.Contains(err.Error(), testPassword) {
			t.Fatalf("the security error shows the password: %v", err)
		}
	})
}
