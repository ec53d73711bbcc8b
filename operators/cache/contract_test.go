package cache_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/operators/cache"
	"github.com/aetherai/aether/recommend"
)

// backend is a Redis the contract runs against.
type backend struct {
	client redis.UniversalClient
	// prefix returns a key prefix for one test, removed after it.
	prefix func(t *testing.T) string
	// keys lists the keys under prefix.
	keys func(t *testing.T, prefix string) []string
	// ttl is a key's remaining time to live; <= 0 if it has none.
	ttl func(t *testing.T, key string) time.Duration
	// setRaw stores a value as is, without TTL (bad data from elsewhere).
	setRaw func(t *testing.T, key, value string)
}

const contractTTL = 10 * time.Minute

// testContract is what every Redis the cache supports must satisfy.
func testContract(t *testing.T, b backend) {
	newCache := func(t *testing.T) *cache.RedisCache {
		c, err := cache.Redis(b.client, cache.KeyPrefix(b.prefix(t)), cache.TTL(contractTTL), cache.Timeout(5*time.Second))
		require.NoError(t, err)
		// Every key the cache wrote has a TTL of at most contractTTL.
		t.Cleanup(func() {
			for _, k := range b.keys(t, c.Prefix()) {
				if strings.HasPrefix(k, c.Prefix()+"raw-") {
					continue // written by setRaw
				}
				ttl := b.ttl(t, k)
				require.Greater(t, ttl, time.Duration(0), "key %q has no TTL", k)
				require.LessOrEqual(t, ttl, contractTTL, "key %q", k)
			}
		})
		return c
	}
	ctx := context.Background()

	t.Run("round trip", func(t *testing.T) {
		full := recs(1, 20)[0]
		cases := map[string]recommend.Recommendations{
			"full":          full,
			"nil items":     {UserID: "u-nil", Model: full.Model, GeneratedAt: t0},
			"empty items":   {UserID: "u-empty", Items: []recommend.Item{}, GeneratedAt: t0},
			"zero time":     {UserID: "u-zero", Items: full.Items[:1]},
			"local time":    {UserID: "u-local", Items: full.Items[:2], GeneratedAt: t0.In(time.FixedZone("CEST", 2*3600))},
			"fallback":      {UserID: "u-fallback", Items: full.Items[:3], Source: recommend.FromFallback, GeneratedAt: t0},
			"odd user id":   {UserID: "ü:ser/42 with spaces:{tag}", Items: full.Items[:1], GeneratedAt: t0},
			"extreme score": {UserID: "u-extreme", Items: []recommend.Item{{ProductID: "a", Score: math.MaxFloat32}, {ProductID: "b", Score: math.SmallestNonzeroFloat32}, {ProductID: "c", Score: -0.1}, {}}, GeneratedAt: t0},
		}
		for name, in := range cases {
			t.Run(name, func(t *testing.T) {
				c := newCache(t)
				require.NoError(t, c.Put(ctx, in))
				got, ok, err := c.Get(ctx, in.UserID)
				require.NoError(t, err)
				require.True(t, ok)
				require.Equal(t, fromCache(in), got)
				require.Equal(t, []string{c.Prefix() + in.UserID}, b.keys(t, c.Prefix()), "the key is prefix+userID")
			})
		}
	})

	t.Run("miss", func(t *testing.T) {
		c := newCache(t)
		r, ok, err := c.Get(ctx, "nobody")
		require.NoError(t, err)
		require.False(t, ok)
		require.Zero(t, r)
	})

	t.Run("overwrite", func(t *testing.T) {
		c := newCache(t)
		rs := recs(2, 3)
		rs[1].UserID = rs[0].UserID
		require.NoError(t, c.Put(ctx, rs[0]))
		require.NoError(t, c.Put(ctx, rs[1]))
		got, ok, err := c.Get(ctx, rs[0].UserID)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, fromCache(rs[1]), got)
	})

	t.Run("pipelined put of 100 users", func(t *testing.T) {
		c := newCache(t)
		rs := recs(100, 10)
		require.NoError(t, c.Put(ctx, rs...))
		keys := b.keys(t, c.Prefix())
		require.Len(t, keys, 100)
		for _, k := range keys {
			require.Greater(t, b.ttl(t, k), time.Duration(0), "key %q has no TTL", k)
		}
		for _, r := range rs {
			got, ok, err := c.Get(ctx, r.UserID)
			require.NoError(t, err)
			require.True(t, ok, r.UserID)
			require.Equal(t, fromCache(r), got)
		}
	})

	t.Run("put without user id writes nothing", func(t *testing.T) {
		c := newCache(t)
		rs := recs(3, 1)
		rs[2].UserID = ""
		err := c.Put(ctx, rs...)
		require.ErrorContains(t, err, "no user ID")
		require.Empty(t, b.keys(t, c.Prefix()))
		require.NoError(t, c.Put(ctx))
		require.Empty(t, b.keys(t, c.Prefix()))
	})

	t.Run("sink write", func(t *testing.T) {
		c := newCache(t)
		require.Equal(t, "redis-cache", c.Name())
		r := recs(1, 2)[0]
		require.NoError(t, c.Write(ctx, r.UserID, r))
		noID := recs(2, 2)[1]
		key := noID.UserID
		noID.UserID = ""
		require.NoError(t, c.Write(ctx, key, noID), "a value without user ID goes under the record key")
		require.ErrorContains(t, c.Write(ctx, "someone-else", r), "someone-else")
		require.ElementsMatch(t, []string{c.Key(r.UserID), c.Key(key)}, b.keys(t, c.Prefix()))
		got, ok, err := c.Get(ctx, key)
		require.NoError(t, err)
		require.True(t, ok)
		noID.UserID = key
		require.Equal(t, fromCache(noID), got)
	})

	t.Run("malformed value", func(t *testing.T) {
		cases := []struct{ name, value, want string }{
			{"not json", "not json", "invalid character"},
			{"truncated", `{"userId":"raw-x","items":[`, "unexpected end"},
			{"number", "42", "cannot unmarshal number"},
			{"wrong item type", `{"userId":"raw-x","items":"p-1"}`, "cannot unmarshal string"},
			{"empty object", `{}`, `value holds user ""`},
			{"other user", `{"userId":"u-7"}`, `value holds user "u-7"`},
			{"empty", "", "unexpected end"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c := newCache(t)
				key := c.Key("raw-x")
				b.setRaw(t, key, tc.value)
				r, ok, err := c.Get(ctx, "raw-x")
				require.Error(t, err)
				require.False(t, ok)
				require.Zero(t, r)
				require.ErrorIs(t, err, cache.ErrMalformed)
				var me *cache.MalformedError
				require.True(t, errors.As(err, &me))
				require.Equal(t, key, me.Key)
				require.ErrorContains(t, err, key)
				require.ErrorContains(t, err, tc.want)
			})
		}
	})
}
