package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/aetherai/aether/audit"
	es "github.com/aetherai/aether/audit/elasticsearch"
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

// esPasswordEnv holds the Elasticsearch password for --username: a
// password on the command line would show in ps and shell history.
const esPasswordEnv = "AETHER_ES_PASSWORD"

func auditVerifyCmd() *cobra.Command {
	var esURL, prefix, username, caFile string
	cmd := &cobra.Command{
		Use:   "verify FILE | verify --elasticsearch URL",
		Short: "Check that a hash-chained audit trail is complete, ordered and unaltered",
		Long: `Read the JSON-lines audit trail FILE, or with --elasticsearch every record
of the indices <index-prefix>-* in seq order, and check the hash chain:
records run from seq 1 without gaps, each record's prevHash is the hash of
the record before it, each hash covers the record's seq, prevHash and event
digest, and each event that is not redacted matches its digest. Records
redacted for a deletion request keep the original event's digest, so they
still verify.

Prints "ok: N records, chain intact (K redacted)" and the last record's seq
and hash, and exits 0; or prints the first problem (the record's seq and
line, in Elasticsearch also its index and document id, and whether it was
altered, removed, inserted, reordered or its link broken) and exits 1.
Records cut from the end of the trail are found by comparing the last hash
with one kept elsewhere.

With --username, the password is read from ` + esPasswordEnv + `.`,
		Args: func(_ *cobra.Command, args []string) error {
			switch {
			case esURL != "" && len(args) > 0:
				return usageError{errors.New("audit verify: give a trail FILE or --elasticsearch URL, not both")}
			case esURL == "" && len(args) != 1:
				return usageError{fmt.Errorf("audit verify: give one trail FILE, got %d arguments", len(args))}
			case esURL == "" && (username != "" || caFile != ""):
				return usageError{errors.New("audit verify: --username and --ca-file need --elasticsearch")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var (
				rep   audit.Report
				err   error
				trail string
				cov   audit.CoverageReport
			)
			// One read of the trail: the chain, and the attestations'
			// coverage, reported once the chain holds.
			check := func(r io.Reader) (rep audit.Report, err error) {
				rep, cov, err = audit.VerifyWithCoverage(r)
				return rep, err
			}
			if esURL != "" {
				trail = esURL + "/" + prefix + "-*"
				opts := []es.ConnOption{es.URLs(esURL)}
				if username != "" {
					pw := os.Getenv(esPasswordEnv)
					if pw == "" {
						return fmt.Errorf("audit verify: --username needs the password in %s", esPasswordEnv)
					}
					opts = append(opts, es.BasicAuth(username, pw))
				}
				if caFile != "" {
					opts = append(opts, es.CAFile(caFile))
				}
				rep, err = es.VerifyWith(cmd.Context(), prefix, check, opts...)
			} else {
				trail = args[0]
				var f *os.File
				if f, err = os.Open(trail); err != nil {
					return fmt.Errorf("audit: %w", err)
				}
				defer f.Close()
				rep, err = check(f)
			}
			var p *audit.Problem
			if errors.As(err, &p) {
				return fmt.Errorf("%s: %w", trail, err)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "ok: %d records, chain intact (%d redacted)\n", rep.Records, rep.Redacted)
			fmt.Fprintf(out, "last record: seq %d, hash %s\n", rep.LastSeq, rep.LastHash)
			// The chain holds; do the processors' attestations cover every
			// offset they read?
			var records int64
			for _, p := range cov.Partitions {
				records += p.Records
			}
			fmt.Fprintf(out, "attestations: %d, covering %d partitions and %d records\n", cov.Attestations, len(cov.Partitions), records)
			if err := cov.Err(); err != nil {
				return fmt.Errorf("%s: %w", trail, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&esURL, "elasticsearch", "", "verify the trail in this Elasticsearch instead of a FILE")
	cmd.Flags().StringVar(&prefix, "index-prefix", es.DefaultPrefix, "the trail's indices are <index-prefix>-*")
	cmd.Flags().StringVar(&username, "username", "", "Elasticsearch user; the password is read from "+esPasswordEnv)
	cmd.Flags().StringVar(&caFile, "ca-file", "", "PEM certificates to trust for an https Elasticsearch")
	return cmd
}
