package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/aetherai/aether/internal/redistest"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/operators/cache"
	"github.com/aetherai/aether/recommend"
)

// benchCache is a cache on the real redis-server under a unique prefix,
// emptied after the benchmark. It fails in CI and skips elsewhere when
// the server is down.
func benchCache(b *testing.B) *cache.RedisCache {
	client := redistest.Real(b)
	prefix := redistest.UniquePrefix(b)
	redistest.CleanupPrefix(b, client, prefix)
	c, err := cache.Redis(client, cache.KeyPrefix(prefix), cache.TTL(5*time.Minute))
	require.NoError(b, err)
	return c
}

func reportOps(b *testing.B, perOp float64, unit string) {
	s := b.Elapsed().Seconds()
	if s > 0 {
		b.ReportMetric(float64(b.N)/s, "ops/s")
		if perOp != 1 {
			b.ReportMetric(perOp*float64(b.N)/s, unit)
		}
	}
}

// BenchmarkPut is one user per Put: one SET round trip. 20 items a user.
func BenchmarkPut(b *testing.B) {
	c := benchCache(b)
	rs := recs(1000, 20)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if err := c.Put(ctx, rs[i%len(rs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportOps(b, 1, "")
}

// BenchmarkPutPipelined100 is 100 users per Put: one pipeline of 100 SETs.
func BenchmarkPutPipelined100(b *testing.B) {
	c := benchCache(b)
	rs := recs(1000, 20)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		batch := rs[(i%10)*100 : (i%10+1)*100]
		if err := c.Put(ctx, batch...); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportOps(b, 100, "users/s")
}

// BenchmarkGet is a hit: one GET round trip and the JSON decode.
func BenchmarkGet(b *testing.B) {
	c := benchCache(b)
	rs := recs(1000, 20)
	ctx := context.Background()
	require.NoError(b, c.Put(ctx, rs...))
	i := 0
	var r recommend.Recommendations
	for b.Loop() {
		var ok bool
		var err error
		r, ok, err = c.Get(ctx, rs[i%len(rs)].UserID)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
		i++
	}
	_ = r
	reportOps(b, 1, "")
}
