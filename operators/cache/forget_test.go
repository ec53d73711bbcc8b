package cache_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/operators/cache"
	"github.com/aetherai/aether/topology"
)

var _ topology.Forgetter = (*cache.RedisCache)(nil)

// TestForget deletes one user's key and nothing else.
func TestForget(t *testing.T) {
	s, client := newMini(t)
	c, err := cache.Redis(client)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, c.Put(ctx, recs(3, 2)...))
	require.Equal(t, []string{c.Key("u-1")}, c.Keys("u-1"))
	n, err := c.Forget(ctx, "u-1")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.False(t, s.Exists(c.Key("u-1")))
	require.True(t, s.Exists(c.Key("u-0")))
	require.True(t, s.Exists(c.Key("u-2")))
	n, err = c.Forget(ctx, "u-1")
	require.NoError(t, err)
	require.Zero(t, n, "forgetting twice finds nothing")
	_, err = c.Forget(ctx, "")
	require.Error(t, err)
	require.Same(t, client, c.Client())
}
