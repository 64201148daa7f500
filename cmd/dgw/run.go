package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway/redact"
)

func (a *app) runCmd() *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the gateway against any Kafka",
		Long: `run consumes the source topics with a consumer group, decides and redacts per
recipient, and writes the recipients' topics, the dead-letter and the held topic.
Several processes with the same group share the partitions. SIGTERM drains
in-flight events and commits what was delivered. Configuration comes from the
file and DGW_* environment variables (see README). Hash keys must come from
hash_keys_file or DGW_HASH_KEY_<RECIPIENT>, and the audit key from
audit_key_file or DGW_AUDIT_KEY: run never uses development keys. Before it
serves, run reads the compacted subject topic to its end (consents,
objections, erasures) and checks that the audit topic keeps its entries.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configFile, a.environ)
			if err != nil {
				return failWith(2, err)
			}
			sec, err := cfg.kafkaSecurity()
			if err != nil {
				return failWith(2, err)
			}
			session, _ := cfg.sessionTimeout() // validated by loadConfig
			stall, _ := cfg.stallTimeout()
			log, err := newLogger(cfg.LogFormat, cfg.LogLevel, a.stderr)
			if err != nil {
				return failWith(2, err)
			}
			if a.tuneGC != nil {
				gc, _ := parseGC(cfg.GCPercent, cfg.MemoryLimit) // validated by loadConfig
				a.tuneGC(gc, a.environ, log)
			}
			obs, err := startObservability(cmd.Context(), observabilityConfig{
				adminAddr: cfg.AdminAddr, environ: a.environ, log: log})
			if err != nil {
				return failWith(2, fmt.Errorf("telemetry: %w", err))
			}
			defer closeObservability(cmd.Context(), obs, log)
			policyLoaded := obs.startupChecks()
			var keys redact.Keyring
			if cfg.HashKeysFile != "" {
				if keys, err = redact.LoadKeyring(cfg.HashKeysFile); err != nil {
					return failWith(2, fmt.Errorf("hash_keys_file: %w", err))
				}
			} else if keys, err = redact.KeyringFromEnv(a.environ); err != nil {
				return failWith(2, err)
			}
			akey, err := auditKeyFor(cfg.AuditKeyFile, a.environ)
			if err != nil {
				return failWith(2, fmt.Errorf("audit key: %w", err))
			}
			rp, err := loadRunPolicy(cmd.Context(), cfg, keys, log)
			if err != nil {
				return err
			}
			p := rp.parts
			retention, _ := parseRetention(cfg.AuditRetention) // validated by loadConfig
			acct, err := newAccountability(p.set, cfg.AuditTopic, cfg.SubjectTopic, akey, retention)
			if err != nil {
				return failWith(2, err)
			}
			policyLoaded.Set(true)
			topics := cfg.SourceTopics
			if len(topics) == 0 {
				topics = defaultSourceTopics(p.set)
			}
			if cfg.CreateTopics {
				all := append(append([]string{cfg.DeadLetterTopic, cfg.HeldTopic}, topics...), recipientTopics(p.recipients)...)
				admin := kafka.AdminConfig{Brokers: cfg.Brokers, ClientID: cfg.ClientID, Security: sec}
				if err := admin.EnsureTopics(cmd.Context(), cfg.Partitions, 1, all...); err != nil {
					return fmt.Errorf("create topics: %w", err)
				}
				if err := acct.ensureTopics(cmd.Context(), admin, cfg.Partitions, 1); err != nil {
					return fmt.Errorf("create topics: %w", err)
				}
			}
			// A changed policy directory or bundle is loaded while the
			// gateway runs, once the new revision passes every check.
			defer followPolicy(cmd.Context(), p.decider, rp.watch, obs.providers.Meter, nil, log)()
			return runGateway(cmd.Context(), gatewayOptions{
				brokers: cfg.Brokers, clientID: cfg.ClientID, group: cfg.Group, topics: topics,
				deadLetter: cfg.DeadLetterTopic, held: cfg.HeldTopic, workers: cfg.Workers, queue: cfg.Queue,
				maxInFlightBytes: int64(cfg.MaxInFlightBytes), parts: p, log: log, security: sec, sessionTimeout: session, stallTimeout: stall,
				ready: obs.ready, extra: obs.gatewayOptions(), acct: acct,
			})
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "configuration file (YAML); DGW_* variables override it")
	return cmd
}
