package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/aetherai/aether/runner"
	"github.com/aetherai/aether/runner/config"
	"github.com/aetherai/aether/topology"
)

func describeCmd() *cobra.Command {
	var file, format string
	cmd := &cobra.Command{
		Use:   "describe -c FILE",
		Short: "Print the pipeline's topology: streams, processors, tables, retention and personal data",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{fmt.Errorf("describe: -c FILE is required")}
			}
			cfg, err := config.Load(file)
			if err != nil {
				return err
			}
			out, err := runner.Declare(cfg, nil, nil).Topology.Describe(topology.Format(format))
			if err != nil {
				return usageError{err}
			}
			fmt.Fprint(cmd.OutOrStdout(), out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "pipeline YAML file")
	cmd.Flags().StringVar(&format, "format", "text", "text, mermaid, dot or json")
	return cmd
}
