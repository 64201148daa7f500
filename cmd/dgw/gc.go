package main

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
)

// Garbage collector settings of dgw run. The collector took about a
// quarter of the gateway's CPU at Go's default GOGC=100; letting the heap
// grow to 5× the live data (gc_percent 400) saves most of that, and a
// memory limit below the 256 MiB target makes the collector work harder
// only when the heap nears it (a large decision cache), instead of
// letting the process grow past it.
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = "160MiB"
)

// gcSettings are the parsed gc_percent and memory_limit.
type gcSettings struct {
	percent int   // debug.SetGCPercent; < 0 turns the collector off
	limit   int64 // debug.SetMemoryLimit in bytes; 0: none
}

func (s gcSettings) String() string {
	limit := "none"
	if s.limit > 0 {
		limit = fmt.Sprintf("%dMiB", s.limit>>20)
	}
	return fmt.Sprintf("gc_percent=%d memory_limit=%s", s.percent, limit)
}

// parseGC validates gc_percent and memory_limit, reporting both.
func parseGC(percent int, limit string) (gcSettings, error) {
	var errs []error
	if percent < 25 {
		errs = append(errs, fmt.Errorf("gc_percent: expected 25 or more (Go's default is 100), got %d", percent))
	}
	n, err := parseBytes(limit)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("memory_limit: %w", err))
	case n != 0 && n < 32<<20:
		errs = append(errs, fmt.Errorf("memory_limit: expected at least 32MiB (or off), got %q", limit))
	}
	if len(errs) > 0 {
		return gcSettings{}, errors.Join(errs...)
	}
	return gcSettings{percent: percent, limit: n}, nil
}

// parseBytes reads a size such as 200MiB, 1GiB, 536870912 or off (0).
func parseBytes(v string) (int64, error) {
	v = strings.TrimSpace(v)
	if v == "" || v == "off" || v == "0" {
		return 0, nil
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if s, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = s, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("expected a size such as 200MiB, 1GiB or off, got %q", v)
	}
	return n * mult, nil
}

// applyGC sets the collector's target and memory limit for the process.
// A GOGC or GOMEMLIMIT variable in environ wins over its setting: the
// runtime already applied it, and an operator who sets one means it.
func applyGC(s gcSettings, environ []string, log *slog.Logger) {
	var gogc, gomemlimit bool
	for _, kv := range environ {
		gogc = gogc || strings.HasPrefix(kv, "GOGC=")
		gomemlimit = gomemlimit || strings.HasPrefix(kv, "GOMEMLIMIT=")
	}
	if !gogc {
		debug.SetGCPercent(s.percent)
	}
	if !gomemlimit && s.limit > 0 {
		debug.SetMemoryLimit(s.limit)
	}
	if log != nil {
		log.Debug("garbage collector", "settings", s.String(), "GOGC_env", gogc, "GOMEMLIMIT_env", gomemlimit)
	}
}
