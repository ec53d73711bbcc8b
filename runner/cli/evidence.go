package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aetherai/aether/internal/redisglob"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/aetherai/aether/audit"
	es "github.com/aetherai/aether/audit/elasticsearch"
	"github.com/aetherai/aether/controls/acl"
	"github.com/aetherai/aether/controls/evidence"
	"github.com/aetherai/aether/controls/topics"
	"github.com/aetherai/aether/examples/recommendations/pipeline"
	"github.com/aetherai/aether/keyring"
	"github.com/aetherai/aether/model"
	"github.com/aetherai/aether/model/approval"
	"github.com/aetherai/aether/runner"
	"github.com/aetherai/aether/runner/config"
)

// defaultRulesPath is where the repository keeps the alert rules, looked
// up from the working directory and its parents when --rules is not given.
var defaultRulesPath = filepath.Join("deploy", "prometheus", "alerts.yml")

// defaultRequiredAlerts are the alerts the controls rely on: a failing or
// silent control, a stalled or failing audit trail, a process down, lag,
// dead letters and refused models (deploy/prometheus/alerts.yml).
var defaultRequiredAlerts = []string{
	"AetherControlFailing", "AetherControlStatusMissing",
	"AetherAuditTrailStalled", "AetherAuditWriteErrors",
	"AetherProcessorDown", "AetherConsumerLagHigh", "AetherDeadLettersRising",
	"AetherModelRefused",
}

type evidenceFlags struct {
	out, rules, receipts, listen string
	period, auditMaxAge          time.Duration
	timeout                      time.Duration
	requireAlerts                []string
	// served, if set, says which model is being served (runner run);
	// else the model the configuration names is read.
	served func(ctx context.Context) (sha, version string, err error)
}

func evidenceCmd() *cobra.Command {
	var (
		o  *runFlags
		ef evidenceFlags
	)
	cmd := &cobra.Command{
		Use:   "evidence -c FILE [-o report.html|report.json] [--period D]",
		Short: "Evaluate the controls (TLS, Redis TTLs, model approval, audit trail, alert rules, deletion receipts, sealing) for auditors",
		Long: `Compare what the configuration declares with what is live, control by
control, each mapped to the SOC 2 criteria it serves:

  encryption_in_transit  TLS on Kafka, Redis, the HTTP API and the admin API (CC6.1, CC6.7)
  redis_key_ttl          no key under redis.keyPrefix (or privacy.keyPrefix) without a TTL (C1.2, P4.2)
  model_approval         the configured model's SHA-256 is in model.manifest (CC8.1)
  audit_trail            audit.file verifies and its last record is recent (CC7.2)
  alert_rules            the alerts the controls rely on are defined (CC7.2)
  deletion_receipts      every deletion request has a complete receipt (P4.3, C1.2)
  acl_drift              the live Kafka ACLs are exactly those derived from the topology (CC6.1, CC6.3)
  topic_drift            the live topics have the declared partitions, retention and cleanup (C1.2, P4.2, PI1.5)
  personal_data_sealed   every stream with personal fields is sealed per user, the master key is readable,
                         and a probe data key destroyed in Redis makes its value unreadable (C1.2, P4.3)

A control that cannot be built from the configuration is listed as not
evaluated, with why. With -o FILE the report is written as a self-contained
HTML page (.html) or as JSON (.json); otherwise a table is printed, one line
per control: status, id, why. Exits 1 when a control fails or cannot be
evaluated (error). With --period D it re-evaluates every D, rewriting -o
each time (or printing the table), until interrupted; with --listen ADDR as
well it serves the latest report at /evidence (HTML) and /evidence.json and
the status of each control at /metrics:

  aether_control_status{control, criteria}          1 pass, 0 fail, -1 error
  aether_control_last_evaluated_timestamp_seconds`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, err := reportFormat(ef.out)
			if err != nil {
				return err
			}
			if ef.period < 0 {
				return usageError{fmt.Errorf("evidence: --period must not be negative")}
			}
			if ef.listen != "" && ef.period == 0 {
				return usageError{fmt.Errorf("evidence: --listen needs --period: a single evaluation serves nothing")}
			}
			cfg, err := o.load()
			if err != nil {
				return err
			}
			// The file's settings, where the flags give none: the receipts
			// runner forget writes, the rules the file names.
			ef.receipts = cmp.Or(ef.receipts, cfg.ReceiptsDir())
			ef.rules = cmp.Or(ef.rules, cfg.Evidence.Rules)
			checks, skipped, closeAll := buildEvidenceChecks(cmd.Context(), cfg, ef)
			defer closeAll()
			opts := []evidence.Option{evidence.Timeout(ef.timeout), evidence.NotEvaluated(skipped...),
				evidence.ConfigDigest(configDigest(cfg))}
			out := cmd.OutOrStdout()
			if ef.period == 0 {
				rep := evidence.Evaluate(cmd.Context(), checks, opts...)
				if err := emitReport(out, rep, ef.out, format); err != nil {
					return err
				}
				if !rep.OK() {
					return fmt.Errorf("evidence: %d of %d controls do not pass (%d fail, %d error)",
						rep.Summary.Fail+rep.Summary.Error, rep.Summary.Total, rep.Summary.Fail, rep.Summary.Error)
				}
				return nil
			}
			var emitErr error
			sopts := []evidence.SchedulerOption{evidence.Period(ef.period), evidence.OnReport(func(rep evidence.Report) {
				if err := emitReport(out, rep, ef.out, format); err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "runner: evidence:", err)
					emitErr = err
				}
			})}
			for _, opt := range opts {
				sopts = append(sopts, opt)
			}
			reg := prometheus.NewRegistry()
			s, err := evidence.NewScheduler(checks, append(sopts, evidence.Registerer(reg))...)
			if err != nil {
				return err
			}
			if ef.listen != "" {
				stop, err := serveEvidence(out, ef.listen, s, reg)
				if err != nil {
					return err
				}
				defer stop()
			}
			if err := s.Run(cmd.Context()); err != nil {
				return err
			}
			return emitErr
		},
	}
	o = addRunFlags(cmd)
	fs := cmd.Flags()
	fs.StringVarP(&ef.out, "output", "o", "", "write the report to FILE: .html (a page for auditors) or .json; default: a table on stdout")
	fs.DurationVar(&ef.period, "period", 0, "re-evaluate every period until interrupted (e.g. 5m); 0 evaluates once")
	fs.StringVar(&ef.rules, "rules", "", "Prometheus alert rules file (default: evidence.rules, else "+defaultRulesPath+" in the working directory or a parent)")
	fs.StringSliceVar(&ef.requireAlerts, "require-alert", defaultRequiredAlerts, "alerts the rules file must define")
	fs.StringVar(&ef.receipts, "receipts", "", "directory of deletion receipts (default: evidence.receipts, else "+config.DefaultReceiptsDir+", where runner forget writes them)")
	fs.DurationVar(&ef.auditMaxAge, "audit-max-age", 24*time.Hour, "the audit trail fails as stalled when its last record is older; 0 disables")
	fs.DurationVar(&ef.timeout, "timeout", evidence.DefaultTimeout, "time limit of each control")
	fs.StringVar(&ef.listen, "listen", "", "with --period, serve /evidence (HTML), /evidence.json and /metrics (aether_control_status) on this address; no authentication, so keep it on loopback or a private network")
	return cmd
}

// serveEvidence serves the scheduler's latest report and its metrics on
// addr until stop is called.
func serveEvidence(out io.Writer, addr string, s *evidence.Scheduler, reg *prometheus.Registry) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("evidence: --listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /evidence", s.Handler())
	mux.Handle("GET /evidence.json", s.Handler())
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	fmt.Fprintf(out, "serving http://%s/evidence, /evidence.json and /metrics\n", ln.Addr())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}, nil
}

// Report formats, by -o extension.
const (
	formatTable = "table"
	formatHTML  = "html"
	formatJSON  = "json"
)

func reportFormat(out string) (string, error) {
	switch strings.ToLower(filepath.Ext(out)) {
	case "":
		if out == "" {
			return formatTable, nil
		}
	case ".html", ".htm":
		return formatHTML, nil
	case ".json":
		return formatJSON, nil
	}
	return "", usageError{fmt.Errorf("evidence: -o %s: the file name must end in .html or .json", out)}
}

// emitReport writes the report to path in format (atomically, so a reader
// of a periodically rewritten report never sees half of one), or the
// table to out.
func emitReport(out io.Writer, rep evidence.Report, path, format string) error {
	if format == formatTable {
		return evidence.WriteSummary(out, rep)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	write := evidence.WriteHTML
	if format == formatJSON {
		write = evidence.WriteJSON
	}
	if err := write(tmp, rep); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("evidence: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	_, err = fmt.Fprintf(out, "%s %s: %d controls: %d pass, %d fail, %d error; %d not evaluated\n",
		rep.GeneratedAt.Format(time.RFC3339), path, rep.Summary.Total, rep.Summary.Pass, rep.Summary.Fail,
		rep.Summary.Error, len(rep.NotEvaluated))
	return err
}

// configDigest identifies the configuration evaluated (the file with the
// flags applied) without putting it, or its secrets, in the report.
func configDigest(cfg *config.Config) string {
	b, err := json.Marshal(cfg)
	if err != nil {
		return ""
	}
	return evidence.DigestConfig(b)
}

// buildEvidenceChecks builds the controls the configuration allows and
// lists the others with why. closeAll releases the connections opened.
func buildEvidenceChecks(ctx context.Context, cfg *config.Config, ef evidenceFlags) (checks []evidence.Check, skipped []evidence.Skipped, closeAll func()) {
	var closers []func()
	closeAll = func() {
		for _, c := range closers {
			c()
		}
	}
	skip := func(id, why string) { skipped = append(skipped, evidence.Skipped{ID: id, Why: why}) }

	checks = append(checks, evidence.TLSEverywhere(configEndpoints(cfg)))

	var (
		rdb    *redis.Client
		rdbErr error
	)
	if cfg.Redis.Addr == "" {
		skip("redis_key_ttl", "redis.addr is not set: no Redis to scan")
	} else {
		patterns := []string{redisglob.Escape(cfg.Redis.KeyPrefix) + "*"}
		if cfg.Privacy.Sealing() && cfg.Redis.KeyPrefix != "" {
			// The users' data keys expire too (an empty redis.keyPrefix
			// scans every key already).
			patterns = append(patterns, redisglob.Escape(cfg.Privacy.Prefix())+"*")
		}
		rdb, rdbErr = connectRedis(ctx, cfg.Redis)
		c := evidence.RedisTTL(rdb, patterns...)
		if rdbErr != nil {
			// Still a control: unreachable Redis is an error in the report,
			// not a missing line.
			why := "cannot connect to Redis: " + rdbErr.Error()
			c.Run = func(context.Context) evidence.Result {
				return evidence.Result{Status: evidence.StatusError, Declared: "every key matching " + strings.Join(patterns, ", ") + " has a TTL",
					Live: "unknown", Why: why}
			}
		} else {
			closers = append(closers, func() { rdb.Close() })
		}
		checks = append(checks, c)
	}
	// The controls derived from the topology share one declaration.
	pl, plErr := declareAll(cfg)
	checks = append(checks, personalDataSealed(cfg, pl, plErr, rdb, rdbErr))

	if cfg.Model.Manifest == "" {
		skip("model_approval", "model.manifest is not set: no approved-models manifest to check the model against (model.sha256 pins it instead)")
	} else {
		served := ef.served
		if served == nil {
			served = func(ctx context.Context) (string, string, error) { return configuredModel(ctx, cfg) }
		}
		checks = append(checks, evidence.ModelApproved(cfg.Model.Manifest, served))
	}

	if e := cfg.Audit.Elasticsearch; e.Enabled() {
		prefix := e.IndexPrefix // config defaults it
		// The connection (its password) is resolved once; an error in it is
		// the control's at every evaluation.
		opts, connErr := runner.ElasticsearchConn(e)
		checks = append(checks, evidence.AuditTrailFunc("elasticsearch "+prefix+"-*", ef.auditMaxAge,
			func(ctx context.Context) (audit.Report, time.Time, error) {
				if connErr != nil {
					return audit.Report{}, time.Time{}, connErr
				}
				rep, err := es.Verify(ctx, prefix, opts...)
				return rep, rep.LastTime, err
			}))
	} else if cfg.Audit.File == "" {
		skip("audit_trail", "audit.file is not set (runner run then writes a new aether-audit-<timestamp>.jsonl): set audit.file or --audit-file")
	} else {
		checks = append(checks, evidence.AuditTrail(cfg.Audit.File, ef.auditMaxAge))
	}

	rules := ef.rules
	if rules == "" {
		rules = findUp(defaultRulesPath)
	}
	checks = append(checks, evidence.AlertRules(rules, ef.requireAlerts...))

	checks = append(checks, evidence.DeletionReceipts(ef.receipts))

	// What is declared is derived once; each evaluation reads the cluster.
	var (
		wantACLs   []acl.Binding
		wantTopics []topics.Topic
	)
	aclErr, topicsErr := plErr, plErr
	if plErr == nil {
		wantACLs, aclErr = pipelineACLs(cfg, pl)
		wantTopics, topicsErr = topics.Derive(pl.Topology, cfg.Kafka.Partitions)
	}
	checks = append(checks, evidence.Drift("acl_drift", []string{"CC6.1", "CC6.3"}, func(ctx context.Context) (missing, excess []string, err error) {
		if aclErr != nil {
			return nil, nil, aclErr
		}
		return aclDrift(ctx, cfg, wantACLs)
	}))
	checks = append(checks, evidence.Drift("topic_drift", []string{"C1.2", "P4.2", "PI1.5"}, func(ctx context.Context) (missing, excess []string, err error) {
		if topicsErr != nil {
			return nil, nil, topicsErr
		}
		problems, err := topicDrift(ctx, cfg, wantTopics)
		for _, p := range problems {
			missing = append(missing, p.String())
		}
		return missing, nil, err
	}))
	return checks, skipped, closeAll
}

// personalDataSealed is the crypto-shredding control on the topology of
// pl, cfg's pipeline (declareAll; declErr when it cannot be declared): its
// probe builds the keyring runner run builds (runner.NewKeyring) on rdb,
// the Redis connection of the other controls (rdbErr when it failed).
func personalDataSealed(cfg *config.Config, pl *pipeline.Pipeline, declErr error, rdb *redis.Client, rdbErr error) evidence.Check {
	s := evidence.Sealing{MasterKeyEnv: cfg.Privacy.MasterKeyEnv, Prefix: cfg.Privacy.Prefix(),
		MasterKey: func() error { _, err := cfg.Privacy.MasterKey(); return err },
		// Called only with sealing on, which the configuration allows only
		// with redis.addr set: rdb is connected unless rdbErr says why not.
		Keyring: func(context.Context) (*keyring.Keyring, error) {
			if rdbErr != nil {
				return nil, fmt.Errorf("cannot connect to Redis: %w", rdbErr)
			}
			return runner.NewKeyring(cfg, rdb, pl.Topology, nil)
		}}
	if declErr != nil {
		// Still a control: the topology's error is in the report.
		c := evidence.PersonalDataSealed(s)
		why := "the topology cannot be declared: " + declErr.Error()
		c.Run = func(context.Context) evidence.Result {
			return evidence.Result{Status: evidence.StatusError, Declared: "every stream with personal fields is sealed per user",
				Live: "unknown", Why: why}
		}
		return c
	}
	s.Streams = pl.Topology.Streams()
	if rdb != nil && rdbErr == nil {
		s.Redis = rdb
	}
	return evidence.PersonalDataSealed(s)
}

// configEndpoints lists the connections the configuration declares and
// whether each is on TLS.
func configEndpoints(cfg *config.Config) []evidence.Endpoint {
	eps := []evidence.Endpoint{
		{Name: "kafka", Addr: strings.Join(cfg.Kafka.Brokers, ","), TLS: cfg.Kafka.Security != nil && cfg.Kafka.Security.TLS != nil},
		{Name: "redis", Addr: cfg.Redis.Addr, TLS: cfg.Redis.TLS != nil},
		esEndpoint(cfg.Audit.Elasticsearch),
		{Name: "http-api", Addr: cfg.HTTP.Listen, TLS: cfg.HTTP.TLS.Enabled()},
	}
	admin := evidence.Endpoint{Name: "admin-api"}
	if cfg.HTTP.Admin.Enabled() {
		admin.Addr, admin.TLS = cfg.HTTP.Admin.Listen, cfg.HTTP.TLS.Enabled()
	}
	return append(eps, admin)
}

// configuredModel returns the SHA-256 and version of the model the
// configuration serves, read the way runner run reads it: fetched for
// model.uri and checked against its metadata; with model.pollInterval the
// newest version the manifest approves (loadModel), else the newest one.
func configuredModel(ctx context.Context, cfg *config.Config) (string, string, error) {
	source, isURI := cfg.Model.Dir, false
	if cfg.Model.URI != "" {
		source, isURI = cfg.Model.URI, true
		if cfg.Model.PollInterval > 0 {
			return newestApproved(ctx, cfg)
		}
	}
	_, meta, err := fetchModel(ctx, cfg, source, isURI, slog.New(slog.DiscardHandler))
	if err != nil {
		return "", "", err
	}
	return meta.SHA256, meta.Version, nil
}

// findUp returns rel under the working directory or its nearest parent
// that has it, else rel itself (the check then reports it missing).
func findUp(rel string) string {
	dir, err := os.Getwd()
	if err != nil {
		return rel
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			return p // there, or there but unreadable: the check says why
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return rel
		}
		dir = parent
	}
}

// aclDrift compares the ACLs want (deriveACLs) with the live
// cluster, as `runner acls --check` does.
func aclDrift(ctx context.Context, cfg *config.Config, want []acl.Binding) (missing, excess []string, err error) {
	admin, err := kafkaAdmin(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	defer admin.Close()
	live, err := acl.List(admin)
	if err != nil {
		return nil, nil, err
	}
	d := acl.Compare(want, live)
	for _, b := range d.Missing {
		missing = append(missing, b.String())
	}
	for _, b := range d.Excess {
		excess = append(excess, b.String())
	}
	return missing, excess, nil
}

// esEndpoint is the Elasticsearch audit trail's connection, TLS when every
// URL is https.
func esEndpoint(e config.AuditElasticsearch) evidence.Endpoint {
	ep := evidence.Endpoint{Name: "elasticsearch"}
	if !e.Enabled() {
		return ep
	}
	ep.Addr, ep.TLS = strings.Join(e.URLs, ","), true
	for _, u := range e.URLs {
		if !strings.HasPrefix(strings.ToLower(u), "https://") {
			ep.TLS = false
		}
	}
	return ep
}

// newestApproved is configuredModel for a versioned model.uri: the newest
// of its last maxFallbackVersions versions that the manifest approves, as
// loadModel picks at start; the newest version when none is approved (the
// control then fails on it).
func newestApproved(ctx context.Context, cfg *config.Config) (string, string, error) {
	m, _ := approval.Load(cfg.Model.Manifest) // a missing manifest approves nothing
	meta, _, err := newestAcceptable(ctx, cfg.Model.URI,
		func(source string) (model.Metadata, error) {
			_, meta, err := fetchModel(ctx, cfg, source, true, slog.New(slog.DiscardHandler))
			return meta, err
		},
		func(meta model.Metadata, err error) bool {
			switch {
			case err != nil:
				return true // the walk ends on it
			case m == nil:
				return false
			}
			_, err = m.Check(meta.SHA256)
			return err == nil
		})
	if err != nil {
		return "", "", err
	}
	return meta.SHA256, meta.Version, nil
}
