package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/audit"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/gateway/subjects"
	"github.com/dgwproject/dgw/schemas"
)

// Accountability defaults.
const (
	defaultAuditTopic   = "dgw.audit"
	defaultSubjectTopic = "subject.requests"
	// defaultAuditRetention keeps audit evidence six years: the five years
	// a PNR recipient may keep what it received (PNR Directive Art 12),
	// plus a year to answer a claim or a supervisory inquiry about the last
	// of it. See README "Audit trail and retention".
	defaultAuditRetention = 6 * 8766 * time.Hour
	// devAuditSeed derives the audit key of `dgw dev`; `--dev-key` on the
	// audit commands uses the same.
	devAuditSeed = "dgw-dev"
)

// errStopped means the context ended before the gateway started serving.
var errStopped = errors.New("stopped before serving")

// accountability is what makes a gateway run accountable: the audit trail
// it writes and the subject requests it obeys.
type accountability struct {
	auditTopic   string
	subjectTopic string
	key          audit.Key
	// retention is the audit topic's retention; -1 keeps records forever.
	retention time.Duration
	codec     *audit.Codec
	subjects  *subjects.Codec
}

func newAccountability(set *schema.Set, auditTopic, subjectTopic string, key audit.Key, retention time.Duration) (*accountability, error) {
	if auditTopic == "" || subjectTopic == "" || auditTopic == subjectTopic {
		return nil, fmt.Errorf("audit and subject topics must be named and distinct, got %q and %q", auditTopic, subjectTopic)
	}
	if !key.Valid() {
		return nil, errors.New("no audit key")
	}
	c, err := auditCodec()
	if err != nil {
		return nil, err
	}
	sc, err := subjects.NewCodec(set)
	if err != nil {
		return nil, err
	}
	return &accountability{auditTopic: auditTopic, subjectTopic: subjectTopic, key: key, retention: retention,
		codec: c, subjects: sc}, nil
}

// auditCodec reads the audit entry schema built into the binary: the
// trail's format belongs to dgw, not to a deployment's schema_dir.
func auditCodec() (*audit.Codec, error) {
	avsc, err := fs.ReadFile(schemas.FS, "audit.avsc")
	if err != nil {
		return nil, fmt.Errorf("audit schema: %w", err)
	}
	return audit.NewCodec(avsc)
}

// retentionMs is the retention.ms value of a retention.
func retentionMs(d time.Duration) string {
	if d < 0 {
		return "-1"
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// parseRetention reads "forever" or a Go duration such as 52596h.
func parseRetention(s string) (time.Duration, error) {
	if strings.EqualFold(s, "forever") {
		return -1, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("expected a positive duration such as 52596h (six years) or forever, got %q", s)
	}
	return d, nil
}

// auditTopicConfig and subjectTopicConfig are the topic-level settings dgw
// creates these topics with and checks at start.
func (a *accountability) auditTopicConfig() map[string]string {
	return map[string]string{"cleanup.policy": "delete", "retention.ms": retentionMs(a.retention)}
}

func subjectTopicConfig() map[string]string { return map[string]string{"cleanup.policy": "compact"} }

// ensureTopics creates the audit topic (delete policy, the configured
// retention) and the compacted subject topic when they do not exist.
func (a *accountability) ensureTopics(ctx context.Context, admin kafka.AdminConfig, partitions, replication int) error {
	if err := admin.EnsureTopicsWithConfig(ctx, partitions, replication, a.auditTopicConfig(), a.auditTopic); err != nil {
		return err
	}
	return admin.EnsureTopicsWithConfig(ctx, partitions, replication, subjectTopicConfig(), a.subjectTopic)
}

// checkTopics refuses topics that would lose what they must keep: a
// subject topic that deletes old records forgets withdrawn consents and
// erasures; an audit topic that compacts keeps one entry per chain, and
// one with a shorter retention than configured destroys evidence early.
func (a *accountability) checkTopics(ctx context.Context, admin kafka.AdminConfig) error {
	sc, err := admin.TopicConfig(ctx, a.subjectTopic)
	if err != nil {
		return fmt.Errorf("subject topic: %w (create it with cleanup.policy=compact, or set create_topics)", err)
	}
	if p := sc["cleanup.policy"]; p != "compact" {
		return fmt.Errorf("subject topic %s has cleanup.policy=%s: old requests would expire and withdrawn consents, objections and erasures be forgotten; set cleanup.policy=compact", a.subjectTopic, p)
	}
	ac, err := admin.TopicConfig(ctx, a.auditTopic)
	if err != nil {
		return fmt.Errorf("audit topic: %w (create it, or set create_topics)", err)
	}
	if strings.Contains(ac["cleanup.policy"], "compact") {
		return fmt.Errorf("audit topic %s has cleanup.policy=%s: compaction would keep one entry per chain and destroy the trail; set cleanup.policy=delete", a.auditTopic, ac["cleanup.policy"])
	}
	if a.retention != 0 {
		have, err := strconv.ParseInt(ac["retention.ms"], 10, 64)
		if err != nil {
			return fmt.Errorf("audit topic %s: unreadable retention.ms %q", a.auditTopic, ac["retention.ms"])
		}
		if want := a.retention.Milliseconds(); have >= 0 && (a.retention < 0 || have < want) {
			return fmt.Errorf("audit topic %s keeps records for retention.ms=%d, less than the configured audit_retention (%s): evidence would be deleted early; raise retention.ms or lower audit_retention",
				a.auditTopic, have, retentionMs(a.retention))
		}
	}
	return nil
}

// accountableRun is the accountability part of one running gateway.
type accountableRun struct {
	decoder gateway.Decoder
	options []gateway.Option
	stop    func()
}

// start checks the topics, rebuilds the subject state from the compacted
// subject topic — reading it to its end before anything is served — keeps
// it live, and returns the decoder that puts the state in every decision
// context and the auditor option. If following the subject topic fails
// later, fail is called: a gateway with stale subject state stops.
func (a *accountability) start(ctx context.Context, o *gatewayOptions, fail context.CancelCauseFunc) (*accountableRun, error) {
	admin := kafka.AdminConfig{Brokers: o.brokers, ClientID: o.clientID, Security: o.security}
	if err := a.checkTopics(ctx, admin); err != nil {
		if ctx.Err() != nil {
			return nil, errStopped
		}
		return nil, err
	}
	var loaded *readyFlag
	if o.ready != nil {
		loaded = o.ready.Flag("subjects", "subject state not loaded")
	}
	store := gateway.NewSubjectStore()
	// The follower outlives ctx by the pipeline's drain; stop ends it.
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	caughtUp := make(chan struct{})
	followed := make(chan error, 1)
	// records counts what fn applied; Follow serialises fn and caughtUp,
	// so caughtUp takes the counts as of catching up, while fn goes on
	// applying newer requests.
	records, loadedRecords, loadedPassengers := 0, 0, 0
	go func() {
		followed <- kafka.Follow(fctx, kafka.ReaderConfig{Brokers: o.brokers, ClientID: o.clientID + "-subjects",
			Topic: a.subjectTopic, Security: o.security}, func(m gateway.Message) error {
			records++
			if err := a.subjects.Apply(store, m); err != nil {
				msg := "subject request not applied as written"
				if errors.Is(err, subjects.ErrUnknownPurpose) {
					// Applied, but a typo or another tool's word for a
					// purpose: the passenger's wish has no effect yet.
					msg = "subject request names a purpose no decision reads"
				}
				o.log.Error(msg, "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "error", err.Error())
			}
			return nil
		}, func() {
			loadedRecords, loadedPassengers = records, store.Len()
			close(caughtUp)
		})
	}()
	began := time.Now()
	select {
	case <-caughtUp:
	case err := <-followed:
		cancel()
		return nil, fmt.Errorf("subject state from %s: %w", a.subjectTopic, err)
	case <-ctx.Done():
		cancel()
		<-followed
		return nil, errStopped
	}
	o.log.Info("subject state loaded", "topic", a.subjectTopic, "records", loadedRecords, "passengers", loadedPassengers,
		"took", time.Since(began).Round(time.Millisecond).String())
	if loaded != nil {
		loaded.Set(true)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := <-followed; err != nil && fctx.Err() == nil {
			o.log.Error("following the subject topic failed; stopping the gateway", "topic", a.subjectTopic, "error", err.Error())
			if loaded != nil {
				loaded.Set(false)
			}
			fail(fmt.Errorf("subject state from %s: %w", a.subjectTopic, err))
		}
	}()
	aud, err := audit.New(a.codec, a.key, a.auditTopic, audit.WithChainPrefix(o.clientID))
	if err != nil {
		cancel()
		<-done
		return nil, err
	}
	o.log.Info("audit trail", "topic", a.auditTopic, "chains", aud.Instance()+"-w*", "key_id", a.key.ID())
	dec := codec.NewDecoder(o.parts.set, codec.WithMaxSize(o.parts.maxRecord), codec.WithSubjectState(store))
	return &accountableRun{decoder: dec, options: []gateway.Option{gateway.WithAuditor(aud)},
		stop: func() { cancel(); <-done }}, nil
}

// auditKeyFor resolves the audit key of `dgw run`: audit_key_file, else
// DGW_AUDIT_KEY. There is no development fallback.
func auditKeyFor(file string, environ []string) (audit.Key, error) {
	if file != "" {
		return audit.LoadKey(file)
	}
	k, err := audit.KeyFromEnv(environ)
	if errors.Is(err, audit.ErrNoKey) {
		return audit.Key{}, errors.New("no audit key: set audit_key_file or DGW_AUDIT_KEY (run never uses a development key)")
	}
	return k, err
}

// validateAccountability checks the accountability keys of a Config.
func (c *Config) validateAccountability() []error {
	var errs []error
	if c.AuditTopic == "" || c.SubjectTopic == "" {
		errs = append(errs, errors.New("audit_topic and subject_topic must not be empty"))
	}
	for _, t := range []string{c.DeadLetterTopic, c.HeldTopic} {
		if t != "" && (t == c.AuditTopic || t == c.SubjectTopic) {
			errs = append(errs, fmt.Errorf("audit_topic and subject_topic must differ from the dead-letter and held topics, got %s twice", t))
		}
	}
	if c.AuditTopic != "" && c.AuditTopic == c.SubjectTopic {
		errs = append(errs, fmt.Errorf("audit_topic and subject_topic must differ, got %s twice", c.AuditTopic))
	}
	if _, err := parseRetention(c.AuditRetention); err != nil {
		errs = append(errs, fmt.Errorf("audit_retention: %w", err))
	}
	return errs
}
