// Package recommend holds the types the serving side of the reference
// pipeline shares: what a model returns for a user, how it identifies
// itself, and where an answer came from. The scorer (operators/score), the
// Redis cache (operators/cache) and the HTTP API (runner/api) all speak
// these types.
package recommend

import (
	"context"
	"time"

	"github.com/aetherai/aether/operators/features"
)

// Item is one recommended product with its model score.
type Item struct {
	ProductID string  `json:"productId"`
	Score     float32 `json:"score"`
}

// Model identifies the model that produced an answer.
type Model struct {
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
}

// Source says where an answer came from.
type Source string

// The sources of an answer.
const (
	FromCache     Source = "cache"
	FromInference Source = "inference"
	FromFallback  Source = "fallback"
)

// Recommendations is the answer for one user, as cached and served.
type Recommendations struct {
	UserID      string    `json:"userId"`
	Items       []Item    `json:"items"`
	Model       Model     `json:"model"`
	Source      Source    `json:"source"`
	GeneratedAt time.Time `json:"generatedAt"`
}

// Scorer scores users' feature records with a model.
type Scorer interface {
	// Score returns the top k items for each record, in the records'
	// order. Implementations batch the records into one inference where
	// they can.
	Score(ctx context.Context, records []features.Record, k int) ([][]Item, error)
	// Popular returns the k most popular items, the fallback for users
	// without features.
	Popular(k int) []Item
	// Model identifies the loaded model.
	Model() Model
}

// Cache stores each user's recommendations with a TTL.
type Cache interface {
	// Get returns the user's cached recommendations; ok is false on a miss.
	Get(ctx context.Context, userID string) (r Recommendations, ok bool, err error)
	// Put stores the recommendations of one or more users (pipelined).
	Put(ctx context.Context, recs ...Recommendations) error
}

// ModelScorer is a Scorer that can serve more than one model at a time
// (a staged rollout, a hot swap): ScoreWithModel says, for each record,
// which model scored it.
type ModelScorer interface {
	Scorer
	// ScoreWithModel is Score that also returns, for each record, the
	// model whose items it returned.
	ScoreWithModel(ctx context.Context, records []features.Record, k int) ([][]Item, []Model, error)
}

// ScoreWithModel scores records with s and returns, for each record, the
// model that scored it: s.ScoreWithModel when s is a ModelScorer, else
// s.Score and s.Model() for every record.
func ScoreWithModel(ctx context.Context, s Scorer, records []features.Record, k int) ([][]Item, []Model, error) {
	if ms, ok := s.(ModelScorer); ok {
		return ms.ScoreWithModel(ctx, records, k)
	}
	items, err := s.Score(ctx, records, k)
	if err != nil {
		return nil, nil, err
	}
	m := s.Model()
	models := make([]Model, len(items))
	for i := range models {
		models[i] = m
	}
	return items, models, nil
}
