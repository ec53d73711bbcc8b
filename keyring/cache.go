package keyring

import (
	"crypto/cipher"
	"sync"
	"time"
)

// entry is an unwrapped data key. It is immutable once cached.
type entry struct {
	keyID   [keyIDLen]byte
	aead    cipher.AEAD
	aad     []byte // the subject, kept as bytes so Seal and Open do not convert it
	expires time.Time
}

// keyCache maps subjects to unwrapped keys for a bounded time. Reads, the
// hot path, take only the read lock.
type keyCache struct {
	mu   sync.RWMutex
	m    map[string]*entry
	size int
	ttl  time.Duration
	now  func() time.Time
	// forgets counts forget calls: a key read from Redis before one is
	// not cached after it (it may be the key just destroyed).
	forgets uint64
}

func newKeyCache(size int, ttl time.Duration) *keyCache {
	return &keyCache{m: make(map[string]*entry), size: size, ttl: ttl, now: time.Now}
}

// get returns the subject's key if cached and not expired. An expired entry
// is dropped (the key schedule it holds is key material).
func (c *keyCache) get(subject string) (*entry, bool) {
	c.mu.RLock()
	e, ok := c.m[subject]
	c.mu.RUnlock()
	if !ok {
		return nil, false
	}
	if !c.now().Before(e.expires) {
		c.mu.Lock()
		if c.m[subject] == e {
			delete(c.m, subject)
		}
		c.mu.Unlock()
		return nil, false
	}
	return e, true
}

// generation is what put must be given for an entry read from Redis now.
func (c *keyCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.forgets
}

// put caches e for the cache TTL, evicting when full, unless a key was
// forgotten since gen (then e may be a destroyed key, and is not cached).
func (c *keyCache) put(subject string, e *entry, gen uint64) {
	e.expires = c.now().Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.forgets != gen {
		return
	}
	if _, ok := c.m[subject]; !ok && len(c.m) >= c.size {
		c.evict()
	}
	c.m[subject] = e
}

// evict drops expired entries and, if that frees no room, arbitrary ones
// (map order) down to 15/16 of the size, so a cache full of live keys pays
// for a sweep once per size/16 inserts, not on every insert.
func (c *keyCache) evict() {
	now := c.now()
	for s, e := range c.m {
		if !now.Before(e.expires) {
			delete(c.m, s)
		}
	}
	if len(c.m) < c.size {
		return
	}
	target := c.size - max(c.size/16, 1)
	for s := range c.m {
		if len(c.m) <= target {
			break
		}
		delete(c.m, s)
	}
}

func (c *keyCache) forget(subject string) {
	c.mu.Lock()
	delete(c.m, subject)
	c.forgets++
	c.mu.Unlock()
}

func (c *keyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
