// Package keyring crypto-shreds the records of the stream pipeline.
//
// Kafka cannot delete single records, so the values of records about a user
// (the subject, named by a pseudonym) are sealed with a per-subject data key.
// Deleting the user destroys that key, and every record sealed with it
// becomes unreadable wherever it is stored. Data keys live in Redis, wrapped
// by a key-encryption key derived from a master key the process gets from
// its environment, so a copy of Redis alone does not open any record.
//
// A sealed value is
//
//	"AEK1" | keyID (8) | nonce (12) | AES-256-GCM(data key, plain, AAD = subject)
//
// and the Redis value at Prefix+subject is
//
//	keyID (8) | nonce (12) | AES-256-GCM(KEK, data key, AAD = Prefix+subject+keyID)
//
// The keyID ties a value to one generation of the subject's key: after a
// Destroy and a new Seal the subject has a new key, and values sealed before
// the Destroy stay unreadable.
package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aetherai/aether/internal/redisglob"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

const (
	// DefaultPrefix is the Redis key prefix used when Options.Prefix is empty.
	DefaultPrefix = "aether:keys:"
	// DefaultCacheTTL is used when Options.CacheTTL is zero. It bounds how
	// long a process can still use a key another process destroyed.
	DefaultCacheTTL = 30 * time.Second
	// DefaultCacheSize is used when Options.CacheSize is zero.
	DefaultCacheSize = 100_000
	// MinMasterKeyBytes is the shortest master key New accepts. The key is
	// taken as bytes, as given: 256 bits of strength need 32 random bytes,
	// so a key written as text should be longer (base64 of 32 random
	// bytes is 44 characters; 32 hex digits are only 128 bits).
	MinMasterKeyBytes = 32
)

var (
	// ErrNotSealed means the value has no magic prefix or is too short to
	// be a sealed value; it was probably written before sealing was on.
	ErrNotSealed = errors.New("keyring: value is not sealed")
	// ErrDestroyed means the subject has no data key in Redis, or the value
	// was sealed with a key that has since been destroyed. It is permanent:
	// callers should treat the record as deleted, not retry.
	ErrDestroyed = errors.New("keyring: the subject's data key is destroyed")
	// ErrTampered means a sealed value, or a wrapped key in Redis, fails
	// authentication: it was altered, belongs to another subject, or the
	// master key is not the one the key was wrapped with.
	ErrTampered = errors.New("keyring: sealed value fails authentication")
)

// errWrongMaster is ErrTampered for a stored key the KEK does not open; its
// own text points the operator at the master key rather than at the data.
var errWrongMaster = fmt.Errorf("%w: the master key does not open the stored key", ErrTampered)

var errNoSubject = errors.New("keyring: subject is empty")

const (
	magic     = "AEK1"
	keyIDLen  = 8
	nonceLen  = 12
	tagLen    = 16
	dekLen    = 32
	headerLen = len(magic) + keyIDLen + nonceLen
	// overhead is what Seal adds to the plaintext.
	overhead = headerLen + tagLen
	// wrappedLen is the length of a Redis value.
	wrappedLen = keyIDLen + nonceLen + dekLen + tagLen
	kekInfo    = "aether keyring v1"
)

// Options configures a Keyring.
type Options struct {
	// Redis stores the wrapped data keys. Required.
	Redis redis.UniversalClient
	// MasterKey is at least MinMasterKeyBytes long. Required. The
	// key-encryption key is derived from it with HKDF-SHA256; the Keyring
	// keeps only the derived key.
	MasterKey []byte
	// Prefix is prepended to the subject to form its Redis key. Default
	// DefaultPrefix.
	Prefix string
	// TTL is how long a data key lives in Redis after its last use; every
	// read refreshes it. Required, at least a millisecond (the finest
	// expiry Redis has). Set it longer than the retention of every topic
	// sealed with the keys, so a key outlives its records, and every key
	// written still expires.
	TTL time.Duration
	// CacheTTL is how long an unwrapped key stays in process memory, and so
	// how long this process can still use a key another process destroyed.
	// Default DefaultCacheTTL.
	CacheTTL time.Duration
	// CacheSize caps the cached keys. When full, expired entries are
	// dropped first, then arbitrary ones. Default DefaultCacheSize.
	CacheSize int
	// Registerer, if set, registers the keyring's metrics.
	Registerer prometheus.Registerer
	// PreviousMasterKeys are master keys being rotated out: data keys they
	// wrap still unwrap, new ones are wrapped with MasterKey, and Rewrap
	// moves the old ones over.
	PreviousMasterKeys [][]byte
}

// Keyring seals and opens values with per-subject data keys. It is safe for
// concurrent use.
type Keyring struct {
	rdb    redis.UniversalClient
	kek    cipher.AEAD
	old    []cipher.AEAD // previous master keys' KEKs: unwrap only
	prefix string
	ttl    time.Duration
	cache  *keyCache
	m      metrics
}

// New validates o and returns a Keyring.
func New(o Options) (*Keyring, error) {
	switch {
	case o.Redis == nil:
		return nil, errors.New("keyring: Redis is required")
	case len(o.MasterKey) < MinMasterKeyBytes:
		return nil, fmt.Errorf("keyring: MasterKey is %d bytes, at least %d are required", len(o.MasterKey), MinMasterKeyBytes)
	case o.TTL < time.Millisecond:
		return nil, fmt.Errorf("keyring: TTL is %v, at least 1ms is required", o.TTL)
	case o.CacheTTL < 0:
		return nil, fmt.Errorf("keyring: CacheTTL is %v, it must not be negative", o.CacheTTL)
	case o.CacheSize < 0:
		return nil, fmt.Errorf("keyring: CacheSize is %d, it must not be negative", o.CacheSize)
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	kek, err := deriveKEK(o.MasterKey)
	if err != nil {
		return nil, err
	}
	var old []cipher.AEAD
	for i, mk := range o.PreviousMasterKeys {
		if len(mk) < MinMasterKeyBytes {
			return nil, fmt.Errorf("keyring: PreviousMasterKeys[%d] is %d bytes, at least %d are required", i, len(mk), MinMasterKeyBytes)
		}
		k, err := deriveKEK(mk)
		if err != nil {
			return nil, err
		}
		old = append(old, k)
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	return &Keyring{
		rdb:    o.Redis,
		kek:    kek,
		old:    old,
		prefix: o.Prefix,
		ttl:    o.TTL,
		cache:  newKeyCache(o.CacheSize, o.CacheTTL),
		m:      m,
	}, nil
}

// Prefix returns the Redis key prefix, so deletion tooling can find the keys.
func (k *Keyring) Prefix() string { return k.prefix }

// IsSealed reports whether b has the magic prefix and the minimum length of
// a sealed value. It does not authenticate b.
func IsSealed(b []byte) bool {
	return len(b) >= overhead && string(b[:len(magic)]) == magic
}

// Seal encrypts plain under the subject's data key, creating the key if the
// subject has none. The result is bound to subject: it opens only under the
// same subject.
func (k *Keyring) Seal(ctx context.Context, subject string, plain []byte) ([]byte, error) {
	return k.AppendSeal(ctx, nil, subject, plain)
}

// AppendSeal is Seal appending the sealed value to dst, so that a caller
// building a record around it allocates once.
func (k *Keyring) AppendSeal(ctx context.Context, dst []byte, subject string, plain []byte) ([]byte, error) {
	out, err := k.seal(ctx, dst, subject, plain)
	k.m.count(&k.m.seal, err)
	return out, err
}

func (k *Keyring) seal(ctx context.Context, dst []byte, subject string, plain []byte) ([]byte, error) {
	if subject == "" {
		return nil, errNoSubject
	}
	e, err := k.keyForSeal(ctx, subject)
	if err != nil {
		return nil, err
	}
	out := grow(dst, overhead+len(plain))
	start := len(out)
	out = append(append(out, magic...), e.keyID[:]...)
	out = out[:start+headerLen]
	nonce := out[start+len(magic)+keyIDLen:]
	_, _ = rand.Read(nonce) // never fails (crypto/rand crashes the program instead)
	return e.aead.Seal(out, nonce, plain, e.aad), nil
}

// Open decrypts a value Seal returned for subject. It returns ErrNotSealed
// for values without the sealed format, ErrDestroyed if the key it was
// sealed with is gone, and ErrTampered if it fails authentication. Other
// errors come from Redis and may be transient.
func (k *Keyring) Open(ctx context.Context, subject string, sealed []byte) ([]byte, error) {
	return k.AppendOpen(ctx, nil, subject, sealed)
}

// AppendOpen is Open appending the plain value to dst.
func (k *Keyring) AppendOpen(ctx context.Context, dst []byte, subject string, sealed []byte) ([]byte, error) {
	out, err := k.open(ctx, dst, subject, sealed)
	k.m.count(&k.m.open, err)
	return out, err
}

func (k *Keyring) open(ctx context.Context, dst []byte, subject string, sealed []byte) ([]byte, error) {
	if subject == "" {
		return nil, errNoSubject
	}
	if !IsSealed(sealed) {
		return nil, ErrNotSealed
	}
	id := sealed[len(magic) : len(magic)+keyIDLen]
	e, ok := k.cache.get(subject)
	ok = ok && string(e.keyID[:]) == string(id)
	k.m.lookup(ok)
	if !ok {
		// A cached key of another generation may be stale (another
		// process destroyed and recreated it), so ask Redis.
		var err error
		e, err = k.load(ctx, subject)
		if err != nil {
			return nil, err
		}
		if e == nil || string(e.keyID[:]) != string(id) {
			return nil, ErrDestroyed
		}
	}
	nonce := sealed[len(magic)+keyIDLen : headerLen]
	ct := sealed[headerLen:]
	plain, err := e.aead.Open(grow(dst, len(ct)-tagLen), nonce, ct, e.aad)
	if err != nil {
		return nil, ErrTampered
	}
	return plain, nil
}

// Destroy deletes the subject's data key from Redis and from this process's
// cache, making every value sealed with it unreadable. Other processes may
// still use their cached copy for up to CacheTTL; tell them with Forget.
// existed reports whether Redis held a key.
func (k *Keyring) Destroy(ctx context.Context, subject string) (existed bool, err error) {
	existed, err = k.destroy(ctx, subject)
	k.m.count(&k.m.destroy, err)
	return existed, err
}

func (k *Keyring) destroy(ctx context.Context, subject string) (bool, error) {
	if subject == "" {
		return false, errNoSubject
	}
	n, err := k.rdb.Del(ctx, k.prefix+subject).Result()
	// Forget even on error: the DEL may have happened.
	k.cache.forget(subject)
	if err != nil {
		return false, fmt.Errorf("keyring: delete key: %w", err)
	}
	return n > 0, nil
}

// Forget drops the subject's key from this process's cache only, so the
// next use reads Redis; a running process calls it on learning of a
// deletion made elsewhere.
func (k *Keyring) Forget(subject string) { k.cache.forget(subject) }

// keyForSeal returns the subject's key, creating it in Redis if absent.
func (k *Keyring) keyForSeal(ctx context.Context, subject string) (*entry, error) {
	if e, ok := k.cache.get(subject); ok {
		k.m.lookup(true)
		return e, nil
	}
	k.m.lookup(false)
	// A concurrent Destroy can delete the winner's key between a lost SET
	// NX and the read that follows; a few rounds settle that.
	for range 3 {
		e, err := k.load(ctx, subject)
		if err != nil || e != nil {
			return e, err
		}
		if e, err = k.create(ctx, subject); err != nil || e != nil {
			return e, err
		}
	}
	return nil, errors.New("keyring: the subject's key was destroyed while it was created, repeatedly")
}

// load reads and unwraps the subject's key, refreshing its TTL, and caches
// it. It returns nil, nil if Redis has no key.
func (k *Keyring) load(ctx context.Context, subject string) (*entry, error) {
	key := k.prefix + subject
	gen := k.cache.generation()
	v, err := k.rdb.GetEx(ctx, key, k.ttl).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: read key: %w", err)
	}
	e, err := k.unwrap(key, subject, v)
	if err != nil {
		return nil, err
	}
	k.cache.put(subject, e, gen)
	return e, nil
}

// create makes a key and stores it with SET NX. It returns nil, nil if
// another writer won the race, so the caller reads the winner's key.
func (k *Keyring) create(ctx context.Context, subject string) (*entry, error) {
	key := k.prefix + subject
	gen := k.cache.generation()
	var dek [dekLen]byte
	defer clear(dek[:])
	_, _ = rand.Read(dek[:])
	keyID := make([]byte, keyIDLen)
	_, _ = rand.Read(keyID)
	ok, err := k.rdb.SetNX(ctx, key, k.wrap(key, keyID, dek[:]), k.ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("keyring: store key: %w", err)
	}
	if !ok {
		return nil, nil
	}
	e, err := newEntry(subject, keyID, dek[:])
	if err != nil {
		return nil, err
	}
	k.cache.put(subject, e, gen)
	return e, nil
}

// unwrap decrypts a Redis value into a cache entry.
func (k *Keyring) unwrap(key, subject string, v []byte) (*entry, error) {
	dek, _, err := k.unwrapDEK(key, v)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	return newEntry(subject, v[:keyIDLen], dek)
}

// unwrapDEK decrypts a Redis value with the master key or, failing that,
// a previous one (current reports which).
func (k *Keyring) unwrapDEK(key string, v []byte) (dek []byte, current bool, err error) {
	if len(v) != wrappedLen {
		return nil, false, fmt.Errorf("%w: the stored key has %d bytes, want %d", ErrTampered, len(v), wrappedLen)
	}
	keyID, nonce := v[:keyIDLen], v[keyIDLen:keyIDLen+nonceLen]
	aad := wrapAAD(key, keyID)
	if dek, err := k.kek.Open(nil, nonce, v[keyIDLen+nonceLen:], aad); err == nil {
		return dek, true, nil
	}
	for _, old := range k.old {
		if dek, err := old.Open(nil, nonce, v[keyIDLen+nonceLen:], aad); err == nil {
			return dek, false, nil
		}
	}
	return nil, false, errWrongMaster
}

// wrap encrypts dek for the Redis key under the master key.
func (k *Keyring) wrap(key string, keyID, dek []byte) []byte {
	out := make([]byte, keyIDLen+nonceLen, wrappedLen)
	copy(out, keyID)
	nonce := out[keyIDLen:]
	_, _ = rand.Read(nonce)
	return k.kek.Seal(out, nonce, dek, wrapAAD(key, keyID))
}

// rewrapScript replaces a wrapped key only if it is still the one read,
// keeping its TTL: a key destroyed or recreated meanwhile is left alone.
var rewrapScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') and 1
end
return 0`)

// Rewrap moves every data key wrapped by a previous master key to the
// current one, for a rotation: run with the new MasterKey and the old ones
// in PreviousMasterKeys, by a process that may run beside the pipeline
// (a key destroyed or recreated meanwhile is left as it is). It returns
// how many it rewrapped and how many were already current; a key no master
// key opens is an error naming its Redis key. progress, if set, is called
// every 1,000 keys. It SCANs the one server the client talks to: on a Redis
// Cluster, run it against each primary.
func (k *Keyring) Rewrap(ctx context.Context, progress func(scanned int)) (rewrapped, current int, err error) {
	it := k.rdb.Scan(ctx, 0, redisglob.Escape(k.prefix)+"*", 1000).Iterator()
	scanned := 0
	for it.Next(ctx) {
		key := it.Val()
		if scanned++; progress != nil && scanned%1000 == 0 {
			progress(scanned)
		}
		v, err := k.rdb.Get(ctx, key).Bytes()
		if errors.Is(err, redis.Nil) {
			continue // destroyed since the scan saw it
		}
		if err != nil {
			return rewrapped, current, fmt.Errorf("keyring: read %s: %w", key, err)
		}
		dek, isCurrent, err := k.unwrapDEK(key, v)
		if err != nil {
			return rewrapped, current, fmt.Errorf("keyring: %s: %w", key, err)
		}
		if isCurrent {
			clear(dek)
			current++
			continue
		}
		nv := k.wrap(key, v[:keyIDLen], dek)
		clear(dek)
		n, err := rewrapScript.Run(ctx, k.rdb, []string{key}, v, nv).Int()
		if err != nil {
			return rewrapped, current, fmt.Errorf("keyring: rewrap %s: %w", key, err)
		}
		rewrapped += n
	}
	if err := it.Err(); err != nil {
		return rewrapped, current, fmt.Errorf("keyring: scan: %w", err)
	}
	return rewrapped, current, nil
}

// deriveKEK is the key-encryption key of a master key.
func deriveKEK(master []byte) (cipher.AEAD, error) {
	b, err := hkdf.Key(sha256.New, master, nil, kekInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("keyring: derive key-encryption key: %w", err)
	}
	defer clear(b)
	return newGCM(b)
}

// wrapAAD binds a wrapped key to its Redis key and generation, so a wrapped
// key copied to another subject or keyID does not unwrap.
func wrapAAD(key string, keyID []byte) []byte {
	aad := make([]byte, 0, len(key)+len(keyID))
	return append(append(aad, key...), keyID...)
}

func newEntry(subject string, keyID, dek []byte) (*entry, error) {
	aead, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	e := &entry{aead: aead, aad: []byte(subject)}
	copy(e.keyID[:], keyID)
	return e, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: aes: %w", err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("keyring: gcm: %w", err)
	}
	return g, nil
}

// metrics holds the label children used on the hot path, resolved once.
type metrics struct {
	seal, open, destroy outcomes
	hit, miss           prometheus.Counter
}

type outcomes struct {
	ok, destroyed, tampered, notSealed, err prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (metrics, error) {
	ops := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aether_keyring_operations_total",
		Help: "Keyring operations by op (seal, open, destroy) and outcome (ok, destroyed, tampered, not_sealed, error).",
	}, []string{"op", "outcome"})
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aether_keyring_cache_lookups_total",
		Help: "Lookups of unwrapped data keys in the process cache, by result (hit, miss).",
	}, []string{"result"})
	if reg != nil {
		var err error
		// Several keyrings may share a registry; they then share counters.
		if ops, err = register(reg, ops); err != nil {
			return metrics{}, err
		}
		if lookups, err = register(reg, lookups); err != nil {
			return metrics{}, err
		}
	}
	of := func(op string) outcomes {
		return outcomes{
			ok:        ops.WithLabelValues(op, "ok"),
			destroyed: ops.WithLabelValues(op, "destroyed"),
			tampered:  ops.WithLabelValues(op, "tampered"),
			notSealed: ops.WithLabelValues(op, "not_sealed"),
			err:       ops.WithLabelValues(op, "error"),
		}
	}
	return metrics{
		seal:    of("seal"),
		open:    of("open"),
		destroy: of("destroy"),
		hit:     lookups.WithLabelValues("hit"),
		miss:    lookups.WithLabelValues("miss"),
	}, nil
}

func register(reg prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing, nil
		}
	}
	return nil, fmt.Errorf("keyring: register metrics: %w", err)
}

func (m *metrics) count(o *outcomes, err error) {
	switch {
	case err == nil:
		o.ok.Inc()
	case errors.Is(err, ErrDestroyed):
		o.destroyed.Inc()
	case errors.Is(err, ErrTampered):
		o.tampered.Inc()
	case errors.Is(err, ErrNotSealed):
		o.notSealed.Inc()
	default:
		o.err.Inc()
	}
}

func (m *metrics) lookup(hit bool) {
	if hit {
		m.hit.Inc()
	} else {
		m.miss.Inc()
	}
}

// grow returns dst with room for n more bytes: an exact allocation when
// dst is nil (Seal and Open return exactly what they produce).
func grow(dst []byte, n int) []byte {
	if dst == nil {
		return make([]byte, 0, n)
	}
	return slices.Grow(dst, n)
}
