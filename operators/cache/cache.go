// Package cache is the Redis cache of users' recommendations: the scorer
// writes each user's answer, the HTTP API reads it before scoring again.
//
// # Keys and values
//
// A user's recommendations live under one string key,
//
//	<prefix><userID>        e.g. aether:recs:u-42
//
// with the prefix [DefaultKeyPrefix] unless [KeyPrefix] says otherwise and
// the user ID as is (not hashed or escaped). The key therefore contains the
// user ID, which is personal data, and so does the value: to erase a user,
// delete [RedisCache.Key](userID); to erase the cache, SCAN MATCH
// <prefix>* and UNLINK (the prefix has no glob characters, so the pattern
// matches the cache's keys only). Every key is written with SET ... EX ttl
// ([TTL], one hour by default): nothing the cache writes outlives its TTL.
//
// The value is the JSON of [recommend.Recommendations] with Source
// "inference" and GeneratedAt in UTC. Get returns it with Source
// [recommend.FromCache]; every other field comes back as it was put.
//
// # Metrics
//
// With [Registerer], the cache registers:
//
//	aether_redis_command_duration_seconds{operation}  histogram: get, set, pipeline, del
//	aether_redis_errors_total{operation}              failed round trips (network, timeout, server)
//	aether_cache_hits_total                           Gets that found a value
//	aether_cache_misses_total                         Gets that found none
//	aether_cache_malformed_values_total               Gets that found a value that does not decode
//
// A miss is not an error. A malformed value is counted as malformed, not as
// a hit or a Redis error.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aetherai/aether/recommend"
	"github.com/aetherai/aether/topology"
)

// ErrMalformed is wrapped by the [*MalformedError] of a Get that found a
// value it cannot decode.
var ErrMalformed = errors.New("cache: malformed value")

// ErrContextTimeoutDisabled is returned by [Redis] for a client whose
// options leave ContextTimeoutEnabled off: go-redis would then ignore the
// per-operation deadline ([Timeout]) on the socket.
var ErrContextTimeoutDisabled = errors.New("cache: redis client has ContextTimeoutEnabled off; set it so the per-operation timeout applies")

// MalformedError reports a value in Redis that is not the JSON of the
// recommendations of the user its key names. It matches [ErrMalformed]
// with errors.Is.
type MalformedError struct {
	Key string
	// Err is the decoding error, or a description of the mismatch.
	Err error
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("cache: malformed value at key %q: %v", e.Key, e.Err)
}

// Unwrap returns the decoding error.
func (e *MalformedError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrMalformed].
func (e *MalformedError) Is(target error) bool { return target == ErrMalformed }

// RedisCache is a [recommend.Cache] and a [topology.Sink] backed by Redis.
// It is safe for concurrent use.
type RedisCache struct {
	rdb     redis.UniversalClient
	ttl     time.Duration
	prefix  string
	timeout time.Duration
	m       *metrics
}

var (
	_ recommend.Cache                          = (*RedisCache)(nil)
	_ topology.Sink[recommend.Recommendations] = (*RedisCache)(nil)
)

// Redis returns a cache that stores recommendations through rdb. It
// validates the options, checks that rdb honours context deadlines (a
// *redis.Client, *redis.ClusterClient or *redis.Ring must have
// ContextTimeoutEnabled set; see [ErrContextTimeoutDisabled]) and
// registers the metrics. It does not contact Redis.
func Redis(rdb redis.UniversalClient, opts ...Option) (*RedisCache, error) {
	if rdb == nil {
		return nil, fmt.Errorf("%w: nil redis client", ErrInvalidOption)
	}
	cfg := config{ttl: DefaultTTL, prefix: DefaultKeyPrefix, timeout: DefaultTimeout}
	for _, o := range opts {
		if o == nil {
			cfg.errs = append(cfg.errs, fmt.Errorf("%w: nil option", ErrInvalidOption))
			continue
		}
		o.apply(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	if !contextTimeoutEnabled(rdb) {
		return nil, ErrContextTimeoutDisabled
	}
	m, err := newMetrics(cfg.reg)
	if err != nil {
		return nil, err
	}
	return &RedisCache{rdb: rdb, ttl: cfg.ttl, prefix: cfg.prefix, timeout: cfg.timeout, m: m}, nil
}

// contextTimeoutEnabled reports whether rdb applies context deadlines to
// its sockets, for the client types whose options we can read; other
// implementations are trusted.
func contextTimeoutEnabled(rdb redis.UniversalClient) bool {
	switch c := rdb.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return true
}

// Key is the Redis key of userID's recommendations: the prefix followed by
// the user ID as is. It contains personal data.
func (c *RedisCache) Key(userID string) string { return c.prefix + userID }

// Prefix is the prefix of every key the cache writes.
func (c *RedisCache) Prefix() string { return c.prefix }

// TTL is the lifetime of every key the cache writes.
func (c *RedisCache) TTL() time.Duration { return c.ttl }

// Name identifies the cache as a sink: "redis-cache".
func (c *RedisCache) Name() string { return "redis-cache" }

// Write stores one output value: Put of v. A value without a UserID is
// stored under key; a value whose UserID differs from the record's key is
// refused, since its key would not be the one the record addresses.
func (c *RedisCache) Write(ctx context.Context, key string, v recommend.Recommendations) error {
	if v.UserID == "" {
		v.UserID = key
	} else if v.UserID != key {
		return fmt.Errorf("cache: record key %q holds recommendations of user %q", key, v.UserID)
	}
	return c.Put(ctx, v)
}

// Get returns userID's cached recommendations with Source
// [recommend.FromCache]; ok is false if there are none (absent or
// expired). A value that does not decode, or that belongs to another user,
// yields a [*MalformedError] naming the key.
func (c *RedisCache) Get(ctx context.Context, userID string) (recommend.Recommendations, bool, error) {
	if userID == "" {
		return recommend.Recommendations{}, false, errors.New("cache: get: empty user ID")
	}
	key := c.Key(userID)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	start := time.Now()
	b, err := c.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		c.m.command(opGet, start, nil)
		c.m.misses.Inc()
		return recommend.Recommendations{}, false, nil
	}
	c.m.command(opGet, start, err)
	if err != nil {
		return recommend.Recommendations{}, false, fmt.Errorf("cache: get %q: %w", key, err)
	}

	var r recommend.Recommendations
	if err := json.Unmarshal(b, &r); err != nil {
		c.m.malformed.Inc()
		return recommend.Recommendations{}, false, &MalformedError{Key: key, Err: err}
	}
	if r.UserID != userID {
		c.m.malformed.Inc()
		return recommend.Recommendations{}, false, &MalformedError{Key: key, Err: fmt.Errorf("value holds user %q", r.UserID)}
	}
	c.m.hits.Inc()
	r.Source = recommend.FromCache
	return r, true, nil
}

// Put stores the recommendations of each of recs under its user's key with
// the cache's TTL, as Source "inference". One user takes one SET; several
// take one pipeline of SET key value EX ttl, one per user, in order (a
// user given twice keeps the later value). Every value must have a
// UserID; nothing is written if one has none. Put of no users does nothing.
// When SETs of a pipeline fail, the others may still have been applied.
func (c *RedisCache) Put(ctx context.Context, recs ...recommend.Recommendations) error {
	if len(recs) == 0 {
		return nil
	}
	keys := make([]string, len(recs))
	vals := make([][]byte, len(recs))
	for i, r := range recs {
		if r.UserID == "" {
			return fmt.Errorf("cache: put: recommendations %d of %d have no user ID", i+1, len(recs))
		}
		r.Source = recommend.FromInference
		r.GeneratedAt = r.GeneratedAt.UTC()
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("cache: put: encode user %q: %w", r.UserID, err)
		}
		keys[i], vals[i] = c.Key(r.UserID), b
	}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	if len(recs) == 1 {
		start := time.Now()
		err := c.rdb.Set(ctx, keys[0], vals[0], c.ttl).Err()
		c.m.command(opSet, start, err)
		if err != nil {
			return fmt.Errorf("cache: put %q: %w", keys[0], err)
		}
		return nil
	}

	start := time.Now()
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.StatusCmd, len(recs))
	for i := range keys {
		cmds[i] = pipe.Set(ctx, keys[i], vals[i], c.ttl)
	}
	_, err := pipe.Exec(ctx)
	c.m.command(opPipeline, start, err)
	if err == nil {
		return nil
	}
	failed, first := 0, -1
	for i, cmd := range cmds {
		if cmd.Err() != nil {
			failed++
			if first < 0 {
				first = i
			}
		}
	}
	if first < 0 {
		return fmt.Errorf("cache: put %d users: %w", len(recs), err)
	}
	return fmt.Errorf("cache: put %d users: %d SETs failed, the first at key %q: %w", len(recs), failed, keys[first], cmds[first].Err())
}
