package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/aetherai/aether/runner"
)

// keysCmd is `runner keys rotate`: the data keys of privacy.masterKeyEnv.
func keysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the users' data keys (privacy.masterKeyEnv)",
	}
	var f *runFlags
	rotate := &cobra.Command{
		Use:   "rotate -c FILE",
		Short: "Rewrap every data key under the current master key, after a master key change",
		Long: `Rotate the master key that wraps the users' data keys in Redis:

  1. Put the new master key in privacy.masterKeyEnv and the old one in
     privacy.previousMasterKeyEnv, and restart the runners: they open data
     keys wrapped by either and wrap new ones with the new key.
  2. runner keys rotate -c FILE: every data key still wrapped by the old
     master key is rewrapped by the new one (its TTL kept; a key deleted or
     recreated meanwhile is left alone). It can run beside the pipeline.
  3. Remove privacy.previousMasterKeyEnv and restart the runners.

A data key that neither master key opens stops the command, naming its
Redis key. The data keys themselves do not change: nothing sealed is
re-encrypted, and deletion works throughout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load()
			if err != nil {
				return err
			}
			if !cfg.Privacy.Sealing() {
				return usageError{errors.New("privacy.masterKeyEnv is not set: this pipeline seals nothing")}
			}
			pl, err := declareAll(cfg)
			if err != nil {
				return err
			}
			rdb, err := connectRedis(cmd.Context(), cfg.Redis)
			if err != nil {
				return err
			}
			defer rdb.Close()
			kr, err := runner.NewKeyring(cfg, rdb, pl.Topology, nil)
			if err != nil {
				return err
			}
			progress := cmd.ErrOrStderr()
			fmt.Fprintf(progress, "keys: rewrapping the data keys under %s* with the master key of $%s\n", kr.Prefix(), cfg.Privacy.MasterKeyEnv)
			rewrapped, current, err := kr.Rewrap(cmd.Context(), func(n int) { fmt.Fprintf(progress, "keys: %d scanned\n", n) })
			fmt.Fprintf(cmd.OutOrStdout(), "rewrapped %d data keys; %d were already under the current master key\n", rewrapped, current)
			return err
		},
	}
	f = addRunFlags(rotate)
	cmd.AddCommand(rotate)
	return cmd
}
