package main

import (
	"os"
	"testing"
)

// TestMain lets the test binary stand in for dgw when `dgw bench` starts
// its child processes (the embedded broker, the latency phase's publisher)
// with os.Executable: in tests that is this binary.
func TestMain(m *testing.M) {
	if os.Getenv(benchChildEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}
