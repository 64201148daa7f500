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
hash_keys_file or DGW_HASH_KEY_<RECIPIENT>: run never uses development keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configFile, a.environ)
			if err != nil {
				return failWith(2, err)
			}
			log, err := newLogger(cfg.LogFormat, cfg.LogLevel, a.stderr)
			if err != nil {
				return failWith(2, err)
			}
			var keys redact.Keyring
			if cfg.HashKeysFile != "" {
				if keys, err = redact.LoadKeyring(cfg.HashKeysFile); err != nil {
					return failWith(2, fmt.Errorf("hash_keys_file: %w", err))
				}
			} else if keys, err = redact.KeyringFromEnv(a.environ); err != nil {
				return failWith(2, err)
			}
			p, err := buildParts(cmd.Context(), cfg.PolicyDir, cfg.SchemaDir, keys, cfg.MaxRecordBytes, log)
			if err != nil {
				return err
			}
			topics := cfg.SourceTopics
			if len(topics) == 0 {
				topics = defaultSourceTopics(p.set)
			}
			if cfg.CreateTopics {
				all := append(append([]string{cfg.DeadLetterTopic, cfg.HeldTopic}, topics...), recipientTopics(p.recipients)...)
				if err := kafka.EnsureTopics(cmd.Context(), cfg.Brokers, cfg.Partitions, 1, all...); err != nil {
					return fmt.Errorf("create topics: %w", err)
				}
			}
			return runGateway(cmd.Context(), gatewayOptions{
				brokers: cfg.Brokers, clientID: cfg.ClientID, group: cfg.Group, topics: topics,
				deadLetter: cfg.DeadLetterTopic, held: cfg.HeldTopic, workers: cfg.Workers, queue: cfg.Queue,
				parts: p, log: log,
			})
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "configuration file (YAML); DGW_* variables override it")
	return cmd
}
