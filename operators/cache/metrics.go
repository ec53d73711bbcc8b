package cache

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The values of the operation label.
const (
	opGet      = "get"      // GET of one user
	opSet      = "set"      // SET of one user
	opPipeline = "pipeline" // SETs of several users in one pipeline
	opDel      = "del"      // DEL of a forgotten user's keys
)

// metrics are one cache's collectors, label values resolved once so the
// hot path does no label hashing.
type metrics struct {
	duration  map[string]prometheus.Observer
	errors    map[string]prometheus.Counter
	hits      prometheus.Counter
	misses    prometheus.Counter
	malformed prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "aether_redis_command_duration_seconds",
		Help:    "Latency of the cache's Redis round trips by operation (get, set, pipeline, del), failed ones included.",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16), // 50us to 1.6s
	}, []string{"operation"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aether_redis_errors_total",
		Help: "Failed Redis round trips of the cache by operation (get, set, pipeline, del): network, timeout or server errors.",
	}, []string{"operation"})
	hits := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "aether_cache_hits_total",
		Help: "Cache lookups that found a user's recommendations.",
	})
	misses := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "aether_cache_misses_total",
		Help: "Cache lookups that found no recommendations (absent or expired).",
	})
	malformed := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "aether_cache_malformed_values_total",
		Help: "Cache lookups that found a value that does not decode to the user's recommendations.",
	})
	if reg != nil {
		for _, c := range []prometheus.Collector{duration, errs, hits, misses, malformed} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("cache: register metrics: %w", err)
			}
		}
	}
	m := &metrics{
		duration:  map[string]prometheus.Observer{},
		errors:    map[string]prometheus.Counter{},
		hits:      hits,
		misses:    misses,
		malformed: malformed,
	}
	for _, op := range []string{opGet, opSet, opPipeline, opDel} {
		m.duration[op] = duration.WithLabelValues(op)
		m.errors[op] = errs.WithLabelValues(op)
	}
	return m, nil
}

// command records one Redis round trip of op that started at start.
func (m *metrics) command(op string, start time.Time, err error) {
	m.duration[op].Observe(time.Since(start).Seconds())
	if err != nil {
		m.errors[op].Inc()
	}
}
