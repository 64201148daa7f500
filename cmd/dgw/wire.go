package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/policy"
	"github.com/dgwproject/dgw/gateway/redact"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/policies"
	"github.com/dgwproject/dgw/schemas"
)

// subjectRequestType is consumed into subject state, never disclosed.
const subjectRequestType = "subject_request"

// parts are the core components every command builds the same way.
type parts struct {
	set *schema.Set
	// decider serves the policy revision active now; run and dev replace
	// it as the policy directory or bundle changes (policy_live.go).
	decider    *policy.Live
	recipients []*gateway.Recipient
	redactor   *redact.Redactor
	decoder    *codec.Decoder
	maxRecord  int // the decoder's record size limit
}

func dirOr(dir string, embedded fs.FS) fs.FS {
	if dir == "" {
		return embedded
	}
	return os.DirFS(dir)
}

// buildParts loads schemas, policy, registry and keys. Any problem is fatal:
// dgw never starts with a partial policy or a recipient without its key.
// popts are further policy options (dgw bench sizes the decision cache).
func buildParts(ctx context.Context, policyDir, schemaDir string, keys redact.Keyring, maxRecord int, log *slog.Logger, popts ...policy.Option) (*parts, error) {
	return buildPartsFrom(ctx, dirOr(policyDir, policies.FS), schemaDir, keys, maxRecord, log, popts...)
}

// buildPartsFrom is buildParts with the policy as a file system (run
// fetches an OPA bundle into one).
func buildPartsFrom(ctx context.Context, policyFS fs.FS, schemaDir string, keys redact.Keyring, maxRecord int, log *slog.Logger, popts ...policy.Option) (*parts, error) {
	set, err := schema.Load(dirOr(schemaDir, schemas.FS))
	if err != nil {
		return nil, fmt.Errorf("load schemas: %w", err)
	}
	decider, err := policy.NewLive(ctx, policyFS,
		append([]policy.Option{policy.WithCatalogue(set.Catalogue()), policy.WithLogger(log)}, popts...)...)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	recipients := decider.Recipients()
	red, err := redact.New(set, recipients, keys)
	if err != nil {
		return nil, fmt.Errorf("prepare recipients: %w", err)
	}
	dec := codec.NewDecoder(set, codec.WithMaxSize(maxRecord))
	return &parts{set: set, decider: decider, recipients: recipients, redactor: red, decoder: dec, maxRecord: maxRecord}, nil
}

// sourceTopic is the default topic of an event type.
func sourceTopic(eventType string) string { return "pax." + eventType }

func defaultSourceTopics(set *schema.Set) []string {
	var out []string
	for _, s := range set.All() {
		if s.EventType != subjectRequestType {
			out = append(out, sourceTopic(s.EventType))
		}
	}
	return out
}

func recipientTopics(rs []*gateway.Recipient) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Topic
	}
	return out
}

func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("log level: expected debug, info, warn or error, got %q", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

func schemasFS() fs.FS { return schemas.FS }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
