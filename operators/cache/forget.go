package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Keys lists every key the cache may hold for userID: the one
// [RedisCache.Key]. A deletion request deletes these and scans for them
// afterwards.
func (c *RedisCache) Keys(userID string) []string { return []string{c.Key(userID)} }

// Forget deletes userID's recommendations (DEL of every key of
// [RedisCache.Keys]) and returns how many keys existed. It makes the cache
// a [topology.Forgetter]: the recommender calls it when a forget control
// record for the user reaches it, after every earlier record of the user,
// so no write of an older record can bring the key back.
func (c *RedisCache) Forget(ctx context.Context, userID string) (int, error) {
	if userID == "" {
		return 0, errors.New("cache: forget: empty user ID")
	}
	keys := c.Keys(userID)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	n, err := c.rdb.Del(ctx, keys...).Result()
	c.m.command(opDel, start, err)
	if err != nil {
		return 0, fmt.Errorf("cache: forget %q: %w", keys[0], err)
	}
	return int(n), nil
}

// Client is the Redis client the cache writes through (for deletion
// requests that scan for a user's keys).
func (c *RedisCache) Client() redis.UniversalClient { return c.rdb }
