package runner_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/broker/brokertest"
	"github.com/aetherai/aether/operators/cache"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/recommend"
)

// fixedScorer recommends one item to everyone: what these tests check does
// not depend on the model.
type fixedScorer struct{}

func (fixedScorer) Score(_ context.Context, recs []features.Record, k int) ([][]recommend.Item, error) {
	out := make([][]recommend.Item, len(recs))
	for i := range out {
		out[i] = []recommend.Item{{ProductID: "p", Score: 1}}
	}
	return out, nil
}
func (fixedScorer) Popular(k int) []recommend.Item {
	return []recommend.Item{{ProductID: "pop", Score: 1}}
}
func (fixedScorer) Model() recommend.Model {
	return recommend.Model{Version: "v", SHA256: strings.Repeat("0", 64)}
}

// embedded starts an in-process broker with partitions per topic and a
// miniredis cache, both stopped when the test ends.
func embedded(t *testing.T, partitions int) (*broker.Broker, *redis.Client, *cache.RedisCache) {
	t.Helper()
	b := brokertest.Start(t, broker.Partitions(partitions))
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	c, err := cache.Redis(rdb, cache.TTL(time.Hour))
	require.NoError(t, err)
	return b, rdb, c
}
