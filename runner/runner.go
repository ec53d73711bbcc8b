// Package runner runs the reference pipeline from a configuration: it
// declares the topology, connects Kafka, Redis and the model, and serves
// the HTTP API. The runner binary (runner/cmd/runner) is a thin command
// line over it.
package runner

import (
	"github.com/aetherai/aether/examples/recommendations/pipeline"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/recommend"
	"github.com/aetherai/aether/runner/config"
)

// Declare returns the pipeline the configuration describes. With a scorer
// and a cache it includes the recommender processor.
func Declare(cfg *config.Config, scorer recommend.Scorer, cache recommend.Cache) *pipeline.Pipeline {
	return pipeline.New(pipeline.Config{
		Partitions: cfg.Kafka.Partitions,
		Gap:        cfg.Sessions.Gap,
		Grace:      cfg.Sessions.Grace,
		Emit:       features.EmitInterval(cfg.Sessions.EmitInterval),
	})
}
