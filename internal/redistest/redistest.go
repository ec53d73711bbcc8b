// Package redistest connects tests to the real redis-server that CI and
// the development machines run, and keeps their keys apart.
package redistest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Addr is where CI and the development machines run redis-server.
const Addr = "127.0.0.1:6379"

const startRedis = `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`

// Real connects to the redis-server at Addr. If it is not reachable the
// test fails when CI is set and is skipped otherwise, saying how to start
// it.
func Real(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: Addr, ContextTimeoutEnabled: true, DialTimeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		msg := fmt.Sprintf("redis-server must run on %s for this test (%v); start it with: %s", Addr, err, startRedis)
		if os.Getenv("CI") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// UniquePrefix returns a key prefix no other test or process uses, free of
// glob characters.
func UniquePrefix(tb testing.TB) string {
	name := strings.Map(func(r rune) rune {
		if strings.ContainsRune(`*?[]\ `, r) {
			return '_'
		}
		return r
	}, tb.Name())
	return fmt.Sprintf("aether:test:%s:%d:%d:", name, os.Getpid(), time.Now().UnixNano())
}

// ScanKeys lists the keys under prefix with SCAN MATCH.
func ScanKeys(tb testing.TB, c redis.UniversalClient, prefix string) []string {
	tb.Helper()
	var keys []string
	iter := c.Scan(context.Background(), 0, prefix+"*", 1000).Iterator()
	for iter.Next(context.Background()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		tb.Fatalf("SCAN %s*: %v", prefix, err)
	}
	return keys
}

// CleanupPrefix unlinks every key under prefix when the test ends.
func CleanupPrefix(tb testing.TB, c redis.UniversalClient, prefix string) {
	tb.Cleanup(func() {
		if keys := ScanKeys(tb, c, prefix); len(keys) > 0 {
			_ = c.Unlink(context.Background(), keys...).Err()
		}
	})
}
