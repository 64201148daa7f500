package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/dgwproject/dgw/gateway"
	"github.com/dgwproject/dgw/gateway/codec"
	"github.com/dgwproject/dgw/gateway/redact"
	"github.com/dgwproject/dgw/gateway/schema"
)

// evalResult is what `dgw eval` prints.
type evalResult struct {
	Recipient evalRecipient    `json:"recipient"`
	Event     evalEvent        `json:"event"`
	Decision  gateway.Decision `json:"decision"`
	// Record is exactly what the recipient would receive, decoded with its
	// derived schema; null when nothing would be sent.
	Record json.RawMessage `json:"record"`
	Schema string          `json:"schema,omitempty"`
}

type evalRecipient struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Type    string `json:"type"`
	Country string `json:"country"`
	Topic   string `json:"topic"`
}

type evalEvent struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

func (a *app) evalCmd() *cobra.Command {
	var recipientID, eventFile, eventType, policyDir, keysFile string
	var consents []string
	cmd := &cobra.Command{
		Use:   "eval --recipient ID --event FILE|-",
		Short: "Print exactly what one recipient would receive for one event, and the decision",
		Long: `eval runs one JSON event through the same decode, decide, redact and encode path
as the gateway and prints, as JSON, the decision (allow, basis, transfer mechanism,
reasons, policy revision, field operators) and the record the recipient would
receive, decoded with the recipient's schema. The event is a line of 'dgw gen'
output ({"type": ..., "value": {...}}) or a bare value with --type.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if recipientID == "" || eventFile == "" {
				return failWith(2, fmt.Errorf("--recipient and --event are required"))
			}
			raw, err := a.readInput(eventFile)
			if err != nil {
				return failWith(2, err)
			}
			keys, err := keyring(keysFile, a.environ)
			if err != nil {
				return err
			}
			p, err := buildParts(cmd.Context(), policyDir, "", keys, 1<<20, discardLogger())
			if err != nil {
				return err
			}
			var r *gateway.Recipient
			for _, c := range p.recipients {
				if c.ID == recipientID {
					r = c
				}
			}
			if r == nil {
				return failWith(2, fmt.Errorf("--recipient: no recipient %q in the registry", recipientID))
			}
			s, value, err := parseEvent(p.set, raw, eventType)
			if err != nil {
				return failWith(2, err)
			}
			// Encode and decode through the production decoder, so eval
			// sees exactly the context the gateway would.
			bin, err := codec.Encode(s, value)
			if err != nil {
				return failWith(2, fmt.Errorf("event: %w", err))
			}
			ev, err := p.decoder.Decode(gateway.Message{Topic: "eval", Value: bin, Time: time.Now()})
			if err != nil {
				return failWith(2, fmt.Errorf("event: %w", err))
			}
			for _, c := range consents { // as subject state would record them
				ev.Context.Subject.Consents[c] = true
			}
			res, err := evaluate(cmd, p, ev, r)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(a.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(res)
		},
	}
	cmd.Flags().StringVar(&recipientID, "recipient", "", "recipient id from the registry")
	cmd.Flags().StringVar(&eventFile, "event", "", "JSON event file, or - for standard input")
	cmd.Flags().StringVar(&eventType, "type", "", "event type, when the input is a bare value")
	cmd.Flags().StringVar(&policyDir, "policies", "", "policy directory (default: the built-in policies)")
	cmd.Flags().StringSliceVar(&consents, "consent", nil, "a consent the passenger has given, as subject requests record it (e.g. cross_border, research); repeatable")
	cmd.Flags().StringVar(&keysFile, "keys", "", "hash keys file (default: DGW_HASH_KEY_* variables, else development keys)")
	return cmd
}

func evaluate(cmd *cobra.Command, p *parts, ev *gateway.Event, r *gateway.Recipient) (*evalResult, error) {
	res := &evalResult{
		Recipient: evalRecipient{ID: r.ID, Name: r.Name, Type: r.Type, Country: r.Country, Topic: r.Topic},
		Event:     evalEvent{ID: ev.ID, Type: ev.Schema.EventType},
		Record:    json.RawMessage("null"),
	}
	d, err := p.decider.Decide(cmd.Context(), &ev.Context, r)
	if err != nil {
		return nil, fmt.Errorf("decide: %w", err)
	}
	res.Decision = d
	if err := d.CheckScope(r, ev.Schema.EventType); err != nil {
		return nil, fmt.Errorf("the policy's decision is outside the contract scope (the gateway would hold this event): %w", err)
	}
	if !d.Allow || len(d.Released()) == 0 {
		res.Decision.Allow = false
		return res, nil
	}
	out, fp, err := p.redactor.Redact(ev, r, &d)
	if err != nil {
		return nil, fmt.Errorf("redact: %w", err)
	}
	rs, ok := p.redactor.Schema(r.ID, ev.Schema.EventType)
	if !ok {
		return nil, fmt.Errorf("no derived schema for %s/%s", r.ID, ev.Schema.EventType)
	}
	set, err := schema.NewSet(rs)
	if err != nil {
		return nil, err
	}
	_, v, err := codec.Decode(set, out)
	if err != nil {
		return nil, fmt.Errorf("decode recipient record: %w", err)
	}
	j, err := codec.ToJSON(rs, v)
	if err != nil {
		return nil, err
	}
	res.Record, res.Schema = j, gateway.FingerprintHex(fp)
	return res, nil
}

// parseEvent reads a `dgw gen` line or, with eventType, a bare value.
func parseEvent(set *schema.Set, raw []byte, eventType string) (*schema.Schema, map[string]any, error) {
	valueJSON := raw
	if eventType == "" {
		var je jsonEvent
		dec := json.NewDecoder(bytes.NewReader(raw))
		if err := dec.Decode(&je); err != nil {
			return nil, nil, fmt.Errorf("event: expected a JSON object {\"type\": ..., \"value\": {...}}: %w", err)
		}
		if je.Type == "" || len(je.Value) == 0 {
			return nil, nil, fmt.Errorf("event: expected fields \"type\" and \"value\" (or pass --type with a bare value)")
		}
		eventType, valueJSON = je.Type, je.Value
	}
	s, ok := set.ByEventType(eventType)
	if !ok {
		return nil, nil, fmt.Errorf("event: unknown event type %q", eventType)
	}
	v, err := codec.FromJSON(s, valueJSON)
	if err != nil {
		return nil, nil, fmt.Errorf("event: %w", err)
	}
	return s, v, nil
}

func (a *app) readInput(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(a.stdin)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("--event: %w", err)
	}
	return b, nil
}

// keyring picks the hash keys: a file, else DGW_HASH_KEY_* variables, else
// development keys (fine for eval and dev, refused by run).
func keyring(file string, environ []string) (redact.Keyring, error) {
	if file != "" {
		return redact.LoadKeyring(file)
	}
	for _, kv := range environ {
		if len(kv) > len("DGW_HASH_KEY_") && kv[:len("DGW_HASH_KEY_")] == "DGW_HASH_KEY_" {
			return redact.KeyringFromEnv(environ)
		}
	}
	return redact.DevKeyring("dgw-dev"), nil
}
