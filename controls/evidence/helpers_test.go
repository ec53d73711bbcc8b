package evidence_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/aetherai/aether/internal/redistest"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// need fails the test under CI (CI set) and skips it elsewhere, saying
// what is missing and how to get it.
func need(tb testing.TB, what string, ok bool, how string) {
	tb.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf("%s is required for this test; %s", what, how)
	if os.Getenv("CI") != "" {
		tb.Fatal(msg)
	}
	tb.Skip(msg + " (skipped: CI is not set)")
}

// miniRedis starts a miniredis server and a client for it.
func miniRedis(tb testing.TB) *redis.Client {
	tb.Helper()
	m := miniredis.RunT(tb)
	c := redis.NewClient(&redis.Options{Addr: m.Addr(), ContextTimeoutEnabled: true})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// uniquePrefix is a key prefix no other test or process uses, free of glob
// characters; every key under it is unlinked when the test ends.
func uniquePrefix(tb testing.TB, c redis.UniversalClient) string {
	p := redistest.UniquePrefix(tb)
	redistest.CleanupPrefix(tb, c, p)
	return p
}

// redisBackends runs f against miniredis and against the real redis-server.
func redisBackends(t *testing.T, f func(t *testing.T, c *redis.Client)) {
	t.Run("miniredis", func(t *testing.T) { f(t, miniRedis(t)) })
	t.Run("redis-server", func(t *testing.T) { f(t, redistest.Real(t)) })
}

// gauges reads aether_control_status by control and the last-evaluated
// timestamp from reg.
func gauges(t *testing.T, reg *prometheus.Registry) (map[string]float64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	status := map[string]float64{}
	var last float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "aether_control_status":
				for _, l := range m.GetLabel() {
					if l.GetName() == "control" {
						status[l.GetValue()] = m.GetGauge().GetValue()
					}
				}
			case "aether_control_last_evaluated_timestamp_seconds":
				last = m.GetGauge().GetValue()
			}
		}
	}
	return status, last
}
