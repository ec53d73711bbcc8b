package servebench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/aetherai/aether/bench/internal/report"
	"github.com/aetherai/aether/model"
	"github.com/aetherai/aether/operators/cache"
	"github.com/aetherai/aether/operators/features"
)

// Result is what Run measured. The first twelve fields are the benchmark's
// contract (the JSON line the CLI prints last); the rest is detail.
type Result struct {
	Users int `json:"users"`
	// Inference: users scored per second from one goroutine, with one
	// record per Score call and with BatchSize records per call.
	InferenceSingleUsersPerSec  float64 `json:"inference_single_users_per_sec"`
	InferenceBatch64UsersPerSec float64 `json:"inference_batch64_users_per_sec"`
	// InferenceSingleP99us is the 99th percentile of a one-record Score
	// call, in microseconds.
	InferenceSingleP99us float64 `json:"inference_single_p99_us"`
	// HTTP, cache hits: successful requests per second over the measured
	// window and the latency percentiles of every request, as the client
	// saw them.
	HTTPCacheHitRPS   float64 `json:"http_cache_hit_rps"`
	HTTPCacheHitP50ms float64 `json:"http_cache_hit_p50_ms"`
	HTTPCacheHitP99ms float64 `json:"http_cache_hit_p99_ms"`
	// redis-benchmark GET of one cache entry with Connections clients.
	RedisBenchmarkGetRPS   float64 `json:"redis_benchmark_get_rps"`
	RedisBenchmarkGetP99ms float64 `json:"redis_benchmark_get_p99_ms"`
	// HTTPVsRedisRPSRatio is HTTPCacheHitRPS / RedisBenchmarkGetRPS: the
	// share of raw Redis GET throughput the whole HTTP path keeps.
	HTTPVsRedisRPSRatio float64 `json:"http_vs_redis_rps_ratio"`
	Connections         int     `json:"connections"`
	DurationS           float64 `json:"duration_s"`

	K          int `json:"k"`
	GOMAXPROCS int `json:"gomaxprocs"`
	// The model: ONNX opset, vocabulary size, training events.
	ModelOpset  int `json:"model_opset"`
	ModelItems  int `json:"model_items"`
	TrainEvents int `json:"train_events"`
	// Inference detail, latencies per call in microseconds.
	InferenceSingleCalls  int64   `json:"inference_single_calls"`
	InferenceSingleP50us  float64 `json:"inference_single_p50_us"`
	InferenceBatch64Calls int64   `json:"inference_batch64_calls"`
	InferenceBatch64P50us float64 `json:"inference_batch64_p50_us"`
	InferenceBatch64P99us float64 `json:"inference_batch64_p99_us"`
	InferenceEmptyAnswers int64   `json:"inference_empty_answers"`
	CacheEntryMedianBytes int     `json:"cache_entry_median_bytes"`
	CacheEntriesPadded    int     `json:"cache_entries_padded"`
	RedisPoolSize         int     `json:"redis_pool_size"`
	HTTPRequests          int64   `json:"http_requests"`
	HTTPFailures          int64   `json:"http_failures"`
	HTTPCacheHitP999ms    float64 `json:"http_cache_hit_p999_ms"`
	HTTPCacheHitMaxms     float64 `json:"http_cache_hit_max_ms"`
	HTTPResponseBytes     int     `json:"http_response_bytes"`
	// CPU used during the HTTP run, in cores (CPU seconds per second; -1
	// if unknown): by this process (clients, server, cache client, all
	// in one) and by redis-server.
	HTTPProcessCores       float64 `json:"http_process_cpu_cores"`
	HTTPRedisServerCores   float64 `json:"http_redis_server_cpu_cores"`
	RedisBenchmarkRequests int     `json:"redis_benchmark_requests"`
	RedisBenchmarkGetP50ms float64 `json:"redis_benchmark_get_p50_ms"`
	// CPU redis-benchmark and redis-server used during the measured
	// redis-benchmark run, in cores.
	RedisBenchmarkClientCores      float64 `json:"redis_benchmark_client_cpu_cores"`
	RedisBenchmarkRedisServerCores float64 `json:"redis_benchmark_redis_server_cpu_cores"`
	// Seconds is the wall time of the whole run, setup included.
	Seconds float64 `json:"wall_seconds"`
}

// FailuresError is returned by Run, along with the Result, when some HTTP
// requests were not answered 200 from the cache.
type FailuresError struct {
	Failures, Requests int64
	// First describes the first failure.
	First string
}

func (e *FailuresError) Error() string {
	return fmt.Sprintf("%d of %d HTTP requests failed (not 200 with source \"cache\"); first: %s", e.Failures, e.Requests, e.First)
}

// Run runs the benchmark and writes progress lines to log. It returns an
// error before measuring anything if redis-benchmark is not installed, the
// Redis server is unreachable or the ONNX Runtime library is missing. If
// some HTTP requests failed, it returns the Result and a *FailuresError.
func Run(ctx context.Context, cfg Config, log io.Writer) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = io.Discard
	}
	began := time.Now()

	rbPath, err := findRedisBenchmark()
	if err != nil {
		return nil, err
	}
	poolSize := max(10*runtime.GOMAXPROCS(0), cfg.Connections)
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Redis, ContextTimeoutEnabled: true, PoolSize: poolSize})
	defer rdb.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		return nil, fmt.Errorf("redis at %s is unreachable (%w): start it, e.g. `apt-get install -y redis-server redis-tools && %s`",
			cfg.Redis, err, report.StartRedis)
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		// Other work on the machine competes for the same cores.
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = ", load average " + strings.Join(f[:3], " ")
		}
	}
	fmt.Fprintf(log, "redis %s, %s, GOMAXPROCS %d%s\n", cfg.Redis, rbPath, runtime.GOMAXPROCS(0), load)

	// The model and the users' feature records.
	fx, err := prepare(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer fx.close()

	res := &Result{
		Users:         cfg.Users,
		Connections:   cfg.Connections,
		DurationS:     cfg.Duration.Seconds(),
		K:             cfg.K,
		GOMAXPROCS:    runtime.GOMAXPROCS(0),
		ModelOpset:    fx.scorer.Metadata().Opset,
		ModelItems:    fx.scorer.Items(),
		TrainEvents:   cfg.TrainEvents,
		RedisPoolSize: poolSize,
	}

	// 1. Inference.
	single, err := measureInference(ctx, fx, cfg, 1, log)
	if err != nil {
		return nil, err
	}
	batch, err := measureInference(ctx, fx, cfg, BatchSize, log)
	if err != nil {
		return nil, err
	}
	res.InferenceSingleUsersPerSec = round(single.usersPerSec, 0)
	res.InferenceSingleP50us = round(single.p50.Seconds()*1e6, 1)
	res.InferenceSingleP99us = round(single.p99.Seconds()*1e6, 1)
	res.InferenceSingleCalls = single.calls
	res.InferenceBatch64UsersPerSec = round(batch.usersPerSec, 0)
	res.InferenceBatch64P50us = round(batch.p50.Seconds()*1e6, 1)
	res.InferenceBatch64P99us = round(batch.p99.Seconds()*1e6, 1)
	res.InferenceBatch64Calls = batch.calls
	res.InferenceEmptyAnswers = single.empty + batch.empty

	// 2. The cache, filled for every user under a prefix of this run.
	reg := prometheus.NewRegistry()
	prefix := report.KeyPrefix("serve")
	// Keys outlive a killed run by ten minutes at most.
	ttl := (cfg.Duration*4 + 10*time.Minute).Truncate(time.Second)
	rc, err := cache.Redis(rdb, cache.KeyPrefix(prefix), cache.TTL(ttl), cache.Registerer(reg))
	if err != nil {
		return nil, err
	}
	users := userIDs(cfg.Users)
	defer func() {
		// Not ctx: an interrupted run cleans up too.
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n, err := deleteKeys(dctx, rdb, rc, users)
		if err != nil {
			fmt.Fprintf(log, "deleting the cache keys under %s: %v (they expire within %s)\n", prefix, err, ttl)
			return
		}
		fmt.Fprintf(log, "deleted %s cache keys under %s\n", thousands(int64(n)), prefix)
	}()
	fill, err := fillCache(ctx, fx, rc, rdb, users, cfg.K, log)
	if err != nil {
		return nil, err
	}
	res.CacheEntryMedianBytes = fill.medianBytes
	res.CacheEntriesPadded = fill.padded

	// 3. HTTP.
	hr, err := measureHTTP(ctx, fx, rc, rdb, reg, users, cfg, log)
	if err != nil {
		return nil, err
	}
	res.HTTPCacheHitRPS = round(hr.rps, 0)
	res.HTTPCacheHitP50ms = round(hr.p50.Seconds()*1e3, 3)
	res.HTTPCacheHitP99ms = round(hr.p99.Seconds()*1e3, 3)
	res.HTTPCacheHitP999ms = round(hr.p999.Seconds()*1e3, 3)
	res.HTTPCacheHitMaxms = round(hr.max.Seconds()*1e3, 3)
	res.HTTPRequests = hr.requests
	res.HTTPFailures = hr.failures
	res.HTTPResponseBytes = hr.responseBytes
	res.HTTPProcessCores, res.HTTPRedisServerCores = hr.selfCores, hr.redisCores

	// 4. The baseline, with the keys still there.
	rb, err := runRedisBenchmark(ctx, rbPath, cfg, rdb, fill.medianKey, log)
	if err != nil {
		return nil, err
	}
	res.RedisBenchmarkRequests = rb.requests
	res.RedisBenchmarkGetRPS = round(rb.rps, 0)
	res.RedisBenchmarkGetP50ms = rb.p50ms
	res.RedisBenchmarkGetP99ms = rb.p99ms
	res.RedisBenchmarkRedisServerCores = rb.redisCores
	res.RedisBenchmarkClientCores = rb.clientCores
	if rb.rps > 0 {
		res.HTTPVsRedisRPSRatio = round(hr.rps/rb.rps, 4)
	}
	res.Seconds = round(time.Since(began).Seconds(), 1)

	fmt.Fprintf(log, "summary: inference %s users/s single (p99 %.0f us), %s users/s in batches of %d; "+
		"HTTP cache hit %s req/s (p50 %.3f ms, p99 %.3f ms); redis-benchmark GET %s req/s (p99 %.3f ms); HTTP/redis %.3f\n",
		thousands(int64(res.InferenceSingleUsersPerSec)), res.InferenceSingleP99us,
		thousands(int64(res.InferenceBatch64UsersPerSec)), BatchSize,
		thousands(int64(res.HTTPCacheHitRPS)), res.HTTPCacheHitP50ms, res.HTTPCacheHitP99ms,
		thousands(int64(res.RedisBenchmarkGetRPS)), res.RedisBenchmarkGetP99ms, res.HTTPVsRedisRPSRatio)
	if hr.failures > 0 {
		return res, &FailuresError{Failures: hr.failures, Requests: hr.requests + hr.failures, First: hr.firstFailure}
	}
	return res, nil
}

// fixture is the trained and loaded model with the users' records.
type fixture struct {
	scorer *model.Loaded
	dir    string
	// records holds one feature record per generator user ("user_<i>" at
	// index i), RecentItems the user's last RecentItems events.
	records []features.Record
}

func (f *fixture) close() {
	if f.scorer != nil {
		f.scorer.Close()
	}
	if f.dir != "" {
		os.RemoveAll(f.dir)
	}
}

// deleteKeys deletes the cache keys of users, 1000 per UNLINK, and returns
// how many existed.
func deleteKeys(ctx context.Context, rdb *redis.Client, rc *cache.RedisCache, users []string) (int, error) {
	const chunk = 1000
	deleted := 0
	var errs []error
	for i := 0; i < len(users); i += chunk {
		keys := make([]string, 0, chunk)
		for _, u := range users[i:min(i+chunk, len(users))] {
			keys = append(keys, rc.Key(u))
		}
		n, err := rdb.Unlink(ctx, keys...).Result()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		deleted += int(n)
	}
	return deleted, errors.Join(errs...)
}
