package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/redact"
)

type redriveOptions struct {
	from       string
	configFile string
	brokers    []string
	group      string
	dryRun     bool
	limit      int
	json       bool
}

// Where redrive reads from.
const (
	fromHeld       = "held"
	fromDeadLetter = "deadletter"
)

func (a *app) redriveCmd() *cobra.Command {
	var o redriveOptions
	cmd := &cobra.Command{
		Use:   "redrive --from held --config FILE",
		Short: "Replay parked records through the current policy",
		Long: `redrive replays the held topic once the cause of the holds is fixed (a policy
error corrected, a recipient's topic or broker back). Every held record names
the one recipient it was held for (header dgw-recipient); it is decided,
redacted and delivered again for that recipient only, so the recipients that
already received the event get no duplicate. Records are read up to the end
offsets found at start: a record held again by this run is appended behind
them and waits for the next run. redrive commits its own consumer group's
offset on the held topic (default group dgw-redrive) only after each replay
is acknowledged, so an interrupted redrive resumes where it stopped.

The dead-letter topic is not redriven by default: it holds bad bytes (not
Avro, unknown schema, invalid values, malformed headers) that no policy change
fixes. --from deadletter replays it for every recipient, e.g. after deploying
a schema that was missing; records still bad return to the dead-letter topic.

Configuration is that of run (--config and DGW_* variables, the same hash
and audit keys); like run, redrive decides with the current subject state
and audits every decision before its delivery. --brokers overrides the
brokers. --dry-run decides and redacts without writing or committing
anything and reports what would happen. The exit code is 1 when records were
held or dead-lettered again. Run one redrive of a topic at a time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch o.from {
			case fromHeld, fromDeadLetter:
			case "dead-letter", "dgw.deadletter":
				o.from = fromDeadLetter
			default:
				return failWith(2, fmt.Errorf("--from: expected held or deadletter, got %q", o.from))
			}
			if o.limit < 0 {
				return failWith(2, fmt.Errorf("--limit: expected zero (no limit) or more, got %d", o.limit))
			}
			if o.group == "" {
				return failWith(2, errors.New("--group must not be empty"))
			}
			return a.redrive(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.from, "from", fromHeld, "topic to replay: held, or deadletter (bad bytes; only when asked)")
	f.StringVar(&o.configFile, "config", "", "configuration file, as for run; DGW_* variables override it")
	f.StringSliceVar(&o.brokers, "brokers", nil, "Kafka bootstrap addresses (override the configuration)")
	f.StringVar(&o.group, "group", "dgw-redrive", "consumer group whose offsets on the replayed topic record progress")
	f.BoolVar(&o.dryRun, "dry-run", false, "decide and redact, but write and commit nothing; report what would happen")
	f.IntVar(&o.limit, "limit", 0, "replay at most this many records (0: all up to the end offsets at start)")
	f.BoolVar(&o.json, "json", false, "print the report as JSON")
	return cmd
}

// hashKeys loads the hash keys as run does: never development keys.
func hashKeys(cfg *Config, environ []string) (redact.Keyring, error) {
	if cfg.HashKeysFile != "" {
		keys, err := redact.LoadKeyring(cfg.HashKeysFile)
		if err != nil {
			return redact.Keyring{}, fmt.Errorf("hash_keys_file: %w", err)
		}
		return keys, nil
	}
	return redact.KeyringFromEnv(environ)
}

// redriveReport is what redrive prints.
type redriveReport struct {
	Topic   string `json:"topic"`
	Group   string `json:"group"`
	DryRun  bool   `json:"dry_run,omitempty"`
	Pending int64  `json:"pending"` // records between the group's offset and the end at start
	Read    int64  `json:"read"`
	// Skipped held records name a recipient the registry no longer has;
	// they are committed and reported, not replayed.
	Skipped      int64                    `json:"skipped_unknown_recipient"`
	Delivered    int64                    `json:"delivered"`
	Refused      int64                    `json:"refused"`
	HeldAgain    map[gateway.Reason]int64 `json:"held_again"`
	DeadLettered map[gateway.Reason]int64 `json:"dead_lettered"`
	Recipients   []gateway.RecipientStats `json:"recipients"`
}

func (a *app) redrive(ctx context.Context, o redriveOptions) error {
	environ := a.environ
	if len(o.brokers) > 0 {
		// The flag wins over the file and DGW_BROKERS.
		environ = append(append([]string(nil), environ...), "DGW_BROKERS="+strings.Join(o.brokers, ","))
	}
	cfg, err := loadConfig(o.configFile, environ)
	if err != nil {
		return failWith(2, err)
	}
	sec, err := cfg.kafkaSecurity()
	if err != nil {
		return failWith(2, err)
	}
	session, _ := cfg.sessionTimeout() // validated by loadConfig
	log, err := newLogger(cfg.LogFormat, cfg.LogLevel, a.stderr)
	if err != nil {
		return failWith(2, err)
	}
	keys, err := hashKeys(&cfg, a.environ)
	if err != nil {
		return failWith(2, err)
	}
	akey, err := auditKeyFor(cfg.AuditKeyFile, a.environ)
	if err != nil {
		return failWith(2, fmt.Errorf("audit key: %w", err))
	}
	topic := cfg.HeldTopic
	if o.from == fromDeadLetter {
		topic = cfg.DeadLetterTopic
	}
	admin := kafka.AdminConfig{Brokers: cfg.Brokers, ClientID: cfg.ClientID + "-redrive", Security: sec}
	lag, err := admin.GroupOffsets(ctx, o.group, topic)
	if err != nil {
		return fmt.Errorf("redrive: %w", err)
	}
	rep := redriveReport{Topic: topic, Group: o.group, DryRun: o.dryRun}
	ends := map[int]int64{}
	for _, l := range lag {
		ends[l.Partition] = l.End
		rep.Pending += l.Remaining()
	}
	stats := gateway.NewStats()
	if rep.Pending > 0 {
		p, err := buildParts(ctx, cfg.PolicyDir, cfg.SchemaDir, keys, cfg.MaxRecordBytes, log)
		if err != nil {
			return err
		}
		// As accountable as run: the current subject state (consents,
		// objections, erasures) decides, and every decision is audited
		// before its delivery.
		retention, _ := parseRetention(cfg.AuditRetention) // validated by loadConfig
		acct, err := newAccountability(p.set, cfg.AuditTopic, cfg.SubjectTopic, akey, retention)
		if err != nil {
			return failWith(2, err)
		}
		registry := map[string]bool{}
		for _, r := range p.recipients {
			registry[r.ID] = true
		}
		rs := &redriveSource{from: o.from, ends: ends, done: map[int]bool{}, limit: int64(o.limit),
			registry: registry, dryRun: o.dryRun, log: log}
		for _, l := range lag {
			if l.Remaining() == 0 {
				rs.done[l.Partition] = true
			}
		}
		opts := gatewayOptions{
			brokers: cfg.Brokers, clientID: cfg.ClientID + "-redrive", group: o.group, topics: []string{topic},
			deadLetter: cfg.DeadLetterTopic, held: cfg.HeldTopic, workers: cfg.Workers, queue: cfg.Queue,
			maxInFlightBytes: int64(cfg.MaxInFlightBytes), parts: p, log: log, security: sec,
			sessionTimeout: session, observers: []gateway.Observer{stats}, acct: acct,
			wrapSource: func(src gateway.Source) gateway.Source { rs.src = src; return rs },
		}
		if o.dryRun {
			opts.sink = discardSink{}
		}
		if err := runGateway(ctx, opts); err != nil {
			return fmt.Errorf("redrive: %w", err)
		}
		rep.Read, rep.Skipped = rs.counts()
	}
	rep.fill(stats.Snapshot())
	if o.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.print(a.stdout)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redrive interrupted after %d records; run it again to continue: %w", rep.Read, err)
	}
	if again := rep.parkedAgain(); again > 0 && !o.dryRun {
		return failWith(1, fmt.Errorf("%d records were parked again: their cause is not fixed", again))
	}
	return nil
}

func (r *redriveReport) fill(s gateway.StatsSnapshot) {
	r.HeldAgain, r.DeadLettered = map[gateway.Reason]int64{}, s.DeadLetter
	for _, rs := range s.Recipients {
		if rs.Delivered+rs.Refused+rs.Held == 0 {
			continue
		}
		r.Delivered += rs.Delivered
		r.Refused += rs.Refused
		for reason, n := range rs.HeldBy {
			r.HeldAgain[reason] += n
		}
		r.Recipients = append(r.Recipients, rs)
	}
}

func (r *redriveReport) parkedAgain() int64 {
	var n int64
	for _, v := range r.HeldAgain {
		n += v
	}
	for _, v := range r.DeadLettered {
		n += v
	}
	return n
}

func (r *redriveReport) print(w io.Writer) {
	verb := "redrive"
	if r.DryRun {
		verb = "redrive (dry run: nothing written or committed)"
	}
	fmt.Fprintf(w, "%s from %s, group %s: %d pending, %d read, %d skipped (recipient no longer registered)\n",
		verb, r.Topic, r.Group, r.Pending, r.Read, r.Skipped)
	fmt.Fprintf(w, "delivered %d, refused %d, held again %d%s, dead-lettered %d%s\n", r.Delivered, r.Refused,
		sum(r.HeldAgain), byReason(r.HeldAgain), sum(r.DeadLettered), byReason(r.DeadLettered))
	if len(r.Recipients) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RECIPIENT\tDELIVERED\tREFUSED\tHELD")
	for _, rs := range r.Recipients {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", rs.ID, rs.Delivered, rs.Refused, rs.Held)
	}
	tw.Flush()
}

func sum(m map[gateway.Reason]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func byReason(m map[gateway.Reason]int64) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for r, n := range m {
		parts = append(parts, fmt.Sprintf("%s %d", r, n))
	}
	sort.Strings(parts)
	return " (" + strings.Join(parts, ", ") + ")"
}

// redriveSource reads parked records up to the end offsets taken at start
// and hands them to the pipeline as the source records they were: source
// topic, partition and offset from the dgw-source-* headers, dgw's own
// headers removed and, for held records, only the recipient they were held
// for. Acks commit the parked topic's offsets (not in a dry run).
type redriveSource struct {
	src      gateway.Source
	from     string
	ends     map[int]int64 // partition → end offset at start
	limit    int64
	registry map[string]bool
	dryRun   bool
	log      *slog.Logger

	mu      sync.Mutex
	done    map[int]bool // partitions read up to their end
	read    int64
	skipped int64
}

func (s *redriveSource) counts() (read, skipped int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read, s.skipped
}

func (s *redriveSource) finished() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return (s.limit > 0 && s.read >= s.limit) || len(s.done) >= len(s.ends)
}

// Read returns the next parked record before the end offsets, or
// gateway.ErrClosed once every partition is read up to its end (or the
// limit is reached). Records at or after the end were written after the
// redrive started, possibly by itself; they are neither handed out nor
// acked, so they stay for the next run.
func (s *redriveSource) Read(ctx context.Context) (gateway.Message, gateway.AckFunc, error) {
	for {
		if s.finished() {
			return gateway.Message{}, nil, gateway.ErrClosed
		}
		m, ack, err := s.src.Read(ctx)
		if err != nil {
			return m, ack, err
		}
		end, known := s.ends[m.Partition]
		if !known {
			continue // a partition added after the start: next run
		}
		s.mu.Lock()
		if m.Offset >= end {
			s.done[m.Partition] = true
			s.mu.Unlock()
			continue
		}
		if m.Offset == end-1 {
			s.done[m.Partition] = true
		}
		s.read++
		s.mu.Unlock()
		if s.dryRun {
			ack = func(context.Context) error { return nil }
		}
		orig := restoreParked(&m, s.from == fromHeld)
		if s.from == fromHeld && (len(orig.Recipients) != 1 || !s.registry[orig.Recipients[0]]) {
			// Held for a recipient the registry no longer has (or a
			// record without one): nobody to replay it for.
			s.log.Warn("redrive: held record names no registered recipient; skipped",
				"partition", m.Partition, "offset", m.Offset, "recipient", strings.Join(orig.Recipients, ","))
			s.mu.Lock()
			s.skipped++
			s.mu.Unlock()
			if err := ack(ctx); err != nil {
				return gateway.Message{}, nil, fmt.Errorf("ack skipped record: %w", err)
			}
			continue
		}
		return orig, ack, nil
	}
}

// Close closes the parked topic's source.
func (s *redriveSource) Close(ctx context.Context) error { return s.src.Close(ctx) }

// restoreParked turns a parked record back into its source record.
func restoreParked(m *gateway.Message, held bool) gateway.Message {
	out := *m
	out.Headers = nil
	for _, h := range m.Headers {
		if gateway.CheckHeaders([]gateway.Header{h}) == nil {
			out.Headers = append(out.Headers, h)
		}
	}
	if t := m.Header(gateway.HeaderSourceTopic); len(t) > 0 {
		out.Topic = string(t)
	}
	if p, err := strconv.Atoi(string(m.Header(gateway.HeaderSourcePartition))); err == nil {
		out.Partition = p
	}
	if off, err := strconv.ParseInt(string(m.Header(gateway.HeaderSourceOffset)), 10, 64); err == nil {
		out.Offset = off
	}
	out.Recipients = nil
	if held {
		out.Recipients = []string{}
		if r := m.Header(gateway.HeaderRecipient); len(r) > 0 {
			out.Recipients = []string{string(r)}
		}
	}
	return out
}

// discardSink acknowledges every write without sending it (dry run).
type discardSink struct{}

func (discardSink) Write(context.Context, ...gateway.Disclosure) error { return nil }
func (discardSink) Close(context.Context) error                        { return nil }
