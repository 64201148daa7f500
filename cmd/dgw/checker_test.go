package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The checker reads topics and decodes recipient records the way a partner
// would: its own Kafka client (franz-go, not the gateway's kafka-go), plain
// hamba/avro with the .avsc files `dgw schemas export` wrote, nothing of the
// gateway's codec. What it finds is evidence independent of the code under
// test.

// outRecord is one record read back from a topic.
type outRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       string
	Value     []byte
	Headers   map[string]string
}

// readAll reads every record of topics from the start to their current end
// offsets, with an independent franz-go client.
func readAll(t *testing.T, brokers []string, topics ...string) map[string][]outRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*testTimeoutScale())
	defer cancel()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	ends, err := adm.ListEndOffsets(ctx, topics...)
	require.NoError(t, err)
	require.NoError(t, ends.Error())
	want := map[string]map[int32]int64{}
	total := int64(0)
	ends.Each(func(o kadm.ListedOffset) {
		if want[o.Topic] == nil {
			want[o.Topic] = map[int32]int64{}
		}
		want[o.Topic][o.Partition] = o.Offset
		total += o.Offset
	})
	out := map[string][]outRecord{}
	for _, tp := range topics {
		out[tp] = nil
	}
	if total == 0 {
		return out
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	got := map[string]map[int32]int64{}
	done := func() bool {
		for tp, ps := range want {
			for p, end := range ps {
				if got[tp][p] < end {
					return false
				}
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "reading topics back: timed out")
		fs.EachError(func(tp string, p int32, err error) { require.NoError(t, err, "fetch %s/%d", tp, p) })
		fs.EachRecord(func(r *kgo.Record) {
			hs := map[string]string{}
			for _, h := range r.Headers {
				hs[h.Key] = string(h.Value)
			}
			out[r.Topic] = append(out[r.Topic], outRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
				Key: string(r.Key), Value: r.Value, Headers: hs})
			if got[r.Topic] == nil {
				got[r.Topic] = map[int32]int64{}
			}
			got[r.Topic][r.Partition] = r.Offset + 1
		})
	}
	return out
}

// partnerSchemas are the exported recipient schemas as a partner loads them:
// recipient → event type → parsed schema.
type partnerSchemas map[string]map[string]avro.Schema

func loadExported(t *testing.T, dir string) partnerSchemas {
	t.Helper()
	out := partnerSchemas{}
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.avsc"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "schemas export wrote nothing")
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		s, err := avro.ParseBytesWithCache(b, "", &avro.SchemaCache{})
		require.NoError(t, err, "exported schema %s does not parse with plain hamba/avro", f)
		rec := filepath.Base(filepath.Dir(f))
		et := filepath.Base(f)
		et = et[:len(et)-len(".avsc")]
		if out[rec] == nil {
			out[rec] = map[string]avro.Schema{}
		}
		out[rec][et] = s
	}
	return out
}

// decodePartner decodes a recipient record with the exported schema after
// checking the single-object header names that schema.
func decodePartner(s avro.Schema, raw []byte) (map[string]any, error) {
	if len(raw) < 10 || raw[0] != 0xC3 || raw[1] != 0x01 {
		return nil, fmt.Errorf("not Avro single-object encoding")
	}
	fp, err := s.FingerprintUsing(avro.CRC64Avro)
	if err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint64(raw[2:10]) != binary.BigEndian.Uint64(fp) {
		return nil, fmt.Errorf("fingerprint in the record does not match the exported schema")
	}
	var v map[string]any
	if err := avro.Unmarshal(s, raw[10:], &v); err != nil {
		return nil, err
	}
	return v, nil
}

func fingerprintHex(s avro.Schema) string {
	fp, _ := s.FingerprintUsing(avro.CRC64Avro)
	return fmt.Sprintf("%016x", binary.BigEndian.Uint64(fp))
}

// leaves flattens a value decoded by hamba into its non-null leaves: dotted
// paths with arrays transparent (as in the contract scopes), unwrapping
// hamba's {"type": value} union maps with the schema's help.
func leaves(s avro.Schema, v any, path string, fn func(path string, v any)) {
	if v == nil {
		return
	}
	switch st := s.(type) {
	case *avro.RefSchema:
		leaves(st.Schema(), v, path, fn)
	case *avro.UnionSchema:
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			fn(path, v)
			return
		}
		for name, x := range m {
			for _, t := range st.Types() {
				if unionName(t) == name {
					leaves(t, x, path, fn)
					return
				}
			}
		}
	case *avro.RecordSchema:
		m, _ := v.(map[string]any)
		for _, f := range st.Fields() {
			p := f.Name()
			if path != "" {
				p = path + "." + f.Name()
			}
			leaves(f.Type(), m[f.Name()], p, fn)
		}
	case *avro.ArraySchema:
		arr, _ := v.([]any)
		if _, rec := underlying(st.Items()).(*avro.RecordSchema); rec {
			for _, x := range arr {
				leaves(st.Items(), x, path, fn)
			}
			return
		}
		for _, x := range arr {
			fn(path, x)
		}
	default:
		fn(path, v)
	}
}

func underlying(s avro.Schema) avro.Schema {
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema()
	}
	if u, ok := s.(*avro.UnionSchema); ok && len(u.Types()) == 2 {
		for _, t := range u.Types() {
			if t.Type() != avro.Null {
				return underlying(t)
			}
		}
	}
	return s
}

func unionName(s avro.Schema) string {
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	if l, ok := s.(avro.LogicalTypeSchema); ok && l.Logical() != nil {
		return string(s.Type()) + "." + string(l.Logical().Type())
	}
	return string(s.Type())
}

func atoi64(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return n
}
