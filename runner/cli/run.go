package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/aetherai/aether/operators/cache"
	"github.com/aetherai/aether/runner"
	"github.com/aetherai/aether/runner/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func runCmd() *cobra.Command {
	var o *runFlags
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
			cfg, err := o.load()
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			return runPipeline(cmd.Context(), cmd.OutOrStdout(), log, cfg)
		},
	}
	o = addRunFlags(cmd)
	return cmd
}

// runPipeline connects the parts a configuration names, runs until ctx
// ends and stops cleanly.
func runPipeline(ctx context.Context, out io.Writer, log *slog.Logger, cfg *config.Config) (err error) {
	if cfg.Redis.Addr == "" {
		return fmt.Errorf("redis.addr is required (or --redis ADDR)")
	}
	// The keys (plain, env:NAME or sha256:<hex>) are resolved by
	// runner.Start (api.Config.ApplyHTTP); only their presence is checked
	// here, before the model is loaded.
	if len(cfg.HTTP.APIKeys) == 0 {
		return fmt.Errorf("http.apiKeys: no API key configured (add one, or pass --api-key)")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// The trail first: every model load, refusal and swap below is in it.
	trail, _, err := openAuditSink(out, cfg.Audit, "", reg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, trail.Close()) }()
	log = auditedLogger(log, trail)

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
	rdb, err := connectRedis(ctx, cfg.Redis)
	if err != nil {
		return err
	}
	defer rdb.Close()
	c, err := cache.Redis(rdb, cache.TTL(cfg.Redis.TTL), cache.KeyPrefix(cfg.Redis.KeyPrefix), cache.Registerer(reg))
	if err != nil {
		return err
	}
	run, err := runner.Start(ctx, runner.Parts{Config: cfg, Scorer: scorer, Cache: c, Logger: log, Registry: reg, Audit: trail})
	if err != nil {
		return err
	}
	m := scorer.Model()
	scheme := "http"
	if cfg.HTTP.TLS.Enabled() {
		scheme = "https"
	}
	fmt.Fprintf(out, "pipeline running: HTTP API on %s://%s, model %s (sha256 %s), Kafka %v, Redis %s\n",
		scheme, run.Addr, m.Version, m.SHA256, cfg.Kafka.Brokers, cfg.Redis.Addr)
	if run.Admin != nil {
		if err := registerModelAdmin(run.Admin, scorer); err != nil {
			return errors.Join(err, run.Stop())
		}
		fmt.Fprintf(out, "admin API on %s://%s\n", scheme, run.AdminAddr)
	}
	if cm, share, ok := scorer.Candidate(); ok {
		fmt.Fprintf(out, "candidate model %s (sha256 %s) scores %.1f%% of the users\n", cm.Version, cm.SHA256, 100*share)
	}
	if cfg.Model.PollInterval > 0 {
		fmt.Fprintf(out, "polling %s for new approved models every %s\n", cfg.Model.URI, cfg.Model.PollInterval)
	}
	stopEvidence, err := runEvidence(ctx, out, cfg, trail, run, func(context.Context) (string, string, error) {
		m := scorer.Model()
		return m.SHA256, m.Version, nil
	}, reg)
	if err != nil {
		return errors.Join(err, run.Stop())
	}
	defer stopEvidence()
	<-ctx.Done()
	fmt.Fprintln(out, "stopping")
	return run.Stop()
}
