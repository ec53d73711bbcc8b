package evidence

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// maxKeysListed bounds the keys without TTL a RedisTTL result names.
const maxKeysListed = 10

// RedisTTL is the control that every key Aether writes expires (DESIGN
// invariant 9): it SCANs the keys matching each pattern (a key prefix and
// "*", say; see redisglob.Escape) and fails when any has no TTL, with the count
// and up to ten keys. Keys hold user ids, so each is shown as the
// pattern's literal prefix and a short SHA-256 of the rest. On a Redis
// Cluster every master is scanned.
func RedisTTL(client redis.UniversalClient, patterns ...string) Check {
	return Check{
		ID:       "redis_key_ttl",
		Title:    "Every Redis key Aether writes expires",
		Criteria: []string{"C1.2", "P4.2"},
		Run: func(ctx context.Context) Result {
			return redisTTL(ctx, client, patterns)
		},
	}
}

func redisTTL(ctx context.Context, client redis.UniversalClient, patterns []string) Result {
	declared := "every key matching " + strings.Join(patterns, ", ") + " has a TTL"
	if len(patterns) == 0 {
		return errResult("every key Aether writes has a TTL", "no key pattern to scan was given")
	}
	if client == nil {
		return errResult(declared, "no Redis client")
	}
	var (
		mu      sync.Mutex
		scanned int
		noTTL   []string
	)
	scan := func(ctx context.Context, c redis.Cmdable) error {
		for _, p := range patterns {
			n, keys, err := scanNoTTL(ctx, c, p)
			if err != nil {
				return fmt.Errorf("scanning %s: %w", p, err)
			}
			mu.Lock()
			scanned += n
			for _, k := range keys {
				noTTL = append(noTTL, redactKey(p, k))
			}
			mu.Unlock()
		}
		return nil
	}
	var err error
	if cc, ok := client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, client)
	}
	if err != nil {
		return errResult(declared, "Redis could not be scanned: "+err.Error())
	}
	sort.Strings(noTTL)
	live := fmt.Sprintf("%s scanned, %d without a TTL", plural(scanned, "key", "keys"), len(noTTL))
	switch {
	case scanned == 0:
		return pass(declared, live, "no key matches the patterns")
	case len(noTTL) == 0:
		return pass(declared, live, fmt.Sprintf("every one of the %s matching the patterns expires", plural(scanned, "key", "keys")))
	}
	return fail(declared, live,
		fmt.Sprintf("%s with no TTL: whatever they hold about a user outlives the declared retention", plural(len(noTTL), "key", "keys")),
		capped(noTTL, maxKeysListed)...)
}

// scanNoTTL SCANs keys matching pattern on one node and returns how many
// it saw and those with no TTL (TTL -1). Keys that vanish between SCAN and
// TTL (-2) do not count.
func scanNoTTL(ctx context.Context, c redis.Cmdable, pattern string) (int, []string, error) {
	var (
		cursor uint64
		n      int
		none   []string
	)
	for {
		keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
		if err != nil {
			return n, none, err
		}
		if len(keys) > 0 {
			cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range keys {
					p.PTTL(ctx, k)
				}
				return nil
			})
			if err != nil {
				return n, none, err
			}
			for i, cmd := range cmds {
				d, err := cmd.(*redis.DurationCmd).Result()
				if err != nil {
					return n, none, err
				}
				// go-redis reports PTTL -1 (no expiry) as -1 and -2 (no
				// key) as -2, both as raw durations.
				switch d {
				case -2:
					continue
				case -1:
					none = append(none, keys[i])
				}
				n++
			}
		}
		if next == 0 {
			return n, none, nil
		}
		cursor = next
	}
}

// redactKey shows a key as the pattern's literal prefix and the first 12
// hex digits of the SHA-256 of the rest: enough to find the key again
// (hash the candidates), not enough to read a user id off the report.
func redactKey(pattern, key string) string {
	prefix := literalPrefix(pattern)
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		prefix, rest = "", key
	}
	d := sha256.Sum256([]byte(rest))
	return fmt.Sprintf("%s<sha256 %s>", prefix, hex.EncodeToString(d[:6]))
}

// literalPrefix is pattern up to its first glob character.
func literalPrefix(pattern string) string {
	if i := strings.IndexAny(pattern, `*?[\`); i >= 0 {
		return pattern[:i]
	}
	return pattern
}
