package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// Start offsets for a consumer group without committed offsets.
const (
	StartEarliest = "earliest"
	StartLatest   = "latest"
)

// SourceConfig configures a Source.
type SourceConfig struct {
	// Brokers are bootstrap addresses, host:port. Required.
	Brokers []string
	// ClientID names this client in broker logs and quotas. Default "dgw".
	ClientID string
	// GroupID is the consumer group. Required: the group's committed
	// offsets are what makes the gateway resume where it stopped.
	GroupID string
	// Topics are the source topics, read as one consumer group. Required.
	Topics []string
	// StartOffset is where a group without committed offsets starts:
	// "earliest" (default) or "latest".
	StartOffset string
	// CommitInterval is how often acknowledged offsets are committed.
	// Close commits whatever is committable regardless. Default 500ms.
	CommitInterval time.Duration
	// MaxWait bounds how long a fetch waits for new records. Default 500ms.
	MaxWait time.Duration
	// HeartbeatInterval, SessionTimeout and RebalanceTimeout tune group
	// membership. Defaults 3s, 30s and 30s (kafka-go's).
	HeartbeatInterval time.Duration
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	// JoinGroupBackoff is the wait before joining the group again after a
	// failed attempt. Default 5s.
	JoinGroupBackoff time.Duration
	// DialTimeout bounds connecting to a broker. Default 10s.
	DialTimeout time.Duration
	// RevokeDrain is how long a member whose group generation ends (a
	// rebalance) waits for the records it handed out to be acked before it
	// commits them and gives its partitions up, so their next owner does
	// not read them again. It does not heartbeat meanwhile, so it must be
	// shorter than SessionTimeout and RebalanceTimeout. Default 5s, or a
	// quarter of SessionTimeout or half RebalanceTimeout if less.
	RevokeDrain time.Duration
	// StallTimeout: a partition of this member's assignment whose fetch
	// has waited this long while the broker holds records after the next
	// offset is reported as stalled and its fetcher restarted. Default 1m.
	StallTimeout time.Duration
	// Security holds optional TLS and SASL settings.
	Security Security
}

func (c *SourceConfig) setDefaults() {
	if c.ClientID == "" {
		c.ClientID = "dgw"
	}
	if c.StartOffset == "" {
		c.StartOffset = StartEarliest
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = 500 * time.Millisecond
	}
	if c.MaxWait == 0 {
		c.MaxWait = 500 * time.Millisecond
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 3 * time.Second
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 30 * time.Second
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = 30 * time.Second
	}
	if c.JoinGroupBackoff == 0 {
		c.JoinGroupBackoff = 5 * time.Second
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.RevokeDrain == 0 {
		c.RevokeDrain = min(5*time.Second, c.RebalanceTimeout/2, c.SessionTimeout/4)
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = time.Minute
	}
}

// Validate reports every problem at once. It expects defaults applied, as
// NewSource does; zero durations are reported as errors.
func (c *SourceConfig) Validate() error {
	var errs []error
	errs = append(errs, validateBrokers(c.Brokers)...)
	if c.GroupID == "" {
		errs = append(errs, errors.New("group_id: a consumer group id is required"))
	}
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New("topics: at least one source topic is required"))
	}
	seen := map[string]bool{}
	for _, t := range c.Topics {
		if err := validateTopic(t); err != nil {
			errs = append(errs, fmt.Errorf("topics: %w", err))
		} else if seen[t] {
			errs = append(errs, fmt.Errorf("topics: %s is listed twice", t))
		}
		seen[t] = true
	}
	if c.StartOffset != StartEarliest && c.StartOffset != StartLatest {
		errs = append(errs, fmt.Errorf("start_offset: expected %s or %s, got %q", StartEarliest, StartLatest, c.StartOffset))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"commit_interval", c.CommitInterval}, {"max_wait", c.MaxWait}, {"heartbeat_interval", c.HeartbeatInterval},
		{"session_timeout", c.SessionTimeout}, {"rebalance_timeout", c.RebalanceTimeout},
		{"join_group_backoff", c.JoinGroupBackoff}, {"dial_timeout", c.DialTimeout},
		{"revoke_drain", c.RevokeDrain}, {"stall_timeout", c.StallTimeout},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: expected a positive duration, got %s", d.name, d.v))
		}
	}
	if c.HeartbeatInterval > 0 && c.SessionTimeout > 0 && c.HeartbeatInterval >= c.SessionTimeout {
		errs = append(errs, fmt.Errorf("heartbeat_interval (%s) must be shorter than session_timeout (%s)", c.HeartbeatInterval, c.SessionTimeout))
	}
	if c.RevokeDrain > 0 && (c.RevokeDrain >= c.RebalanceTimeout || c.RevokeDrain >= c.SessionTimeout) {
		errs = append(errs, fmt.Errorf("revoke_drain (%s) must be shorter than session_timeout (%s) and rebalance_timeout (%s)",
			c.RevokeDrain, c.SessionTimeout, c.RebalanceTimeout))
	}
	if err := c.Security.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c *SourceConfig) startOffset() int64 {
	if c.StartOffset == StartLatest {
		return kafkago.LastOffset
	}
	return kafkago.FirstOffset
}

// SinkConfig configures a Sink.
type SinkConfig struct {
	// Brokers are bootstrap addresses, host:port. Required.
	Brokers []string
	// ClientID names this client in broker logs and quotas. Default "dgw".
	ClientID string
	// BatchSize is the most records one produce request carries for a
	// partition. There is no linger: records for a broker with fewer than
	// MaxInFlight requests of the sink in flight are sent at once, and what
	// arrives while MaxInFlight are in flight goes in the next request.
	// Default 100.
	BatchSize int
	// MaxInFlight is the most produce requests of the sink in flight to one
	// broker, as the Java client's max.in.flight.requests.per.connection.
	// A partition is never in two requests at once, so each partition's
	// records are written in order whatever the value; more requests in
	// flight let a record for one partition go while another partition's
	// request waits for its acknowledgement, fewer put more records in
	// each request. Default 5.
	MaxInFlight int
	// BatchBytes is the most bytes one produce request carries for a
	// partition; a single larger record fails with a
	// kafkago.MessageTooLargeError. Keep it at or below the broker's
	// message.max.bytes. Default 1 MiB (1048576), the broker's default.
	BatchBytes int64
	// MaxAttempts is how often a batch is sent before its records fail.
	// Default 5.
	MaxAttempts int
	// WriteTimeout bounds one produce request. Default 10s.
	WriteTimeout time.Duration
	// DialTimeout bounds connecting to a broker. Default 10s.
	DialTimeout time.Duration
	// Security holds optional TLS and SASL settings.
	Security Security
}

func (c *SinkConfig) setDefaults() {
	if c.ClientID == "" {
		c.ClientID = "dgw"
	}
	if c.BatchSize == 0 {
		c.BatchSize = 100
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = 1 << 20
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 5
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 10 * time.Second
	}
}

// Validate reports every problem at once. It expects defaults applied, as
// NewSink does.
func (c *SinkConfig) Validate() error {
	var errs []error
	errs = append(errs, validateBrokers(c.Brokers)...)
	if c.BatchSize <= 0 {
		errs = append(errs, fmt.Errorf("batch_size: expected a positive integer, got %d", c.BatchSize))
	}
	if c.BatchBytes <= 0 {
		errs = append(errs, fmt.Errorf("batch_bytes: expected a positive integer, got %d", c.BatchBytes))
	}
	if c.MaxInFlight <= 0 {
		errs = append(errs, fmt.Errorf("max_in_flight: expected a positive integer, got %d", c.MaxInFlight))
	}
	if c.MaxAttempts <= 0 {
		errs = append(errs, fmt.Errorf("max_attempts: expected a positive integer, got %d", c.MaxAttempts))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("write_timeout: expected a positive duration, got %s", c.WriteTimeout))
	}
	if c.DialTimeout <= 0 {
		errs = append(errs, fmt.Errorf("dial_timeout: expected a positive duration, got %s", c.DialTimeout))
	}
	if err := c.Security.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func validateBrokers(brokers []string) []error {
	if len(brokers) == 0 {
		return []error{errors.New("brokers: at least one broker address is required")}
	}
	var errs []error
	for _, b := range brokers {
		if _, _, err := net.SplitHostPort(b); err != nil || strings.HasPrefix(b, ":") {
			errs = append(errs, fmt.Errorf("brokers: %q is not host:port", b))
		}
	}
	return errs
}

// validateTopic checks Kafka's topic name rules.
func validateTopic(t string) error {
	if t == "" {
		return errors.New("topic name must not be empty")
	}
	if len(t) > 249 {
		return fmt.Errorf("topic %.40q...: longer than 249 characters", t)
	}
	if t == "." || t == ".." {
		return fmt.Errorf("topic %q: must not be . or ..", t)
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic %q: only ASCII letters, digits, '.', '_' and '-' are allowed", t)
		}
	}
	return nil
}

// kafkaLogger routes kafka-go's printf logging to slog. kafka-go's messages
// name topics, partitions, offsets and addresses, never record contents.
// A fetch that outlives kafka-go's own safety deadline (a busy broker
// answering a long poll late) is retried by kafka-go at once and loses
// nothing, so its "i/o timeout" report is logged at debug, not as a warning.
func kafkaLogger(log *slog.Logger, level slog.Level) kafkago.LoggerFunc {
	return func(msg string, args ...any) {
		ctx := context.Background()
		text := strings.TrimSpace(fmt.Sprintf(msg, args...))
		lv := level
		if lv > slog.LevelDebug && strings.HasSuffix(text, "i/o timeout") {
			lv = slog.LevelDebug
		}
		if !log.Enabled(ctx, lv) {
			return
		}
		log.Log(ctx, lv, "kafka-go: "+text)
	}
}
