package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/dgwproject/dgw/gateway/policy"
	"github.com/dgwproject/dgw/gateway/schema"
)

func (a *app) policyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Test and check a policy directory"}
	test := &cobra.Command{
		Use:   "test DIR",
		Short: "Run the policy's Rego tests with coverage",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := os.Stat(args[0]); err != nil {
				return failWith(2, err)
			}
			rep, err := policy.Test(cmd.Context(), os.DirFS(args[0]))
			if err != nil {
				return err
			}
			fmt.Fprint(a.stdout, rep.String())
			if rep.Failed() {
				return failWith(1, fmt.Errorf("policy tests failed"))
			}
			return nil
		},
	}
	check := &cobra.Command{
		Use:   "check DIR",
		Short: "Print every problem of a policy directory (file:line) and exit non-zero if any",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := os.Stat(args[0]); err != nil {
				return failWith(2, err)
			}
			set, err := schema.Load(schemasFS())
			if err != nil {
				return err
			}
			problems := policy.Check(cmd.Context(), os.DirFS(args[0]), set.Catalogue())
			for _, p := range problems {
				fmt.Fprintln(a.stdout, p.String())
			}
			if len(problems) > 0 {
				return failWith(1, fmt.Errorf("%d policy problems", len(problems)))
			}
			fmt.Fprintln(a.stdout, "policy: ok")
			// How `dgw run` would decide the misses of this revision.
			d, err := policy.New(cmd.Context(), os.DirFS(args[0]), policy.WithCatalogue(set.Catalogue()))
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, "decision misses: "+d.EvaluatorNote())
			return nil
		},
	}
	cmd.AddCommand(test, check)
	return cmd
}
