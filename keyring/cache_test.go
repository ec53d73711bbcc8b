package keyring

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestKeyCache(t *testing.T) {
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	c := newKeyCache(32, time.Second)
	c.now = func() time.Time { return now }
	e := func() *entry { return &entry{} }

	c.put("a", e(), c.generation())
	_, ok := c.get("a")
	require.True(t, ok)
	now = now.Add(time.Second)
	_, ok = c.get("a")
	require.False(t, ok, "expired at exactly CacheTTL")
	require.Zero(t, c.len(), "an expired entry is dropped when seen")
	c.put("a", e(), c.generation())
	now = now.Add(time.Second) // a expires, unseen

	t.Run("full: expired entries go first", func(t *testing.T) {
		for i := range 31 { // a (expired) plus 31 live ones
			c.put(fmt.Sprint(i), e(), c.generation())
		}
		require.Equal(t, 32, c.len())
		c.put("new", e(), c.generation())
		require.Equal(t, 32, c.len())
		_, inMap := c.m["a"]
		require.False(t, inMap)
		for i := range 31 {
			_, ok := c.get(fmt.Sprint(i))
			require.True(t, ok, "live entry %d kept", i)
		}
	})
	t.Run("full of live entries: arbitrary ones go", func(t *testing.T) {
		c.put("newer", e(), c.generation())
		require.Equal(t, 31, c.len(), "down to 15/16 of 32, plus the new one")
		_, ok := c.get("newer")
		require.True(t, ok)
	})
	t.Run("replacing does not evict", func(t *testing.T) {
		for range 40 {
			c.put("newer", e(), c.generation())
		}
		require.Equal(t, 31, c.len())
	})
	t.Run("forget", func(t *testing.T) {
		c.forget("newer")
		_, ok := c.get("newer")
		require.False(t, ok)
	})
	t.Run("size one", func(t *testing.T) {
		c := newKeyCache(1, time.Hour)
		c.put("a", e(), c.generation())
		c.put("b", e(), c.generation())
		require.Equal(t, 1, c.len())
		_, ok := c.get("b")
		require.True(t, ok)
	})
}

// A key read from Redis before a forget is not cached after it: it may be
// the key the forget was for (a Destroy racing a load).
func TestCacheRefusesAKeyReadBeforeAForget(t *testing.T) {
	c := newKeyCache(10, time.Minute)
	gen := c.generation()
	c.forget("a")
	c.put("a", &entry{}, gen)
	_, ok := c.get("a")
	require.False(t, ok)
	c.put("a", &entry{}, c.generation())
	_, ok = c.get("a")
	require.True(t, ok)
}
