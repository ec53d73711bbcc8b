// Command aether-bench runs Aether's benchmarks.
//
//	go run ./bench/cmd/aether-bench pipeline                       # full run (~1 min on 2 cores)
//	go run ./bench/cmd/aether-bench pipeline -events 20000 -rounds 1   # smoke test
//	go run ./bench/cmd/aether-bench pipeline -cpuprofile cpu.out   # profile the aether variant
//	go run ./bench/cmd/aether-bench pipeline -audit                # also aether with the audit trail on
//	go run ./bench/cmd/aether-bench pipeline -seal                 # also aether with sealing on (needs Redis)
//	go run ./bench/cmd/aether-bench serve                          # serving: inference, HTTP cache hits, redis-benchmark (~1 min)
//	go run ./bench/cmd/aether-bench serve -users 200 -duration 1s  # smoke test
//
// Flags may be written with one dash (-events) or two (--events). Progress
// goes to stderr; the last line on stdout is one JSON object with the
// results (see bench/README.md).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aetherai/aether/bench/pipebench"
)

func main() {
	root := newRoot()
	root.SetArgs(longFlagsWithOneDash(root, os.Args[1:]))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "aether-bench",
		Short:         "Benchmarks of the Aether stream-processing framework",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(newPipeline())
	root.AddCommand(newServe())
	return root
}

func newPipeline() *cobra.Command {
	var cfg pipebench.Config
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "Throughput of the sessionizer pipeline: Aether runtime vs hand-written Goka vs a bare decode-and-count processor",
		Long: `Starts one embedded broker, writes the same synthetic clickstream once to
an input topic, then, for each round, runs three processors one after the
other on it, each with a fresh consumer group:

  aether       the reference sessionizer topology (sessionize -> features)
               run by the Aether runtime (processors.New + Run)
  handwritten  the same operators, codecs and outputs in a hand-written
               Goka processor, without the runtime
  bare         a Goka processor that only decodes each event and counts
               per key in its table

With -audit, a fourth processor runs in each round:

  aether-audit the aether processor with its audit trail on: attestations
               per input partition to a hash-chained file (fsync on every
               write); the trail is verified and must attest every offset

With -seal (needs Redis at -redis), one more:

  aether-seal  the aether processor with processors.Seal and a keyring on
               Redis, on the same events sealed per user by an emitter
               with processors.ClientSeal: it opens every input record
               and seals every table write and output record; the run
               fails unless it did

A rate is events divided by the time from the first record a processor
sees to the moment it handled all of them (group join and startup
excluded). Progress goes to stderr; the last line on stdout is a JSON
object with the median rates and
  overhead_ratio   = aether / handwritten  (1.0 = the runtime costs nothing)
  efficiency_ratio = aether / bare
  audit_ratio      = aether-audit / aether (with -audit)
  seal_ratio       = aether-seal / aether  (with -seal)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := pipebench.Run(cmd.Context(), cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			js, err := json.Marshal(res)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), string(js))
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Events, "events", pipebench.DefaultEvents, "events pushed through each processor")
	f.IntVar(&cfg.Users, "users", pipebench.DefaultUsers, "distinct users (keys) in the clickstream")
	f.IntVar(&cfg.Partitions, "partitions", pipebench.DefaultPartitions, "partitions of every topic")
	f.IntVar(&cfg.Rounds, "rounds", pipebench.DefaultRounds, "rounds; each runs every variant once, results are medians")
	f.StringVar(&cfg.Storage, "storage", pipebench.DefaultStorage, "table storage: memory or leveldb (in a temporary directory)")
	f.Uint64Var(&cfg.Seed, "seed", pipebench.DefaultSeed, "clickstream seed")
	f.DurationVar(&cfg.Timeout, "timeout", 0, "give up on a variant that has not handled every event this long after it started (0 = 2m + 1ms per event)")
	f.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of one variant to `FILE` (round r > 1 to FILE.r<r>)")
	f.StringVar(&cfg.ProfileVariant, "profile-variant", pipebench.Aether, "variant to profile with -cpuprofile: aether, aether-audit (with -audit), aether-seal (with -seal), handwritten or bare")
	f.BoolVar(&cfg.Audit, "audit", false, "also run aether with its audit trail (attestations to a file) and report audit_ratio = aether-audit / aether")
	f.BoolVar(&cfg.Seal, "seal", false, "also run aether with sealing on (per-user keys in Redis, sealed input) and report seal_ratio = aether-seal / aether")
	f.StringVar(&cfg.Redis, "redis", pipebench.DefaultRedis, "`host:port` of the Redis holding the keyring's data keys (with -seal)")
	return cmd
}

// longFlagsWithOneDash rewrites "-events" to "--events" (and "-events=N"
// to "--events=N") for every long flag of cmd and its subcommands, so
// flags work the Go way as well as the POSIX way.
func longFlagsWithOneDash(cmd *cobra.Command, args []string) []string {
	long := map[string]bool{"help": true}
	var collect func(*cobra.Command)
	collect = func(c *cobra.Command) {
		add := func(f *pflag.Flag) { long[f.Name] = true }
		c.Flags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, sub := range c.Commands() {
			collect(sub)
		}
	}
	collect(cmd)
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if long[name] {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}
