package score_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/operators/score"
	"github.com/aetherai/aether/recommend"
)

// slowScorer scores a record as items named after its user, k of them,
// and records the size of every inference.
type slowScorer struct {
	mu      sync.Mutex
	batches []int
	gate    chan struct{}
	fail    bool
}

func (s *slowScorer) Score(_ context.Context, recs []features.Record, k int) ([][]recommend.Item, error) {
	s.mu.Lock()
	s.batches = append(s.batches, len(recs))
	s.mu.Unlock()
	if s.gate != nil {
		<-s.gate
	}
	if s.fail {
		return nil, errors.New("model unavailable")
	}
	out := make([][]recommend.Item, len(recs))
	for i, r := range recs {
		for j := range k {
			out[i] = append(out[i], recommend.Item{ProductID: fmt.Sprintf("%s-%d", r.UserID, j), Score: float32(k - j)})
		}
	}
	return out, nil
}
func (s *slowScorer) Popular(int) []recommend.Item { return nil }
func (s *slowScorer) Model() recommend.Model       { return recommend.Model{Version: "v"} }

func TestBatchedMergesConcurrentCalls(t *testing.T) {
	inner := &slowScorer{gate: make(chan struct{})}
	b := score.Batched(inner, 64)
	var wg sync.WaitGroup
	results := make([][][]recommend.Item, 9)
	// The first call runs alone and blocks in the model; eight more queue
	// up behind it and must go out as one inference.
	wg.Add(1)
	go func() {
		defer wg.Done()
		results[0], _ = b.Score(context.Background(), []features.Record{{UserID: "u0"}}, 3)
	}()
	require.Eventually(t, func() bool { inner.mu.Lock(); defer inner.mu.Unlock(); return len(inner.batches) == 1 }, time.Second, time.Millisecond)
	for i := 1; i < 9; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			results[i], err = b.Score(context.Background(), []features.Record{{UserID: fmt.Sprintf("u%d", i)}}, i%3+1)
			require.NoError(t, err)
		}()
	}
	time.Sleep(50 * time.Millisecond) // let them queue
	close(inner.gate)
	wg.Wait()
	require.Equal(t, []int{1, 8}, inner.batches)
	for i, r := range results {
		k := 3
		if i > 0 {
			k = i%3 + 1
		}
		require.Len(t, r, 1)
		require.Len(t, r[0], k, "call %d gets its own k", i)
		require.Equal(t, fmt.Sprintf("u%d-0", i), r[0][0].ProductID, "call %d gets its own rows", i)
	}
}

func TestBatchedPropagatesErrorsAndCancellation(t *testing.T) {
	inner := &slowScorer{fail: true}
	b := score.Batched(inner, 2)
	_, err := b.Score(context.Background(), []features.Record{{UserID: "a"}, {UserID: "b"}, {UserID: "c"}}, 1)
	require.EqualError(t, err, "model unavailable")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = b.Score(ctx, []features.Record{{UserID: "a"}}, 1)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, recommend.Model{Version: "v"}, b.Model())
}
