package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgwproject/dgw/gateway"
)

// TestConfigInFlightBounds: the bounds of the work in flight default to the
// pipeline's, come from the file and the environment, and bad values are
// refused with the setting's name.
func TestConfigInFlightBounds(t *testing.T) {
	cfg, err := loadConfig("", []string{"DGW_BROKERS=b:9092"})
	require.NoError(t, err)
	assert.Equal(t, []int{gateway.DefaultWorkers, gateway.DefaultQueue, gateway.DefaultMaxInFlightBytes},
		[]int{cfg.Workers, cfg.Queue, cfg.MaxInFlightBytes})

	file := filepath.Join(t.TempDir(), "dgw.yaml")
	require.NoError(t, os.WriteFile(file, []byte("brokers: [b:9092]\nworkers: 16\nqueue: 2\nmax_in_flight_bytes: 1048576\n"), 0o600))
	cfg, err = loadConfig(file, nil)
	require.NoError(t, err)
	assert.Equal(t, []int{16, 2, 1 << 20}, []int{cfg.Workers, cfg.Queue, cfg.MaxInFlightBytes})
	cfg, err = loadConfig(file, []string{"DGW_MAX_IN_FLIGHT_BYTES=4096"})
	require.NoError(t, err)
	assert.Equal(t, 4096, cfg.MaxInFlightBytes, "the environment wins over the file")

	sample, err := loadConfig("../../deploy/dgw.yaml", nil)
	require.NoError(t, err)
	assert.Equal(t, []int{gateway.DefaultWorkers, gateway.DefaultQueue, gateway.DefaultMaxInFlightBytes},
		[]int{sample.Workers, sample.Queue, sample.MaxInFlightBytes}, "the sample states the defaults")

	for env, want := range map[string]string{
		"DGW_MAX_IN_FLIGHT_BYTES=0":    "max_in_flight_bytes: expected a positive integer, got 0",
		"DGW_MAX_IN_FLIGHT_BYTES=-1":   "max_in_flight_bytes: expected a positive integer, got -1",
		"DGW_MAX_IN_FLIGHT_BYTES=64MB": `DGW_MAX_IN_FLIGHT_BYTES: expected an integer, got "64MB"`,
		"DGW_WORKERS=0":                "workers: expected a positive integer, got 0",
	} {
		_, err := loadConfig("", []string{"DGW_BROKERS=b:9092", env})
		require.Error(t, err, env)
		assert.Contains(t, err.Error(), want, env)
	}
}
