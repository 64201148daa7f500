package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/dgwproject/dgw/gateway/policy"
	"github.com/dgwproject/dgw/gateway/redact"
)

// defaultPolicyPollInterval is policy_poll_interval's default: how often
// run fetches the policy bundle URL and rescans the policy directory (file
// events load a changed directory at once).
const defaultPolicyPollInterval = "30s"

// policyEnv applies the DGW_POLICY_* variables of the policy source.
func (c *Config) policyEnv(env map[string]string) error {
	strs := map[string]*string{
		"DGW_POLICY_BUNDLE_URL": &c.PolicyBundleURL, "DGW_POLICY_BUNDLE_KEY_FILE": &c.PolicyBundleKeyFile,
		"DGW_POLICY_BUNDLE_KEY_ALG": &c.PolicyBundleKeyAlg, "DGW_POLICY_POLL_INTERVAL": &c.PolicyPollInterval,
		"DGW_POLICY_EVALUATOR": &c.PolicyEvaluator,
	}
	for k, p := range strs {
		if v, ok := env[k]; ok {
			*p = v
		}
	}
	if v, ok := env["DGW_POLICY_WATCH"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("DGW_POLICY_WATCH: expected true or false, got %q", v)
		}
		c.PolicyWatch = b
	}
	return nil
}

// validatePolicy checks the policy source settings.
func (c *Config) validatePolicy() []error {
	var errs []error
	if c.PolicyBundleURL != "" {
		if c.PolicyDir != "" {
			errs = append(errs, errors.New("policy_dir and policy_bundle_url: give one policy source, not both"))
		}
		u, err := url.Parse(c.PolicyBundleURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("policy_bundle_url: expected an http(s) URL, got %q", c.PolicyBundleURL))
		}
	} else if c.PolicyBundleKeyFile != "" || c.PolicyBundleKeyAlg != "" {
		errs = append(errs, errors.New("policy_bundle_key_file and policy_bundle_key_alg verify policy_bundle_url, which is not set"))
	}
	if d, err := time.ParseDuration(c.PolicyPollInterval); err != nil || d <= 0 {
		errs = append(errs, fmt.Errorf("policy_poll_interval: expected a positive duration such as 30s, got %q", c.PolicyPollInterval))
	}
	switch policy.Evaluator(c.PolicyEvaluator) {
	case policy.EvaluatorPlan, policy.EvaluatorInterpreter:
	default:
		errs = append(errs, fmt.Errorf("policy_evaluator: expected %s or %s, got %q", policy.EvaluatorPlan, policy.EvaluatorInterpreter, c.PolicyEvaluator))
	}
	return errs
}

// runPolicy is the policy source of `dgw run`, loaded.
type runPolicy struct {
	parts *parts
	watch []policy.WatchOption // nil: nothing to follow
}

// loadRunPolicy builds the parts from the configured policy source (the
// bundle URL, the directory, or the built-in policies) and says how to
// follow it: the bundle URL is polled, the directory watched unless
// policy_watch is false; the built-in policies never change.
func loadRunPolicy(ctx context.Context, cfg Config, keys redact.Keyring, log *slog.Logger) (*runPolicy, error) {
	interval, _ := time.ParseDuration(cfg.PolicyPollInterval) // validated by loadConfig
	evaluator := policy.WithEvaluator(policy.Evaluator(cfg.PolicyEvaluator))
	if cfg.PolicyBundleURL != "" {
		var key *policy.BundleKey
		if cfg.PolicyBundleKeyFile != "" {
			k, err := policy.LoadBundleKey(cfg.PolicyBundleKeyFile, cfg.PolicyBundleKeyAlg)
			if err != nil {
				return nil, failWith(2, fmt.Errorf("policy_bundle_key_file: %w", err))
			}
			key = k
		} else {
			log.Warn("policy bundle signatures are not verified: set policy_bundle_key_file", "url", cfg.PolicyBundleURL)
		}
		client := &http.Client{Timeout: time.Minute}
		fsys, err := policy.FetchBundle(ctx, client, cfg.PolicyBundleURL, key)
		if err != nil {
			return nil, fmt.Errorf("load policy: %w", err)
		}
		p, err := buildPartsFrom(ctx, fsys, cfg.SchemaDir, keys, cfg.MaxRecordBytes, log, evaluator)
		if err != nil {
			return nil, err
		}
		return &runPolicy{parts: p, watch: []policy.WatchOption{policy.WatchBundle(cfg.PolicyBundleURL, key),
			policy.WithHTTPClient(client), policy.WithPollInterval(interval)}}, nil
	}
	p, err := buildParts(ctx, cfg.PolicyDir, cfg.SchemaDir, keys, cfg.MaxRecordBytes, log, evaluator)
	if err != nil {
		return nil, err
	}
	rp := &runPolicy{parts: p}
	if cfg.PolicyDir != "" && cfg.PolicyWatch {
		rp.watch = []policy.WatchOption{policy.WatchDir(cfg.PolicyDir), policy.WithPollInterval(interval)}
	}
	return rp, nil
}

// followPolicy watches the policy source in the background until the
// returned stop is called (it waits for the watcher to finish). Reloads
// are counted with mp (dgw.policy.reloads) and logged; report, when set,
// also gets each one. Without watch options it does nothing.
func followPolicy(ctx context.Context, live *policy.Live, watch []policy.WatchOption, mp metric.MeterProvider,
	report func(policy.Reload), log *slog.Logger) (stop func()) {
	if len(watch) == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	opts := append(append([]policy.WatchOption{}, watch...), policy.WithMeterProvider(mp))
	if report != nil {
		opts = append(opts, policy.WithReloadObserver(report))
	}
	go func() {
		defer close(done)
		if err := live.Watch(ctx, opts...); err != nil {
			log.Error("policy watch stopped; the running revision keeps serving", "error", err.Error())
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// printReload is dev's line about a policy reload.
func printReload(w io.Writer, r policy.Reload) {
	switch {
	case r.Activated:
		fmt.Fprintf(w, "dgw dev: policy revision %s activated (was %s)\n", r.Revision, r.Previous)
	case len(r.Problems) > 0:
		ps := make([]string, len(r.Problems))
		for i, p := range r.Problems {
			ps[i] = "  " + p.String()
		}
		fmt.Fprintf(w, "dgw dev: policy rejected; revision %s keeps serving:\n%s\n", r.Previous, strings.Join(ps, "\n"))
	case r.Err != nil:
		fmt.Fprintf(w, "dgw dev: policy not reloaded; revision %s keeps serving: %v\n", r.Previous, r.Err)
	}
}
