package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/clickstream"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/examples/recommendations/pipeline"
	"github.com/aetherai/aether/model"
	"github.com/aetherai/aether/operators/cache"
	"github.com/aetherai/aether/processors"
	"github.com/aetherai/aether/runner"
	"github.com/aetherai/aether/runner/api"
	"github.com/aetherai/aether/runner/config"
)

type demoFlags struct {
	http, apiKey, redisAddr string
	rate, users, products   int
	history                 int
	seed                    uint64
	verbose                 bool
	auditFile               string
	serve                   *serveFlags
}

func demoCmd() *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole pipeline on embedded defaults, fed by a synthetic clickstream",
		Long: `Run the whole recommendation pipeline on one machine, with nothing to
install: an in-process Kafka-protocol broker, an in-process Redis (or a real
one with --redis), a model trained at start from a synthetic history, a
synthetic clickstream of --rate events per second, and the HTTP API on
loopback. It prints what to try with curl. Ctrl-C or SIGTERM stops it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.apiKey == "" {
				f.apiKey = os.Getenv("AETHER_API_KEY")
			}
			if f.apiKey == "" {
				f.apiKey = randomToken("demo-")
			}
			if f.serve.adminToken == "" {
				f.serve.adminToken = os.Getenv(config.EnvAdminToken)
			}
			if f.serve.adminToken == "" && f.serve.admin != config.AdminOff {
				f.serve.adminToken = randomToken("admin-")
			}
			if f.rate < 0 {
				return usageError{fmt.Errorf("--rate must be 0 or more")}
			}
			level := slog.LevelWarn
			if f.verbose {
				level = slog.LevelInfo
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			return demo(cmd.Context(), cmd.OutOrStdout(), log, f)
		},
	}
	cmd.Flags().StringVar(&f.http, "http", "127.0.0.1:8080", "HTTP API address")
	cmd.Flags().StringVar(&f.apiKey, "api-key", "", "API key for the demo client (default: AETHER_API_KEY, else random, printed)")
	cmd.Flags().StringVar(&f.redisAddr, "redis", "", "use the Redis server at this address instead of an in-process one")
	cmd.Flags().IntVar(&f.rate, "rate", 50, "synthetic events per second (0: none)")
	cmd.Flags().IntVar(&f.users, "users", 1000, "synthetic users")
	cmd.Flags().IntVar(&f.products, "products", 2000, "synthetic products")
	cmd.Flags().IntVar(&f.history, "history", 100000, "synthetic events the model is trained on")
	cmd.Flags().Uint64Var(&f.seed, "seed", 1, "seed of the synthetic data")
	cmd.Flags().StringVar(&f.auditFile, "audit-file", "", "append the audit trail to this file (default: aether-audit-<UTC timestamp>.jsonl in the current directory)")
	cmd.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "log the runtime's progress")
	f.serve = addServeFlags(cmd)
	return cmd
}

func demo(ctx context.Context, out io.Writer, log *slog.Logger, f demoFlags) error {
	b, err := broker.Start(broker.Partitions(8))
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(out, "embedded Kafka-protocol broker on %v\n", b.Addrs())

	redisAddr := f.redisAddr
	if redisAddr == "" {
		mr, err := miniredis.Run()
		if err != nil {
			return err
		}
		defer mr.Close()
		redisAddr = mr.Addr()
		fmt.Fprintf(out, "in-process Redis (miniredis) on %s\n", redisAddr)
	}

	dir, err := os.MkdirTemp("", "aether-demo-model-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	fmt.Fprintf(out, "training the model on %d synthetic events...", f.history)
	gen, err := clickstream.New(clickstream.Config{Users: f.users, Products: f.products, Seed: f.seed})
	if err != nil {
		return err
	}
	m, err := model.Train(history(gen, f.history), model.Version("demo-"+start.UTC().Format("20060102T150405")))
	if err != nil {
		return err
	}
	if err := m.Save(dir); err != nil {
		return err
	}
	meta := m.Metadata()
	fmt.Fprintf(out, " done in %s: %d items, sha256 %s\n", time.Since(start).Round(time.Millisecond), meta.Items, meta.SHA256)
	scorer, err := model.Load(dir, model.ExpectSHA256(meta.SHA256))
	if err != nil {
		return err
	}
	defer scorer.Close()

	cfg := &config.Config{Kafka: config.Kafka{Brokers: b.Addrs()}, Model: config.Model{Dir: dir, SHA256: meta.SHA256},
		Redis: config.Redis{Addr: redisAddr}, HTTP: config.HTTP{Listen: f.http}}
	f.serve.set(cfg)
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	defer rdb.Close()
	c, err := cache.Redis(rdb, cache.TTL(cfg.Redis.TTL), cache.KeyPrefix(cfg.Redis.KeyPrefix), cache.Registerer(reg))
	if err != nil {
		return err
	}
	trail, err := openAuditFile(out, f.auditFile, reg)
	if err != nil {
		return err
	}
	log = auditedLogger(log, trail)
	run, err := runner.Start(ctx, runner.Parts{Config: cfg, Scorer: scorer, Cache: c,
		APIKeys: map[string]string{"demo": f.apiKey}, Logger: log, Registry: reg, Audit: trail})
	if err != nil {
		return errors.Join(err, trail.Close())
	}

	// The synthetic clickstream goes to Kafka directly, so it must be
	// pseudonymised here as ingest does: clientIp never reaches Kafka raw.
	ipKey, err := cfg.HTTP.ClientIP.ResolveKey()
	if err != nil {
		return errors.Join(err, run.Stop(), trail.Close())
	}
	ips, err := api.NewClientIPPseudonymizer(api.ClientIPPolicy{Mode: api.ClientIPMode(cfg.HTTP.ClientIP.Mode), Key: ipKey})
	if err != nil {
		return errors.Join(err, run.Stop(), trail.Close())
	}
	streamDone := make(chan error, 1)
	sctx, stopStream := context.WithCancel(ctx)
	var firstUser atomic.Pointer[string]
	go func() { streamDone <- clickstreamLive(sctx, b.Addrs(), run, gen, ips, f.rate, &firstUser) }()
	// Suggest a user the pipeline has already seen.
	user := "user_1"
	for deadline := time.Now().Add(10 * time.Second); f.rate > 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if u := firstUser.Load(); u != nil && run.Runtime.Outcomes(pipeline.Sessionizer)["applied"] > 0 {
			user = *u
			break
		}
	}

	scheme, curl := "http", "curl -s"
	if cfg.HTTP.TLS.Enabled() {
		scheme, curl = "https", "curl -s --cacert "+cfg.HTTP.TLS.CertFile
	}
	base := scheme + "://" + run.Addr
	fmt.Fprintf(out, `
Aether demo running. API key: %[2]s
Synthetic clickstream: %[3]d events/s from %[4]d users (user_0 ... user_%[5]d).

Try:
  %[8]s -H 'Authorization: Bearer %[2]s' %[1]s/v1/recommendations/%[7]s?k=5
  %[8]s -H 'Authorization: Bearer %[2]s' %[1]s/v1/features/%[7]s
  %[8]s -H 'Authorization: Bearer %[2]s' -X POST %[1]s/v1/events \
    -d '{"userId":"me","productId":"prod_7","eventType":"click","timestamp":"%[6]s"}'
  %[8]s -H 'Authorization: Bearer %[2]s' %[1]s/v1/recommendations/me
  %[8]s %[1]s/metrics | grep aether_
  %[8]s %[1]s/readyz
`, base, f.apiKey, f.rate, f.users, f.users-1, time.Now().UTC().Format(time.RFC3339), user, curl)
	if run.Admin != nil {
		fmt.Fprintf(out, "  %s -H 'Authorization: Bearer %s' %s://%s/admin/v1/health   (admin API)\n",
			curl, f.serve.adminToken, scheme, run.AdminAddr)
	}
	fmt.Fprint(out, "\nCtrl-C stops the demo.\n")

	<-ctx.Done()
	fmt.Fprintln(out, "stopping...")
	stopStream()
	err = <-streamDone
	if serr := errors.Join(run.Stop(), trail.Close()); serr != nil {
		return serr
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "stopped cleanly")
	return nil
}

// randomToken is prefix and 128 random bits in hex: a secret the demo
// generates and prints.
func randomToken(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// history yields n synthetic events: the model's training data.
func history(gen *clickstream.Generator, n int) iter.Seq[event.Event] {
	return func(yield func(event.Event) bool) {
		for range n {
			if !yield(gen.Next().Event) {
				return
			}
		}
	}
}

// clickstreamLive sends the generator's events, stamped with the current
// time and their clientIp pseudonymised, at rate per second until ctx ends.
func clickstreamLive(ctx context.Context, brokers []string, run *runner.Running, gen *clickstream.Generator, ips *api.ClientIPPseudonymizer,
	rate int, first *atomic.Pointer[string]) error {
	if rate == 0 {
		<-ctx.Done()
		return nil
	}
	em, err := processors.NewEmitter(brokers, run.Pipeline.Raw)
	if err != nil {
		return err
	}
	defer em.Finish()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			r := gen.Next()
			e := r.Event
			e.Timestamp = time.Now().UTC()
			if err := ips.Apply(&e); err != nil {
				return err
			}
			if err := em.Emit(r.Key, e); err != nil {
				return err
			}
			if first.Load() == nil {
				first.Store(&r.Key)
			}
		}
	}
}
