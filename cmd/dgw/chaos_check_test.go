//go:build chaos

package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/policies"
	"github.com/dgwproject/dgw/schemas"
)

// The checker of the fault run. What it reads and how it decodes is its
// own: a franz-go client (readAll), plain hamba/avro with the .avsc files
// (the source schemas as published, the recipient schemas as `dgw schemas
// export` wrote them), the registry's contract scopes read from the JSON
// file. What the policy allows is asked of the policy: the expected
// decisions come from gateway/policy with the decision context the
// gateway's decoder extracts, as in TestEndToEnd.

// chaosReport is what the checker found.
type chaosReport struct {
	Duration                                            time.Duration
	Produced, Corrupted, Redriven                       int64
	Kills, BrokerRestarts, BrokerCrashes                int
	UnexpectedExits                                     int
	SourceRecords, SourceEvents, SourceDuplicates       int
	Undecodable, DeadLettered, UndecodableNotDead       int
	Lenient                                             int // decoded by hamba, refused by the gateway
	Expected, Delivered, Missing                        int
	DuplicateDeliveries                                 int
	DuplicateEvents                                     int
	OutsideScope, WithheldPresent, Unredacted, CardCode int
	RefusedDelivered, UnknownEvent, PartnerUndecodable  int
	WrongRevision                                       int
	HeldLeft                                            int
	AuditVerify                                         string
	Examples                                            []string
	DuplicateIDs                                        []string
}

// Leaked counts every finding that discloses more than the policy allows.
func (r *chaosReport) Leaked() int {
	return r.OutsideScope + r.WithheldPresent + r.Unredacted + r.CardCode + r.RefusedDelivered + r.UnknownEvent + r.PartnerUndecodable
}

func (r *chaosReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fault run: %s, %d events produced (%d corrupt on purpose), %d gateway SIGKILLs, %d broker restarts (%d by SIGKILL), %d gateway exits not caused by the harness\n",
		r.Duration, r.Produced, r.Corrupted, r.Kills, r.BrokerRestarts, r.BrokerCrashes, r.UnexpectedExits)
	fmt.Fprintf(&b, "source: %d records, %d distinct events, %d produced twice; %d undecodable, all dead-lettered: %v (%d dead-letter records)\n",
		r.SourceRecords, r.SourceEvents, r.SourceDuplicates, r.Undecodable, r.UndecodableNotDead == 0, r.DeadLettered)
	fmt.Fprintf(&b, "deliveries: %d expected, %d delivered, %d MISSING; %d redriven from held, %d left in held\n",
		r.Expected, r.Delivered, r.Missing, r.Redriven, r.HeldLeft)
	fmt.Fprintf(&b, "duplicates: %d extra deliveries of %d (event, recipient) pairs (at-least-once; identified by dgw-event-id)\n",
		r.DuplicateDeliveries, r.DuplicateEvents)
	fmt.Fprintf(&b, "leaks: %d (fields outside contract scope %d, fields the policy withheld %d, unredacted %d, card security code %d, refused yet delivered %d, unknown event %d, undecodable by the partner %d)\n",
		r.Leaked(), r.OutsideScope, r.WithheldPresent, r.Unredacted, r.CardCode, r.RefusedDelivered, r.UnknownEvent, r.PartnerUndecodable)
	if r.WrongRevision > 0 {
		fmt.Fprintf(&b, "records with another policy revision: %d\n", r.WrongRevision)
	}
	if len(r.DuplicateIDs) > 0 {
		fmt.Fprintf(&b, "duplicated (first %d): %s\n", len(r.DuplicateIDs), strings.Join(r.DuplicateIDs, ", "))
	}
	for _, e := range r.Examples {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	if r.AuditVerify != "" {
		fmt.Fprintf(&b, "audit trail (dgw audit verify): %s\n", r.AuditVerify)
	}
	fmt.Fprintf(&b, "result: %s\n", map[bool]string{true: "PASS (0 missing, 0 leaked)", false: "FAIL"}[r.Missing == 0 && r.Leaked() == 0])
	return b.String()
}

func (r *chaosReport) example(format string, args ...any) {
	if len(r.Examples) < 20 {
		r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
	}
}

// sourceSchema is a published event schema as a consumer parses it.
type sourceSchema struct {
	eventType string
	schema    avro.Schema
}

func loadSourceSchemas(t *testing.T) map[uint64]sourceSchema {
	t.Helper()
	files, err := fs.Glob(schemas.FS, "*.avsc")
	require.NoError(t, err)
	out := map[uint64]sourceSchema{}
	for _, f := range files {
		b, err := fs.ReadFile(schemas.FS, f)
		require.NoError(t, err)
		s, err := avro.ParseBytesWithCache(b, "", &avro.SchemaCache{})
		require.NoError(t, err, "%s does not parse with plain hamba/avro", f)
		fp, err := s.FingerprintUsing(avro.CRC64Avro)
		require.NoError(t, err)
		out[binary.BigEndian.Uint64(fp)] = sourceSchema{eventType: strings.TrimSuffix(path.Base(f), ".avsc"), schema: s}
	}
	return out
}

// registryScopes reads the contract scopes from the registry file:
// recipient → event type → leaf path → operators.
func registryScopes(t *testing.T) map[string]map[string]map[string][]string {
	t.Helper()
	raw, err := fs.ReadFile(policies.FS, "data/recipients.json")
	require.NoError(t, err)
	var reg struct {
		Recipients []struct {
			ID    string                         `json:"id"`
			Scope map[string]map[string][]string `json:"scope"`
		} `json:"recipients"`
	}
	require.NoError(t, json.Unmarshal(raw, &reg))
	out := map[string]map[string]map[string][]string{}
	for _, r := range reg.Recipients {
		out[r.ID] = r.Scope
	}
	return out
}

// checkChaos reads the source, recipient, held and dead-letter topics and
// compares what was delivered with what the policy allows.
func checkChaos(t *testing.T, brokers []string, p *parts, partner partnerSchemas, sources []string) *chaosReport {
	t.Helper()
	rep := &chaosReport{}
	srcSchemas := loadSourceSchemas(t)
	scopes := registryScopes(t)
	outTopics := recipientTopics(p.recipients)
	// One topic at a time, so that each read stays well inside readAll's
	// deadline on a big run.
	all := map[string][]outRecord{}
	for _, tp := range append(append([]string{testDeadLetter, testHeld}, sources...), outTopics...) {
		all[tp] = readAll(t, brokers, tp)[tp]
	}
	rep.HeldLeft = len(all[testHeld])

	dead := map[string]bool{}
	for _, r := range all[testDeadLetter] {
		rep.DeadLettered++
		dead[r.Headers[gateway.HeaderSourceTopic]+"/"+r.Headers[gateway.HeaderSourcePartition]+"/"+r.Headers[gateway.HeaderSourceOffset]] = true
	}

	// Deliveries by event id.
	byEvent := map[string][]chaosDelivery{}
	topicOwner := map[string]string{}
	for _, r := range p.recipients {
		topicOwner[r.Topic] = r.ID
	}
	for _, tp := range outTopics {
		for _, rec := range all[tp] {
			id := rec.Headers[gateway.HeaderEventID]
			byEvent[id] = append(byEvent[id], chaosDelivery{topicOwner[tp], rec})
			rep.Delivered++
			if rec.Headers[gateway.HeaderPolicyRevision] != p.decider.Revision() {
				rep.WrongRevision++
			}
			if rec.Headers[gateway.HeaderRecipient] != topicOwner[tp] {
				rep.UnknownEvent++
				rep.example("record on %s names recipient %q", tp, rec.Headers[gateway.HeaderRecipient])
			}
		}
	}

	seen := map[string]bool{}
	for _, tp := range sources {
		for _, rec := range all[tp] {
			rep.SourceRecords++
			v, st, ok := decodeSource(srcSchemas, rec.Value)
			if !ok {
				rep.Undecodable++
				if !dead[fmt.Sprintf("%s/%d/%d", rec.Topic, rec.Partition, rec.Offset)] {
					rep.UndecodableNotDead++
					rep.example("undecodable source record %s/%d/%d is not in the dead-letter topic", rec.Topic, rec.Partition, rec.Offset)
				}
				continue
			}
			id, _ := v["event_id"].(string)
			if seen[id] {
				rep.SourceDuplicates++
				continue
			}
			seen[id] = true
			checkEvent(t, rep, p, partner, scopes, dead, st, v, rec, id, byEvent[id])
			delete(byEvent, id)
		}
	}
	for id, ds := range byEvent {
		rep.UnknownEvent += len(ds)
		rep.example("%d deliveries of event %q, which is in no source topic", len(ds), id)
	}
	sort.Strings(rep.DuplicateIDs)
	if len(rep.DuplicateIDs) > 10 {
		rep.DuplicateIDs = rep.DuplicateIDs[:10]
	}
	return rep
}

// decodeSource decodes a single-object source record with plain hamba.
func decodeSource(ss map[uint64]sourceSchema, raw []byte) (map[string]any, sourceSchema, bool) {
	if len(raw) < 10 || raw[0] != 0xC3 || raw[1] != 0x01 {
		return nil, sourceSchema{}, false
	}
	st, ok := ss[binary.LittleEndian.Uint64(raw[2:10])]
	if !ok {
		return nil, sourceSchema{}, false
	}
	var v map[string]any
	if err := avro.Unmarshal(st.schema, raw[10:], &v); err != nil {
		return nil, sourceSchema{}, false
	}
	return v, st, true
}

// chaosDelivery is one record read from a recipient topic.
type chaosDelivery struct {
	recipient string
	rec       outRecord
}

// checkEvent compares one source event's deliveries with the policy.
func checkEvent(t *testing.T, rep *chaosReport, p *parts, partner partnerSchemas, scopes map[string]map[string]map[string][]string,
	dead map[string]bool, st sourceSchema, v map[string]any, rec outRecord, id string, deliveries []chaosDelivery) {
	t.Helper()
	// Source values by leaf path, read by the checker's own decoder.
	src := map[string][]string{}
	leaves(st.schema, v, "", func(path string, x any) {
		if s, ok := x.(string); ok {
			src[path] = append(src[path], s)
		}
	})
	cvv := src["card.security_code"]

	// What the policy allows for this event.
	ev, err := p.decoder.Decode(gateway.Message{Topic: rec.Topic, Value: rec.Value})
	if err != nil {
		// hamba is lenient with some damage (a truncated varint at the
		// end): the record is bad, and must be dead-lettered.
		rep.Undecodable++
		rep.Lenient++
		if !dead[fmt.Sprintf("%s/%d/%d", rec.Topic, rec.Partition, rec.Offset)] {
			rep.UndecodableNotDead++
			rep.example("bad source record %s/%d/%d is not in the dead-letter topic", rec.Topic, rec.Partition, rec.Offset)
		}
		return
	}
	decisions := map[string]gateway.Decision{}
	for _, r := range p.recipients {
		d, err := p.decider.Decide(t.Context(), &ev.Context, r)
		require.NoError(t, err)
		if d.Allow && len(d.Released()) > 0 && d.CheckScope(r, st.eventType) == nil {
			decisions[r.ID] = d
		}
	}
	rep.SourceEvents++
	rep.Expected += len(decisions)

	count := map[string]int{}
	for _, dl := range deliveries {
		count[dl.recipient]++
		d, allowed := decisions[dl.recipient]
		if !allowed {
			rep.RefusedDelivered++
			rep.example("event %s reached %s, which the policy refuses", id, dl.recipient)
			continue
		}
		s := partner[dl.recipient][st.eventType]
		if s == nil {
			rep.PartnerUndecodable++
			rep.example("no exported schema for %s/%s", dl.recipient, st.eventType)
			continue
		}
		out, err := decodePartner(s, dl.rec.Value)
		if err != nil {
			rep.PartnerUndecodable++
			rep.example("event %s for %s: partner cannot decode: %v", id, dl.recipient, err)
			continue
		}
		scope := scopes[dl.recipient][st.eventType]
		leaves(s, out, "", func(path string, x any) {
			ops, inScope := scope[path]
			if !inScope {
				rep.OutsideScope++
				rep.example("event %s: %s received %s, outside its contract scope", id, dl.recipient, path)
				return
			}
			op, released := d.Fields[path]
			if !released || op == gateway.OpDrop {
				rep.WithheldPresent++
				rep.example("event %s: %s received %s, which the policy withheld", id, dl.recipient, path)
				return
			}
			str, isStr := x.(string)
			if !isStr {
				return
			}
			if !slices.Contains(ops, string(gateway.OpKeep)) && slices.Contains(src[path], str) {
				rep.Unredacted++
				rep.example("event %s: %s received %s unredacted (%s)", id, dl.recipient, path, op)
			}
			if slices.Contains(cvv, str) {
				rep.CardCode++
				rep.example("event %s: %s received the card security code in %s", id, dl.recipient, path)
			}
		})
	}
	for r := range decisions {
		if count[r] == 0 {
			rep.Missing++
			rep.example("event %s (%s) was never delivered to %s", id, st.eventType, r)
		}
	}
	dup := false
	for _, n := range count {
		if n > 1 {
			rep.DuplicateDeliveries += n - 1
			rep.DuplicateEvents++
			dup = true
		}
	}
	if dup {
		rep.DuplicateIDs = append(rep.DuplicateIDs, id)
	}
}
