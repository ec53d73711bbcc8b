package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/aetherai/aether/operators/cache"
	"github.com/aetherai/aether/runner"
	"github.com/aetherai/aether/runner/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// overrides are the flags every command taking -c FILE accepts.
type overrides struct {
	file, brokers, redis, http, apiKey, modelSHA string
	auditFile                                    string
}

func (o *overrides) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.file, "config", "c", "", "pipeline YAML file (required)")
	cmd.Flags().StringVar(&o.brokers, "brokers", "", "Kafka brokers, comma-separated (overrides kafka.brokers)")
	cmd.Flags().StringVar(&o.redis, "redis", "", "Redis address host:port (overrides redis.addr)")
	cmd.Flags().StringVar(&o.http, "http", "", "HTTP API address (overrides http.listen)")
	cmd.Flags().StringVar(&o.apiKey, "api-key", "", "an API key for the client \"cli\" (added to http.apiKeys); also from AETHER_API_KEY")
	cmd.Flags().StringVar(&o.modelSHA, "model-sha256", "", "the approved model's SHA-256 (overrides model.sha256)")
	cmd.Flags().StringVar(&o.auditFile, "audit-file", "", "append the audit trail to this file (overrides audit.file)")
}

// load reads the file and applies the flags, then validates again.
func (o *overrides) load() (*config.Config, error) {
	if o.file == "" {
		return nil, usageError{fmt.Errorf("-c FILE is required")}
	}
	cfg, err := config.Load(o.file)
	if err != nil {
		return nil, err
	}
	if o.brokers != "" {
		cfg.Kafka.Brokers = strings.Split(o.brokers, ",")
	}
	if o.redis != "" {
		cfg.Redis.Addr = o.redis
	}
	if o.http != "" {
		cfg.HTTP.Listen = o.http
	}
	if o.modelSHA != "" {
		cfg.Model.SHA256 = o.modelSHA
	}
	if o.auditFile != "" {
		cfg.Audit.File = o.auditFile
	}
	if o.apiKey != "" {
		if cfg.HTTP.APIKeys == nil {
			cfg.HTTP.APIKeys = map[string]string{}
		}
		cfg.HTTP.APIKeys["cli"] = o.apiKey
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config %s with flags: %w", o.file, err)
	}
	return cfg, nil
}

func runCmd() *cobra.Command {
	var o overrides
	cmd := &cobra.Command{
		Use:   "run -c FILE",
		Short: "Run the pipeline from a YAML file against the Kafka, Redis and model it names",
		Long: `Run the pipeline a YAML file declares (see examples/recommendations/aether.yaml)
against real services: the Kafka brokers, the Redis server and the ONNX model
it names (model.dir, or model.uri: file:// or s3://). The model is refused
unless its SHA-256 is the one the file pins (model.sha256) and, when the file
names an approved-models manifest (model.manifest, see runner model approve),
is approved there. Ctrl-C or SIGTERM stops it cleanly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.apiKey == "" {
				o.apiKey = os.Getenv("AETHER_API_KEY")
			}
			cfg, err := o.load()
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			return runPipeline(cmd.Context(), cmd.OutOrStdout(), log, cfg)
		},
	}
	o.register(cmd)
	return cmd
}

// runPipeline connects the parts a configuration names, runs until ctx
// ends and stops cleanly.
func runPipeline(ctx context.Context, out io.Writer, log *slog.Logger, cfg *config.Config) error {
	if cfg.Redis.Addr == "" {
		return fmt.Errorf("redis.addr is required (or --redis ADDR)")
	}
	keys, err := cfg.HTTP.ResolveKeys()
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return fmt.Errorf("http.apiKeys: no API key configured (add one, or pass --api-key)")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// The model: fetched (model.uri), pinned (model.sha256) and approved
	// (model.manifest) before Redis and Kafka are touched; see loadModel.
	loaded, err := loadModel(ctx, cfg, reg, log)
	if err != nil {
		return err
	}
	// Served through a rollout.Switch: the candidate (model.candidate) and
	// the poller of new approved versions (model.pollInterval).
	scorer, stopModels, err := serveModels(ctx, cfg, loaded, reg, log)
	if err != nil {
		loaded.Close()
		return err
	}
	defer stopModels()
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr, Username: cfg.Redis.Username, Password: cfg.Redis.Password,
		DB: cfg.Redis.DB, ContextTimeoutEnabled: true})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s: %w", cfg.Redis.Addr, err)
	}
	c, err := cache.Redis(rdb, cache.TTL(cfg.Redis.TTL), cache.KeyPrefix(cfg.Redis.KeyPrefix), cache.Registerer(reg))
	if err != nil {
		return err
	}
	trail, err := openAuditFile(out, cfg.Audit.File)
	if err != nil {
		return err
	}
	run, err := runner.Start(ctx, runner.Parts{Config: cfg, Scorer: scorer, Cache: c, APIKeys: keys, Logger: log, Registry: reg, Audit: trail})
	if err != nil {
		return errors.Join(err, trail.Close())
	}
	m := scorer.Model()
	fmt.Fprintf(out, "pipeline running: HTTP API on http://%s, model %s (sha256 %s), Kafka %v, Redis %s\n",
		run.Addr, m.Version, m.SHA256, cfg.Kafka.Brokers, cfg.Redis.Addr)
	if cm, share, ok := scorer.Candidate(); ok {
		fmt.Fprintf(out, "candidate model %s (sha256 %s) scores %.1f%% of the users\n", cm.Version, cm.SHA256, 100*share)
	}
	if cfg.Model.PollInterval > 0 {
		fmt.Fprintf(out, "polling %s for new approved models every %s\n", cfg.Model.URI, cfg.Model.PollInterval)
	}
	<-ctx.Done()
	fmt.Fprintln(out, "stopping")
	return errors.Join(run.Stop(), trail.Close())
}
