package cli

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"log/slog"
	"net/http"
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
	"github.com/aetherai/aether/internal/tlsfiles"
	"github.com/aetherai/aether/model"
	"github.com/aetherai/aether/operators/cache"
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
synthetic clickstream of --rate events per second, sent to the HTTP API as a
shop would, and the HTTP API on loopback. It prints what to try with curl.
Ctrl-C or SIGTERM stops it.

Crypto-shredding is on, as in production: user ids are pseudonymised and the
events sealed with a data key per user. The master key is read from
` + demoMasterKeyEnv + ` and the pseudonym key from ` + demoSubjectKeyEnv + `; when
they are unset the demo generates random ones for this run (never printed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.apiKey == "" {
				f.apiKey = os.Getenv("AETHER_API_KEY")
			}
			if f.apiKey == "" {
				f.apiKey = randomToken("demo-", 16)
			}
			if f.serve.adminToken == "" {
				f.serve.adminToken = os.Getenv(config.EnvAdminToken)
			}
			if f.serve.adminToken == "" && f.serve.admin != config.AdminOff {
				f.serve.adminToken = randomToken("admin-", 16)
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
	// Crypto-shredding, as in production: keys from the environment, or
	// random ones for this process only.
	cfg.Privacy.MasterKeyEnv, cfg.Forget.SubjectKeyEnv = demoMasterKeyEnv, demoSubjectKeyEnv
	for env, size := range map[string]int{demoMasterKeyEnv: 32, demoSubjectKeyEnv: 16} {
		if os.Getenv(env) == "" {
			if err := os.Setenv(env, randomToken("", size)); err != nil {
				return err
			}
		}
	}
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

	fmt.Fprintf(out, "privacy: user ids pseudonymised, events sealed per user (data keys in Redis under %s)\n", cfg.Privacy.Prefix())

	scheme, curl := "http", "curl -s"
	if cfg.HTTP.TLS.Enabled() {
		scheme, curl = "https", "curl -s --cacert "+cfg.HTTP.TLS.CertFile
	}
	base := scheme + "://" + run.Addr
	// The synthetic clickstream goes through the API, as a shop's would:
	// the API pseudonymises the users and their clientIp, and the
	// events are sealed before they reach Kafka.
	client, err := demoClient(cfg.HTTP.TLS.CertFile, cfg.HTTP.TLS.Enabled())
	if err != nil {
		return errors.Join(err, run.Stop(), trail.Close())
	}
	streamDone := make(chan error, 1)
	sctx, stopStream := context.WithCancel(ctx)
	var firstUser atomic.Pointer[string]
	live := liveStream{client: client, url: base + "/v1/events", apiKey: f.apiKey, gen: gen, rate: f.rate,
		maxBatch: cmp.Or(cfg.HTTP.MaxBatch, api.DefaultMaxBatch), log: log, first: &firstUser}
	go func() { streamDone <- live.run(sctx) }()
	// Suggest a user the pipeline has already seen.
	user := "user_1"
	for deadline := time.Now().Add(10 * time.Second); f.rate > 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if u := firstUser.Load(); u != nil && run.Runtime.Outcomes(pipeline.Sessionizer)["applied"] > 0 {
			user = *u
			break
		}
	}

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

// The environment variables of the demo's keys: privacy.masterKeyEnv and
// forget.subjectKeyEnv.
const (
	demoMasterKeyEnv  = "AETHER_MASTER_KEY"
	demoSubjectKeyEnv = "AETHER_SUBJECT_KEY"
)

// randomToken is prefix and n random bytes in hex: a secret the demo
// generates.
func randomToken(prefix string, n int) string {
	b := make([]byte, n)
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

// demoClient is the HTTP client of the synthetic clickstream; with TLS it
// trusts certFile, as the printed curl commands do with --cacert.
func demoClient(certFile string, useTLS bool) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if useTLS {
		c, err := tlsfiles.Client(certFile, "", "")
		if err != nil {
			// The demo has no caFile setting: name the certificate.
			var pe *fs.PathError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("demo clickstream: %w", pe)
			}
			return nil, fmt.Errorf("demo clickstream: no PEM certificate in %s", certFile)
		}
		tr.TLSClientConfig = c
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, nil
}

// liveStream sends the generator's events, stamped with the current time,
// at rate per second to the API's POST /v1/events, one batch every
// liveBatchEvery.
type liveStream struct {
	client      *http.Client
	url, apiKey string
	gen         *clickstream.Generator
	rate        int
	maxBatch    int
	log         *slog.Logger
	first       *atomic.Pointer[string] // the first user the API accepted an event of
}

const liveBatchEvery = 100 * time.Millisecond

// run sends until ctx ends. An answer other than 202 is logged and the
// stream goes on.
func (l liveStream) run(ctx context.Context) error {
	if l.rate == 0 {
		<-ctx.Done()
		return nil
	}
	defer l.client.CloseIdleConnections()
	tick := time.NewTicker(liveBatchEvery)
	defer tick.Stop()
	start, sent := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			due := int(now.Sub(start).Seconds()*float64(l.rate)) - sent
			if due <= 0 {
				continue
			}
			sent += due
			batch := make([]event.Event, 0, min(due, l.maxBatch))
			for range due {
				r := l.gen.Next()
				if r.Kind == clickstream.Malformed {
					continue // the API would refuse the whole batch
				}
				e := r.Event
				e.Timestamp = time.Now().UTC()
				batch = append(batch, e)
				if len(batch) == l.maxBatch {
					l.post(ctx, batch)
					batch = batch[:0]
				}
			}
			if len(batch) > 0 {
				l.post(ctx, batch)
			}
		}
	}
}

// post sends one batch and logs a failure.
func (l liveStream) post(ctx context.Context, batch []event.Event) {
	body, err := json.Marshal(batch)
	if err != nil {
		l.log.Warn("demo clickstream: cannot encode events", "error", err)
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(body))
	if err != nil {
		l.log.Warn("demo clickstream: bad request", "error", err)
		return
	}
	req.Header.Set("Authorization", "Bearer "+l.apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("demo clickstream: POST /v1/events failed", "events", len(batch), "error", err)
		}
		return
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusAccepted {
		var e struct {
			Error string `json:"error"`
		}
		msg := string(answer)
		if json.Unmarshal(answer, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		l.log.Warn("demo clickstream: the API did not accept events", "status", resp.StatusCode, "events", len(batch), "error", msg)
		return
	}
	if l.first.Load() == nil {
		u := batch[0].UserID
		l.first.Store(&u)
	}
}
