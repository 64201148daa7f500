// Package broker runs an embedded, in-process Kafka-protocol broker for
// `dgw dev` and for tests that need a real broker without Docker or a Kafka
// install. It is a thin wrapper around franz-go's kfake: one node, topics
// created up front, listening on one configured address. Any Kafka client
// speaks to it over the wire protocol: kafka-go (including consumer groups),
// franz-go and librdkafka clients such as kcat.
//
// It keeps everything in memory unless Config.DataDir names a directory,
// and is not meant for production traffic.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultAddr is the address used when Config.Addr is empty: loopback and a
// port chosen by the operating system.
const DefaultAddr = "127.0.0.1:0"

// Config configures the embedded broker.
type Config struct {
	// Addr is the host:port to listen on, e.g. "127.0.0.1:9092", or
	// "127.0.0.1:0" for a free port chosen by the operating system (what
	// tests use). The broker advertises the address it listens on, so the
	// host must be one clients can dial: an unspecified host such as
	// 0.0.0.0 is refused. Default DefaultAddr.
	Addr string
	// Partitions is the partition count of the topics created at start and
	// of topics created later with -1 partitions. Default 1.
	Partitions int
	// Topics are created when the broker starts.
	Topics []string
	// Logger receives the broker's warnings and errors. Default: discard.
	Logger *slog.Logger
	// DataDir, when set, persists topics, records, committed offsets and
	// producer state to this directory (created if needed), and a broker
	// started on it again reloads them: a restart keeps the log. Every
	// record is written to the directory before it is acknowledged, so an
	// acknowledged record survives a crash (SIGKILL) of the broker's
	// process. Empty: memory only.
	DataDir string
	// Sync, with DataDir, also fsyncs every write before acknowledging it,
	// so acknowledged records survive a crash of the machine too, at a
	// large cost in throughput (Kafka's default is not to).
	Sync bool
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Partitions == 0 {
		c.Partitions = 1
	}
}

// Validate reports every problem with the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if err := validateAddr(c.Addr); err != nil {
		errs = append(errs, err)
	}
	if c.Partitions < 1 || c.Partitions > maxPartitions {
		errs = append(errs, fmt.Errorf("partitions: expected 1..%d, got %d", maxPartitions, c.Partitions))
	}
	for _, t := range c.Topics {
		if err := ValidateTopic(t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// maxPartitions bounds what a development broker is asked to hold.
const maxPartitions = 1000

func validateAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("addr %q: expected host:port, e.g. 127.0.0.1:9092: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("addr %q: a host is required, e.g. 127.0.0.1:%s", addr, port)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("addr %q: the broker advertises its listen address to clients, so it must be dialable; use 127.0.0.1 or a concrete interface address instead of %s", addr, host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("addr %q: port must be a number in 0..65535", addr)
	}
	return nil
}

// ValidateTopic checks a topic name against Kafka's rules: 1 to 249
// characters from [a-zA-Z0-9._-], and not "." or "..".
func ValidateTopic(t string) error {
	if t == "" {
		return errors.New("topic: name must not be empty")
	}
	if len(t) > 249 {
		return fmt.Errorf("topic %.40q...: name longer than 249 characters", t)
	}
	if t == "." || t == ".." {
		return fmt.Errorf("topic %q: name must not be . or ..", t)
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic %q: only ASCII letters, digits, '.', '_' and '-' are allowed", t)
		}
	}
	return nil
}

// Broker is a running embedded broker. It is safe for concurrent use.
type Broker struct {
	cluster    *kfake.Cluster
	addrs      []string
	partitions int

	mu     sync.Mutex
	admin  *kgo.Client // lazily created for CreateTopics
	closed bool
}

// Start validates cfg, starts the broker and creates cfg.Topics. It returns
// once the broker accepts connections.
func Start(cfg Config) (*Broker, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("broker config: %w", err)
	}
	addr := cfg.Addr
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("dgw-embedded"),
		kfake.DefaultNumPartitions(cfg.Partitions),
		// kfake always asks for 127.0.0.1 with a random port; listen on
		// the configured address instead.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, addr)
		}),
		kfake.WithLogger(logger{cfg.Logger}),
	}
	if len(cfg.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(cfg.Partitions), cfg.Topics...))
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
		if cfg.Sync {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start broker on %s: %w", addr, err)
	}
	b := &Broker{cluster: c, addrs: c.ListenAddrs(), partitions: cfg.Partitions}
	if cfg.DataDir != "" && len(cfg.Topics) > 0 {
		// State reloaded from the directory replaces the seed topics:
		// create those it does not have yet.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.CreateTopics(ctx, cfg.Partitions, cfg.Topics...); err != nil {
			b.Close()
			return nil, fmt.Errorf("start broker on %s: %w", addr, err)
		}
	}
	return b, nil
}

// Addrs returns the bootstrap addresses (host:port) clients should use.
func (b *Broker) Addrs() []string { return append([]string(nil), b.addrs...) }

// CreateTopics creates topics with the given number of partitions (-1 or 0:
// the broker's configured default). Topics that already exist are left as
// they are.
func (b *Broker) CreateTopics(ctx context.Context, partitions int, topics ...string) error {
	if partitions < -1 || partitions > maxPartitions {
		return fmt.Errorf("create topics: partitions: expected -1..%d, got %d", maxPartitions, partitions)
	}
	if partitions == 0 {
		partitions = -1
	}
	for _, t := range topics {
		if err := ValidateTopic(t); err != nil {
			return fmt.Errorf("create topics: %w", err)
		}
	}
	if len(topics) == 0 {
		return nil
	}
	cl, err := b.adminClient()
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10_000
	if dl, ok := ctx.Deadline(); ok {
		req.TimeoutMillis = int32(max(time.Until(dl).Milliseconds(), 1))
	}
	for _, t := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = t
		rt.NumPartitions = int32(partitions)
		rt.ReplicationFactor = -1
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	var errs []error
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %s: %w", rt.Topic, err))
		}
	}
	return errors.Join(errs...)
}

func (b *Broker) adminClient() (*kgo.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errors.New("broker closed")
	}
	if b.admin == nil {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.addrs...), kgo.ClientID("dgw-embedded-admin"))
		if err != nil {
			return nil, err
		}
		b.admin = cl
	}
	return b.admin, nil
}

// Compact runs the log cleaner now: compacted topics (cleanup.policy=compact)
// keep only the latest record per key, and retention.ms and retention.bytes
// are applied. The broker also does this on its own every hour.
func (b *Broker) Compact() { b.cluster.Compact() }

// Close stops the broker and frees its address; without a DataDir its data
// is dropped, with one it is saved there. Clients still connected see their
// connections closed. Close is idempotent.
func (b *Broker) Close() {
	b.mu.Lock()
	admin := b.admin
	b.admin, b.closed = nil, true
	b.mu.Unlock()
	if admin != nil {
		admin.Close()
	}
	b.cluster.Close()
}

// logger forwards kfake's warnings and errors to slog. Debug and info
// levels are dropped: they describe individual requests and are noise here.
type logger struct{ l *slog.Logger }

func (l logger) Logf(level kfake.LogLevel, msg string, args ...any) {
	if l.l == nil {
		return
	}
	var lv slog.Level
	switch level {
	case kfake.LogLevelError:
		lv = slog.LevelError
	case kfake.LogLevelWarn:
		lv = slog.LevelWarn
	default:
		return
	}
	l.l.Log(context.Background(), lv, "embedded broker: "+strings.TrimSpace(fmt.Sprintf(msg, args...)))
}
