// Command dgw is the personal-data disclosure gateway: it reads passenger
// events from Kafka, asks the Rego policy what each registered recipient may
// receive, and writes a redacted copy to that recipient's topic, or nothing.
//
// Run `dgw --help` for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// failWith makes err end the process with code.
func failWith(code int, err error) error { return &exitError{code: code, err: err} }

// app holds the process-wide streams, so tests run commands in-process.
type app struct {
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	environ []string
	// tuneGC applies dgw run's garbage collector settings to the process;
	// nil (tests running commands in-process) leaves the runtime alone,
	// since the settings are process-wide.
	tuneGC func(gcSettings, []string, *slog.Logger)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, environ: os.Environ(), tuneGC: applyGC}
	os.Exit(a.run(ctx, os.Args[1:]))
}

// run executes one command line and returns the exit code: 0 success,
// 1 failure, 2 bad usage or bad input.
func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(a.stderr, "dgw:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "dgw",
		Short: "Personal-data disclosure gateway: passenger events in, redacted per-recipient topics out",
		Long: `dgw consumes passenger-data events (Avro) from Kafka and, for every registered
recipient, evaluates the Rego disclosure policy, then forwards a redacted copy to
that recipient's topic, or nothing. Undecodable records go to the dead-letter
topic and records it cannot decide or deliver to the held topic, with a reason.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(a.devCmd(), a.runCmd(), a.genCmd(), a.evalCmd(), a.schemasCmd(), a.policyCmd())
	root.AddCommand(a.redriveCmd(), a.brokerCmd())
	root.AddCommand(a.auditCmd(), a.subjectCmd())
	root.AddCommand(a.benchCmd())
	return root
}
