package cache_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/recommend"
)

// newMini starts a miniredis server and a client for it.
func newMini(tb testing.TB) (*miniredis.Miniredis, *redis.Client) {
	tb.Helper()
	s := miniredis.RunT(tb)
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), ContextTimeoutEnabled: true})
	tb.Cleanup(func() { _ = c.Close() })
	return s, c
}

var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

// recs returns n users' recommendations, u-<prefix>0 ... with k items each.
func recs(n, k int) []recommend.Recommendations {
	out := make([]recommend.Recommendations, n)
	for i := range out {
		items := make([]recommend.Item, k)
		for j := range items {
			items[j] = recommend.Item{ProductID: fmt.Sprintf("p-%d", (i*31+j*7)%5000), Score: 1 / float32(j+i+3)}
		}
		out[i] = recommend.Recommendations{
			UserID:      fmt.Sprintf("u-%d", i),
			Items:       items,
			Model:       recommend.Model{Version: "v7", SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
			Source:      recommend.FromInference,
			GeneratedAt: t0.Add(time.Duration(i) * time.Millisecond),
		}
	}
	return out
}

// fromCache is r as Get returns it.
func fromCache(r recommend.Recommendations) recommend.Recommendations {
	r.Source = recommend.FromCache
	r.GeneratedAt = r.GeneratedAt.UTC()
	return r
}

// metricValues gathers reg into "name" or "name{label=value}" -> value:
// counters by value, histograms by sample count.
func metricValues(tb testing.TB, reg prometheus.Gatherer) map[string]float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	require.NoError(tb, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += fmt.Sprintf("{%s=%s}", l.GetName(), l.GetValue())
			}
			switch {
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[name] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// recorder is a go-redis hook that records the commands sent, single and
// pipelined.
type recorder struct {
	mu        sync.Mutex
	singles   [][]any
	pipelines [][][]any
}

func (r *recorder) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *recorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.mu.Lock()
		r.singles = append(r.singles, cmd.Args())
		r.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (r *recorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		p := make([][]any, len(cmds))
		for i, c := range cmds {
			p[i] = c.Args()
		}
		r.mu.Lock()
		r.pipelines = append(r.pipelines, p)
		r.mu.Unlock()
		return next(ctx, cmds)
	}
}
