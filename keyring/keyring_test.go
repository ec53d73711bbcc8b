package keyring_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aetherai/aether/internal/redistest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/keyring"
)

func TestNewValidation(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	valid := func() keyring.Options {
		return keyring.Options{Redis: rdb, MasterKey: masterKey, TTL: time.Hour}
	}
	tests := []struct {
		name string
		mod  func(*keyring.Options)
		want string
	}{
		{"no redis", func(o *keyring.Options) { o.Redis = nil }, "keyring: Redis is required"},
		{"no master key", func(o *keyring.Options) { o.MasterKey = nil }, "keyring: MasterKey is 0 bytes, at least 32 are required"},
		{"short master key", func(o *keyring.Options) { o.MasterKey = make([]byte, 16) }, "keyring: MasterKey is 16 bytes, at least 32 are required"},
		{"no TTL", func(o *keyring.Options) { o.TTL = 0 }, "keyring: TTL is 0s, at least 1ms is required"},
		{"negative TTL", func(o *keyring.Options) { o.TTL = -time.Second }, "keyring: TTL is -1s, at least 1ms is required"},
		{"sub-millisecond TTL", func(o *keyring.Options) { o.TTL = time.Microsecond }, "keyring: TTL is 1µs, at least 1ms is required"},
		{"negative CacheTTL", func(o *keyring.Options) { o.CacheTTL = -time.Second }, "keyring: CacheTTL is -1s, it must not be negative"},
		{"negative CacheSize", func(o *keyring.Options) { o.CacheSize = -1 }, "keyring: CacheSize is -1, it must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid()
			tt.mod(&o)
			k, err := keyring.New(o)
			require.Nil(t, k)
			require.EqualError(t, err, tt.want)
		})
	}
	t.Run("defaults", func(t *testing.T) {
		k, err := keyring.New(valid())
		require.NoError(t, err)
		require.Equal(t, keyring.DefaultPrefix, k.Prefix())
	})
}

func TestRoundTrip(t *testing.T) {
	e := newEnv(t)
	k := e.keyring(t)
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		plain []byte
	}{
		{"empty", []byte{}},
		{"nil", nil},
		{"small", []byte("hi")},
		{"300 bytes", value300()},
		{"1 MiB", bytes.Repeat([]byte{7}, 1<<20)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := k.Seal(ctx, subject(1), tt.plain)
			require.NoError(t, err)
			require.True(t, keyring.IsSealed(sealed))
			require.Len(t, sealed, 40+len(tt.plain))
			require.Equal(t, len(sealed), cap(sealed), "one exact allocation")
			got, err := k.Open(ctx, subject(1), sealed)
			require.NoError(t, err)
			require.Equal(t, len(tt.plain), len(got))
			require.True(t, bytes.Equal(tt.plain, got))
		})
	}
	require.Len(t, redistest.ScanKeys(t, e.rdb, e.prefix), 1, "one key per subject")
}

func TestSealedHidesPlaintext(t *testing.T) {
	e := newEnv(t)
	k := e.keyring(t)
	plain := []byte(`{"user_id":"user-4711-alice@example.com","page":"/checkout"}`)
	a, err := k.Seal(context.Background(), subject(1), plain)
	require.NoError(t, err)
	b, err := k.Seal(context.Background(), subject(1), plain)
	require.NoError(t, err)
	require.False(t, bytes.Contains(a, []byte("user-4711")))
	require.NotEqual(t, a, b, "random nonces")
	require.Equal(t, keyIDOf(a), keyIDOf(b), "same key")
}

func TestEmptySubject(t *testing.T) {
	e := newEnv(t)
	k := e.keyring(t)
	ctx := context.Background()
	_, err := k.Seal(ctx, "", []byte("x"))
	require.EqualError(t, err, "keyring: subject is empty")
	sealed, err := k.Seal(ctx, subject(1), []byte("x"))
	require.NoError(t, err)
	_, err = k.Open(ctx, "", sealed)
	require.EqualError(t, err, "keyring: subject is empty")
	_, err = k.Destroy(ctx, "")
	require.EqualError(t, err, "keyring: subject is empty")
}

func TestOpenWrongSubject(t *testing.T) {
	e := newEnv(t)
	k := e.keyring(t)
	ctx := context.Background()
	sealed, err := k.Seal(ctx, subject(1), []byte("secret of subject 1"))
	require.NoError(t, err)

	// Subject 2 has no key yet, then a key of its own.
	for _, state := range []string{"no key", "own key"} {
		t.Run(state, func(t *testing.T) {
			for _, kr := range []*keyring.Keyring{k, e.keyring(t)} {
				got, err := kr.Open(ctx, subject(2), sealed)
				require.Nil(t, got)
				require.ErrorIs(t, err, keyring.ErrDestroyed)
			}
		})
		_, err := k.Seal(ctx, subject(2), []byte("other"))
		require.NoError(t, err)
	}

	// A wrapped key copied to another subject does not unwrap there, so a
	// value cannot be opened by moving keys either.
	v, err := e.rdb.Get(ctx, e.prefix+subject(1)).Bytes()
	require.NoError(t, err)
	require.NoError(t, e.rdb.Set(ctx, e.prefix+subject(3), v, time.Minute).Err())
	got, err := e.keyring(t).Open(ctx, subject(3), sealed)
	require.Nil(t, got)
	require.ErrorIs(t, err, keyring.ErrTampered)
}

func TestTampered(t *testing.T) {
	e := newEnv(t)
	k := e.keyring(t)
	ctx := context.Background()
	plain := value300()
	sealed, err := k.Seal(ctx, subject(1), plain)
	require.NoError(t, err)
	for _, tt := range []struct {
		name string
		at   int
		want error
	}{
		{"magic", 0, keyring.ErrNotSealed},
		{"keyID", 7, keyring.ErrDestroyed},
		{"nonce", 15, keyring.ErrTampered},
		{"ciphertext first", 24, keyring.ErrTampered},
		{"ciphertext middle", 24 + len(plain)/2, keyring.ErrTampered},
		{"tag last", len(sealed) - 1, keyring.ErrTampered},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bad := bytes.Clone(sealed)
			bad[tt.at] ^= 0x01
			for _, kr := range []*keyring.Keyring{k, e.keyring(t)} { // cached and not
				got, err := kr.Open(ctx, subject(1), bad)
				require.Nil(t, got)
				require.ErrorIs(t, err, tt.want)
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		_, err := k.Open(ctx, subject(1), sealed[:len(sealed)-1])
		require.ErrorIs(t, err, keyring.ErrTampered)
	})
	t.Run("stored key altered", func(t *testing.T) {
		key := e.prefix + subject(1)
		v, err := e.rdb.Get(ctx, key).Bytes()
		require.NoError(t, err)
		v[len(v)-1] ^= 1
		require.NoError(t, e.rdb.Set(ctx, key, v, time.Minute).Err())
		_, err = e.keyring(t).Open(ctx, subject(1), sealed)
		require.ErrorIs(t, err, keyring.ErrTampered)
		require.NoError(t, e.rdb.Set(ctx, key, v[:10], time.Minute).Err())
		_, err = e.keyring(t).Open(ctx, subject(1), sealed)
		require.ErrorIs(t, err, keyring.ErrTampered)
	})
}

func TestNotSealed(t *testing.T) {
	e := newEnv(t)
	k := e.keyring(t)
	for _, tt := range []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"magic only", []byte("AEK1")},
		{"one byte short", append([]byte("AEK1"), make([]byte, 35)...)},
		{"json", []byte(`{"user_id":"u-1","page":"/","padding":"xxxxxxxxxxxxxxxxxxxxxxxxx"}`)},
		{"other version", append([]byte("AEK2"), make([]byte, 60)...)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			require.False(t, keyring.IsSealed(tt.b))
			got, err := k.Open(context.Background(), subject(1), tt.b)
			require.Nil(t, got)
			require.ErrorIs(t, err, keyring.ErrNotSealed)
			require.True(t, k.NotSealed(err))
			require.False(t, k.Retryable(err), "never opens, however often tried")
			require.False(t, k.Shredded(err))
		})
	}
	require.True(t, keyring.IsSealed(append([]byte("AEK1"), make([]byte, 36)...)))
	require.Empty(t, redistest.ScanKeys(t, e.rdb, e.prefix), "Open never creates keys")
}

func TestDestroy(t *testing.T) {
	e := newEnv(t)
	k := e.keyring(t)
	ctx := context.Background()
	old, err := k.Seal(ctx, subject(1), []byte("before"))
	require.NoError(t, err)
	other, err := k.Seal(ctx, subject(2), []byte("bystander"))
	require.NoError(t, err)

	existed, err := k.Destroy(ctx, subject(1))
	require.NoError(t, err)
	require.True(t, existed)
	existed, err = k.Destroy(ctx, subject(1))
	require.NoError(t, err)
	require.False(t, existed)

	for name, kr := range map[string]*keyring.Keyring{"same keyring": k, "fresh keyring": e.keyring(t)} {
		t.Run(name, func(t *testing.T) {
			got, err := kr.Open(ctx, subject(1), old)
			require.Nil(t, got)
			require.ErrorIs(t, err, keyring.ErrDestroyed)
			got, err = kr.Open(ctx, subject(2), other)
			require.NoError(t, err)
			require.Equal(t, "bystander", string(got))
		})
	}
	require.Len(t, redistest.ScanKeys(t, e.rdb, e.prefix), 1, "Open does not recreate the key")

	// Sealing again makes a new key; the old value stays unreadable.
	fresh, err := k.Seal(ctx, subject(1), []byte("after"))
	require.NoError(t, err)
	require.NotEqual(t, keyIDOf(old), keyIDOf(fresh))
	for name, kr := range map[string]*keyring.Keyring{"same keyring": k, "fresh keyring": e.keyring(t)} {
		t.Run(name+" after reseal", func(t *testing.T) {
			_, err := kr.Open(ctx, subject(1), old)
			require.ErrorIs(t, err, keyring.ErrDestroyed)
			got, err := kr.Open(ctx, subject(1), fresh)
			require.NoError(t, err)
			require.Equal(t, "after", string(got))
		})
	}
}

func TestSecondProcess(t *testing.T) {
	e := newEnv(t)
	a, b := e.keyring(t), e.keyring(t)
	ctx := context.Background()
	for i := range 5 {
		sealed, err := a.Seal(ctx, subject(i), []byte(subject(i)))
		require.NoError(t, err)
		got, err := b.Open(ctx, subject(i), sealed)
		require.NoError(t, err)
		require.Equal(t, subject(i), string(got))
	}
}

func TestWrongMasterKey(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sealed, err := e.keyring(t).Seal(ctx, subject(1), []byte("x"))
	require.NoError(t, err)
	stored, err := e.rdb.Get(ctx, e.prefix+subject(1)).Bytes()
	require.NoError(t, err)

	wrong := e.keyring(t, withMaster(masterKey2))
	_, err = wrong.Open(ctx, subject(1), sealed)
	require.ErrorIs(t, err, keyring.ErrTampered)
	require.EqualError(t, err, "keyring: sealed value fails authentication: the master key does not open the stored key")
	_, err = wrong.Seal(ctx, subject(1), []byte("y"))
	require.ErrorIs(t, err, keyring.ErrTampered, "Seal does not replace a key it cannot open")
	after, err := e.rdb.Get(ctx, e.prefix+subject(1)).Bytes()
	require.NoError(t, err)
	require.Equal(t, stored, after)
}

func TestKeysHaveTTL(t *testing.T) {
	e := newEnv(t)
	ttl := 90 * time.Minute
	k := e.keyring(t, withTTL(ttl))
	ctx := context.Background()
	for i := range 10 {
		_, err := k.Seal(ctx, subject(i), []byte("x"))
		require.NoError(t, err)
	}
	keys := redistest.ScanKeys(t, e.rdb, e.prefix)
	require.Len(t, keys, 10)
	require.Equal(t, e.prefix, k.Prefix())
	for _, key := range keys {
		pttl, err := e.rdb.PTTL(ctx, key).Result()
		require.NoError(t, err)
		require.Greater(t, pttl, time.Duration(0), key)
		require.LessOrEqual(t, pttl, ttl, key)
	}
}

func TestReadRefreshesTTL(t *testing.T) {
	e := newEnv(t)
	const ttl = 3 * time.Second
	ctx := context.Background()
	sealed, err := e.keyring(t, withTTL(ttl)).Seal(ctx, subject(1), []byte("x"))
	require.NoError(t, err)
	key := e.prefix + subject(1)

	time.Sleep(1200 * time.Millisecond)
	before, err := e.rdb.PTTL(ctx, key).Result()
	require.NoError(t, err)
	require.LessOrEqual(t, before, ttl-time.Second)

	_, err = e.keyring(t, withTTL(ttl)).Open(ctx, subject(1), sealed) // empty cache: reads Redis
	require.NoError(t, err)
	after, err := e.rdb.PTTL(ctx, key).Result()
	require.NoError(t, err)
	require.Greater(t, after, before+time.Second, "GETEX refreshed the TTL")
	require.LessOrEqual(t, after, ttl)
}

func TestConcurrentSealOfNewSubject(t *testing.T) {
	e := newEnv(t)
	krs := []*keyring.Keyring{e.keyring(t), e.keyring(t)}
	ctx := context.Background()
	const n = 16
	sealed := make([][]byte, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			sealed[i], errs[i] = krs[i%2].Seal(ctx, subject(1), []byte{byte(i)})
		})
	}
	close(start)
	wg.Wait()
	require.Len(t, redistest.ScanKeys(t, e.rdb, e.prefix), 1)
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, keyIDOf(sealed[0]), keyIDOf(sealed[i]))
		for _, k := range krs {
			got, err := k.Open(ctx, subject(1), sealed[i])
			require.NoError(t, err)
			require.Equal(t, []byte{byte(i)}, got)
		}
	}
}

// TestCacheBoundsDestroyedKeyUse documents the bound: a process that has a
// key cached can use it for CacheTTL after another process destroys it,
// unless it is told to Forget.
func TestCacheBoundsDestroyedKeyUse(t *testing.T) {
	e := newEnv(t)
	const cacheTTL = 50 * time.Millisecond
	ctx := context.Background()
	a := e.keyring(t, withCacheTTL(cacheTTL))
	b := e.keyring(t, withCacheTTL(cacheTTL))
	sealed, err := a.Seal(ctx, subject(1), []byte("x"))
	require.NoError(t, err)
	sealed2, err := a.Seal(ctx, subject(2), []byte("y"))
	require.NoError(t, err)

	cachedAt := time.Now()
	_, err = b.Open(ctx, subject(1), sealed)
	require.NoError(t, err)
	_, err = b.Open(ctx, subject(2), sealed2)
	require.NoError(t, err)
	_, err = a.Destroy(ctx, subject(1))
	require.NoError(t, err)
	_, err = a.Destroy(ctx, subject(2))
	require.NoError(t, err)

	_, err = b.Open(ctx, subject(1), sealed)
	if time.Since(cachedAt) < cacheTTL {
		require.NoError(t, err, "still cached in b")
	}
	b.Forget(subject(2))
	_, err = b.Open(ctx, subject(2), sealed2)
	require.ErrorIs(t, err, keyring.ErrDestroyed, "Forget ends the cached use at once")

	time.Sleep(time.Until(cachedAt.Add(cacheTTL)))
	_, err = b.Open(ctx, subject(1), sealed)
	require.ErrorIs(t, err, keyring.ErrDestroyed)
}

func TestRedisDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	k, err := keyring.New(keyring.Options{Redis: rdb, MasterKey: masterKey, TTL: time.Hour})
	require.NoError(t, err)
	ctx := context.Background()
	plain := []byte("user-4711 private")
	// A syntactically sealed value, so Open gets as far as Redis.
	sealed := append([]byte("AEK1"), make([]byte, 60)...)

	_, sealErr := k.Seal(ctx, subject(1), plain)
	_, openErr := k.Open(ctx, subject(1), sealed)
	_, destroyErr := k.Destroy(ctx, subject(1))
	for _, tt := range []struct {
		err    error
		prefix string
	}{
		{sealErr, "keyring: read key: "},
		{openErr, "keyring: read key: "},
		{destroyErr, "keyring: delete key: "},
	} {
		require.Error(t, tt.err)
		require.NotErrorIs(t, tt.err, keyring.ErrDestroyed)
		require.NotErrorIs(t, tt.err, keyring.ErrTampered)
		msg := tt.err.Error()
		require.True(t, strings.HasPrefix(msg, tt.prefix), msg)
		require.NotContains(t, msg, string(masterKey))
		require.NotContains(t, msg, hex.EncodeToString(masterKey))
		require.NotContains(t, msg, "user-4711")
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	k := e.keyring(t, withRegistry(reg))
	ctx := context.Background()

	s1, err := k.Seal(ctx, subject(1), []byte("a")) // miss, creates
	require.NoError(t, err)
	_, err = k.Seal(ctx, subject(1), []byte("b")) // hit
	require.NoError(t, err)
	_, err = k.Open(ctx, subject(1), s1) // hit
	require.NoError(t, err)
	_, err = k.Open(ctx, subject(1), []byte("plain")) // not sealed, no lookup
	require.ErrorIs(t, err, keyring.ErrNotSealed)
	bad := bytes.Clone(s1)
	bad[len(bad)-1] ^= 1
	_, err = k.Open(ctx, subject(1), bad) // hit, tampered
	require.ErrorIs(t, err, keyring.ErrTampered)
	_, err = k.Destroy(ctx, subject(1))
	require.NoError(t, err)
	_, err = k.Open(ctx, subject(1), s1) // miss, destroyed
	require.ErrorIs(t, err, keyring.ErrDestroyed)
	_, err = k.Seal(ctx, "", nil) // error
	require.Error(t, err)

	// A second keyring on the same registry shares the counters.
	k2 := e.keyring(t, withRegistry(reg))
	_, err = k2.Open(ctx, subject(2), s1) // miss, destroyed
	require.ErrorIs(t, err, keyring.ErrDestroyed)

	const metadata = `
# HELP aether_keyring_cache_lookups_total Lookups of unwrapped data keys in the process cache, by result (hit, miss).
# TYPE aether_keyring_cache_lookups_total counter
aether_keyring_cache_lookups_total{result="hit"} 3
aether_keyring_cache_lookups_total{result="miss"} 3
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(metadata), "aether_keyring_cache_lookups_total"))
	ops := map[[2]string]float64{
		{"seal", "ok"}: 2, {"seal", "error"}: 1,
		{"open", "ok"}: 1, {"open", "not_sealed"}: 1, {"open", "tampered"}: 1, {"open", "destroyed"}: 2,
		{"destroy", "ok"}: 1,
	}
	n, err := testutil.GatherAndCount(reg, "aether_keyring_operations_total")
	require.NoError(t, err)
	require.Equal(t, 15, n, "all label children are pre-created")
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "aether_keyring_operations_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var key [2]string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "op":
					key[0] = l.GetValue()
				case "outcome":
					key[1] = l.GetValue()
				}
			}
			require.Equal(t, ops[key], m.GetCounter().GetValue(), "%v", key)
		}
	}
}

func TestCachedCallsAllocateOnlyTheOutput(t *testing.T) {
	e := newEnv(t)
	k := e.keyring(t)
	ctx := context.Background()
	sub := subject(1)
	plain := value300()
	sealed, err := k.Seal(ctx, sub, plain)
	require.NoError(t, err)
	require.Equal(t, 1.0, testing.AllocsPerRun(100, func() { _, _ = k.Seal(ctx, sub, plain) }))
	require.Equal(t, 1.0, testing.AllocsPerRun(100, func() { _, _ = k.Open(ctx, sub, sealed) }))
}

func BenchmarkSealCached(b *testing.B) {
	e := newEnv(b)
	k := e.keyring(b)
	ctx := context.Background()
	sub := subject(1)
	plain := value300()
	_, err := k.Seal(ctx, sub, plain) // warms the cache
	require.NoError(b, err)
	b.ReportAllocs()
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		if _, err := k.Seal(ctx, sub, plain); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenCached(b *testing.B) {
	e := newEnv(b)
	k := e.keyring(b)
	ctx := context.Background()
	sub := subject(1)
	plain := value300()
	sealed, err := k.Seal(ctx, sub, plain) // warms the cache
	require.NoError(b, err)
	b.ReportAllocs()
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		if _, err := k.Open(ctx, sub, sealed); err != nil {
			b.Fatal(err)
		}
	}
}

// AppendSeal and AppendOpen keep what dst held and append the value.
func TestAppend(t *testing.T) {
	e := newEnv(t)
	k := e.keyring(t)
	ctx := context.Background()
	head := []byte("envelope:")
	sealed, err := k.AppendSeal(ctx, bytes.Clone(head), subject(1), []byte("state"))
	require.NoError(t, err)
	require.Equal(t, head, sealed[:len(head)])
	require.True(t, keyring.IsSealed(sealed[len(head):]))
	plain, err := k.AppendOpen(ctx, bytes.Clone(head), subject(1), sealed[len(head):])
	require.NoError(t, err)
	require.Equal(t, "envelope:state", string(plain))
}

// A master key rotation: a keyring with the new master key and the old one
// as previous opens what the old one sealed and wraps new data keys with
// the new one; Rewrap moves the old data keys over, keeping their TTL;
// then the new master key alone opens everything, and the old one nothing.
func TestRotateMasterKey(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	before := e.keyring(t) // masterKey
	sealed := map[string][]byte{}
	for i := range 3 {
		v, err := before.Seal(ctx, subject(i), []byte("value"))
		require.NoError(t, err)
		sealed[subject(i)] = v
	}
	during := e.keyring(t, withMaster(masterKey2), func(o *keyring.Options) { o.PreviousMasterKeys = [][]byte{masterKey} })
	for s, v := range sealed {
		got, err := during.Open(ctx, s, v)
		require.NoError(t, err)
		require.Equal(t, "value", string(got))
	}
	v, err := during.Seal(ctx, subject(3), []byte("new"))
	require.NoError(t, err)
	sealed[subject(3)] = v

	var scanned []int
	rewrapped, current, err := during.Rewrap(ctx, func(n int) { scanned = append(scanned, n) })
	require.NoError(t, err)
	require.Equal(t, 3, rewrapped)
	require.Equal(t, 1, current)
	require.Empty(t, scanned, "progress every 1,000 keys")
	for _, k := range redistest.ScanKeys(t, e.rdb, e.prefix) {
		ttl, err := e.rdb.PTTL(ctx, k).Result()
		require.NoError(t, err)
		require.True(t, ttl > 0 && ttl <= testTTL, "TTL kept: %v", ttl)
	}
	again, current, err := during.Rewrap(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, 0, again)
	require.Equal(t, 4, current)

	after := e.keyring(t, withMaster(masterKey2))
	for s, v := range sealed {
		got, err := after.Open(ctx, s, v)
		require.NoError(t, err, s)
		require.NotEmpty(t, got)
	}
	old := e.keyring(t)
	_, err = old.Open(ctx, subject(0), sealed[subject(0)])
	require.ErrorIs(t, err, keyring.ErrTampered)
	require.ErrorContains(t, err, "the master key does not open the stored key")

	// A data key no master key opens stops the rotation, named.
	stranger := e.keyring(t, withMaster(bytes.Repeat([]byte{0x33}, 32)))
	_, err = stranger.Seal(ctx, subject(9), []byte("x"))
	require.NoError(t, err)
	_, _, err = after.Rewrap(ctx, nil)
	require.ErrorContains(t, err, "keyring: "+e.prefix+subject(9)+": keyring: sealed value fails authentication: the master key does not open the stored key")

	_, err = keyring.New(keyring.Options{Redis: e.rdb, MasterKey: masterKey, TTL: time.Hour, PreviousMasterKeys: [][]byte{[]byte("short")}})
	require.EqualError(t, err, "keyring: PreviousMasterKeys[0] is 5 bytes, at least 32 are required")
}
