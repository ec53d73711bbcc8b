package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/IBM/sarama"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/controls/acl"
	"github.com/aetherai/aether/examples/recommendations/pipeline"
	"github.com/aetherai/aether/operators/cache"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/recommend"
	"github.com/aetherai/aether/runner"
	"github.com/aetherai/aether/runner/config"
)

func aclsCmd() *cobra.Command {
	var f *runFlags
	var apply, check bool
	var format string
	cmd := &cobra.Command{
		Use:   "acls -c FILE [--apply] [--check] [--format text|json]",
		Short: "Print, apply or check the least-privilege Kafka ACLs derived from the pipeline's topology",
		Long: `Derive the Kafka ACLs of the pipeline from its topology: each processor runs
as its own principal (User:<username> of kafka.security.principals.<processor>,
else User:aether-<processor>) and may read only its inputs and the tables it
looks up, write only its outputs and dead-letter topics (<input>.dlq), read and
write its own table and loopback topic (and read their configuration, which
Goka checks at start), and join only its own consumer group. The ingest
principal may only write the raw stream; the views principal may only read
the feature store. No principal may create topics: run runner topics --apply.

Without --apply or --check it prints the bindings.
--check lists the cluster's ACLs (as the admin principal) and reports the
  missing grants and the excess ones: any ACL naming one of the pipeline's
  principals or User:*, or matching one of its topics or groups, that was
  not derived. It exits 1 on any drift.
--apply makes the cluster match: it creates the missing grants and DELETES
  the excess ones (a grant widened by hand is revoked), then checks again.
  ACLs of other principals on other resources are left alone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" {
				return usageError{fmt.Errorf("acls: unknown format %q (want text or json)", format)}
			}
			cfg, err := f.load()
			if err != nil {
				return err
			}
			want, err := deriveACLs(cfg)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !apply && !check {
				return printBindings(out, format, want)
			}
			admin, err := kafkaAdmin(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer admin.Close()
			if apply {
				changed, err := acl.Apply(admin, want)
				for _, b := range changed.Missing {
					fmt.Fprintln(out, "created:", b)
				}
				for _, b := range changed.Excess {
					fmt.Fprintln(out, "deleted:", b)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "acls: applied: %d created, %d deleted; %d bindings declared\n", len(changed.Missing), len(changed.Excess), len(want))
			}
			if check {
				live, err := acl.List(admin)
				if err != nil {
					return err
				}
				d := acl.Compare(want, live)
				if format == "json" {
					if err := writeJSON(out, driftJSON{Missing: nonNil(d.Missing), Excess: nonNil(d.Excess)}); err != nil {
						return err
					}
				} else {
					for _, b := range d.Missing {
						fmt.Fprintln(out, "missing:", b)
					}
					for _, b := range d.Excess {
						fmt.Fprintln(out, "excess:", b)
					}
				}
				if !d.Empty() {
					return fmt.Errorf("acls: drift: %d missing and %d excess grants", len(d.Missing), len(d.Excess))
				}
				if format == "text" {
					fmt.Fprintf(out, "acls: the cluster matches the %d declared bindings\n", len(want))
				}
			}
			return nil
		},
	}
	f = addRunFlags(cmd)
	cmd.Flags().BoolVar(&apply, "apply", false, "create the missing grants and delete the excess ones")
	cmd.Flags().BoolVar(&check, "check", false, "compare with the cluster; exit 1 on missing or excess grants")
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	return cmd
}

// driftJSON is `acls --check --format json`.
type driftJSON struct {
	Missing []acl.Binding `json:"missing"`
	Excess  []acl.Binding `json:"excess"`
}

func nonNil(bs []acl.Binding) []acl.Binding {
	if bs == nil {
		return []acl.Binding{}
	}
	return bs
}

func printBindings(out io.Writer, format string, bs []acl.Binding) error {
	if format == "json" {
		return writeJSON(out, nonNil(bs))
	}
	for _, b := range bs {
		fmt.Fprintln(out, b)
	}
	return nil
}

func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// deriveACLs derives the bindings of cfg's whole pipeline, the recommender
// and the feature store's view included, with the principals of the
// configured usernames.
func deriveACLs(cfg *config.Config) ([]acl.Binding, error) {
	pl, err := declareAll(cfg)
	if err != nil {
		return nil, err
	}
	return pipelineACLs(cfg, pl)
}

// pipelineACLs is deriveACLs for a pipeline already declared (declareAll).
func pipelineACLs(cfg *config.Config, pl *pipeline.Pipeline) ([]acl.Binding, error) {
	views := []string{pl.Sessionizer.Table().Name()}
	access, err := pl.Topology.Access(views...)
	if err != nil {
		return nil, err
	}
	opts := []acl.Option{acl.Views(views...)}
	for _, a := range access {
		opts = append(opts, acl.Principal(a.Role, "User:"+cfg.Kafka.Username(a.Role)))
	}
	return acl.Derive(pl.Topology, opts...)
}

// declareAll declares cfg's pipeline with every processor, the
// recommender included, for deriving controls: its scorer and cache are
// stand-ins that are never called (the Redis client is never connected).
func declareAll(cfg *config.Config) (*pipeline.Pipeline, error) {
	c, err := cache.Redis(redis.NewClient(&redis.Options{Addr: "declared.invalid:6379", ContextTimeoutEnabled: true}),
		cache.TTL(cfg.Redis.TTL), cache.KeyPrefix(cfg.Redis.KeyPrefix))
	if err != nil {
		return nil, err
	}
	pl := runner.Declare(cfg, declaredScorer{}, c)
	if err := pl.Topology.Validate(); err != nil {
		return nil, err
	}
	return pl, nil
}

// declaredScorer stands in for the model when a pipeline is only declared.
type declaredScorer struct{}

var errDeclaredOnly = errors.New("the pipeline is only declared: no model is loaded")

func (declaredScorer) Score(context.Context, []features.Record, int) ([][]recommend.Item, error) {
	return nil, errDeclaredOnly
}
func (declaredScorer) Popular(int) []recommend.Item { return nil }
func (declaredScorer) Model() recommend.Model       { return recommend.Model{} }

// kafkaAdmin connects a cluster admin as the admin role, giving up after
// 30s.
func kafkaAdmin(ctx context.Context, cfg *config.Config) (sarama.ClusterAdmin, error) {
	fn, err := cfg.Kafka.Sarama(config.KafkaAdminRole)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	a, err := broker.NewAdmin(ctx, cfg.Kafka.Brokers, fn("aether-"+config.KafkaAdminRole))
	if err != nil {
		return nil, fmt.Errorf("kafka %v: %w", cfg.Kafka.Brokers, err)
	}
	return a, nil
}
