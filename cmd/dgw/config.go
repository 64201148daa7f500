package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dgwproject/dgw/adapters/telemetry"
	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/policy"
)

// Config is the `dgw run` configuration file. Every field can be overridden
// by an environment variable (see envOverrides), so a container can take
// the file from a ConfigMap and the secrets from its environment.
type Config struct {
	Brokers         []string `yaml:"brokers"`
	ClientID        string   `yaml:"client_id"`
	Group           string   `yaml:"group"`
	SourceTopics    []string `yaml:"source_topics"`
	DeadLetterTopic string   `yaml:"dead_letter_topic"`
	HeldTopic       string   `yaml:"held_topic"`
	// PolicyDir and SchemaDir default to the policies and schemas built
	// into the binary.
	PolicyDir string `yaml:"policy_dir"`
	SchemaDir string `yaml:"schema_dir"`
	// PolicyWatch (default true) loads every change of policy_dir while
	// dgw runs, once the new revision passes its checks (policy_live.go).
	PolicyWatch bool `yaml:"policy_watch"`
	// PolicyBundleURL, instead of policy_dir, takes the policy from an OPA
	// bundle (.tar.gz), fetched at start and polled; PolicyBundleKeyFile
	// (a PEM public key or a shared secret; PolicyBundleKeyAlg when it
	// cannot be inferred) makes a valid signature mandatory.
	PolicyBundleURL     string `yaml:"policy_bundle_url"`
	PolicyBundleKeyFile string `yaml:"policy_bundle_key_file"`
	PolicyBundleKeyAlg  string `yaml:"policy_bundle_key_alg"`
	// PolicyPollInterval is how often the bundle URL is polled and the
	// policy directory rescanned (a Go duration).
	PolicyPollInterval string `yaml:"policy_poll_interval"`
	// PolicyEvaluator is how the decisions the cache does not hold are
	// evaluated: "plan" (the policy compiled to OPA's plan, once it decides
	// the sample contexts as OPA's interpreter does; else the interpreter)
	// or "interpreter" (OPA's interpreter only).
	PolicyEvaluator string `yaml:"policy_evaluator"`
	// HashKeysFile holds one secret per recipient for the hash operator;
	// DGW_HASH_KEY_<RECIPIENT> variables are read as well.
	HashKeysFile string `yaml:"hash_keys_file"`
	// AuditTopic receives the hash-chained audit trail; SubjectTopic is the
	// compacted topic of subject requests (consent, objection, erasure).
	AuditTopic   string `yaml:"audit_topic"`
	SubjectTopic string `yaml:"subject_topic"`
	// AuditKeyFile holds the audit key (pseudonyms and MACs of the trail);
	// DGW_AUDIT_KEY is read otherwise. run has no development fallback.
	AuditKeyFile string `yaml:"audit_key_file"`
	// AuditRetention is how long the audit topic keeps entries (a Go
	// duration, or "forever"): created with it, and checked at start.
	AuditRetention string `yaml:"audit_retention"`
	Workers        int    `yaml:"workers"`
	Queue          int    `yaml:"queue"`
	MaxRecordBytes int    `yaml:"max_record_bytes"`
	// MaxInFlightBytes bounds the record bytes of the events in flight.
	MaxInFlightBytes int    `yaml:"max_in_flight_bytes"`
	CreateTopics     bool   `yaml:"create_topics"`
	Partitions       int    `yaml:"partitions"`
	LogFormat        string `yaml:"log_format"` // json or text
	LogLevel         string `yaml:"log_level"`
	// TLS and SASL apply to every Kafka connection (config_security.go).
	TLS  TLSConfig  `yaml:"tls"`
	SASL SASLConfig `yaml:"sasl"`
	// SessionTimeout is how long the group waits for a silent member (a
	// process that died) before its partitions move; empty: 30s.
	SessionTimeout string `yaml:"session_timeout"`
	// StallTimeout is how long an assigned partition with records to read
	// may show no fetch progress before its fetch is restarted and counted
	// as a stall; empty: 1m.
	StallTimeout string `yaml:"stall_timeout"`
	// AdminAddr is where /metrics, /healthz and /readyz are served
	// (host:port); empty for no admin server.
	AdminAddr string `yaml:"admin_addr"`
	// GCPercent and MemoryLimit tune the garbage collector (gc.go); the
	// GOGC and GOMEMLIMIT variables win over them.
	GCPercent   int    `yaml:"gc_percent"`
	MemoryLimit string `yaml:"memory_limit"`
}

func defaultConfig() Config {
	return Config{
		ClientID:         "dgw",
		Group:            "dgw",
		DeadLetterTopic:  "dgw.deadletter",
		HeldTopic:        "dgw.held",
		AuditTopic:       defaultAuditTopic,
		SubjectTopic:     defaultSubjectTopic,
		AuditRetention:   "52596h", // defaultAuditRetention: six years
		Workers:          gateway.DefaultWorkers,
		Queue:            gateway.DefaultQueue,
		MaxRecordBytes:   1 << 20,
		MaxInFlightBytes: gateway.DefaultMaxInFlightBytes,
		Partitions:       3,
		LogFormat:        "json",
		LogLevel:         "info",
		AdminAddr:        telemetry.DefaultAdminAddr,
		GCPercent:        defaultGCPercent,
		MemoryLimit:      defaultMemoryLimit,

		// The policy source (policy_live.go).
		PolicyWatch:        true,
		PolicyPollInterval: defaultPolicyPollInterval,
		PolicyEvaluator:    string(policy.EvaluatorPlan),
	}
}

// loadConfig reads path (if not empty), then applies environment overrides.
func loadConfig(path string, environ []string) (Config, error) {
	cfg := defaultConfig()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := cfg.envOverrides(environ); err != nil {
		return cfg, err
	}
	return cfg, cfg.validate()
}

func (c *Config) envOverrides(environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "DGW_") {
			env[k] = v
		}
	}
	list := func(s string) []string {
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	strs := map[string]*string{
		"DGW_CLIENT_ID": &c.ClientID, "DGW_GROUP": &c.Group, "DGW_DEAD_LETTER_TOPIC": &c.DeadLetterTopic,
		"DGW_HELD_TOPIC": &c.HeldTopic, "DGW_POLICY_DIR": &c.PolicyDir, "DGW_SCHEMA_DIR": &c.SchemaDir,
		"DGW_HASH_KEYS_FILE": &c.HashKeysFile, "DGW_AUDIT_TOPIC": &c.AuditTopic, "DGW_SUBJECT_TOPIC": &c.SubjectTopic,
		"DGW_AUDIT_KEY_FILE": &c.AuditKeyFile, "DGW_AUDIT_RETENTION": &c.AuditRetention,
		"DGW_LOG_FORMAT": &c.LogFormat, "DGW_LOG_LEVEL": &c.LogLevel,
		"DGW_ADMIN_ADDR": &c.AdminAddr, "DGW_MEMORY_LIMIT": &c.MemoryLimit,
	}
	for k, p := range strs {
		if v, ok := env[k]; ok {
			*p = v
		}
	}
	if err := c.policyEnv(env); err != nil {
		return err
	}
	if err := c.securityEnv(env); err != nil {
		return err
	}
	if v, ok := env["DGW_SESSION_TIMEOUT"]; ok {
		c.SessionTimeout = v
	}
	if v, ok := env["DGW_STALL_TIMEOUT"]; ok {
		c.StallTimeout = v
	}
	ints := map[string]*int{"DGW_WORKERS": &c.Workers, "DGW_QUEUE": &c.Queue,
		"DGW_MAX_RECORD_BYTES": &c.MaxRecordBytes, "DGW_MAX_IN_FLIGHT_BYTES": &c.MaxInFlightBytes,
		"DGW_PARTITIONS": &c.Partitions, "DGW_GC_PERCENT": &c.GCPercent}
	for k, p := range ints {
		if v, ok := env[k]; ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s: expected an integer, got %q", k, v)
			}
			*p = n
		}
	}
	if v, ok := env["DGW_BROKERS"]; ok {
		c.Brokers = list(v)
	}
	if v, ok := env["DGW_SOURCE_TOPICS"]; ok {
		c.SourceTopics = list(v)
	}
	if v, ok := env["DGW_CREATE_TOPICS"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("DGW_CREATE_TOPICS: expected true or false, got %q", v)
		}
		c.CreateTopics = b
	}
	return nil
}

func (c *Config) validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one broker address is required (or DGW_BROKERS)"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("group: a consumer group id is required"))
	}
	if c.DeadLetterTopic == "" || c.HeldTopic == "" {
		errs = append(errs, errors.New("dead_letter_topic and held_topic must not be empty"))
	}
	errs = append(errs, c.validateAccountability()...)
	if c.Workers <= 0 {
		errs = append(errs, fmt.Errorf("workers: expected a positive integer, got %d", c.Workers))
	}
	if c.Queue < 0 {
		errs = append(errs, fmt.Errorf("queue: expected zero or more, got %d", c.Queue))
	}
	if c.MaxRecordBytes <= 0 {
		errs = append(errs, fmt.Errorf("max_record_bytes: expected a positive integer, got %d", c.MaxRecordBytes))
	}
	if c.MaxInFlightBytes <= 0 {
		errs = append(errs, fmt.Errorf("max_in_flight_bytes: expected a positive integer, got %d", c.MaxInFlightBytes))
	}
	errs = append(errs, c.validateSecurity()...)
	errs = append(errs, c.validatePolicy()...)
	if _, err := c.sessionTimeout(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.stallTimeout(); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseGC(c.GCPercent, c.MemoryLimit); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("log_format: expected json or text, got %q", c.LogFormat))
	}
	if c.AdminAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
			errs = append(errs, fmt.Errorf("admin_addr: expected host:port (or empty for no admin server), got %q", c.AdminAddr))
		}
	}
	return errors.Join(errs...)
}
