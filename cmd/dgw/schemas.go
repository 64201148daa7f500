package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/dgwproject/dgw/gateway/redact"
	"github.com/dgwproject/dgw/gateway/schema"
)

func (a *app) schemasCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "schemas", Short: "Export recipient schemas, lint event schemas"}
	var out, policyDir string
	export := &cobra.Command{
		Use:   "export --out DIR",
		Short: "Write every recipient's derived Avro schemas as .avsc files",
		Long: `export writes DIR/<recipient>/<event type>.avsc for every recipient and event type
in its contract scope: only the scoped fields, each optional, with types adjusted
for masked, hashed and generalised fields. Partners decode their topic with these
schemas; a record's dgw-schema header and its single-object header carry the
fingerprint.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return failWith(2, fmt.Errorf("--out is required"))
			}
			// Export needs no secrets: derivation does not depend on keys.
			p, err := buildParts(cmd.Context(), policyDir, "", redact.DevKeyring("export"), 1<<20, discardLogger())
			if err != nil {
				return err
			}
			all := p.redactor.Schemas()
			if err := redact.Export(out, all); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "wrote %d recipient schemas to %s\n", len(all), out)
			return nil
		},
	}
	export.Flags().StringVar(&out, "out", "", "output directory")
	export.Flags().StringVar(&policyDir, "policies", "", "policy directory (default: the built-in policies)")

	lint := &cobra.Command{
		Use:   "lint [DIR]",
		Short: "Check that every field of every event schema carries its annotations",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := ""
			if len(args) == 1 {
				dir = args[0]
			}
			fsys := dirOr(dir, nil)
			if dir == "" {
				fsys = schemasFS()
			} else if _, err := os.Stat(dir); err != nil {
				return failWith(2, err)
			}
			problems := schema.Lint(fsys)
			for _, p := range problems {
				fmt.Fprintln(a.stdout, p.String())
			}
			if len(problems) > 0 {
				return failWith(1, fmt.Errorf("%d schema problems", len(problems)))
			}
			fmt.Fprintln(a.stdout, "schemas: ok")
			return nil
		},
	}
	cmd.AddCommand(export, lint)
	return cmd
}
