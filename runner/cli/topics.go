package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/aetherai/aether/controls/topics"
	"github.com/aetherai/aether/runner/config"
)

func topicsCmd() *cobra.Command {
	var f *runFlags
	var apply, check bool
	cmd := &cobra.Command{
		Use:   "topics -c FILE [--apply] [--check]",
		Short: "Print, create or check the pipeline's Kafka topics with their declared retention, cleanup policy and partitions",
		Long: `List every topic of the pipeline with the configuration its topology declares:
streams with their retention (retention.ms) and cleanup.policy=delete, dead-letter
topics (<input>.dlq) with their input's retention, group tables compacted
(cleanup.policy=compact) and loopback topics, each processor's topics with
one partition count (kafka.partitions unless a stream declares its own).

--check compares with the cluster (as the admin principal) and reports every
  drift: a missing topic, another retention.ms, a wrong cleanup policy,
  another partition count. It exits 1 on any drift.
--apply creates the missing topics, sets retention.ms and cleanup.policy and
  adds missing partitions, then checks again (it cannot remove partitions).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load()
			if err != nil {
				return err
			}
			want, err := deriveTopics(cfg)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !apply && !check {
				for _, t := range want {
					fmt.Fprintln(out, t)
				}
				return nil
			}
			sc, err := cfg.Kafka.Sarama(config.KafkaAdminRole)
			if err != nil {
				return err
			}
			ctx, saramaCfg := cmd.Context(), sc("aether-"+config.KafkaAdminRole)
			if apply {
				fixed, err := topics.Apply(ctx, cfg.Kafka.Brokers, saramaCfg, want)
				for _, p := range fixed {
					fmt.Fprintln(out, "fixed:", p)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "topics: applied: %d changes; %d topics declared\n", len(fixed), len(want))
			}
			if check {
				problems, err := topics.Check(ctx, cfg.Kafka.Brokers, saramaCfg, want)
				if err != nil {
					return err
				}
				for _, p := range problems {
					fmt.Fprintln(out, "drift:", p)
				}
				if len(problems) > 0 {
					return fmt.Errorf("topics: drift in %d places", len(problems))
				}
				fmt.Fprintf(out, "topics: the cluster matches the %d declared topics\n", len(want))
			}
			return nil
		},
	}
	f = addRunFlags(cmd)
	cmd.Flags().BoolVar(&apply, "apply", false, "create missing topics and fix their configuration")
	cmd.Flags().BoolVar(&check, "check", false, "compare with the cluster; exit 1 on drift")
	return cmd
}

func deriveTopics(cfg *config.Config) ([]topics.Topic, error) {
	pl, err := declareAll(cfg)
	if err != nil {
		return nil, err
	}
	return topics.Derive(pl.Topology, cfg.Kafka.Partitions)
}

// topicDrift compares the topics want (deriveTopics) with the live
// cluster, as `runner topics --check` does (for runner evidence).
func topicDrift(ctx context.Context, cfg *config.Config, want []topics.Topic) ([]topics.Problem, error) {
	sc, err := cfg.Kafka.Sarama(config.KafkaAdminRole)
	if err != nil {
		return nil, err
	}
	return topics.Check(ctx, cfg.Kafka.Brokers, sc("aether-"+config.KafkaAdminRole), want)
}
