// Package servebench measures the serving side of the reference
// recommendation pipeline, in one run, on one machine and one Redis:
//
//   - inference: users scored per second by the ONNX model through
//     (*model.Loaded).Score, one record per call and 64 records per call,
//     from one goroutine, with the latency of every call;
//   - HTTP on a cache hit: GET /v1/recommendations/{userId}?k=K served by
//     runner/api (the real model scorer, the real Redis cache through
//     operators/cache, a feature store that must never be hit) on a
//     loopback listener, driven by Connections keep-alive Go HTTP clients
//     for Duration over random users, every answer checked;
//   - the baseline: redis-benchmark GETting one of those cache entries
//     from the same Redis with as many connections.
//
// The model is trained at the start on the clickstream generator (TrainUsers
// users and products, TrainEvents events, seed 1), saved to a temporary
// directory and loaded with its SHA-256 pinned, as the runner does. The
// cache entries live under a key prefix unique to the run and are deleted
// at the end (they also carry a TTL a little longer than the run).
package servebench

import (
	"fmt"
	"net"
	"time"

	"github.com/aetherai/aether/model"
)

// Config describes a run. The zero value of a field selects its default.
type Config struct {
	// Redis is the host:port of the Redis server the cache and
	// redis-benchmark use.
	Redis string
	// Users is the number of users whose recommendations are cached and
	// requested over HTTP ("user_0" ... "user_<Users-1>"). Users beyond
	// the generator's TrainUsers reuse the feature records of user
	// i mod TrainUsers.
	Users int
	// Duration of each measured phase: inference single, inference
	// batched, HTTP. redis-benchmark is sized to run about as long.
	Duration time.Duration
	// Connections is the number of concurrent HTTP clients, each with its
	// own keep-alive connection, and redis-benchmark's -c.
	Connections int
	// K is the number of items asked for (?k=) and scored.
	K int
	// TrainEvents is the number of generator events the model is trained
	// on and the feature records are built from.
	TrainEvents int
	// RedisRequests is redis-benchmark's -n; 0 sizes it from a short
	// calibration run so that it lasts about Duration.
	RedisRequests int
	// CPUProfile, when set, is the file the CPU profile of the timed HTTP
	// run is written to (clients, server and cache client: they share the
	// process).
	CPUProfile string
}

// Defaults of Config.
const (
	DefaultRedis       = "127.0.0.1:6379"
	DefaultUsers       = 10000
	DefaultDuration    = 10 * time.Second
	DefaultConnections = 32
	DefaultK           = 20
	DefaultTrainEvents = 200000
)

// The generator the model is trained on.
const (
	TrainUsers    = 5000
	TrainProducts = 5000
	TrainSeed     = 1
	// RecentItems is how many of each user's last events make up the
	// feature record's RecentItems (features.DefaultRecentItems).
	RecentItems = 20
	// BatchSize is the number of records per Score call in the batched
	// inference measurement.
	BatchSize = 64
)

func (c Config) withDefaults() Config {
	if c.Redis == "" {
		c.Redis = DefaultRedis
	}
	if c.Users == 0 {
		c.Users = DefaultUsers
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Connections == 0 {
		c.Connections = DefaultConnections
	}
	if c.K == 0 {
		c.K = DefaultK
	}
	if c.TrainEvents == 0 {
		c.TrainEvents = DefaultTrainEvents
	}
	return c
}

func (c Config) validate() error {
	if _, _, err := net.SplitHostPort(c.Redis); err != nil {
		return fmt.Errorf("redis must be host:port, got %q: %w", c.Redis, err)
	}
	switch {
	case c.Users < 1:
		return fmt.Errorf("users must be at least 1, got %d", c.Users)
	case c.Duration < 100*time.Millisecond:
		return fmt.Errorf("duration must be at least 100ms, got %s", c.Duration)
	case c.Connections < 1 || c.Connections > 10000:
		return fmt.Errorf("connections must be between 1 and 10000, got %d", c.Connections)
	case c.K < 1 || c.K > model.MaxK:
		return fmt.Errorf("k must be between 1 and %d, got %d", model.MaxK, c.K)
	case c.TrainEvents < 1000:
		return fmt.Errorf("train events must be at least 1000, got %d", c.TrainEvents)
	case c.RedisRequests < 0:
		return fmt.Errorf("redis requests must not be negative, got %d", c.RedisRequests)
	}
	return nil
}
