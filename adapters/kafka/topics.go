package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// AdminConfig configures topic administration.
type AdminConfig struct {
	// Brokers are bootstrap addresses, host:port. Required.
	Brokers []string
	// ClientID names this client in broker logs. Default "dgw".
	ClientID string
	// Timeout bounds the whole operation, unless ctx ends sooner.
	// Default 30s.
	Timeout time.Duration
	// Security holds optional TLS and SASL settings.
	Security Security
}

func (c *AdminConfig) setDefaults() {
	if c.ClientID == "" {
		c.ClientID = "dgw"
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
}

// Validate reports every problem at once. It expects defaults applied.
func (c *AdminConfig) Validate() error {
	errs := validateBrokers(c.Brokers)
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: expected a positive duration, got %s", c.Timeout))
	}
	if err := c.Security.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// EnsureTopics creates the topics that do not exist yet, with the given
// partition count and replication factor (-1: the broker's defaults).
// Existing topics are left as they are, whatever their partition count.
// kafka-go waits until the cluster's metadata lists the new topics.
func EnsureTopics(ctx context.Context, brokers []string, partitions, replication int, topics ...string) error {
	return AdminConfig{Brokers: brokers}.EnsureTopics(ctx, partitions, replication, topics...)
}

// EnsureTopics is the package-level EnsureTopics with c's connection
// settings.
func (c AdminConfig) EnsureTopics(ctx context.Context, partitions, replication int, topics ...string) error {
	return c.EnsureTopicsWithConfig(ctx, partitions, replication, nil, topics...)
}

// EnsureTopicsWithConfig is EnsureTopics that gives the topics it creates
// the topic-level configuration configs, e.g. cleanup.policy=compact or
// retention.ms. Topics that already exist keep their configuration: read
// it with TopicConfig.
func (c AdminConfig) EnsureTopicsWithConfig(ctx context.Context, partitions, replication int, configs map[string]string, topics ...string) error {
	c.setDefaults()
	errs := []error{c.Validate()}
	if partitions == 0 || partitions < -1 {
		errs = append(errs, fmt.Errorf("partitions: expected a positive count or -1, got %d", partitions))
	}
	if replication == 0 || replication < -1 || replication > 32767 {
		errs = append(errs, fmt.Errorf("replication: expected a positive factor or -1, got %d", replication))
	}
	for _, t := range topics {
		if err := validateTopic(t); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ensure topics: %w", err)
	}
	if len(topics) == 0 {
		return nil
	}
	tlsCfg, err := c.Security.tlsConfig()
	if err != nil {
		return fmt.Errorf("ensure topics: %w", err)
	}
	tr := &kafkago.Transport{ClientID: c.ClientID, TLS: tlsCfg, SASL: c.Security.mechanism(), DialTimeout: c.Timeout}
	defer tr.CloseIdleConnections()
	cl := &kafkago.Client{Addr: kafkago.TCP(c.Brokers...), Timeout: c.Timeout, Transport: tr}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()

	seen := map[string]bool{}
	req := &kafkago.CreateTopicsRequest{}
	for _, t := range topics {
		if !seen[t] {
			seen[t] = true
			tc := kafkago.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: replication}
			for _, name := range sortedKeys(configs) {
				tc.ConfigEntries = append(tc.ConfigEntries, kafkago.ConfigEntry{ConfigName: name, ConfigValue: configs[name]})
			}
			req.Topics = append(req.Topics, tc)
		}
	}
	resp, err := cl.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("ensure topics: %w", err)
	}
	names := make([]string, 0, len(resp.Errors))
	for t := range resp.Errors {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		if err := resp.Errors[t]; err != nil && !errors.Is(err, kafkago.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %s: %w", t, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ensure topics: %w", err)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TopicConfig returns the topic-level configuration of topic as the broker
// reports it, defaults included (e.g. cleanup.policy, retention.ms).
func (c AdminConfig) TopicConfig(ctx context.Context, topic string) (map[string]string, error) {
	c.setDefaults()
	errs := []error{c.Validate()}
	if err := validateTopic(topic); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("topic config: %w", err)
	}
	tlsCfg, err := c.Security.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("topic config: %w", err)
	}
	tr := &kafkago.Transport{ClientID: c.ClientID, TLS: tlsCfg, SASL: c.Security.mechanism(), DialTimeout: c.Timeout}
	defer tr.CloseIdleConnections()
	cl := &kafkago.Client{Addr: kafkago.TCP(c.Brokers...), Timeout: c.Timeout, Transport: tr}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	resp, err := cl.DescribeConfigs(ctx, &kafkago.DescribeConfigsRequest{Resources: []kafkago.DescribeConfigRequestResource{
		{ResourceType: kafkago.ResourceTypeTopic, ResourceName: topic}}})
	if err != nil {
		return nil, fmt.Errorf("topic config of %s: %w", topic, err)
	}
	out := map[string]string{}
	for _, r := range resp.Resources {
		if r.Error != nil {
			return nil, fmt.Errorf("topic config of %s: %w", topic, r.Error)
		}
		for _, e := range r.ConfigEntries {
			out[e.ConfigName] = e.ConfigValue
		}
	}
	return out, nil
}
