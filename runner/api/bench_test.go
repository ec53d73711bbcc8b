package api

import (
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/recommend"
)

// BenchmarkRecommendationsCacheHit serves GET /v1/recommendations/{userId}
// from the in-memory fake cache, through the whole handler (auth,
// middleware, metrics, JSON), over 1,000 users with 20 cached items each:
// without an audit trail, then with the hash-chained file trail (fsync on
// every write, the default) and with the file trail fsynced every second.
func BenchmarkRecommendationsCacheHit(b *testing.B) {
	b.Run("audit=off", func(b *testing.B) { benchCacheHit(b, nil) })
	b.Run("audit=file-sync-every-write", func(b *testing.B) {
		benchCacheHit(b, openBenchTrail(b))
	})
	b.Run("audit=file-sync-1s", func(b *testing.B) {
		benchCacheHit(b, openBenchTrail(b, audit.SyncInterval(time.Second)))
	})
}

func openBenchTrail(b *testing.B, opts ...audit.FileOption) audit.Sink {
	s, err := audit.OpenFile(filepath.Join(b.TempDir(), "audit.jsonl"), opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func benchCacheHit(b *testing.B, trail audit.Sink) {
	f := newFixture(b, func(c *Config) { c.Audit = trail })
	const users = 1000
	reqs := make([]string, users)
	for u := range users {
		id := fmt.Sprintf("user_%d", u)
		items := make([]recommend.Item, DefaultK)
		for i := range items {
			items[i] = recommend.Item{ProductID: fmt.Sprintf("prod_%d", (u*31+i)%50000), Score: 1 - float32(i)/64}
		}
		f.cache.m[id] = recommend.Recommendations{UserID: id, Items: items, Model: f.scorer.model,
			Source: recommend.FromInference, GeneratedAt: now.Add(-time.Minute)}
		reqs[u] = "/v1/recommendations/" + id
	}
	run := func(b *testing.B, parallel bool) {
		serve := func(i int) {
			req := httptest.NewRequest("GET", reqs[i%users], nil)
			req.Header.Set("Authorization", "Bearer "+shopKey)
			w := httptest.NewRecorder()
			f.srv.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
		b.ReportAllocs()
		start := time.Now()
		n := 0
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					serve(i)
				}
			})
			n = b.N
		} else {
			for ; b.Loop(); n++ {
				serve(n)
			}
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "requests/s")
		if f.scorer.calls.Load() != 0 {
			b.Fatal("a cache hit ran the model")
		}
	}
	b.Run("serial", func(b *testing.B) { run(b, false) })
	b.Run("parallel", func(b *testing.B) { run(b, true) })
}
