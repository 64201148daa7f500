package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/dgwproject/dgw/gateway"
)

// summary is what `dgw dev` prints at the end (and as JSON with --json).
type summary struct {
	PolicyRevision string `json:"policy_revision"`
	// PolicyEvaluator is how decision misses were evaluated at the end:
	// plan or interpreter (policy_evaluator).
	PolicyEvaluator string `json:"policy_evaluator"`
	gateway.StatsSnapshot
	DecisionCache *cacheStats `json:"decision_cache,omitempty"`
}

type cacheStats struct {
	Hits   int64   `json:"hits"`
	Misses int64   `json:"misses"`
	Ratio  float64 `json:"hit_ratio"`
}

func printSummary(w io.Writer, s summary) {
	var types []string
	for t, n := range s.ByType {
		types = append(types, fmt.Sprintf("%s %d", t, n))
	}
	sort.Strings(types)
	var dl []string
	var dlTotal int64
	for r, n := range s.DeadLetter {
		dl = append(dl, fmt.Sprintf("%s %d", r, n))
		dlTotal += n
	}
	sort.Strings(dl)
	fmt.Fprintf(w, "events: %d (%s)\n", s.Events, strings.Join(types, ", "))
	fmt.Fprintf(w, "dead-lettered: %d", dlTotal)
	if len(dl) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(dl, ", "))
	}
	fmt.Fprintf(w, "\npolicy revision: %s (decision misses evaluated by the %s)\n", s.PolicyRevision, s.PolicyEvaluator)
	if s.DecisionCache != nil {
		fmt.Fprintf(w, "decision cache: %.1f%% hits (%d hits, %d misses)\n", 100*s.DecisionCache.Ratio, s.DecisionCache.Hits, s.DecisionCache.Misses)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RECIPIENT\tTYPE\tDELIVERED\tREFUSED\tHELD\tTOPIC")
	for _, r := range s.Recipients {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", r.ID, r.Type, r.Delivered, r.Refused, r.Held, r.Topic)
	}
	tw.Flush()
}
