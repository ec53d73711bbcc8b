// Package runner runs the reference pipeline: it declares the topology,
// connects Kafka, Redis and the model, runs the processors and serves the
// HTTP API. The runner binary (runner/cmd/runner) is a thin command line
// over it; `runner demo` and `runner run` differ only in where the parts
// come from.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/examples/recommendations/pipeline"
	"github.com/aetherai/aether/operators/cache"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/operators/score"
	"github.com/aetherai/aether/processors"
	"github.com/aetherai/aether/recommend"
	"github.com/aetherai/aether/runner/api"
	"github.com/aetherai/aether/runner/config"
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
}

// Running is a started pipeline.
type Running struct {
	// Addr is the HTTP API's address.
	Addr     string
	Pipeline *pipeline.Pipeline
	Runtime  *processors.Runtime
	stop     []func() error
}

// Stop shuts the HTTP server, the processors and the clients down, in
// that order, and returns the first error.
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

	opts := []processors.Option{processors.Brokers(brokers...), processors.Registry(reg), processors.Logger(log),
		processors.DefaultPartitions(cfg.Kafka.Partitions)}
	if cfg.Storage.Dir != "" {
		opts = append(opts, processors.StorageDir(cfg.Storage.Dir))
	}
	rt, err := processors.New(ctx, pl.Topology, opts...)
	if err != nil {
		return run, err
	}
	run.Runtime = rt
	log.Info("starting processors; tables recover first", "processors", len(pl.Topology.Processors()))
	stopRT, err := rt.Start(ctx)
	if err != nil {
		return run, err
	}
	run.stop = append(run.stop, stopRT)

	view, err := processors.NewView(brokers, pl.Sessionizer.Table())
	if err != nil {
		return run, err
	}
	vctx, stopView := context.WithCancel(context.Background())
	viewDone := make(chan error, 1)
	go func() { viewDone <- view.Run(vctx) }()
	run.stop = append(run.stop, func() error { stopView(); return ignoreCanceled(<-viewDone) })

	em, err := processors.NewEmitter(brokers, pl.Raw)
	if err != nil {
		return run, err
	}
	run.stop = append(run.stop, em.Finish)

	keys := map[string]string{}
	for client, key := range p.APIKeys {
		keys[key] = client
	}
	srv, err := api.New(api.Config{
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
	})
	if err != nil {
		return run, err
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return run, fmt.Errorf("http: %w", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	run.Addr = ln.Addr().String()
	run.stop = append(run.stop, func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := hs.Shutdown(sctx)
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		return err
	})
	log.Info("HTTP API listening", "addr", run.Addr)
	return run, nil
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
