package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dgwproject/dgw/adapters/kafka"
	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/audit"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/synth"
	"github.com/dgwproject/dgw/policies"
)

// byPartition groups records by partition, each in offset order.
func byPartition(recs []outRecord) map[int32][]outRecord {
	out := map[int32][]outRecord{}
	for _, r := range recs {
		out[r.Partition] = append(out[r.Partition], r)
	}
	for _, rs := range out {
		sort.Slice(rs, func(i, j int) bool { return rs[i].Offset < rs[j].Offset })
	}
	return out
}

// copyTopic writes recs into a new topic with the same partition count,
// each record to its own partition, in the given order: a tampered copy of
// the audit topic, built with an independent client.
func copyTopic(t *testing.T, brokers []string, topic string, parts map[int32][]outRecord) {
	t.Helper()
	require.NoError(t, kafka.EnsureTopics(t.Context(), brokers, 3, 1, topic))
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	defer cl.Close()
	for p, rs := range parts {
		var krs []*kgo.Record
		for _, r := range rs {
			krs = append(krs, &kgo.Record{Partition: p, Key: []byte(r.Key), Value: r.Value})
		}
		require.NoError(t, cl.ProduceSync(t.Context(), krs...).FirstErr())
	}
}

// verifyCLI runs `dgw audit verify --json` on topic.
func verifyCLI(t *testing.T, brokers []string, topic string, extra ...string) (audit.Report, int, string) {
	t.Helper()
	args := append([]string{"audit", "verify", "--brokers", strings.Join(brokers, ","), "--topic", topic, "--dev-key", "--json"}, extra...)
	out, stderr, code := runCLI(t, nil, args...)
	var r audit.Report
	require.NoError(t, json.Unmarshal([]byte(out), &r), "stdout: %s\nstderr: %s", out, stderr)
	return r, code, stderr
}

// rehashed changes an audit record the way an attacker without the audit
// key can: new content, SHA-256 recomputed, the old MAC kept.
func rehashed(raw []byte) []byte {
	out := bytes.Clone(raw)
	i := bytes.Index(out, []byte("kz-border-api"))
	out[i+len("kz-border-api")-1] = 'x'
	h := sha256.Sum256(append([]byte("dgw.audit.v1\n"), out[:len(out)-64]...))
	copy(out[len(out)-64:], h[:])
	return out
}

// TestAuditTrailEndToEnd runs generated traffic through the gateway and
// checks the trail it leaves: every decision is in it, it verifies clean,
// each kind of tampering is named by `dgw audit verify`, no personal value
// is in it, and `dgw audit subject` lists exactly what the recipient
// topics hold about a passenger.
func TestAuditTrailEndToEnd(t *testing.T) {
	tb := newTestBed(t)
	p := tb.parts
	events := generate(t, p, 100, 11)
	var records []gateway.Disclosure
	for _, e := range events {
		records = append(records, e.record)
	}
	tb.publish(t, records...)
	tb.runUntil(t, "e2e-audit", int64(len(records)), nil)

	got := readAll(t, tb.brokers, append([]string{defaultAuditTopic}, recipientTopics(p.recipients)...)...)
	trail := got[defaultAuditTopic]
	c, err := auditCodec()
	require.NoError(t, err)

	t.Run("every decision is audited", func(t *testing.T) {
		byEvent := map[string]*audit.Entry{}
		delivered := 0
		for _, r := range trail {
			e, err := c.Decode(r.Value)
			require.NoError(t, err)
			assert.Equal(t, audit.KindDecision, e.Kind, "no delivery failed, so no correction")
			assert.Equal(t, e.ChainID, r.Key, "keyed by chain")
			assert.Nil(t, byEvent[e.EventID], "event %s audited twice on a clean run", e.EventID)
			byEvent[e.EventID] = e
			require.Len(t, e.Decisions, len(p.recipients), "one decision per recipient, refusals included")
			for _, d := range e.Decisions {
				if d.Outcome == "delivered" {
					delivered++
					assert.NotEmpty(t, d.Disclosed)
					assert.Equal(t, p.decider.Revision(), d.PolicyRevision)
				}
			}
		}
		assert.Len(t, byEvent, len(events))
		total := 0
		for _, r := range p.recipients {
			total += len(got[r.Topic])
		}
		assert.Equal(t, total, delivered, "the trail records exactly the deliveries the recipient topics hold")
	})

	t.Run("canary PII never reaches the audit topic", func(t *testing.T) {
		var all []string
		for _, e := range events {
			all = append(all, synth.Canaries(e.ev)...)
		}
		require.NotEmpty(t, all)
		for _, r := range trail {
			blob := append(append([]byte(r.Key), r.Value...), fmt.Sprint(r.Headers)...)
			require.False(t, synth.ContainsCanary(blob), "audit record %d/%d holds a canary marker", r.Partition, r.Offset)
			for _, v := range all {
				require.False(t, bytes.Contains(blob, []byte(v)), "audit record %d/%d holds a personal value", r.Partition, r.Offset)
			}
		}
	})

	t.Run("an untouched trail verifies clean", func(t *testing.T) {
		heads := filepath.Join(t.TempDir(), "heads.json")
		r, code, stderr := verifyCLI(t, tb.brokers, defaultAuditTopic, "--save-heads", heads)
		require.Equal(t, 0, code, stderr)
		assert.True(t, r.OK())
		assert.True(t, r.MACChecked)
		assert.Equal(t, len(trail), r.Records)
		assert.Equal(t, 4, r.Chains, "one chain per worker")
		out, _, code := runCLI(t, nil, "audit", "verify", "--brokers", tb.brokers[0], "--dev-key")
		assert.Equal(t, 0, code)
		assert.Contains(t, out, "OK: every chain is intact")
		_, stderr, code = runCLI(t, nil, "audit", "verify", "--brokers", tb.brokers[0])
		assert.Equal(t, 0, code)
		assert.Contains(t, stderr, "MACs not checked")

		// The saved heads catch records removed from the end of a chain.
		parts := byPartition(trail)
		for pt, rs := range parts {
			parts[pt] = rs[:len(rs)-1]
		}
		copyTopic(t, tb.brokers, "tampered-tail", parts)
		r, code, _ = verifyCLI(t, tb.brokers, "tampered-tail")
		assert.Equal(t, 0, code, "a cut tail leaves no trace in the chain itself")
		r, code, _ = verifyCLI(t, tb.brokers, "tampered-tail", "--anchors", heads)
		assert.Equal(t, 1, code)
		require.False(t, r.OK())
		assert.Equal(t, audit.Removed, r.First().Kind)
	})

	t.Run("tampering is named", func(t *testing.T) {
		parts := byPartition(trail)
		// A chain with at least four entries in its partition.
		var part int32
		var chain string
		idx := map[int64]int{} // seq → index in the partition
		for pt, rs := range parts {
			counts := map[string]int{}
			for _, r := range rs {
				counts[r.Key]++
			}
			for k, n := range counts {
				if n >= 4 && chain == "" {
					part, chain = pt, k
				}
			}
		}
		require.NotEmpty(t, chain)
		for i, r := range parts[part] {
			if r.Key == chain {
				e, err := c.Decode(r.Value)
				require.NoError(t, err)
				idx[e.Seq] = i
			}
		}
		tests := []struct {
			name   string
			change func(rs []outRecord) []outRecord
			kind   string
			at     func() int
			seq    int64
		}{
			{name: "modified", kind: audit.Modified, seq: 2, at: func() int { return idx[2] },
				change: func(rs []outRecord) []outRecord {
					v := bytes.Clone(rs[idx[2]].Value)
					i := bytes.Index(v, []byte("kz-border-api"))
					v[i+len("kz-border-api")-1] = 'x'
					rs[idx[2]].Value = v
					return rs
				}},
			{name: "removed", kind: audit.Removed, seq: 3, at: func() int { return idx[3] - 1 },
				change: func(rs []outRecord) []outRecord { return slices.Delete(rs, idx[2], idx[2]+1) }},
			{name: "inserted", kind: audit.Inserted, seq: 2, at: func() int { return idx[2] + 1 },
				change: func(rs []outRecord) []outRecord {
					forged := rs[idx[2]]
					forged.Value = rehashed(forged.Value)
					return slices.Insert(rs, idx[2]+1, forged)
				}},
			{name: "reordered", kind: audit.Reordered, seq: 3, at: func() int { return idx[2] },
				change: func(rs []outRecord) []outRecord {
					rs[idx[2]], rs[idx[3]] = rs[idx[3]], rs[idx[2]]
					return rs
				}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				copied := map[int32][]outRecord{}
				for pt, rs := range parts {
					copied[pt] = slices.Clone(rs)
				}
				copied[part] = tt.change(copied[part])
				topic := "tampered-" + tt.name
				copyTopic(t, tb.brokers, topic, copied)

				r, code, stderr := verifyCLI(t, tb.brokers, topic)
				require.Equal(t, 1, code, "tampering must fail the command: %s", stderr)
				require.False(t, r.OK())
				first := r.First()
				assert.Equal(t, audit.Problem{Topic: topic, Partition: int(part), Offset: int64(tt.at()), Chain: chain, Seq: tt.seq,
					Kind: tt.kind, Detail: first.Detail}, *first)
				assert.Len(t, r.Problems, 1, "the other chains are intact")
				assert.Contains(t, stderr, fmt.Sprintf("%s/%d@%d", topic, part, tt.at()))

				out, _, _ := runCLI(t, nil, "audit", "verify", "--brokers", tb.brokers[0], "--topic", topic, "--dev-key")
				assert.Contains(t, out, "TAMPERED: first broken record: "+first.String())
			})
		}
	})

	t.Run("the subject report lists exactly the deliveries", func(t *testing.T) {
		type delivery struct{ event, recipient string }
		held := map[string]map[delivery]outRecord{} // passenger → deliveries
		for _, r := range p.recipients {
			for _, rec := range got[r.Topic] {
				if held[rec.Key] == nil {
					held[rec.Key] = map[delivery]outRecord{}
				}
				held[rec.Key][delivery{rec.Headers[gateway.HeaderEventID], r.ID}] = rec
			}
		}
		var passenger string
		for pax, ds := range held {
			if passenger == "" || len(ds) > len(held[passenger]) || len(ds) == len(held[passenger]) && pax < passenger {
				passenger = pax
			}
		}
		require.GreaterOrEqual(t, len(held[passenger]), 3, "a passenger with several deliveries")

		htmlFile := filepath.Join(t.TempDir(), "report.html")
		out, stderr, code := runCLI(t, nil, "audit", "subject", passenger, "--brokers", tb.brokers[0], "--dev-key",
			"--json", "--html", htmlFile)
		require.Equal(t, 0, code, stderr)
		var rep subjectReport
		require.NoError(t, json.Unmarshal([]byte(out), &rep))
		assert.True(t, rep.TrailVerified)
		assert.Equal(t, passenger, rep.PassengerID)

		exportDir := t.TempDir()
		_, stderr, code = runCLI(t, nil, "schemas", "export", "--out", exportDir)
		require.Equal(t, 0, code, stderr)
		partner := loadExported(t, exportDir)
		listed := map[delivery]bool{}
		for _, row := range rep.Disclosures {
			d := delivery{row.EventID, row.RecipientID}
			assert.False(t, listed[d], "listed twice: %v", d)
			listed[d] = true
			rec, ok := held[passenger][d]
			require.True(t, ok, "the report lists %v, which the recipient topic does not hold", d)
			var r *gateway.Recipient
			for _, x := range p.recipients {
				if x.ID == row.RecipientID {
					r = x
				}
			}
			require.NotNil(t, r)
			assert.Equal(t, r.Name, row.RecipientName)
			assert.Equal(t, r.Type, row.RecipientType)
			assert.Equal(t, r.Country, row.RecipientCountry)
			assert.Equal(t, rec.Headers[gateway.HeaderPolicyRevision], row.PolicyRevision)
			assert.NotEmpty(t, row.Basis)
			// What the recipient got is what the report says it got.
			fields := map[string]bool{}
			for _, f := range row.Fields {
				fields[f.Path] = true
				assert.Contains(t, r.Scope[row.EventType][f.Path], gateway.Operator(f.Operator))
			}
			s := partner[r.ID][row.EventType]
			v, err := decodePartner(s, rec.Value)
			require.NoError(t, err)
			leaves(s, v, "", func(path string, _ any) {
				assert.True(t, fields[path], "%s received %s, which the report does not list", r.ID, path)
			})
		}
		for d := range held[passenger] {
			assert.True(t, listed[d], "the recipient topic holds %v, which the report does not list", d)
		}

		page, err := os.ReadFile(htmlFile)
		require.NoError(t, err)
		assert.Contains(t, string(page), "<table>")
		assert.Contains(t, string(page), passenger)
		table, _, code := runCLI(t, nil, "audit", "subject", passenger, "--brokers", tb.brokers[0], "--dev-key")
		require.Equal(t, 0, code)
		assert.Contains(t, table, fmt.Sprintf("%d disclosures", len(held[passenger])))
		for _, row := range rep.Disclosures {
			assert.Contains(t, string(page), htmlEscaped(row.RecipientName))
			assert.Contains(t, table, row.RecipientName)
			assert.Contains(t, table, row.EventID)
		}

		_, stderr, code = runCLI(t, nil, "audit", "subject", passenger, "--brokers", tb.brokers[0])
		assert.Equal(t, 2, code)
		assert.Contains(t, stderr, "no audit key")
		out, _, code = runCLI(t, nil, "audit", "subject", "PAX-NOBODY", "--brokers", tb.brokers[0], "--dev-key")
		assert.Equal(t, 0, code)
		assert.Contains(t, out, "0 disclosures")
	})
}

// htmlEscaped escapes s as html/template does for text.
func htmlEscaped(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")
	return r.Replace(s)
}

// decided returns the recipients the policy delivers e to under state.
func decided(t *testing.T, p *parts, e *sourceEvent, state gateway.SubjectContext) map[string]gateway.Decision {
	t.Helper()
	ev, err := p.decoder.Decode(gateway.Message{Topic: e.record.Topic, Value: e.record.Value})
	require.NoError(t, err)
	for k, v := range state.Consents {
		ev.Context.Subject.Consents[k] = v
	}
	ev.Context.Subject.Objections = append(ev.Context.Subject.Objections, state.Objections...)
	ev.Context.Subject.Erased = state.Erased
	out := map[string]gateway.Decision{}
	for _, r := range p.recipients {
		d, err := p.decider.Decide(t.Context(), &ev.Context, r)
		require.NoError(t, err)
		if d.Allow && len(d.Released()) > 0 {
			out[r.ID] = d
		}
	}
	return out
}

// renamed returns a copy of e with a new event id: the passenger's next event.
func renamed(t *testing.T, p *parts, e sourceEvent, suffix string) sourceEvent {
	t.Helper()
	v := make(map[string]any, len(e.ev.Value))
	for k, x := range e.ev.Value {
		v[k] = x
	}
	e.id += suffix
	v["event_id"] = e.id
	e.ev.Value = v
	s, _ := p.set.ByEventType(e.ev.Type)
	raw, err := codec.Encode(s, v)
	require.NoError(t, err)
	e.record.Value = raw
	return e
}

// request publishes a subject request with the CLI.
func request(t *testing.T, brokers []string, passenger string, args ...string) {
	t.Helper()
	out, stderr, code := runCLI(t, nil, append([]string{"subject", "request", "--brokers", strings.Join(brokers, ","),
		"--passenger", passenger, "--identity-verified"}, args...)...)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "published to "+defaultSubjectTopic)
}

// TestSubjectRequestsApplyInStream: an erased passenger's next events reach
// only authorities under a legal obligation; a withdrawn research consent
// stops market research; an objection stops its purpose; each refusal is in
// the audit trail with its reason; the state is rebuilt after a restart
// and follows new requests while the gateway runs.
func TestSubjectRequestsApplyInStream(t *testing.T) {
	tb := newTestBed(t)
	p := tb.parts
	events := generate(t, p, 400, 5)
	byPax := map[string][]sourceEvent{}
	var order []string
	for _, e := range events {
		if byPax[e.ev.Key] == nil {
			order = append(order, e.ev.Key)
		}
		byPax[e.ev.Key] = append(byPax[e.ev.Key], e)
	}
	none := gateway.SubjectContext{Consents: map[string]bool{}}
	authority := map[string]bool{"border_authority": true, "law_enforcement": true}
	recipientType := map[string]string{}
	for _, r := range p.recipients {
		recipientType[r.ID] = r.Type
	}

	// Pick the passengers: R has an event market research would receive
	// with research consent (and the consent to a transfer abroad that
	// Law 94-V Art 16 asks for: the research firm is in GB); E has events non-authorities receive; O has a
	// purpose that is not a legal duty and that recipients receive.
	var R, E, O, objected string
	for _, pax := range order {
		for i := range byPax[pax] {
			e := &byPax[pax][i]
			if t := e.ev.Type; R != "" || t != "booking" && t != "loyalty" {
				continue // market research receives bookings and loyalty events only
			}
			with := decided(t, p, e, gateway.SubjectContext{Consents: map[string]bool{"research": true, "cross_border": true}})
			if _, ok := with["pulse-research"]; ok {
				R = pax
			}
		}
	}
	for _, pax := range order {
		if pax == R || E != "" && O != "" {
			continue
		}
		nonAuthority, purposes := 0, map[string]int{}
		for i := range byPax[pax] {
			e := &byPax[pax][i]
			got := decided(t, p, e, none)
			for id := range got {
				if !authority[recipientType[id]] {
					nonAuthority++
				}
			}
			if pu, _ := e.ev.Value["purpose"].(string); len(got) > 0 {
				purposes[pu] += len(got)
			}
		}
		switch {
		case E == "" && nonAuthority >= 3:
			E = pax
		case O == "":
			// A purpose the objection stops entirely for this passenger
			// (legal duties and legal claims it does not stop).
			for pu, n := range purposes {
				stopped := true
				for i := range byPax[pax] {
					e := &byPax[pax][i]
					if e.ev.Value["purpose"] == pu && len(decided(t, p, e, gateway.SubjectContext{Consents: map[string]bool{},
						Objections: []string{pu}})) > 0 {
						stopped = false
					}
				}
				if stopped && (objected == "" || n > purposes[objected]) {
					O, objected = pax, pu
				}
			}
		}
	}
	require.NotEmpty(t, R, "a passenger market research can receive")
	require.NotEmpty(t, E)
	require.NotEmpty(t, O)
	t.Logf("events: R %d, E %d, O %d; O objects to %q", len(byPax[R]), len(byPax[E]), len(byPax[O]), objected)
	states := map[string]gateway.SubjectContext{
		R: {Consents: map[string]bool{"research": true, "cross_border": true}},
		E: {Consents: map[string]bool{}, Erased: true},
		O: {Consents: map[string]bool{}, Objections: []string{objected}},
	}

	type delivery struct{ event, recipient string }
	// phase publishes the passengers' events (renamed with suffix), runs a
	// fresh gateway over them, and checks the deliveries against the policy
	// under states.
	phase := func(t *testing.T, suffix string, log *slog.Logger) map[string][]sourceEvent {
		t.Helper()
		sent := map[string][]sourceEvent{}
		var recs []gateway.Disclosure
		for _, pax := range []string{R, E, O} {
			for _, e := range byPax[pax] {
				n := renamed(t, p, e, suffix)
				sent[pax] = append(sent[pax], n)
				recs = append(recs, n.record)
			}
		}
		tb.publish(t, recs...)
		tb.runUntil(t, "subjects", int64(len(recs)), log)

		got := readAll(t, tb.brokers, recipientTopics(p.recipients)...)
		delivered := map[delivery]bool{}
		ids := map[string]bool{}
		for _, es := range sent {
			for _, e := range es {
				ids[e.id] = true
			}
		}
		for _, r := range p.recipients {
			for _, rec := range got[r.Topic] {
				if id := rec.Headers[gateway.HeaderEventID]; ids[id] {
					delivered[delivery{id, r.ID}] = true
				}
			}
		}
		expected := map[delivery]bool{}
		for pax, es := range sent {
			for i := range es {
				for id := range decided(t, p, &es[i], states[pax]) {
					expected[delivery{es[i].id, id}] = true
				}
			}
		}
		assert.Equal(t, expected, delivered, "deliveries follow the subject state")
		return sent
	}

	// Phase A: requests published before the gateway starts; it must read
	// them before serving the events already waiting.
	request(t, tb.brokers, R, "--consent", "research")
	request(t, tb.brokers, R, "--consent", "cross_border")
	request(t, tb.brokers, E, "--erase")
	objectArgs := []string{"--object", objected}
	if slices.Contains(contractPurposes, objected) {
		// §8 promises it, GDPR Art 21 does not: the CLI wants the DPO's word.
		objectArgs = append(objectArgs, "--dpo-approved")
	}
	request(t, tb.brokers, O, objectArgs...)
	var logs logBuffer
	sentA := phase(t, "-a", slog.New(slog.NewJSONHandler(&logs, nil)))
	// The state was complete before the gateway served anything.
	var loaded, started int = -1, -1
	for i, line := range logs.lines() {
		var l struct {
			Msg        string `json:"msg"`
			Records    int    `json:"records"`
			Passengers int    `json:"passengers"`
			Workers    int    `json:"workers"`
			Queue      int    `json:"queue"`
			MaxBytes   int64  `json:"max_in_flight_bytes"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &l))
		switch l.Msg {
		case "subject state loaded":
			loaded = i
			assert.Equal(t, 4, l.Records, "every request on the topic was read before serving")
			assert.Equal(t, 3, l.Passengers)
		case "gateway started":
			started = i
			assert.Equal(t, []int64{4, 16, gateway.DefaultMaxInFlightBytes}, []int64{int64(l.Workers), int64(l.Queue), l.MaxBytes},
				"the start line states the bounds of the work in flight")
		}
		assert.False(t, synth.ContainsCanary([]byte(line)), "no passenger id in the logs: %s", line)
	}
	require.GreaterOrEqual(t, loaded, 0)
	assert.Less(t, loaded, started, "the subject state is loaded before the gateway starts")
	pulse := 0
	for _, e := range sentA[R] {
		if _, ok := decided(t, p, &e, states[R])["pulse-research"]; ok {
			pulse++
		}
	}
	require.Positive(t, pulse, "with research consent, market research receives R's research events")

	// Phase B: R withdraws marketing consent, which covers research; a new
	// gateway process rebuilds the state from the compacted topic alone.
	request(t, tb.brokers, R, "--withdraw", "marketing")
	states[R] = gateway.SubjectContext{Consents: map[string]bool{"campaign": false, "advertising": false, "survey": false,
		"research": false, "cross_border": true}}
	sentB := phase(t, "-b", nil)

	// The meaning, beyond matching the policy.
	gotB := readAll(t, tb.brokers, recipientTopics(p.recipients)...)
	for _, r := range p.recipients {
		for _, rec := range gotB[r.Topic] {
			id := rec.Headers[gateway.HeaderEventID]
			switch {
			case rec.Key == R && strings.HasSuffix(id, "-b"):
				assert.NotEqual(t, "pulse-research", r.ID, "market research received %s after the withdrawal", id)
			case rec.Key == E:
				assert.True(t, authority[r.Type], "erased passenger's event %s reached %s", id, r.ID)
			case rec.Key == O:
				for _, e := range append(sentA[O], sentB[O]...) {
					if e.id == id {
						assert.NotEqual(t, objected, e.ev.Value["purpose"], "event %s for the objected purpose reached %s", id, r.ID)
					}
				}
			}
		}
	}
	wouldE := 0
	for _, e := range sentB[E] {
		for id := range decided(t, p, &e, none) {
			if !authority[recipientType[id]] {
				wouldE++
			}
		}
	}
	assert.Positive(t, wouldE, "without the erasure, non-authorities would have received E's events")

	// The trail shows each refusal with its reason.
	report := func(pax string) subjectReport {
		out, stderr, code := runCLI(t, nil, "audit", "subject", pax, "--brokers", tb.brokers[0], "--dev-key", "--all", "--json")
		require.Equal(t, 0, code, stderr)
		var rep subjectReport
		require.NoError(t, json.Unmarshal([]byte(out), &rep))
		require.True(t, rep.TrailVerified)
		return rep
	}
	reasonOf := func(row audit.Row) string { return strings.Join(row.Reasons, "; ") }
	withdrawn, erased, objections := 0, 0, 0
	for _, row := range report(R).Disclosures {
		if row.RecipientID == "pulse-research" && strings.HasSuffix(row.EventID, "-b") && row.Outcome == "refused" &&
			strings.Contains(reasonOf(row), `the consent "research" was withdrawn`) {
			withdrawn++
		}
	}
	for _, row := range report(E).Disclosures {
		if row.Outcome == "delivered" {
			assert.True(t, authority[row.RecipientType], "%s got E's data", row.RecipientID)
			assert.Equal(t, "legal_obligation", row.Basis, "after erasure only legal obligations remain")
		}
		if strings.Contains(reasonOf(row), "data was erased") {
			erased++
		}
	}
	for _, row := range report(O).Disclosures {
		if strings.Contains(reasonOf(row), fmt.Sprintf("objected to the purpose %q", objected)) {
			objections++
			assert.Equal(t, "refused", row.Outcome)
		}
	}
	assert.Positive(t, withdrawn, "the withdrawal is in the trail")
	assert.Positive(t, erased, "the erasure is in the trail")
	assert.Positive(t, objections, "the objection is in the trail")

	// Phase C: a request published while the gateway runs applies to the
	// passenger's later events.
	t.Run("live", func(t *testing.T) {
		var research sourceEvent
		for _, e := range byPax[R] {
			if _, ok := decided(t, p, &e, gateway.SubjectContext{Consents: map[string]bool{"research": true, "cross_border": true}})["pulse-research"]; ok {
				research = e
				break
			}
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var mu sync.Mutex
		results := map[string]chan *gateway.EventResult{}
		wait := func(id string) chan *gateway.EventResult {
			mu.Lock()
			defer mu.Unlock()
			if results[id] == nil {
				results[id] = make(chan *gateway.EventResult, 1)
			}
			return results[id]
		}
		errc := make(chan error, 1)
		go func() {
			errc <- runGateway(ctx, gatewayOptions{brokers: tb.brokers, clientID: "subjects-live", group: "subjects", topics: tb.sources,
				deadLetter: testDeadLetter, held: testHeld, workers: 2, queue: 4, parts: p, log: discardLogger(), acct: tb.acct,
				observers: []gateway.Observer{gateway.ObserverFunc(func(r *gateway.EventResult) { wait(r.EventID) <- r.Clone() })}})
		}()
		outcome := func(i int) gateway.Outcome {
			e := renamed(t, p, research, fmt.Sprintf("-c%d", i))
			tb.publish(t, e.record)
			select {
			case r := <-wait(e.id):
				for _, rr := range r.Recipients {
					if rr.Recipient.ID == "pulse-research" {
						return rr.Outcome
					}
				}
			case err := <-errc:
				t.Fatalf("gateway stopped: %v", err)
			case <-time.After(60 * testTimeoutScale()):
				t.Fatal("event not handled")
			}
			return ""
		}
		require.Equal(t, gateway.OutcomeRefused, outcome(0), "consent still withdrawn")
		request(t, tb.brokers, R, "--consent", "research")
		applied := false
		for i := 1; i <= 50 && !applied; i++ {
			applied = outcome(i) == gateway.OutcomeDelivered
		}
		assert.True(t, applied, "the renewed consent reached the running gateway")
		// An objection to marketing (research included, GDPR Art 21(2)
		// and (6)) stops research again despite the consent.
		request(t, tb.brokers, R, "--object", "marketing")
		stopped := false
		for i := 51; i <= 100 && !stopped; i++ {
			stopped = outcome(i) == gateway.OutcomeRefused
		}
		assert.True(t, stopped, "the objection reached the running gateway")
		cancel()
		require.NoError(t, <-errc)
	})
}

// logBuffer collects log lines written concurrently.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSpace(b.buf.String()), "\n")
}

func TestSubjectRequestCommand(t *testing.T) {
	tb := newTestBed(t)
	request(t, tb.brokers, "PAX-1", "--withdraw", "marketing")
	request(t, tb.brokers, "PAX-1", "--erase")
	got := readAll(t, tb.brokers, defaultSubjectTopic)[defaultSubjectTopic]
	var keys []string
	store := gateway.NewSubjectStore()
	for _, r := range got {
		keys = append(keys, r.Key)
		require.NoError(t, tb.acct.subjects.Apply(store, gateway.Message{Key: []byte(r.Key), Value: r.Value}))
	}
	assert.ElementsMatch(t, []string{"PAX-1|consent|campaign", "PAX-1|consent|advertising", "PAX-1|consent|survey",
		"PAX-1|consent|research", "PAX-1|erasure|"}, keys)
	assert.Equal(t, gateway.SubjectContext{Consents: map[string]bool{"campaign": false, "advertising": false, "survey": false,
		"research": false}, Objections: []string{}, Erased: true}, store.Lookup("PAX-1"))

	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no action", args: []string{"--passenger", "P"}, want: "exactly one of"},
		{name: "two actions", args: []string{"--passenger", "P", "--erase", "--object", "service"}, want: "exactly one of"},
		{name: "no passenger", args: []string{"--erase"}, want: "--passenger is required"},
		{name: "unknown purpose", args: []string{"--passenger", "P", "--withdraw", "reserch"}, want: `unknown purpose "reserch"`},
		{name: "bad channel", args: []string{"--passenger", "P", "--erase", "--channel", "pigeon"}, want: "--channel"},
		{name: "objection to a consent", args: []string{"--passenger", "P", "--object", "cross_border"}, want: "use --withdraw cross_border"},
		{name: "objection to a legal duty", args: []string{"--passenger", "P", "--object", "border_control"},
			want: `an objection to "border_control" changes nothing`},
		{name: "withdrawal of a legal duty", args: []string{"--passenger", "P", "--withdraw", "legal_claim"},
			want: `withdrawing consent to "legal_claim" changes nothing`},
		{name: "objection to the contract", args: []string{"--passenger", "P", "--object", "contract"},
			want: "GDPR Art 21 gives no right to object"},
		{name: "withdrawal of a contract purpose", args: []string{"--passenger", "P", "--withdraw", "service"},
			want: "pass --dpo-approved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, nil, append([]string{"subject", "request", "--brokers", tb.brokers[0]}, tt.args...)...)
			assert.Equal(t, 2, code)
			assert.Contains(t, stderr, tt.want)
		})
	}
	// Refused requests published nothing; lifting an objection, marketing
	// objections and a DPO-approved objection to the contract are published.
	request(t, tb.brokers, "PAX-2", "--object", "marketing")
	request(t, tb.brokers, "PAX-2", "--unobject", "contract")
	request(t, tb.brokers, "PAX-2", "--object", "service", "--dpo-approved")
	keys = nil
	for _, r := range readAll(t, tb.brokers, defaultSubjectTopic)[defaultSubjectTopic] {
		keys = append(keys, r.Key)
	}
	assert.ElementsMatch(t, []string{"PAX-1|consent|campaign", "PAX-1|consent|advertising", "PAX-1|consent|survey",
		"PAX-1|consent|research", "PAX-1|erasure|", "PAX-2|objection|campaign", "PAX-2|objection|advertising",
		"PAX-2|objection|survey", "PAX-2|objection|research", "PAX-2|objection|contract", "PAX-2|objection|service"}, keys)
}

// The CLI's purpose classes are the policy's: what rests on the contract
// (purpose_basis in classes.rego) and what an objection does not stop
// (objection_exempt in subject.rego).
func TestObjectionRulesMatchPolicy(t *testing.T) {
	var mods []func(*rego.Rego)
	require.NoError(t, fs.WalkDir(policies.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".rego") || strings.HasSuffix(path, "_test.rego") {
			return err
		}
		src, err := fs.ReadFile(policies.FS, path)
		mods = append(mods, rego.Module(path, string(src)))
		return err
	}))
	eval := func(query string) any {
		rs, err := rego.New(append(mods, rego.Query(query))...).Eval(t.Context())
		require.NoError(t, err)
		require.Len(t, rs, 1)
		return rs[0].Expressions[0].Value
	}
	var contract []string
	for purpose, basis := range eval("data.dgw.purpose_basis").(map[string]any) {
		if basis == "contract" {
			contract = append(contract, purpose)
		}
	}
	assert.ElementsMatch(t, contractPurposes, contract)
	var exempt []string
	for _, p := range eval("data.dgw.objection_exempt").([]any) {
		exempt = append(exempt, p.(string))
	}
	assert.ElementsMatch(t, legalDutyPurposes, exempt)
}

// The gateway refuses topics that would lose what they must keep.
func TestAccountabilityChecksTopics(t *testing.T) {
	tb := newTestBed(t)
	admin := kafka.AdminConfig{Brokers: tb.brokers}
	ctx := t.Context()
	require.NoError(t, tb.acct.checkTopics(ctx, admin), "the topics dgw creates pass")
	mk := func(audit, subject string, retention time.Duration) *accountability {
		a, err := newAccountability(tb.parts.set, audit, subject, tb.acct.key, retention)
		require.NoError(t, err)
		return a
	}
	require.NoError(t, admin.EnsureTopics(ctx, 1, 1, "plain"))
	require.NoError(t, admin.EnsureTopicsWithConfig(ctx, 1, 1, map[string]string{"cleanup.policy": "compact"}, "compacted"))
	require.NoError(t, admin.EnsureTopicsWithConfig(ctx, 1, 1, map[string]string{"retention.ms": "86400000"}, "one-day"))
	tests := []struct {
		name string
		acct *accountability
		want string
	}{
		{name: "subject topic not compacted", acct: mk(defaultAuditTopic, "plain", defaultAuditRetention), want: "cleanup.policy=delete"},
		{name: "audit topic compacted", acct: mk("compacted", defaultSubjectTopic, defaultAuditRetention), want: "compaction would keep one entry per chain"},
		{name: "audit retention too short", acct: mk("one-day", defaultSubjectTopic, defaultAuditRetention), want: "retention.ms=86400000"},
		{name: "missing subject topic", acct: mk(defaultAuditTopic, "nope", defaultAuditRetention), want: "subject topic"},
		{name: "forever wanted", acct: mk(defaultAuditTopic, defaultSubjectTopic, -1), want: "less than the configured audit_retention (-1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.acct.checkTopics(ctx, admin)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	// A gateway on such a topic does not start.
	bad := mk(defaultAuditTopic, "plain", defaultAuditRetention)
	err := runGateway(ctx, gatewayOptions{brokers: tb.brokers, clientID: "bad", group: "bad", topics: tb.sources,
		deadLetter: testDeadLetter, held: testHeld, workers: 1, parts: tb.parts, log: discardLogger(), acct: bad})
	assert.ErrorContains(t, err, "cleanup.policy=delete")
}

func TestRunNeedsARealAuditKey(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "dgw.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("brokers: [\"127.0.0.1:1\"]\nadmin_addr: \"\"\n"), 0o600))
	_, stderr, code := runCLI(t, nil, "run", "--config", cfgFile)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "no audit key")
	assert.Contains(t, stderr, "DGW_AUDIT_KEY")

	keyFile := filepath.Join(dir, "short")
	require.NoError(t, os.WriteFile(keyFile, []byte("too-short"), 0o600))
	require.NoError(t, os.WriteFile(cfgFile, []byte("brokers: [\"127.0.0.1:1\"]\nadmin_addr: \"\"\naudit_key_file: "+keyFile+"\n"), 0o600))
	_, stderr, code = runCLI(t, nil, "run", "--config", cfgFile)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "secret too short")
	assert.NotContains(t, stderr, "too-short", "the secret is never printed")
}

func TestAccountabilityConfig(t *testing.T) {
	cfg, err := loadConfig("", []string{"DGW_BROKERS=b:9092"})
	require.NoError(t, err)
	assert.Equal(t, defaultAuditTopic, cfg.AuditTopic)
	assert.Equal(t, defaultSubjectTopic, cfg.SubjectTopic)
	d, err := parseRetention(cfg.AuditRetention)
	require.NoError(t, err)
	assert.Equal(t, defaultAuditRetention, d)
	assert.Equal(t, "189345600000", retentionMs(d), "six years of 365.25 days")

	cfg, err = loadConfig("", []string{"DGW_BROKERS=b:9092", "DGW_AUDIT_TOPIC=a", "DGW_SUBJECT_TOPIC=s",
		"DGW_AUDIT_KEY_FILE=/k", "DGW_AUDIT_RETENTION=forever"})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "s", "/k", "forever"}, []string{cfg.AuditTopic, cfg.SubjectTopic, cfg.AuditKeyFile, cfg.AuditRetention})

	sample, err := loadConfig("../../deploy/dgw.yaml", nil)
	require.NoError(t, err, "the sample configuration loads")
	assert.Equal(t, "/run/secrets/dgw-audit-key", sample.AuditKeyFile)
	assert.Equal(t, "52596h", sample.AuditRetention)

	for env, want := range map[string]string{
		"DGW_AUDIT_RETENTION=soon":      "audit_retention",
		"DGW_AUDIT_TOPIC=dgw.held":      "must differ from the dead-letter and held topics",
		"DGW_SUBJECT_TOPIC=dgw.audit":   "must differ, got dgw.audit twice",
		"DGW_SUBJECT_TOPIC=":            "must not be empty",
		"DGW_AUDIT_RETENTION=-5h":       "positive duration",
		"DGW_AUDIT_RETENTION=52596h0m0": "audit_retention",
	} {
		_, err := loadConfig("", []string{"DGW_BROKERS=b:9092", env})
		require.Error(t, err, env)
		assert.Contains(t, err.Error(), want, env)
	}
}

// After the broker compacts the subject topic — one record per key left —
// the state rebuilt from it is the state the whole history gave.
func TestSubjectStateSurvivesCompaction(t *testing.T) {
	tb := newTestBed(t)
	steps := []struct {
		pax  string
		args []string
	}{
		{"P1", []string{"--consent", "research"}}, {"P1", []string{"--withdraw", "research"}}, {"P2", []string{"--erase"}},
		{"P3", []string{"--object", "survey"}}, {"P3", []string{"--unobject", "survey"}}, {"P1", []string{"--consent", "survey"}},
		{"P3", []string{"--object", "contract", "--dpo-approved"}},
	}
	for _, s := range steps {
		request(t, tb.brokers, s.pax, s.args...)
	}
	rebuild := func() (*gateway.SubjectStore, int) {
		store := gateway.NewSubjectStore()
		n := 0
		require.NoError(t, kafka.Scan(t.Context(), kafka.ReaderConfig{Brokers: tb.brokers, Topic: defaultSubjectTopic}, nil,
			func(m gateway.Message) error {
				n++
				return tb.acct.subjects.Apply(store, m)
			}))
		return store, n
	}
	before, n := rebuild()
	require.Equal(t, len(steps), n)
	tb.broker.Compact()
	after, n := rebuild()
	assert.Less(t, n, len(steps), "compaction dropped superseded requests")
	for _, pax := range []string{"P1", "P2", "P3"} {
		assert.Equal(t, before.Lookup(pax), after.Lookup(pax), pax)
	}
	assert.Equal(t, gateway.SubjectContext{Consents: map[string]bool{"research": false, "survey": true}, Objections: []string{}},
		after.Lookup("P1"))
	assert.True(t, after.Lookup("P2").Erased)
	assert.Equal(t, []string{"contract"}, after.Lookup("P3").Objections)
}
