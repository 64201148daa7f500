package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/spf13/cobra"

	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/gateway/subjects"
	"github.com/dgwproject/dgw/schemas"
)

// marketingPurposes is what "marketing" stands for in a subject request:
// every purpose that rests on marketing consent (privacy policy §7.1.1(5)
// to (8), §16): campaigns, advertising, surveys and research, which is
// also the consent market research recipients need (§9.1.5).
var marketingPurposes = []string{"campaign", "advertising", "survey", "research"}

// crossBorderConsent is the consent key the policy reads for transfers
// abroad that rest on consent (Law 94-V Art 16; GDPR Art 49(1)(a)); no
// event schema carries it, so it is listed here.
const crossBorderConsent = "cross_border"

func (a *app) subjectCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "subject",
		Short: "Publish data-subject requests: consent, objection, erasure",
	}
	cmd.AddCommand(a.subjectRequestCmd())
	return cmd
}

type subjectRequestOptions struct {
	clientFlags
	passenger string
	withdraw  string
	consent   string
	object    string
	unobject  string
	erase     bool
	channel   string
	verified  bool
	source    string
}

func (a *app) subjectRequestCmd() *cobra.Command {
	var o subjectRequestOptions
	cmd := &cobra.Command{
		Use:   "request --passenger ID (--withdraw PURPOSE | --consent PURPOSE | --object PURPOSE | --unobject PURPOSE | --erase)",
		Short: "Publish one subject request to the compacted subject topic",
		Long: `request publishes a data subject's request as an Avro subject_request record
to the compacted subject topic, where every running gateway applies it to the
next events of that passenger, and rebuilds it at every start:
  --withdraw PURPOSE   consent withdrawn (§16; GDPR Art 7(3))
  --consent PURPOSE    consent given
  --object PURPOSE     objection to a purpose (§8; GDPR Art 21)
  --unobject PURPOSE   objection withdrawn
  --erase              erasure (§10; GDPR Art 17): from then on only authorities
                       the airline must inform by law receive the passenger's data
PURPOSE is a purpose of the event schemas (campaign, advertising, survey,
research, contract, service, ...), a consent of the schemas (health_data,
analytics_cookies, marketing_cookies), cross_border, or marketing, which stands
for campaign, advertising, survey and research. Records are keyed
<passenger id>|<consent|objection|erasure>|<purpose>, so compaction keeps the
latest decision per passenger and purpose.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.subjectRequest(cmd, &o)
		},
	}
	o.addConn(cmd.Flags(), defaultSubjectTopic, "subject topic")
	f := cmd.Flags()
	f.StringVar(&o.passenger, "passenger", "", "passenger id (required)")
	f.StringVar(&o.withdraw, "withdraw", "", "withdraw consent to PURPOSE")
	f.StringVar(&o.consent, "consent", "", "record consent to PURPOSE")
	f.StringVar(&o.object, "object", "", "record an objection to PURPOSE")
	f.StringVar(&o.unobject, "unobject", "", "withdraw an objection to PURPOSE")
	f.BoolVar(&o.erase, "erase", false, "record an erasure request")
	f.StringVar(&o.channel, "channel", "contact_centre", "how the request came in: "+strings.Join(subjects.Channels, ", "))
	f.BoolVar(&o.verified, "identity-verified", false, "the passenger's identity was checked (§8: written request with ID)")
	f.StringVar(&o.source, "source-system", "dgw-cli", "source_system of the record")
	return cmd
}

func (a *app) subjectRequest(cmd *cobra.Command, o *subjectRequestOptions) error {
	if strings.TrimSpace(o.passenger) == "" {
		return failWith(2, errors.New("--passenger is required"))
	}
	type action struct {
		kind    gateway.SubjectRequestKind
		purpose string
	}
	var acts []action
	for _, x := range []struct {
		purpose string
		kind    gateway.SubjectRequestKind
	}{{o.withdraw, gateway.ConsentWithdrawn}, {o.consent, gateway.ConsentGiven}, {o.object, gateway.Objection},
		{o.unobject, gateway.ObjectionWithdrawn}} {
		if x.purpose != "" {
			acts = append(acts, action{x.kind, x.purpose})
		}
	}
	if o.erase {
		acts = append(acts, action{kind: gateway.Erasure})
	}
	if len(acts) != 1 {
		return failWith(2, errors.New("give exactly one of --withdraw, --consent, --object, --unobject, --erase"))
	}
	if !slices.Contains(subjects.Channels, o.channel) {
		return failWith(2, fmt.Errorf("--channel: expected one of %s, got %q", strings.Join(subjects.Channels, ", "), o.channel))
	}
	setup, err := o.resolve(cmd, a.environ, false)
	if err != nil {
		return failWith(2, err)
	}
	set, err := schema.Load(schemas.FS)
	if err != nil {
		return err
	}
	codec, err := subjects.NewCodec(set)
	if err != nil {
		return err
	}
	act := acts[0]
	purposes := []string{""}
	if act.kind != gateway.Erasure {
		known := knownPurposes(set)
		switch {
		case act.purpose == "marketing":
			purposes = marketingPurposes
		case known[act.purpose]:
			purposes = []string{act.purpose}
		default:
			names := make([]string, 0, len(known)+1)
			for p := range known {
				names = append(names, p)
			}
			sort.Strings(names)
			return failWith(2, fmt.Errorf("unknown purpose %q: expected marketing or one of %s", act.purpose, strings.Join(names, ", ")))
		}
	}
	now := time.Now().UTC()
	topic := o.subjectTopic(setup)
	var ds []gateway.Disclosure
	var done []string
	for _, p := range purposes {
		id := make([]byte, 8)
		if _, err := rand.Read(id); err != nil {
			return err
		}
		key, value, err := codec.Encode(subjects.Request{
			SubjectRequest: gateway.SubjectRequest{SubjectID: o.passenger, Kind: act.kind, Purpose: p},
			EventID:        "sr-" + hex.EncodeToString(id), OccurredAt: now, SourceSystem: o.source,
			Channel: o.channel, VerifiedIdentity: o.verified,
		})
		if err != nil {
			return failWith(2, err)
		}
		ds = append(ds, gateway.Disclosure{Topic: topic, Key: key, Value: value})
		done = append(done, strings.TrimSpace(string(act.kind)+" "+p))
	}
	sink, err := kafka.NewSink(kafka.SinkConfig{Brokers: setup.brokers, ClientID: "dgw-subject-request", Security: setup.security})
	if err != nil {
		return failWith(2, err)
	}
	werr := sink.Write(cmd.Context(), ds...)
	if err := sink.Close(context.WithoutCancel(cmd.Context())); err != nil && werr == nil {
		werr = err
	}
	if werr != nil {
		return fmt.Errorf("publish to %s (is the topic there? dgw dev and create_topics make it): %w", topic, werr)
	}
	fmt.Fprintf(a.stdout, "published to %s: %s\n", topic, strings.Join(done, ", "))
	if !o.verified {
		fmt.Fprintln(a.stderr, "note: --identity-verified not set: the record says the passenger's identity was not checked (§8)")
	}
	return nil
}

// knownPurposes are the purposes and consents a request may name: the
// purpose enum of the event schemas, the consents their fields record, and
// the cross-border consent.
func knownPurposes(set *schema.Set) map[string]bool {
	out := map[string]bool{crossBorderConsent: true}
	for _, s := range set.All() {
		for _, f := range s.Fields {
			if strings.HasPrefix(f.Context, schema.ConsentPrefix) {
				out[strings.TrimPrefix(f.Context, schema.ConsentPrefix)] = true
			}
		}
		for _, f := range s.Avro.Fields() {
			if f.Name() != "purpose" {
				continue
			}
			t := f.Type()
			if r, ok := t.(*avro.RefSchema); ok {
				t = r.Schema()
			}
			if e, ok := t.(*avro.EnumSchema); ok {
				for _, sym := range e.Symbols() {
					out[sym] = true
				}
			}
		}
	}
	return out
}
