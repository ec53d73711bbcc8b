// Package runner runs the reference pipeline: it declares the topology,
// connects Kafka, Redis and the model, runs the processors and serves the
// HTTP API. The runner binary (runner/cmd/runner) is a thin command line
// over it; `runner demo` and `runner run` differ only in where the parts
// come from.
package runner

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/examples/recommendations/pipeline"
	"github.com/aetherai/aether/internal/buildinfo"
	"github.com/aetherai/aether/keyring"
	"github.com/aetherai/aether/operators/cache"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/operators/score"
	"github.com/aetherai/aether/processors"
	"github.com/aetherai/aether/recommend"
	"github.com/aetherai/aether/runner/api"
	"github.com/aetherai/aether/runner/config"
	"github.com/aetherai/aether/topology"
)

// Declare returns the pipeline the configuration describes. With a scorer
// and a cache it includes the recommender processor.
func Declare(cfg *config.Config, scorer recommend.Scorer, c *cache.RedisCache) *pipeline.Pipeline {
	pc := pipeline.Config{
		Partitions: cfg.Kafka.Partitions,
		Gap:        cfg.Sessions.Gap,
		Grace:      cfg.Sessions.Grace,
		Emit:       features.EmitInterval(cfg.Sessions.EmitInterval),
	}
	if scorer != nil && c != nil {
		pc.Scorer, pc.Cache = scorer, c
	}
	return pipeline.New(pc)
}

// Parts are the connected pieces a pipeline runs with.
type Parts struct {
	Config *config.Config
	// Brokers overrides Config.Kafka.Brokers (the demo's embedded broker).
	Brokers []string
	Scorer  recommend.Scorer
	Cache   *cache.RedisCache
	// APIKeys maps each client name to its key.
	APIKeys  map[string]string
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// Audit, if set, receives the HTTP API's audit trail; the caller
	// closes it after Stop.
	Audit audit.Sink
	// AuditSubjectKey keys the pseudonymous user and address references
	// in the trail of both APIs; empty draws a random key per process.
	AuditSubjectKey []byte
}

// Running is a started pipeline.
type Running struct {
	// Addr is the HTTP API's address.
	Addr string
	// Admin is the admin API (nil when http.admin.listen is "off"), to add
	// routes to; AdminAddr its address. It serves RouteForget.
	Admin     *api.AdminServer
	AdminAddr string
	Pipeline  *pipeline.Pipeline
	Runtime   *processors.Runtime
	keys      *keyring.Keyring // nil unless privacy.masterKeyEnv
	stop      []func() error
}

// Stop shuts down what Start started, in reverse order: the admin and
// HTTP servers, the ingest emitter, the feature view, then the
// processors. It returns every error, joined.
func (r *Running) Stop() error {
	var errs []error
	for i := len(r.stop) - 1; i >= 0; i-- {
		errs = append(errs, r.stop[i]())
	}
	return errors.Join(errs...)
}

// Start runs the pipeline: processors (after their tables recover), a view
// of the feature store, the ingest emitter and the HTTP API. It returns once
// the API is listening.
func Start(ctx context.Context, p Parts) (run *Running, err error) {
	cfg := p.Config
	// Everything the HTTP section needs is resolved before anything
	// starts: a missing key, token or certificate fails fast.
	tlsCfg, err := api.TLSFromConfig(cfg.HTTP)
	if err != nil {
		return nil, err
	}
	subjectKey := p.AuditSubjectKey
	if len(subjectKey) == 0 {
		// forget.subjectKeyEnv: a key shared with runner forget.
		if subjectKey, err = cfg.Forget.SubjectKey(); err != nil {
			return nil, err
		}
	}
	if len(subjectKey) == 0 {
		subjectKey = make([]byte, 32)
		_, _ = rand.Read(subjectKey)
	}
	var adminCfg api.AdminConfig
	if cfg.HTTP.Admin.Enabled() {
		if err := adminCfg.ApplyHTTP(cfg.HTTP); err != nil {
			return nil, err
		}
	}
	brokers := p.Brokers
	if len(brokers) == 0 {
		brokers = cfg.Kafka.Brokers
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := p.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	// One batcher for the recommender's partitions and the API's misses:
	// concurrent scoring calls share inferences.
	// A recommend.ModelScorer (a rollout.Switch) batches per model itself:
	// a batcher around it would hide which model scored what.
	scorer := p.Scorer
	if _, perModel := scorer.(recommend.ModelScorer); scorer != nil && !perModel {
		scorer = score.Batched(scorer, score.DefaultMaxBatch)
	}
	pl := Declare(cfg, scorer, p.Cache)
	run = &Running{Pipeline: pl}
	defer func() {
		if err != nil {
			_ = run.Stop()
		}
	}()

	// Each processor, the ingest emitter and the feature view connect as
	// their own principal (kafka.security), so each gets only the ACLs
	// derived for it (runner acls); without a security block these are
	// plain connections.
	kafkaAs, err := kafkaRoles(cfg.Kafka, pl)
	if err != nil {
		return run, err
	}
	opts := []processors.Option{processors.Brokers(brokers...), processors.Registry(reg), processors.Logger(log),
		processors.DefaultPartitions(cfg.Kafka.Partitions), processors.PerProcessorSarama(kafkaAs.processor)}
	if !kafkaAs.admin {
		// Without administrator credentials the topics must exist
		// already (runner topics --apply).
		opts = append(opts, processors.CreateTopics(false))
	}
	if p.Audit != nil {
		// Per-partition attestations of every input offset, and the
		// processors' job events, in the same trail as the API's.
		var aopts []processors.AuditOption
		if cfg.Audit.Messages == config.AuditPerMessage {
			aopts = append(aopts, processors.PerMessage())
		}
		opts = append(opts, processors.Audit(p.Audit, aopts...))
	}
	if cfg.Storage.Dir != "" {
		opts = append(opts, processors.StorageDir(cfg.Storage.Dir))
	}
	// privacy.masterKeyEnv: the sealed streams' values are sealed with a
	// data key per user (crypto-shredding), and users are known by their
	// pseudonym everywhere behind the API.
	var emOpts []processors.ClientOption // the ingest emitter's and the view's
	if cfg.Privacy.Sealing() {
		if p.Cache == nil {
			return run, errors.New("privacy.masterKeyEnv: the data keys live in Redis, and this pipeline has no Redis")
		}
		if run.keys, err = NewKeyring(cfg, p.Cache.Client(), pl.Topology, reg); err != nil {
			return run, err
		}
		opts = append(opts, processors.Seal(run.keys))
		emOpts = append(emOpts, processors.ClientSeal(run.keys))
	}
	rt, err := processors.New(ctx, pl.Topology, opts...)
	if err != nil {
		return run, err
	}
	run.Runtime = rt
	if err := registerMonitoring(reg, brokers, kafkaAs.adminConf("aether-lag"), pl, log); err != nil {
		return run, err
	}
	log.Info("starting processors; tables recover first", "processors", len(pl.Topology.Processors()))
	stopRT, err := rt.Start(ctx)
	if err != nil {
		return run, err
	}
	run.stop = append(run.stop, stopRT)

	view, err := processors.NewView(brokers, pl.Sessionizer.Table(), append(emOpts, processors.ClientSarama(kafkaAs.views))...)
	if err != nil {
		return run, err
	}
	vctx, stopView := context.WithCancel(context.Background())
	viewDone := make(chan error, 1)
	go func() { viewDone <- view.Run(vctx) }()
	run.stop = append(run.stop, func() error { stopView(); return ignoreCanceled(<-viewDone) })

	em, err := processors.NewEmitter(brokers, pl.Raw, append(emOpts, processors.ClientSarama(kafkaAs.ingest))...)
	if err != nil {
		return run, err
	}
	run.stop = append(run.stop, em.Finish)

	keys := map[string]string{}
	for client, key := range p.APIKeys {
		keys[key] = client
	}
	acfg := api.Config{
		Events:     eventSink{em},
		Features:   featureStore{view},
		Scorer:     scorer,
		Cache:      p.Cache,
		APIKeys:    keys,
		Logger:     log,
		Registerer: reg,
		Gatherer:   reg,
		Ready:      rt.Ready,
		Audit:      p.Audit,
		// One key for both APIs, so their references to a user match.
		AuditSubjectKey:   subjectKey,
		PseudonymousUsers: cfg.Privacy.Sealing(),
	}
	if err := acfg.ApplyHTTP(cfg.HTTP); err != nil {
		return run, err
	}
	srv, err := api.New(acfg)
	if err != nil {
		return run, err
	}
	ln, err := api.Listen(cfg.HTTP.Listen, tlsCfg)
	if err != nil {
		return run, fmt.Errorf("http: %w", err)
	}
	run.Addr = ln.Addr().String()
	run.stop = append(run.stop, serve(ln, srv))
	log.Info("HTTP API listening", "addr", run.Addr, "tls", tlsCfg != nil)
	if cfg.HTTP.Admin.Enabled() {
		adminCfg.Audit, adminCfg.Logger, adminCfg.AuditSubjectKey = p.Audit, log, subjectKey
		adminCfg.AuditErrors = srv.AuditErrors()
		adm, err := api.NewAdmin(adminCfg)
		if err != nil {
			return run, err
		}
		aln, err := api.ListenAdmin(cfg.HTTP.Admin.Listen, tlsCfg)
		if err != nil {
			return run, fmt.Errorf("admin http: %w", err)
		}
		run.Admin, run.AdminAddr = adm, aln.Addr().String()
		run.stop = append(run.stop, serve(aln, adm))
		if err := startForget(run, p, brokers, kafkaAs, view, subjectKey); err != nil {
			return run, err
		}
		log.Info("admin API listening", "addr", run.AdminAddr)
	}
	return run, nil
}

// serve serves h on ln and returns the function that shuts the server
// down, waiting up to 10s for the requests in flight.
func serve(ln net.Listener, h http.Handler) (stop func() error) {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	return func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := hs.Shutdown(sctx)
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		return err
	}
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// eventSink produces ingested events to user_events_raw, keyed by user,
// and returns once the broker acknowledged all of them.
type eventSink struct {
	em *processors.Emitter[event.Event]
}

func (s eventSink) Send(ctx context.Context, events []event.Event) error {
	recs := make([]processors.Keyed[event.Event], len(events))
	for i, e := range events {
		recs[i] = processors.Keyed[event.Event]{Key: e.UserID, Value: e}
	}
	return s.em.EmitAll(ctx, recs)
}

// featureStore serves feature records from a view of the sessionizer's
// table.
type featureStore struct {
	view *processors.View[features.State]
}

func (f featureStore) Get(userID string) (features.Record, bool, error) {
	if !f.view.Recovered() {
		return features.Record{}, false, errors.New("feature store is still recovering")
	}
	s, ok, err := f.view.Get(userID)
	if err != nil || !ok {
		return features.Record{}, false, err
	}
	return s.Record(userID), true, nil
}

func (f featureStore) Ready() bool { return f.view.Recovered() }

// registerMonitoring adds what the alert rules watch beyond the processors'
// own metrics: the build, and each processor group's consumer lag read from
// the brokers at scrape time.
func registerMonitoring(reg prometheus.Registerer, brokers []string, kc *sarama.Config, pl *pipeline.Pipeline, log *slog.Logger) error {
	if err := buildinfo.Register(reg); err != nil {
		return err
	}
	var groups []string
	for _, p := range pl.Topology.Processors() {
		groups = append(groups, p.Name)
	}
	lag, err := broker.NewLagCollector(brokers, kc, broker.LagGroups(groups...), broker.LagLogger(log))
	if err != nil {
		return err
	}
	return reg.Register(lag)
}

// kafkaConfigs are the sarama configurations of the pipeline's Kafka roles.
type kafkaConfigs struct {
	perProcessor  map[string]func(clientID string) *sarama.Config
	ingest, views func(clientID string) *sarama.Config
	// admin is whether the runtime's own client (which creates missing
	// topics) has administrator credentials: always without SASL.
	admin     bool
	adminConf func(clientID string) *sarama.Config
}

func (k kafkaConfigs) processor(name, clientID string) *sarama.Config {
	if name == "" {
		return k.adminConf(clientID)
	}
	return k.perProcessor[name](clientID)
}

func kafkaRoles(kc config.Kafka, pl *pipeline.Pipeline) (k kafkaConfigs, err error) {
	k.perProcessor = map[string]func(string) *sarama.Config{}
	for _, sp := range pl.Topology.Processors() {
		if k.perProcessor[sp.Name], err = kc.Sarama(sp.Name); err != nil {
			return k, err
		}
	}
	if k.ingest, err = kc.Sarama(topology.RoleIngest); err != nil {
		return k, err
	}
	if k.views, err = kc.Sarama(topology.RoleViews); err != nil {
		return k, err
	}
	k.adminConf, err = kc.Sarama(config.KafkaAdminRole)
	if _, declared := kc.AdminPrincipal(); declared && err != nil {
		return k, err // declared but unusable (an empty password): say so
	}
	k.admin = err == nil
	if !k.admin {
		// The runtime's client then connects as the ingest role, which
		// may describe but not create topics.
		k.adminConf = k.ingest
	}
	return k, nil
}
