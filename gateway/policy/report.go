package policy

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/cover"
)

// Report is the outcome of a policy's Rego tests, with coverage.
type Report struct {
	Revision string
	Tests    []TestResult
	// Coverage is the percentage of Rego lines the tests evaluate, as
	// `opa test --coverage` reports it.
	Coverage float64
	// Problems are findings besides failing tests that also stop New
	// (registry or field-path problems); Test reports them so a policy
	// author sees everything at once.
	Problems []Problem
}

// TestResult is one Rego test.
type TestResult struct {
	Name     string // data.<package>.<rule>
	File     string
	Line     int
	Pass     bool
	Err      string // evaluation error, if any
	Duration time.Duration
}

// Failed reports whether any test failed, no test ran, or another problem
// would stop New.
func (r *Report) Failed() bool {
	if len(r.Tests) == 0 || len(r.Problems) > 0 {
		return true
	}
	for _, t := range r.Tests {
		if !t.Pass {
			return true
		}
	}
	return false
}

// String lists every test as PASS or FAIL with its location, then the
// problems, the coverage and the counts ("N passed, M failed").
func (r *Report) String() string {
	var b strings.Builder
	passed, failed := 0, 0
	for _, t := range r.Tests {
		outcome := "PASS"
		if t.Pass {
			passed++
		} else {
			outcome = "FAIL"
			failed++
		}
		fmt.Fprintf(&b, "%s %s (%s:%d, %s)\n", outcome, t.Name, t.File, t.Line, t.Duration.Round(time.Microsecond))
		if t.Err != "" {
			fmt.Fprintf(&b, "    error: %s\n", t.Err)
		}
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "PROBLEM %s\n", p)
	}
	fmt.Fprintf(&b, "policy revision %s, coverage %.1f%%\n", r.Revision, r.Coverage)
	fmt.Fprintf(&b, "%d passed, %d failed\n", passed, failed)
	return b.String()
}

// Test runs the Rego tests of the policy directory fsys with coverage. It
// returns an error when the directory does not load or compile (with
// file:line locations); failing tests are in the report.
func Test(ctx context.Context, fsys fs.FS) (*Report, error) {
	cov := cover.New()
	a, problems, err := analyse(ctx, fsys, analyseOptions{cover: cov})
	if err != nil {
		return nil, fmt.Errorf("policy test: %w", err)
	}
	if a == nil {
		return nil, &ProblemsError{Problems: sortProblems(problems)}
	}
	rep := &Report{Revision: a.src.revision, Coverage: cov.Report(a.src.modules).Coverage}
	for _, t := range a.tests {
		tr := TestResult{Name: t.Package + "." + t.Name, File: t.Location.File, Line: t.Location.Row,
			Pass: t.Pass(), Duration: t.Duration}
		if t.Error != nil {
			tr.Err = t.Error.Error()
		}
		rep.Tests = append(rep.Tests, tr)
	}
	rep.Problems = sortProblems(problems)
	return rep, nil
}
