package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/aetherai/aether/audit"
)

// auditCmd is the `runner audit` group: tools for the audit trail.
func auditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check the audit trail",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(auditVerifyCmd())
	return cmd
}

func auditVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify FILE",
		Short: "Check that a hash-chained audit trail file is complete, ordered and unaltered",
		Long: `Read the JSON-lines audit trail FILE and check its hash chain: records run
from seq 1 without gaps, each record's prevHash is the hash of the record
before it, each hash covers the record's seq, prevHash and event digest, and
each event that is not redacted matches its digest. Records redacted for a
deletion request keep the original event's digest, so they still verify.

Prints "ok: N records, chain intact (K redacted)" and the last record's seq
and hash, and exits 0; or prints the first problem (the record's seq and
line, and whether it was altered, removed, inserted, reordered or its link
broken) and exits 1. Records cut from the end of the trail are found by
comparing the last hash with one kept elsewhere.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("audit verify: give one trail FILE, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := audit.VerifyFile(args[0])
			var p *audit.Problem
			if errors.As(err, &p) {
				return fmt.Errorf("%s: %w", args[0], p)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "ok: %d records, chain intact (%d redacted)\n", rep.Records, rep.Redacted)
			fmt.Fprintf(out, "last record: seq %d, hash %s\n", rep.LastSeq, rep.LastHash)
			return nil
		},
	}
}
