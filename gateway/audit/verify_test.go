package audit_test

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway/audit"
)

// located finds the index of the record of chain/seq in tr.
func (tr trail) find(t *testing.T, c *audit.Codec, chain string, seq int64) int {
	t.Helper()
	for i, r := range tr {
		e, err := c.Decode(r.Value)
		if err == nil && e.ChainID == chain && e.Seq == seq {
			return i
		}
	}
	t.Fatalf("no record %s/%d", chain, seq)
	return -1
}

func renumber(tr trail) trail {
	out := slices.Clone(tr)
	for i := range out {
		out[i].Offset = int64(i)
	}
	return out
}

// changeContent edits a recipient name in place, keeping the length: the
// record still decodes, its hash no longer matches.
func changeContent(raw []byte) []byte {
	out := bytes.Clone(raw)
	i := bytes.Index(out, []byte("Border Service"))
	out[i+len("Border Service")-1] = 'X'
	return out
}

// rehash recomputes the SHA-256 hash of a changed record as an attacker
// without the audit key can; the MAC stays the old one.
func rehash(raw []byte) []byte {
	out := bytes.Clone(raw)
	h := sha256.Sum256(append([]byte("dgw.audit.v1\n"), out[:len(out)-64]...))
	copy(out[len(out)-64:], h[:])
	return out
}

func TestVerifyNamesTheFirstBrokenRecord(t *testing.T) {
	c := codec(t)
	key := testKey("k")
	// One partition, two chains interleaved, ten entries each.
	a := newAuditor(t, c, key, "i1")
	clean := renumber(build(t, a, 1, 2, 20))
	const chain = "dgw-i1-w0"
	at := func(seq int64) int { return clean.find(t, c, chain, seq) }

	tests := []struct {
		name    string
		tamper  func(tr trail) trail
		noKey   bool
		want    string // kind, "" for clean
		wantAt  func(tr trail) int
		wantSeq int64
		dups    int
		broken  int // chains broken; 0 means 1
	}{
		{name: "untouched", tamper: func(tr trail) trail { return tr }},
		{name: "duplicate from a retried write", dups: 1, tamper: func(tr trail) trail {
			return slices.Insert(tr, at(4)+1, tr[at(4)])
		}},
		{name: "duplicated batch after its successor", dups: 2, tamper: func(tr trail) trail {
			return slices.Insert(tr, at(6)+1, tr[at(4)], tr[at(5)])
		}},
		{name: "modified", want: audit.Modified, wantSeq: 4, tamper: func(tr trail) trail {
			tr[at(4)].Value = changeContent(tr[at(4)].Value)
			return tr
		}, wantAt: func(trail) int { return at(4) }},
		{name: "modified and rehashed, verified with the key", want: audit.Modified, wantSeq: 4, tamper: func(tr trail) trail {
			tr[at(4)].Value = rehash(changeContent(tr[at(4)].Value))
			return tr
		}, wantAt: func(trail) int { return at(4) }},
		{name: "modified and rehashed, verified without the key: the broken link names it", noKey: true,
			want: audit.Modified, wantSeq: 4, tamper: func(tr trail) trail {
				tr[at(4)].Value = rehash(changeContent(tr[at(4)].Value))
				return tr
			}, wantAt: func(trail) int { return at(4) }},
		{name: "removed", want: audit.Removed, wantSeq: 5, tamper: func(tr trail) trail {
			return slices.Delete(tr, at(4), at(4)+1)
		}, wantAt: func(trail) int { return at(5) - 1 }},
		{name: "first record removed", want: audit.Removed, wantSeq: 2, tamper: func(tr trail) trail {
			return slices.Delete(tr, at(1), at(1)+1)
		}, wantAt: func(trail) int { return at(2) - 1 }},
		{name: "reordered", want: audit.Reordered, wantSeq: 5, tamper: func(tr trail) trail {
			i, j := at(4), at(5)
			tr[i], tr[j] = tr[j], tr[i]
			return tr
		}, wantAt: func(trail) int { return at(4) }},
		{name: "inserted forgery", want: audit.Inserted, wantSeq: 4, tamper: func(tr trail) trail {
			forged := tr[at(4)]
			forged.Value = rehash(changeContent(forged.Value))
			return slices.Insert(tr, at(4)+1, forged)
		}, wantAt: func(trail) int { return at(4) + 1 }},
		{name: "inserted forgery ahead of the real record", want: audit.Inserted, wantSeq: 4, tamper: func(tr trail) trail {
			forged := tr[at(4)]
			forged.Value = rehash(changeContent(forged.Value))
			return slices.Insert(tr, at(4), forged)
		}, wantAt: func(trail) int { return at(4) }},
		{name: "inserted junk keyed by the chain", want: audit.Inserted, tamper: func(tr trail) trail {
			return slices.Insert(tr, at(4), audit.Record{Topic: testTopic, Key: []byte(chain), Value: []byte("junk")})
		}, wantAt: func(trail) int { return at(4) }},
		{name: "inserted junk without key", want: audit.Inserted, tamper: func(tr trail) trail {
			return slices.Insert(tr, at(2), audit.Record{Topic: testTopic, Value: []byte("junk")})
		}, wantAt: func(trail) int { return at(2) }},
		{name: "wrong key", want: audit.Modified, wantSeq: 1, broken: 2, tamper: func(tr trail) trail {
			b := newAuditor(t, c, testKey("other"), "i1")
			return renumber(build(t, b, 1, 2, 20))
		}, wantAt: func(trail) int { return at(1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := renumber(tt.tamper(slices.Clone(clean)))
			var opts []audit.VerifyOption
			if !tt.noKey {
				opts = append(opts, audit.WithKey(key))
			}
			r := verify(t, c, tr, 0, opts...)
			assert.Equal(t, len(tr), r.Records)
			assert.Equal(t, tt.dups, r.Duplicates)
			if tt.want == "" {
				assert.True(t, r.OK(), "%v", r.Problems)
				assert.Len(t, r.Heads, 2)
				return
			}
			require.False(t, r.OK())
			first := r.First()
			assert.Equal(t, tt.want, first.Kind, first.String())
			assert.Equal(t, int64(tt.wantAt(tr)), first.Offset, first.String())
			assert.Equal(t, testTopic, first.Topic)
			if tt.wantSeq != 0 {
				assert.Equal(t, chain, first.Chain)
				assert.Equal(t, tt.wantSeq, first.Seq, first.String())
			}
			assert.Len(t, r.Problems, max(tt.broken, 1), "the other chain is intact: %v", r.Problems)
		})
	}
}

func TestVerifyAcrossPartitionsAndRetention(t *testing.T) {
	c := codec(t)
	key := testKey("k")
	a := newAuditor(t, c, key, "i1")
	tr := build(t, a, 3, 6, 60)

	r := verify(t, c, tr, 0, audit.WithKey(key))
	require.True(t, r.OK(), "%v", r.Problems)
	assert.Equal(t, 6, r.Chains)
	assert.True(t, r.MACChecked)
	assert.Equal(t, key.ID(), r.KeyID)

	// Retention deleted the first records of partition 0: chains start
	// later there, which is not tampering once the log start moved.
	var trimmed trail
	for _, rec := range tr {
		if rec.Partition != 0 || rec.Offset >= 4 {
			trimmed = append(trimmed, rec)
		}
	}
	r = verify(t, c, trimmed, 4, audit.WithKey(key))
	assert.True(t, r.OK(), "%v", r.Problems)
	assert.Positive(t, r.ExpiredStarts)
	r = verify(t, c, trimmed, 0, audit.WithKey(key))
	assert.False(t, r.OK(), "the same gap at log start 0 is a removal")
	assert.Equal(t, audit.Removed, r.First().Kind)

	// A chain never changes partition.
	moved := slices.Clone(tr)
	var first audit.Record
	for _, rec := range tr {
		if rec.Partition == 1 {
			first = rec
			break
		}
	}
	first.Partition, first.Offset = 2, 1000
	moved = append(moved, first)
	r = verify(t, c, moved, 0, audit.WithKey(key))
	require.False(t, r.OK())
	assert.Equal(t, audit.Inserted, r.First().Kind)
	assert.Equal(t, int64(1000), r.First().Offset)
}

func TestVerifyAnchorsCatchATruncatedTail(t *testing.T) {
	c := codec(t)
	key := testKey("k")
	a := newAuditor(t, c, key, "i1")
	tr := renumber(build(t, a, 1, 1, 10))
	r := verify(t, c, tr, 0, audit.WithKey(key))
	require.True(t, r.OK())
	require.Len(t, r.Heads, 1)
	heads := r.Heads
	assert.Equal(t, int64(10), heads[0].Seq)

	more := renumber(append(slices.Clone(tr), build(t, a, 1, 1, 2)...))
	r = verify(t, c, more, 0, audit.WithKey(key), audit.WithAnchors(heads))
	assert.True(t, r.OK(), "a chain that grew keeps its old head: %v", r.Problems)

	cut := tr[:8]
	r = verify(t, c, cut, 0, audit.WithKey(key))
	assert.True(t, r.OK(), "without anchors a truncated tail is invisible")
	r = verify(t, c, cut, 0, audit.WithKey(key), audit.WithAnchors(heads))
	require.False(t, r.OK())
	assert.Equal(t, audit.Removed, r.First().Kind)
	assert.Equal(t, int64(10), r.First().Seq)

	rewritten := slices.Clone(tr)
	rewritten[9].Value = rehash(changeContent(rewritten[9].Value))
	r = verify(t, c, rewritten, 0, audit.WithAnchors(heads))
	require.False(t, r.OK(), "without the key, a rewritten head is caught by its anchor")
	assert.Equal(t, audit.Modified, r.First().Kind)
	assert.Equal(t, int64(9), r.First().Offset)
}
