package audit

import (
	"bytes"
	"io/fs"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/schemas"
)

func schemaBytes(t *testing.T) []byte {
	t.Helper()
	b, err := fs.ReadFile(schemas.FS, "audit.avsc")
	require.NoError(t, err)
	return b
}

// TestHandEncoderMatchesMarshal compares appendEntry with hamba's generic
// Marshal, the encoder it replaced, on random entries that take every
// branch: nil and set optionals, empty and long arrays, multi-byte
// varints, negative numbers, times before 1970, non-ASCII text.
func TestHandEncoderMatchesMarshal(t *testing.T) {
	c, err := NewCodec(schemaBytes(t))
	require.NoError(t, err)
	require.True(t, c.hand, "the schema in schemas/ is the one encoded by hand")
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 3000 {
		e := randomEntry(rng)
		want, err := c.api.Marshal(c.schema, e)
		require.NoError(t, err)
		got, err := appendEntry([]byte("prefix"), e)
		require.NoError(t, err)
		require.Equal(t, want, got[len("prefix"):], "entry %d: %+v", i, e)
	}
}

func TestHandEncoderRejectsUnknownSymbols(t *testing.T) {
	for name, mod := range map[string]func(*Entry){
		"kind":     func(e *Entry) { e.Kind = "other" },
		"outcome":  func(e *Entry) { e.Decisions[0].Outcome = "" },
		"operator": func(e *Entry) { e.Decisions[0].Disclosed[1].Operator = "drop" },
	} {
		t.Run(name, func(t *testing.T) {
			e := probeEntry()
			mod(e)
			_, err := appendEntry(nil, e)
			require.ErrorContains(t, err, "unknown enum symbol")
		})
	}
}

// TestOtherSchemaUsesMarshal: a schema that differs in its canonical form
// (here only the name of the fixed type) is not the hand encoder's; its
// codec falls back to Marshal and still seals entries that decode.
func TestOtherSchemaUsesMarshal(t *testing.T) {
	other := strings.ReplaceAll(string(schemaBytes(t)), "Sha256", "Sha256x")
	c, err := NewCodec([]byte(other))
	require.NoError(t, err)
	require.NotEqual(t, handSchemaFP, c.Fingerprint())
	assert.False(t, c.hand)
	e := probeEntry()
	raw, _, err := c.seal(e, DevKey("k").macs(), nil)
	require.NoError(t, err)
	got, err := c.Decode(raw)
	require.NoError(t, err)
	assert.True(t, HashOK(raw, got))
	assert.True(t, DevKey("k").verify(got.Hash, got.MAC))
}

// TestSealReusesScratch: the scratch buffer is reused, and the encoding
// returned is not aliased by it.
func TestSealReusesScratch(t *testing.T) {
	c, err := NewCodec(schemaBytes(t))
	require.NoError(t, err)
	first, scratch, err := c.seal(probeEntry(), DevKey("k").macs(), nil)
	require.NoError(t, err)
	keep := bytes.Clone(first)
	e := probeEntry()
	e.ChainID = "another chain"
	second, _, err := c.seal(e, DevKey("k").macs(), scratch)
	require.NoError(t, err)
	assert.Equal(t, keep, first, "a later seal must not change an earlier encoding")
	assert.NotEqual(t, first, second)
}

func randomEntry(rng *rand.Rand) *Entry {
	str := func() string {
		const alphabet = "abcXYZ09-_.ü€\x00"
		n := rng.IntN(4)
		if rng.IntN(10) == 0 {
			n = 60 + rng.IntN(200) // length over one varint byte
		}
		var b strings.Builder
		for range n {
			r := []rune(alphabet)
			b.WriteRune(r[rng.IntN(len(r))])
		}
		return b.String()
	}
	opt := func() *string {
		if rng.IntN(2) == 0 {
			return nil
		}
		s := str()
		return &s
	}
	long := func() int64 {
		switch rng.IntN(4) {
		case 0:
			return rng.Int64N(130) - 65
		case 1:
			return -rng.Int64()
		default:
			return rng.Int64()
		}
	}
	when := func() time.Time {
		return time.Unix(rng.Int64N(8e9)-4e9, rng.Int64N(1e9)).UTC()
	}
	strs := func() []string {
		n := rng.IntN(4)
		if n == 0 && rng.IntN(2) == 0 {
			return nil
		}
		out := make([]string, n)
		for i := range out {
			out[i] = str()
		}
		return out
	}
	kinds := []string{KindDecision, KindCorrection}
	outcomes := []string{"delivered", "refused", "held"}
	ops := []string{"keep", "generalise", "mask", "hash"}
	e := &Entry{ChainID: str(), Seq: long(), KeyID: str(), Kind: kinds[rng.IntN(2)], RecordedAt: when(),
		EventID: str(), EventType: str(), OccurredAt: when(), Purpose: str(), SourceTopic: str(),
		SourcePartition: int32(long()), SourceOffset: long(), Subject: str(), TraceID: opt()}
	if rng.IntN(2) == 0 {
		n := long()
		e.CorrectsSeq = &n
	}
	for i := range e.PrevHash {
		e.PrevHash[i], e.Hash[i], e.MAC[i] = byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())
	}
	for range rng.IntN(5) {
		d := Decision{RecipientID: str(), RecipientName: str(), RecipientType: str(), RecipientCountry: str(),
			Outcome: outcomes[rng.IntN(3)], Reason: opt(), PolicyRevision: str(), Basis: opt(),
			CrossBorder: rng.IntN(2) == 0, Mechanism: opt(), Withheld: strs(), Reasons: strs()}
		for range rng.IntN(4) {
			d.Disclosed = append(d.Disclosed, DisclosedField{Path: str(), Operator: ops[rng.IntN(4)]})
		}
		e.Decisions = append(e.Decisions, d)
	}
	return e
}

// TestReusedMACsMatchKey: the chain's reused HMACs give what Key computes
// afresh, on every use, not only the first.
func TestReusedMACsMatchKey(t *testing.T) {
	k := DevKey("k")
	m := k.macs()
	for i, id := range []string{"P1", "", "P1", "Pé-2"} {
		assert.Equal(t, k.Pseudonym(id), m.pseudonymOf(id), "use %d", i)
		h := [32]byte{byte(i)}
		assert.Equal(t, k.sign(h), m.sign(h), "use %d", i)
	}
	var none Key
	assert.Nil(t, none.macs())
}
