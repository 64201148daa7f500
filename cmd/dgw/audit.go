package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/audit"
)

// clientFlags are the connection and key flags of the commands that read
// or write a gateway's topics: `audit verify`, `audit subject`, `subject
// request`. The defaults reach a running `dgw dev`.
type clientFlags struct {
	brokers    []string
	configFile string
	keyFile    string
	devKey     bool
	topic      string
}

func (f *clientFlags) addConn(fs *pflag.FlagSet, topicDefault, topicUsage string) {
	fs.StringSliceVar(&f.brokers, "brokers", []string{"127.0.0.1:9092"}, "Kafka bootstrap addresses (default: a running dgw dev)")
	fs.StringVar(&f.configFile, "config", "", "dgw run configuration file: brokers, TLS/SASL, topics and audit_key_file come from it")
	fs.StringVar(&f.topic, "topic", "", topicUsage+" (default "+topicDefault+", or the configuration's)")
}

func (f *clientFlags) addKey(fs *pflag.FlagSet) {
	fs.StringVar(&f.keyFile, "key-file", "", "audit key file (else DGW_AUDIT_KEY, else the configuration's audit_key_file)")
	fs.BoolVar(&f.devKey, "dev-key", false, "use the development audit key of dgw dev")
}

// clientSetup is what the flags resolve to.
type clientSetup struct {
	brokers  []string
	security kafka.Security
	cfg      *Config // nil without --config
	key      audit.Key
}

func (f *clientFlags) resolve(cmd *cobra.Command, environ []string, wantKey bool) (*clientSetup, error) {
	out := &clientSetup{brokers: f.brokers}
	if f.configFile != "" {
		cfg, err := loadConfig(f.configFile, environ)
		if err != nil {
			return nil, err
		}
		sec, err := cfg.kafkaSecurity()
		if err != nil {
			return nil, err
		}
		out.cfg, out.security = &cfg, sec
		if !cmd.Flags().Changed("brokers") {
			out.brokers = cfg.Brokers
		}
	}
	if !wantKey {
		return out, nil
	}
	switch {
	case f.keyFile != "" && f.devKey:
		return nil, errors.New("--key-file and --dev-key exclude each other")
	case f.keyFile != "":
		k, err := audit.LoadKey(f.keyFile)
		if err != nil {
			return nil, err
		}
		out.key = k
	case f.devKey:
		out.key = audit.DevKey(devAuditSeed)
	default:
		k, err := audit.KeyFromEnv(environ)
		switch {
		case err == nil:
			out.key = k
		case !errors.Is(err, audit.ErrNoKey):
			return nil, err
		case out.cfg != nil && out.cfg.AuditKeyFile != "":
			if out.key, err = audit.LoadKey(out.cfg.AuditKeyFile); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// auditTopic is the --topic flag, else the configuration's, else the default.
func (f *clientFlags) auditTopic(s *clientSetup) string {
	switch {
	case f.topic != "":
		return f.topic
	case s.cfg != nil:
		return s.cfg.AuditTopic
	}
	return defaultAuditTopic
}

func (f *clientFlags) subjectTopic(s *clientSetup) string {
	switch {
	case f.topic != "":
		return f.topic
	case s.cfg != nil:
		return s.cfg.SubjectTopic
	}
	return defaultSubjectTopic
}

func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check the tamper-evident audit trail and answer subject access requests",
		Long: `The audit trail holds one entry per handled event with every recipient's
decision: what was delivered with which operator, what was withheld, the legal
basis, the cross-border mechanism and the policy revision. Passengers appear as
HMAC pseudonyms under the audit key; no field value is recorded. Entries are
hash-chained and MACed with the audit key.`,
	}
	cmd.AddCommand(a.auditVerifyCmd(), a.auditSubjectCmd())
	return cmd
}

type verifyOptions struct {
	clientFlags
	json      bool
	anchors   string
	saveHeads string
}

func (a *app) auditVerifyCmd() *cobra.Command {
	var o verifyOptions
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify every hash chain of the audit topic; exit 1 on tampering",
		Long: `verify reads the audit topic from its first retained record to its current end
and checks every chain: each entry must decode, match its SHA-256 hash and its
MAC under the audit key, and follow the previous entry of its chain. It names the
first broken record of each broken chain — topic/partition@offset, chain, seq —
and whether it was modified, removed, inserted or reordered, and exits 1.
Identical copies of an entry (written twice by a retried produce) are counted
as duplicates, not tampering. Without a key only hashes and links are checked.
Records removed from the end of a chain are caught with --anchors: the heads a
previous run saved with --save-heads (keep them outside Kafka).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.auditVerify(cmd, &o)
		},
	}
	o.addConn(cmd.Flags(), defaultAuditTopic, "audit topic")
	o.addKey(cmd.Flags())
	cmd.Flags().BoolVar(&o.json, "json", false, "print the report as JSON")
	cmd.Flags().StringVar(&o.anchors, "anchors", "", "heads file of an earlier verification (--save-heads or --json output): each head must still be there")
	cmd.Flags().StringVar(&o.saveHeads, "save-heads", "", "write the chain heads to this file, to pass as --anchors next time")
	return cmd
}

type headsFile struct {
	Topic      string       `json:"topic"`
	VerifiedAt time.Time    `json:"verified_at"`
	Heads      []audit.Head `json:"heads"`
}

func (a *app) auditVerify(cmd *cobra.Command, o *verifyOptions) error {
	setup, err := o.resolve(cmd, a.environ, true)
	if err != nil {
		return failWith(2, err)
	}
	topic := o.auditTopic(setup)
	c, err := auditCodec()
	if err != nil {
		return err
	}
	var opts []audit.VerifyOption
	if setup.key.Valid() {
		opts = append(opts, audit.WithKey(setup.key))
	}
	if o.anchors != "" {
		b, err := os.ReadFile(o.anchors)
		if err != nil {
			return failWith(2, fmt.Errorf("--anchors: %w", err))
		}
		var hf headsFile
		if err := json.Unmarshal(b, &hf); err != nil {
			return failWith(2, fmt.Errorf("--anchors %s: expected the JSON of --save-heads or --json: %w", o.anchors, err))
		}
		opts = append(opts, audit.WithAnchors(hf.Heads))
	}
	v, err := audit.NewVerifier(c, topic, opts...)
	if err != nil {
		return err
	}
	partitions := 0
	err = kafka.Scan(cmd.Context(), kafka.ReaderConfig{Brokers: setup.brokers, ClientID: "dgw-audit-verify", Topic: topic,
		Security: setup.security},
		func(s kafka.PartitionSpan) { partitions++; v.Partition(s.Partition, s.First) },
		func(m gateway.Message) error {
			v.Add(audit.Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value})
			return nil
		})
	if err != nil {
		return fmt.Errorf("read audit topic %s: %w", topic, err)
	}
	r := v.Finish()
	if o.saveHeads != "" {
		b, _ := json.MarshalIndent(headsFile{Topic: topic, VerifiedAt: time.Now().UTC(), Heads: r.Heads}, "", "  ")
		if err := os.WriteFile(o.saveHeads, append(b, '\n'), 0o600); err != nil {
			return fmt.Errorf("--save-heads: %w", err)
		}
	}
	if o.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		printVerify(a.stdout, r, partitions)
	}
	if !r.MACChecked {
		fmt.Fprintln(a.stderr, "dgw audit verify: no audit key given (--key-file, DGW_AUDIT_KEY, --dev-key): MACs not checked; a trail rewritten with recomputed hashes would pass")
	}
	if !r.OK() {
		return failWith(1, fmt.Errorf("audit trail %s is broken: %s", topic, r.First()))
	}
	return nil
}

func printVerify(w io.Writer, r *audit.Report, partitions int) {
	fmt.Fprintf(w, "audit trail %s: %d records in %d partitions, %d chains", r.Topic, r.Records, partitions, r.Chains)
	if r.Duplicates > 0 {
		fmt.Fprintf(w, "; %d duplicates from retried writes (not tampering)", r.Duplicates)
	}
	if r.ExpiredStarts > 0 {
		fmt.Fprintf(w, "; %d chains begin in records deleted by retention", r.ExpiredStarts)
	}
	fmt.Fprintln(w)
	if r.MACChecked {
		fmt.Fprintf(w, "hashes, links and MACs checked with audit key %s\n", r.KeyID)
	} else {
		fmt.Fprintln(w, "hashes and links checked; MACs NOT checked (no audit key)")
	}
	if r.OK() {
		fmt.Fprintln(w, "OK: every chain is intact")
		return
	}
	fmt.Fprintf(w, "TAMPERED: first broken record: %s\n", r.First())
	for _, p := range r.Problems[1:] {
		fmt.Fprintf(w, "  also broken: %s\n", p)
	}
	if r.Unverified > 0 {
		fmt.Fprintf(w, "  %d records after a chain's first break were not verified\n", r.Unverified)
	}
}

type subjectReportOptions struct {
	clientFlags
	all      bool
	json     bool
	html     string
	noVerify bool
}

func (a *app) auditSubjectCmd() *cobra.Command {
	var o subjectReportOptions
	cmd := &cobra.Command{
		Use:   "subject PASSENGER_ID",
		Short: "List every disclosure about a passenger: a subject access report",
		Long: `subject answers a data subject's access request (GDPR Art 15(1)(c), the right to
know under Kazakhstan's Law No. 94-V): every disclosure of the passenger's data
recorded in the audit trail — when, to which recipient (name, type, country),
which fields with which operator, on which legal basis, by which cross-border
mechanism, under which policy revision — as a table, as JSON (--json) or as a
printable HTML page (--html FILE). The passenger is found by the pseudonym
HMAC-SHA256(audit key, passenger id), so the audit key is required. --all adds
refusals and held copies with their reasons. The trail is verified on the way;
a broken trail is reported and the command exits 1.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.auditSubject(cmd, &o, args[0])
		},
	}
	o.addConn(cmd.Flags(), defaultAuditTopic, "audit topic")
	o.addKey(cmd.Flags())
	f := cmd.Flags()
	f.BoolVar(&o.all, "all", false, "also list refusals and held copies, with reasons")
	f.BoolVar(&o.json, "json", false, "print the report as JSON")
	f.StringVar(&o.html, "html", "", "also write the report as a printable HTML page to this file")
	f.BoolVar(&o.noVerify, "no-verify", false, "do not verify the trail's chains while reading it")
	return cmd
}

// subjectReport is the JSON and HTML form of a subject access report.
type subjectReport struct {
	PassengerID   string          `json:"passenger_id"`
	GeneratedAt   time.Time       `json:"generated_at"`
	AuditTopic    string          `json:"audit_topic"`
	TrailVerified bool            `json:"trail_verified"`
	TrailProblems []audit.Problem `json:"trail_problems,omitempty"`
	All           bool            `json:"includes_refusals"`
	Disclosures   []audit.Row     `json:"disclosures"`
}

func (a *app) auditSubject(cmd *cobra.Command, o *subjectReportOptions, passenger string) error {
	if strings.TrimSpace(passenger) == "" {
		return failWith(2, errors.New("PASSENGER_ID must not be empty"))
	}
	setup, err := o.resolve(cmd, a.environ, true)
	if err != nil {
		return failWith(2, err)
	}
	if !setup.key.Valid() {
		return failWith(2, errors.New("no audit key: the passenger is found by their pseudonym; give --key-file, DGW_AUDIT_KEY, --config with audit_key_file, or --dev-key"))
	}
	topic := o.auditTopic(setup)
	c, err := auditCodec()
	if err != nil {
		return err
	}
	col, err := audit.NewSubjectCollector(c, setup.key, passenger)
	if err != nil {
		return failWith(2, err)
	}
	var v *audit.Verifier
	if !o.noVerify {
		if v, err = audit.NewVerifier(c, topic, audit.WithKey(setup.key)); err != nil {
			return err
		}
	}
	err = kafka.Scan(cmd.Context(), kafka.ReaderConfig{Brokers: setup.brokers, ClientID: "dgw-audit-subject", Topic: topic,
		Security: setup.security},
		func(s kafka.PartitionSpan) {
			if v != nil {
				v.Partition(s.Partition, s.First)
			}
		},
		func(m gateway.Message) error {
			r := audit.Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value}
			col.Add(r)
			if v != nil {
				v.Add(r)
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("read audit topic %s: %w", topic, err)
	}
	rep := subjectReport{PassengerID: passenger, GeneratedAt: time.Now().UTC().Truncate(time.Second), AuditTopic: topic,
		All: o.all, Disclosures: col.Rows(o.all)}
	if rep.Disclosures == nil {
		rep.Disclosures = []audit.Row{}
	}
	if v != nil {
		vr := v.Finish()
		rep.TrailVerified, rep.TrailProblems = vr.OK(), vr.Problems
	}
	if o.html != "" {
		if err := writeSubjectHTML(o.html, &rep); err != nil {
			return fmt.Errorf("--html: %w", err)
		}
	}
	if o.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printSubject(a.stdout, &rep)
	}
	if v != nil && !rep.TrailVerified {
		return failWith(1, fmt.Errorf("the audit trail %s is broken (first: %s): this report may be incomplete or altered; run dgw audit verify", topic, rep.TrailProblems[0]))
	}
	return nil
}

func fieldList(fs []audit.DisclosedField) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.Path + " (" + f.Operator + ")"
	}
	return strings.Join(parts, ", ")
}

func transferText(r *audit.Row) string {
	if !r.CrossBorder {
		return "-"
	}
	if r.Mechanism == "" {
		return "cross-border"
	}
	return r.Mechanism
}

func printSubject(w io.Writer, rep *subjectReport) {
	what := "disclosures of personal data"
	if rep.All {
		what = "decisions about the personal data"
	}
	fmt.Fprintf(w, "%d %s of passenger %s recorded in %s\n", len(rep.Disclosures), what, rep.PassengerID, rep.AuditTopic)
	if len(rep.Disclosures) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "WHEN\tRECIPIENT\tTYPE\tCOUNTRY\tEVENT\tFIELDS (OPERATOR)\tBASIS\tTRANSFER\tREVISION"
	if rep.All {
		head = "WHEN\tOUTCOME\tRECIPIENT\tTYPE\tCOUNTRY\tEVENT\tFIELDS (OPERATOR)\tBASIS\tTRANSFER\tREVISION\tREASON"
	}
	fmt.Fprintln(tw, head)
	for i := range rep.Disclosures {
		r := &rep.Disclosures[i]
		cols := []string{r.RecordedAt.Format(time.RFC3339)}
		if rep.All {
			cols = append(cols, r.Outcome)
		}
		cols = append(cols, r.RecipientName+" ["+r.RecipientID+"]", r.RecipientType, r.RecipientCountry,
			r.EventType+" "+r.EventID, orDash(fieldList(r.Fields)), orDash(r.Basis), transferText(r), orDash(r.PolicyRevision))
		if rep.All {
			reason := r.Reason
			if reason == "" {
				reason = strings.Join(r.Reasons, "; ")
			}
			cols = append(cols, orDash(reason))
		}
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	_ = tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

var subjectHTML = template.Must(template.New("report").Funcs(template.FuncMap{
	"fields":   fieldList,
	"transfer": transferText,
	"time":     func(t time.Time) string { return t.Format("2006-01-02 15:04 MST") },
	"dash":     orDash,
	"join":     strings.Join,
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Disclosures of personal data — passenger {{.PassengerID}}</title>
<style>
  @page { size: A4 landscape; margin: 14mm; }
  body { font: 10pt/1.35 system-ui, sans-serif; color: #111; }
  h1 { font-size: 15pt; margin: 0 0 4pt; }
  p.meta { margin: 0 0 10pt; color: #444; }
  table { border-collapse: collapse; width: 100%; }
  th, td { border: 1px solid #999; padding: 3pt 4pt; vertical-align: top; text-align: left; }
  th { background: #eee; }
  tr { page-break-inside: avoid; }
  .warn { border: 2px solid #b00; padding: 6pt; color: #b00; margin-bottom: 10pt; }
  footer { margin-top: 10pt; font-size: 8.5pt; color: #444; }
</style>
</head>
<body>
<h1>Disclosures of personal data</h1>
<p class="meta">Passenger {{.PassengerID}} · generated {{time .GeneratedAt}} from the audit trail {{.AuditTopic}} ·
{{if .TrailVerified}}trail verified intact{{else}}trail not verified{{end}} ·
{{len .Disclosures}} {{if .All}}decisions (refusals included){{else}}disclosures{{end}}</p>
{{if .TrailProblems}}<div class="warn">The audit trail is broken ({{(index .TrailProblems 0).Kind}} at
{{(index .TrailProblems 0).Topic}}/{{(index .TrailProblems 0).Partition}}@{{(index .TrailProblems 0).Offset}}):
this report may be incomplete or altered.</div>{{end}}
{{if .Disclosures}}
<table>
<thead><tr><th>When</th>{{if .All}}<th>Outcome</th>{{end}}<th>Recipient</th><th>Type</th><th>Country</th><th>Event</th>
<th>Fields (operator)</th><th>Legal basis</th><th>Cross-border mechanism</th><th>Policy revision</th>{{if .All}}<th>Reason</th>{{end}}</tr></thead>
<tbody>
{{range .Disclosures}}<tr><td>{{time .RecordedAt}}</td>{{if $.All}}<td>{{.Outcome}}</td>{{end}}<td>{{.RecipientName}}<br><small>{{.RecipientID}}</small></td>
<td>{{.RecipientType}}</td><td>{{.RecipientCountry}}</td><td>{{.EventType}}<br><small>{{.EventID}}<br>{{.Evidence}}</small></td>
<td>{{dash (fields .Fields)}}</td><td>{{dash .Basis}}</td><td>{{transfer .}}</td><td>{{dash .PolicyRevision}}</td>{{if $.All}}<td>{{if .Reason}}{{.Reason}}{{else}}{{dash (join .Reasons "; ")}}{{end}}</td>{{end}}</tr>
{{end}}</tbody>
</table>
{{else}}<p>No disclosure of this passenger's data is recorded.</p>{{end}}
<footer>Operators: keep = the value as held; mask = shortened (e.g. last four digits); hash = a keyed pseudonym
only that recipient can match; generalise = coarsened (e.g. year or age band). Answers the right of access
(GDPR Art 15(1)(c); UK GDPR; Kazakhstan Law No. 94-V on Personal Data). Each row names its evidence in the
tamper-evident audit trail.</footer>
</body>
</html>
`))

func writeSubjectHTML(file string, rep *subjectReport) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := subjectHTML.Execute(f, rep); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
