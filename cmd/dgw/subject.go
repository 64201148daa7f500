package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/gateway/subjects"
	"github.com/dgwproject/dgw/schemas"
)

// Purposes by what an objection or a withdrawn consent does to them under
// the built-in policy. They mirror purpose_basis in policies/classes.rego
// and objection_exempt in policies/subject.rego; TestObjectionRulesMatchPolicy
// keeps them equal.
var (
	// contractPurposes rest on the contract (GDPR Art 6(1)(b)): GDPR
	// Art 21 gives no right to object to them and a withdrawn consent does
	// not end them, but the policy stops them all the same (fail closed,
	// §8 promises an objection "unless contrary to law"). Whether to
	// honour such a request is the DPO's call: README, "Open questions".
	contractPurposes = []string{"baggage", "contract", "service"}
	// legalDutyPurposes are legal duties and the defence of legal claims,
	// which neither an objection nor a withdrawal stops (§8; GDPR Art
	// 21(1)); the policy ignores such requests.
	legalDutyPurposes = []string{"border_control", "crime_prevention", "legal_claim", "legal_obligation"}
)

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
	approved  bool
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
latest decision per passenger and purpose.

Refused, with the reason (exit 2):
  --object or --withdraw of a legal duty (border_control, legal_obligation,
  crime_prevention) or legal_claim: neither stops it (§8; GDPR Art 21(1));
  --object of a consent (cross_border, health_data, ...): use --withdraw;
  --object or --withdraw of a purpose that rests on the contract (contract,
  service, baggage) unless --dpo-approved: GDPR Art 21 gives no right to object
  to it, yet the policy would stop every disclosure for that purpose, the ones
  the passenger's own trip needs included.`,
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
	f.BoolVar(&o.approved, "dpo-approved", false, "publish an objection to, or a withdrawal of, a purpose that rests on the contract: the DPO decided to honour it")
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
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	topic := o.subjectTopic(setup)
	ds, done, err := subjectRecords(codec, topic, subjects.Request{
		SubjectRequest: gateway.SubjectRequest{SubjectID: o.passenger, Kind: act.kind, Purpose: act.purpose},
		EventID:        "sr-" + hex.EncodeToString(id), OccurredAt: time.Now().UTC(), SourceSystem: o.source,
		Channel: o.channel, VerifiedIdentity: o.verified,
	}, o.approved)
	if err != nil {
		return failWith(2, err)
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

// subjectRecords turns one request, as support staff or a booking flow
// state it, into the records of the subject topic: it refuses a purpose
// nothing reads and the requests checkRequest refuses, and expands
// marketing to the purposes it stands for. `dgw subject request` and the
// synthetic stream of `dgw dev` both publish through it. done describes
// each record ("consent_withdrawn research"); errors are the caller's
// usage errors and quote no passenger id.
func subjectRecords(c *subjects.Codec, topic string, r subjects.Request, dpoApproved bool) (ds []gateway.Disclosure, done []string, err error) {
	if r.Kind != gateway.Erasure && !c.Known(r.Purpose) {
		return nil, nil, fmt.Errorf("unknown purpose %q: expected %s or one of %s", r.Purpose, subjects.Marketing,
			strings.Join(slices.DeleteFunc(c.KnownPurposes(), func(p string) bool { return p == subjects.Marketing }), ", "))
	}
	if err := checkRequest(c, r.SubjectRequest, dpoApproved); err != nil {
		return nil, nil, err
	}
	for _, x := range subjects.Expand(r) {
		key, value, err := c.Encode(x)
		if err != nil {
			return nil, nil, err
		}
		ds = append(ds, gateway.Disclosure{Topic: topic, Key: key, Value: value})
		done = append(done, strings.TrimSpace(string(x.Kind)+" "+x.Purpose))
	}
	return ds, done, nil
}

// checkRequest refuses the objections and withdrawals that would not do
// what the passenger or support staff expect: see contractPurposes and
// legalDutyPurposes. An objection or withdrawal being lifted, a consent
// given and an erasure always pass.
func checkRequest(c *subjects.Codec, r gateway.SubjectRequest, dpoApproved bool) error {
	var verb string
	switch r.Kind {
	case gateway.Objection:
		verb = "an objection to"
		if c.IsConsent(r.Purpose) {
			return fmt.Errorf("%q is a consent, not a purpose: to stop what rests on it, use --withdraw %s", r.Purpose, r.Purpose)
		}
	case gateway.ConsentWithdrawn:
		verb = "withdrawing consent to"
	default:
		return nil
	}
	switch {
	case slices.Contains(legalDutyPurposes, r.Purpose):
		return fmt.Errorf("%s %q changes nothing: it is a legal duty or the defence of legal claims, which neither an objection nor a withdrawn consent overrides (§8 \"unless contrary to law\"; GDPR Art 21(1)), so the policy ignores it; nothing was published",
			verb, r.Purpose)
	case slices.Contains(contractPurposes, r.Purpose) && !dpoApproved:
		return fmt.Errorf("%s %q not published: the purpose rests on the contract (GDPR Art 6(1)(b)), to which GDPR Art 21 gives no right to object and which a withdrawn consent does not end (Art 7(3)); "+
			"the policy would still stop every disclosure for %q about this passenger, the ones the trip itself needs (airports, catering, payment) included. "+
			"§8 of the privacy policy promises an objection \"unless contrary to law\": whether to honour this one is the DPO's decision (README, \"Open questions\"); with it, pass --dpo-approved",
			verb, r.Purpose, r.Purpose)
	}
	return nil
}
