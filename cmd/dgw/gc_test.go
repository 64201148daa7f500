package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGCSettings(t *testing.T) {
	cfg, err := loadConfig("", []string{"DGW_BROKERS=h:1", "DGW_AUDIT_KEY=" + testAuditKeyForGC})
	require.NoError(t, err)
	gc, err := parseGC(cfg.GCPercent, cfg.MemoryLimit)
	require.NoError(t, err)
	assert.Equal(t, gcSettings{percent: 400, limit: 160 << 20}, gc, "defaults: below the 256 MiB target")

	cfg, err = loadConfig("", []string{"DGW_BROKERS=h:1", "DGW_AUDIT_KEY=" + testAuditKeyForGC, "DGW_GC_PERCENT=200", "DGW_MEMORY_LIMIT=off"})
	require.NoError(t, err)
	gc, err = parseGC(cfg.GCPercent, cfg.MemoryLimit)
	require.NoError(t, err)
	assert.Equal(t, gcSettings{percent: 200}, gc)

	for v, want := range map[string]int64{"1GiB": 1 << 30, "64MiB": 64 << 20, "512KiB": 512 << 10, "1048576": 1 << 20, "0": 0, "": 0} {
		n, err := parseBytes(v)
		require.NoError(t, err, v)
		assert.Equal(t, want, n, v)
	}
	for _, v := range []string{"12MB", "-1MiB", "lots"} {
		_, err := parseBytes(v)
		assert.Error(t, err, v)
	}
	_, err = loadConfig("", []string{"DGW_BROKERS=h:1", "DGW_AUDIT_KEY=" + testAuditKeyForGC, "DGW_GC_PERCENT=10", "DGW_MEMORY_LIMIT=1MiB"})
	assert.ErrorContains(t, err, "gc_percent: expected 25 or more")
	assert.ErrorContains(t, err, "memory_limit: expected at least 32MiB")
}

const testAuditKeyForGC = "hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
