package keyring_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/internal/redistest"
	"github.com/aetherai/aether/keyring"
)

// masterKey is a fixed 32-byte master key; masterKey2 differs from it.
var (
	masterKey  = bytes.Repeat([]byte{0x5a}, 32)
	masterKey2 = bytes.Repeat([]byte{0xa5}, 32)
)

// testTTL is the Redis TTL of keys in tests that do not study expiry.
const testTTL = time.Hour

// env is a real Redis client and a unique prefix cleaned up at the end.
type env struct {
	rdb    *redis.Client
	prefix string
}

func newEnv(tb testing.TB) env {
	tb.Helper()
	c := redistest.Real(tb)
	p := redistest.UniquePrefix(tb)
	redistest.CleanupPrefix(tb, c, p)
	return env{rdb: c, prefix: p}
}

// keyring returns a Keyring on e with the master key and TTL of the tests;
// mod, if given, edits the options first.
func (e env) keyring(tb testing.TB, mod ...func(*keyring.Options)) *keyring.Keyring {
	tb.Helper()
	o := keyring.Options{Redis: e.rdb, MasterKey: masterKey, Prefix: e.prefix, TTL: testTTL}
	for _, m := range mod {
		m(&o)
	}
	k, err := keyring.New(o)
	require.NoError(tb, err)
	return k
}

func withMaster(key []byte) func(*keyring.Options) {
	return func(o *keyring.Options) { o.MasterKey = key }
}

func withTTL(d time.Duration) func(*keyring.Options) {
	return func(o *keyring.Options) { o.TTL = d }
}

func withCacheTTL(d time.Duration) func(*keyring.Options) {
	return func(o *keyring.Options) { o.CacheTTL = d }
}

func withRegistry(r prometheus.Registerer) func(*keyring.Options) {
	return func(o *keyring.Options) { o.Registerer = r }
}

// subject returns a pseudonym like the pipeline's: 64 hex characters.
func subject(i int) string {
	return fmt.Sprintf("%064x", 0xfeed0000+i)
}

// keyIDOf is the keyID field of a sealed value.
func keyIDOf(sealed []byte) []byte { return sealed[4:12] }

// value300 is a record value of about 300 bytes, as the benchmarks use.
func value300() []byte {
	v := []byte(`{"user_id":"u-8c41f7","session":"s-77102","events":[`)
	for len(v) < 290 {
		v = append(v, `{"t":"view","p":"p-123"},`...)
	}
	return append(v[:len(v)-1], "]}"...)
}
