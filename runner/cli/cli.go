// Package cli is the runner binary's command line: one cobra command per
// file, each a thin layer over the runner's library packages.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Main runs the command line with args and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "runner",
		Short:         "Run Aether pipelines and the tools around them",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(brokerCmd(), describeCmd(), runCmd(), demoCmd(), trainCmd())
	root.AddCommand(evalCmd())
	root.AddCommand(modelCmd())
	root.AddCommand(auditCmd(), apikeyCmd())
	root.AddCommand(aclsCmd(), topicsCmd())
	root.AddCommand(evidenceCmd())
	root.AddCommand(forgetCmd(), keysCmd())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "runner:", err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

// usageError marks errors in how a command was called.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }
