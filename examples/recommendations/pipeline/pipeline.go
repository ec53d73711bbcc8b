// Package pipeline declares Aether's reference recommendation pipeline on
// the public API:
//
//	user_events_raw (7 days, personal: userId, clientIp, sealed per user)
//	  -> sessionizer: sessionize -> features, table = online feature store
//	  -> user_features_processed (30 days, sealed per user)
//	  -> recommender: score with the model -> Redis cache (with a TTL)
//
// The demo, the tests and the benchmarks build it from here.
package pipeline

import (
	"cmp"
	"time"

	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/operators"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/operators/score"
	"github.com/aetherai/aether/operators/sessionize"
	"github.com/aetherai/aether/recommend"
	"github.com/aetherai/aether/topology"
)

// Stream and processor names of the reference pipeline.
const (
	RawEvents   = "user_events_raw"
	Features    = "user_features_processed"
	Sessionizer = "sessionizer"
	Recommender = "recommender"
)

// Pipeline is the declared topology with typed handles on its parts.
type Pipeline struct {
	Topology    *topology.Topology
	Raw         *topology.Stream[event.Event]
	Features    *topology.Stream[features.Record]
	Sessionizer *topology.Processor[features.State, event.Event, features.Record]
	// Recommender is nil unless Config has a scorer and a cache.
	Recommender *topology.Processor[struct{}, features.Record, recommend.Recommendations]
}

// Config tunes the pipeline; the zero value is the reference setup.
type Config struct {
	// Sessionizer, RawEvents and Features rename the processor (its
	// consumer group and table) and the two streams; empty means the
	// reference names. Benchmarks use them to run the same pipeline afresh.
	Sessionizer, RawEvents, Features string
	// Partitions of the raw and processed streams; 0 = the runtime default.
	Partitions int32
	// Gap and Grace of the sessionizer; 0 = sessionize's defaults.
	Gap, Grace time.Duration
	// Emit is the features output policy; nil = features' default.
	Emit features.Option
	// Scorer and Cache, when both set, add the recommender processor:
	// user_features_processed -> score (top TopK, default 20) -> Cache.
	Scorer recommend.Scorer
	Cache  topology.Sink[recommend.Recommendations]
	TopK   int
}

// New declares the pipeline.
func New(cfg Config) *Pipeline {
	cfg.Sessionizer = cmp.Or(cfg.Sessionizer, Sessionizer)
	cfg.RawEvents = cmp.Or(cfg.RawEvents, RawEvents)
	cfg.Features = cmp.Or(cfg.Features, Features)
	t := topology.New("recommendations")
	raw := topology.NewStream(cfg.RawEvents, codec.JSON[event.Event](),
		topology.Retention(7*24*time.Hour), topology.Personal("userId", "clientIp"), topology.Sealed(), topology.Partitions(cfg.Partitions)).
		EventTime(func(e event.Event) time.Time { return e.Timestamp }).
		EventID(func(e event.Event) string { return e.EventID }).
		Validate(func(e event.Event) error { return e.Validate() })
	// Binary, not JSON: a feature record of 20 items is ~400 bytes instead of
	// ~2 kB, and encodes ten times faster (see DESIGN.md).
	feats := topology.NewStream(cfg.Features, features.RecordCodec(),
		topology.Retention(30*24*time.Hour), topology.Personal("userId"), topology.Sealed(), topology.Partitions(cfg.Partitions))
	t.Source(raw)

	var sopts []sessionize.Option
	if cfg.Gap > 0 {
		sopts = append(sopts, sessionize.Gap(cfg.Gap))
	}
	if cfg.Grace > 0 {
		sopts = append(sopts, sessionize.Grace(cfg.Grace))
	}
	var fopts []features.Option
	if cfg.Emit != nil {
		fopts = append(fopts, cfg.Emit)
	}
	p := topology.AddProcessor(t, cfg.Sessionizer, raw, features.StateCodec(),
		operators.Chain(sessionize.New[features.State](sopts...), features.New(fopts...))).
		Emit(feats)
	pl := &Pipeline{Topology: t, Raw: raw, Features: feats, Sessionizer: p}
	if cfg.Scorer != nil && cfg.Cache != nil {
		pl.Recommender = topology.AddProcessor(t, Recommender, feats, nil,
			score.New(cfg.Scorer, score.TopK(cmp.Or(cfg.TopK, 20)))).
			Sink(cfg.Cache)
	}
	return pl
}
