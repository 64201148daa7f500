package main

import (
	"bufio"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/schema"
	"github.com/dgwproject/dgw/gateway/synth"
	"github.com/dgwproject/dgw/schemas"
)

// jsonEvent is one line of `dgw gen` output and the input `dgw eval` takes:
// the value uses the Avro field names as plain JSON.
type jsonEvent struct {
	Type  string          `json:"type"`
	Key   string          `json:"key,omitempty"`
	Value json.RawMessage `json:"value"`
}

func (a *app) genCmd() *cobra.Command {
	var count int
	var seed int64
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Print realistic synthetic passenger events as JSON lines",
		Long: `gen prints --count synthetic events, one JSON object a line:
{"type": "<event type>", "key": "<passenger id>", "value": {<Avro field names>}}.
The stream is deterministic for a --seed. Every personal value is a recognisable
canary (see gateway/synth) so tests can search logs and topics for leaks.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if count < 0 {
				return failWith(2, fmt.Errorf("--count: expected zero or more, got %d", count))
			}
			set, err := schema.Load(schemas.FS)
			if err != nil {
				return err
			}
			g := synth.New(synth.Options{Seed: seed})
			w := bufio.NewWriter(a.stdout)
			for range count {
				ev := g.Next()
				s, ok := set.ByEventType(ev.Type)
				if !ok {
					return fmt.Errorf("generator produced unknown event type %s", ev.Type)
				}
				v, err := codec.ToJSON(s, ev.Value)
				if err != nil {
					return fmt.Errorf("encode %s event as JSON: %w", ev.Type, err)
				}
				line, err := json.Marshal(jsonEvent{Type: ev.Type, Key: ev.Key, Value: v})
				if err != nil {
					return err
				}
				w.Write(line)
				w.WriteByte('\n')
			}
			return w.Flush()
		},
	}
	cmd.Flags().IntVar(&count, "count", 10, "number of events")
	cmd.Flags().Int64Var(&seed, "seed", 1, "random seed; the same seed gives the same events")
	return cmd
}
