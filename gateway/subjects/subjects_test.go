package subjects_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/gateway/subjects"
	"github.com/dgwproject/dgw/schemas"
)

func newCodec(t testing.TB) *subjects.Codec {
	t.Helper()
	set, err := schema.Load(schemas.FS)
	require.NoError(t, err)
	c, err := subjects.NewCodec(set)
	require.NoError(t, err)
	return c
}

func req(subject string, kind gateway.SubjectRequestKind, purpose string) subjects.Request {
	return subjects.Request{SubjectRequest: gateway.SubjectRequest{SubjectID: subject, Kind: kind, Purpose: purpose},
		EventID: "sr-1", OccurredAt: time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC), SourceSystem: "crm",
		Channel: "email", VerifiedIdentity: true}
}

func TestKeys(t *testing.T) {
	tests := []struct {
		name    string
		req     gateway.SubjectRequest
		key     string
		wantErr string
	}{
		{name: "consent", req: gateway.SubjectRequest{SubjectID: "P1", Kind: gateway.ConsentWithdrawn, Purpose: "research"}, key: "P1|consent|research"},
		{name: "consent given shares the key", req: gateway.SubjectRequest{SubjectID: "P1", Kind: gateway.ConsentGiven, Purpose: "research"}, key: "P1|consent|research"},
		{name: "objection", req: gateway.SubjectRequest{SubjectID: "P1", Kind: gateway.ObjectionWithdrawn, Purpose: "service"}, key: "P1|objection|service"},
		{name: "erasure", req: gateway.SubjectRequest{SubjectID: "P1", Kind: gateway.Erasure}, key: "P1|erasure|"},
		{name: "id with separator", req: gateway.SubjectRequest{SubjectID: "A|B", Kind: gateway.Erasure}, key: "A|B|erasure|"},
		{name: "no passenger", req: gateway.SubjectRequest{Kind: gateway.Erasure}, wantErr: "names no passenger"},
		{name: "erasure with purpose", req: gateway.SubjectRequest{SubjectID: "P1", Kind: gateway.Erasure, Purpose: "x"}, wantErr: "has no purpose"},
		{name: "consent without purpose", req: gateway.SubjectRequest{SubjectID: "P1", Kind: gateway.ConsentGiven}, wantErr: "needs a purpose"},
		{name: "unknown kind", req: gateway.SubjectRequest{SubjectID: "P1", Kind: "forget-me"}, wantErr: "unknown subject request kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := subjects.Key(tt.req)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.key, string(k))
			s, fam, p, err := subjects.ParseKey(k)
			require.NoError(t, err)
			wantFam, _ := subjects.Family(tt.req.Kind)
			assert.Equal(t, []string{tt.req.SubjectID, wantFam, tt.req.Purpose}, []string{s, fam, p})
		})
	}
	for _, bad := range []string{"", "P1", "P1|consent", "|erasure|", "P1|consent|", "P1|erasure|x", "P1|unknown|x"} {
		_, _, _, err := subjects.ParseKey([]byte(bad))
		assert.ErrorIs(t, err, subjects.ErrBadKey, bad)
	}
}

func TestEncodeDecode(t *testing.T) {
	c := newCodec(t)
	for _, r := range []subjects.Request{req("P1", gateway.ConsentWithdrawn, "research"), req("P2", gateway.Erasure, "")} {
		key, val, err := c.Encode(r)
		require.NoError(t, err)
		want, _ := subjects.Key(r.SubjectRequest)
		assert.Equal(t, want, key)
		got, err := c.Decode(val)
		require.NoError(t, err)
		assert.Equal(t, r, got)
	}
	bad := req("P1", gateway.ConsentGiven, "research")
	bad.Channel = "pigeon"
	_, _, err := c.Encode(bad)
	assert.ErrorContains(t, err, "channel")
}

func TestApply(t *testing.T) {
	c := newCodec(t)
	enc := func(r subjects.Request) gateway.Message {
		k, v, err := c.Encode(r)
		require.NoError(t, err)
		return gateway.Message{Topic: "subject.requests", Key: k, Value: v}
	}
	withdrawn := enc(req("P1", gateway.ConsentWithdrawn, "research"))
	tests := []struct {
		name    string
		msgs    []gateway.Message
		want    gateway.SubjectContext
		wantErr error
	}{
		{name: "request", msgs: []gateway.Message{withdrawn},
			want: gateway.SubjectContext{Consents: map[string]bool{"research": false}, Objections: []string{}}},
		{name: "tombstone forgets", msgs: []gateway.Message{withdrawn, {Key: withdrawn.Key}},
			want: gateway.SubjectContext{Consents: map[string]bool{}, Objections: []string{}}},
		{name: "key by passenger id alone still applies, but is reported", wantErr: subjects.ErrKeyMismatch,
			msgs: []gateway.Message{{Key: []byte("P1"), Value: enc(req("P1", gateway.Objection, "service")).Value}},
			want: gateway.SubjectContext{Consents: map[string]bool{}, Objections: []string{"service"}}},
		{name: "unreadable erasure is applied from its key", wantErr: subjects.ErrUnreadable,
			msgs: []gateway.Message{{Key: []byte("P1|erasure|"), Value: []byte("garbage")}},
			want: gateway.SubjectContext{Consents: map[string]bool{}, Objections: []string{}, Erased: true}},
		{name: "unreadable consent reads as withdrawn", wantErr: subjects.ErrUnreadable,
			msgs: []gateway.Message{{Key: []byte("P1|consent|research"), Value: []byte{0xC3, 0x01, 1}}},
			want: gateway.SubjectContext{Consents: map[string]bool{"research": false}, Objections: []string{}}},
		{name: "unreadable without a key changes nothing", wantErr: subjects.ErrUnreadable,
			msgs: []gateway.Message{{Key: []byte("P1"), Value: []byte("garbage")}},
			want: gateway.SubjectContext{Consents: map[string]bool{}, Objections: []string{}}},
		{name: "tombstone with a bad key", wantErr: subjects.ErrBadKey, msgs: []gateway.Message{{Key: []byte("P1")}},
			want: gateway.SubjectContext{Consents: map[string]bool{}, Objections: []string{}}},
		{name: "an unknown purpose is applied, but reported", wantErr: subjects.ErrUnknownPurpose,
			msgs: []gateway.Message{enc(req("P1", gateway.ConsentWithdrawn, "reserch"))},
			want: gateway.SubjectContext{Consents: map[string]bool{"reserch": false}, Objections: []string{}}},
		{name: "marketing from another tool is known", msgs: []gateway.Message{enc(req("P1", gateway.ConsentGiven, subjects.Marketing))},
			want: gateway.SubjectContext{Consents: map[string]bool{"marketing": true}, Objections: []string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := gateway.NewSubjectStore()
			var err error
			for _, m := range tt.msgs {
				err = c.Apply(s, m)
			}
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				assert.NotContains(t, err.Error(), "P1", "errors never quote the passenger id")
				assert.NotContains(t, err.Error(), "reserch", "nor a free-text purpose")
			} else {
				assert.NoError(t, err)
			}
			assert.Equal(t, tt.want, s.Lookup("P1"))
		})
	}
}

// What compaction keeps — the latest record per key — rebuilds, in any
// order, the state the whole history gives.
func TestCompactedTopicRebuildsTheState(t *testing.T) {
	c := newCodec(t)
	rng := rand.New(rand.NewPCG(1, 2))
	kinds := []gateway.SubjectRequestKind{gateway.ConsentGiven, gateway.ConsentWithdrawn, gateway.Objection,
		gateway.ObjectionWithdrawn, gateway.Erasure}
	purposes := []string{"research", "survey", "campaign", "service"}
	passengers := []string{"P1", "P2", "P3"}
	full := gateway.NewSubjectStore()
	latest := map[string]gateway.Message{}
	for range 300 {
		k := kinds[rng.IntN(len(kinds))]
		p := purposes[rng.IntN(len(purposes))]
		if k == gateway.Erasure {
			p = ""
		}
		key, val, err := c.Encode(req(passengers[rng.IntN(len(passengers))], k, p))
		require.NoError(t, err)
		m := gateway.Message{Key: key, Value: val}
		require.NoError(t, c.Apply(full, m))
		latest[string(key)] = m
	}
	var compacted []gateway.Message
	for _, m := range latest {
		compacted = append(compacted, m)
	}
	rng.Shuffle(len(compacted), func(i, j int) { compacted[i], compacted[j] = compacted[j], compacted[i] })
	rebuilt := gateway.NewSubjectStore()
	for _, m := range compacted {
		require.NoError(t, c.Apply(rebuilt, m))
	}
	for _, p := range passengers {
		assert.Equal(t, full.Lookup(p), rebuilt.Lookup(p), p)
	}
	assert.Less(t, len(compacted), 300)
}

func FuzzApply(f *testing.F) {
	c := newCodec(f)
	k, v, err := c.Encode(req("P1", gateway.Objection, "service"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(k, v)
	f.Add([]byte("P1|erasure|"), []byte{})
	f.Add([]byte("x|y|z"), v[:len(v)-2])
	f.Fuzz(func(t *testing.T, key, value []byte) {
		s := gateway.NewSubjectStore()
		err := c.Apply(s, gateway.Message{Key: key, Value: value})
		if err != nil && !errors.Is(err, subjects.ErrUnreadable) && !errors.Is(err, subjects.ErrKeyMismatch) &&
			!errors.Is(err, subjects.ErrBadKey) && !errors.Is(err, subjects.ErrUnknownPurpose) {
			t.Fatalf("untyped error: %v", err)
		}
	})
}

func TestKnownPurposes(t *testing.T) {
	c := newCodec(t)
	for _, p := range []string{"contract", "service", "baggage", "border_control", "legal_claim", "campaign", "research",
		"health_data", "analytics_cookies", "marketing_cookies", subjects.CrossBorder, subjects.Marketing} {
		assert.True(t, c.Known(p), p)
	}
	for _, p := range []string{"", "reserch", "Marketing", "cross-border"} {
		assert.False(t, c.Known(p), p)
	}
	assert.Contains(t, c.KnownPurposes(), "research")
	assert.IsNonDecreasing(t, c.KnownPurposes())
	for _, p := range subjects.MarketingPurposes() {
		assert.True(t, c.Known(p), p)
		assert.False(t, c.IsConsent(p), p)
	}
	for _, p := range []string{"health_data", "analytics_cookies", "marketing_cookies", subjects.CrossBorder} {
		assert.True(t, c.IsConsent(p), p)
	}
	assert.False(t, c.IsConsent(subjects.Marketing), "marketing is an umbrella of purposes")
}

func TestExpand(t *testing.T) {
	r := req("P1", gateway.ConsentWithdrawn, subjects.Marketing)
	var got []string
	for _, x := range subjects.Expand(r) {
		assert.Equal(t, r.SubjectID, x.SubjectID)
		assert.Equal(t, r.Kind, x.Kind)
		assert.Equal(t, r.EventID+"-"+x.Purpose, x.EventID)
		got = append(got, x.Purpose)
	}
	assert.Equal(t, subjects.MarketingPurposes(), got)
	one := req("P1", gateway.Objection, "survey")
	assert.Equal(t, []subjects.Request{one}, subjects.Expand(one))
	erase := req("P1", gateway.Erasure, "")
	assert.Equal(t, []subjects.Request{erase}, subjects.Expand(erase))
}
