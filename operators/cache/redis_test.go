package cache_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aetherai/aether/internal/redistest"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/require"
)

// TestContractMiniredis runs the contract against miniredis.
func TestContractMiniredis(t *testing.T) {
	var s *miniredis.Miniredis
	s, client := newMini(t)
	testContract(t, backend{
		client: client,
		prefix: func(t *testing.T) string {
			p := redistest.UniquePrefix(t)
			t.Cleanup(func() {
				for _, k := range s.Keys() {
					if strings.HasPrefix(k, p) {
						s.Del(k)
					}
				}
			})
			return p
		},
		keys: func(t *testing.T, prefix string) []string {
			var out []string
			for _, k := range s.Keys() {
				require.True(t, strings.HasPrefix(k, "aether:test:"), "key %q outside the test prefixes", k)
				if strings.HasPrefix(k, prefix) {
					out = append(out, k)
				}
			}
			return out
		},
		ttl: func(t *testing.T, key string) time.Duration { return s.TTL(key) },
		setRaw: func(t *testing.T, key, value string) {
			require.NoError(t, s.Set(key, value))
		},
	})
}

// TestContractRealRedis runs the contract against the redis-server on
// 127.0.0.1:6379, each test under its own prefix, checking with SCAN that
// every key under it has a TTL and removing them after.
func TestContractRealRedis(t *testing.T) {
	client := redistest.Real(t)
	testContract(t, backend{
		client: client,
		prefix: func(t *testing.T) string {
			p := redistest.UniquePrefix(t)
			redistest.CleanupPrefix(t, client, p)
			return p
		},
		keys: func(t *testing.T, prefix string) []string { return redistest.ScanKeys(t, client, prefix) },
		ttl: func(t *testing.T, key string) time.Duration {
			d, err := client.TTL(context.Background(), key).Result()
			require.NoError(t, err)
			return d
		},
		setRaw: func(t *testing.T, key, value string) {
			require.NoError(t, client.Set(context.Background(), key, value, 0).Err())
		},
	})
}
