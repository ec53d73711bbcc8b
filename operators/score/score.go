// Package score turns feature records into recommendations with a model:
// the scoring step of the reference pipeline. It runs in a stateless
// processor (state struct{}) that reads the feature records the features
// operator emits (user_features_processed), keyed by user.
//
// For each features.Record the operator asks the
// recommend.Scorer for the record's top k items and emits one
// recommend.Recommendations: the record's user, the items (possibly none,
// for a user whose recent items the model does not know), the scorer's
// model identity, Source recommend.FromInference, and GeneratedAt the
// record's event time (never the wall clock, so replays emit the same
// values).
//
// It scores one record per call, as the operator contract hands it one
// record at a time; wrap the scorer with Batched to merge the calls that
// the processor's partitions (and any other users of the scorer) make at
// the same time into one inference.
//
// A scorer error fails the record: the runtime dead-letters it with the
// reason and goes on. Nothing falls back to popular items here; serving
// does that for users without recommendations (recommend.FromFallback).
package score

import (
	"context"
	"fmt"

	"github.com/aetherai/aether/operators"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/recommend"
)

const (
	// DefaultTopK is how many items a recommendation holds by default.
	DefaultTopK = 20
	// MaxTopK bounds TopK; it is the model package's MaxK.
	MaxTopK = 100
)

// Option configures New.
type Option func(*config)

type config struct{ k int }

// TopK sets how many items each recommendation holds at most (default 20).
// Values below 1 keep the default; values above MaxTopK are capped.
func TopK(n int) Option {
	return func(c *config) {
		if n >= 1 {
			c.k = min(n, MaxTopK)
		}
	}
}

// New returns the scoring operator; its Name is "score". It panics if
// scorer is nil, a programming error found at start-up, not per record.
func New(scorer recommend.Scorer, opts ...Option) operators.Operator[struct{}, features.Record, recommend.Recommendations] {
	if scorer == nil {
		panic("score: New with a nil scorer")
	}
	c := config{k: DefaultTopK}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return &scoreOp{scorer: scorer, k: c.k}
}

type scoreOp struct {
	scorer recommend.Scorer
	k      int
}

func (*scoreOp) Name() string { return "score" }

// Process scores one record. The user is the record's UserID, or the
// record's key when the UserID is empty.
func (op *scoreOp) Process(ctx operators.Context[struct{}], rec features.Record, emit func(recommend.Recommendations) error) error {
	res, models, err := recommend.ScoreWithModel(context.Background(), op.scorer, []features.Record{rec}, op.k)
	if err != nil {
		return fmt.Errorf("score: %w", err)
	}
	if len(res) != 1 || len(models) != 1 {
		return fmt.Errorf("score: scorer returned %d results for 1 record (and %d models)", len(res), len(models))
	}
	items := res[0]
	if items == nil {
		items = []recommend.Item{} // [] rather than null in JSON
	}
	user := rec.UserID
	if user == "" {
		user = ctx.Key()
	}
	return emit(recommend.Recommendations{
		UserID:      user,
		Items:       items,
		Model:       models[0],
		Source:      recommend.FromInference,
		GeneratedAt: ctx.EventTime(),
	})
}
