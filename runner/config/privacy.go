package config

import (
	"cmp"
	"strings"
	"time"

	"github.com/aetherai/aether/keyring"
)

// Privacy turns on crypto-shredding:
//
//	privacy:
//	  masterKeyEnv: AETHER_MASTER_KEY   # wraps the users' data keys; 32 bytes at least (base64 of 32 random bytes)
//	  keyPrefix: "aether:keys:"         # where the data keys live in Redis
//	  cacheTTL: 30s                     # how long a process keeps a data key in memory
//	  previousMasterKeyEnv: AETHER_MASTER_KEY_OLD   # during a rotation (runner keys rotate)
//
// With it, the API replaces each user id by its pseudonym (the keyed hash
// of forget.subjectKeyEnv, the one the audit trail uses) before anything
// is stored, so Kafka keys, tables and Redis keys hold pseudonyms only;
// and the values of the sealed streams (raw events, features, and their
// dead letters) are sealed with a data key per user, which a deletion
// destroys: what Kafka still holds of the user is then unreadable.
type Privacy struct {
	// MasterKeyEnv names the environment variable holding the master key
	// (at least MinMasterKeyBytes); empty means sealing is off.
	MasterKeyEnv string `yaml:"masterKeyEnv"`
	// KeyPrefix is the Redis key prefix of the data keys (default
	// DefaultDataKeyPrefix).
	KeyPrefix string `yaml:"keyPrefix"`
	// CacheTTL bounds how long a process keeps a data key in memory after
	// reading it (default DefaultDataKeyCacheTTL): a deletion run from
	// another process is complete everywhere after it.
	CacheTTL time.Duration `yaml:"cacheTTL"`
	// PreviousMasterKeyEnv names the environment variable holding the
	// master key being rotated out: data keys it wraps still open, new
	// ones are wrapped with the master key, and `runner keys rotate`
	// rewraps the old ones.
	PreviousMasterKeyEnv string `yaml:"previousMasterKeyEnv"`
}

// Defaults of Privacy: the keyring's.
const (
	MinMasterKeyBytes      = keyring.MinMasterKeyBytes
	DefaultDataKeyPrefix   = keyring.DefaultPrefix
	DefaultDataKeyCacheTTL = keyring.DefaultCacheTTL
)

// Sealing reports whether crypto-shredding is on.
func (p Privacy) Sealing() bool { return p.MasterKeyEnv != "" }

// MasterKey reads the master key from MasterKeyEnv.
func (p Privacy) MasterKey() ([]byte, error) {
	return envKey("privacy.masterKeyEnv", p.MasterKeyEnv, MinMasterKeyBytes)
}

// PreviousMasterKeys reads the master key of PreviousMasterKeyEnv, if one
// is named.
func (p Privacy) PreviousMasterKeys() ([][]byte, error) {
	k, err := envKey("privacy.previousMasterKeyEnv", p.PreviousMasterKeyEnv, MinMasterKeyBytes)
	if k == nil || err != nil {
		return nil, err
	}
	return [][]byte{k}, nil
}

// Prefix is KeyPrefix or its default.
func (p Privacy) Prefix() string { return cmp.Or(p.KeyPrefix, DefaultDataKeyPrefix) }

// Cache is CacheTTL or its default.
func (p Privacy) Cache() time.Duration { return cmp.Or(p.CacheTTL, DefaultDataKeyCacheTTL) }

func (c *Config) validatePrivacy(bad func(field, format string, args ...any)) {
	p := c.Privacy
	if !p.Sealing() {
		if p.KeyPrefix != "" || p.CacheTTL != 0 || p.PreviousMasterKeyEnv != "" {
			bad("privacy.masterKeyEnv", "is required when privacy is configured")
		}
		return
	}
	if c.Forget.SubjectKeyEnv == "" {
		bad("forget.subjectKeyEnv", "is required with privacy.masterKeyEnv: records are keyed by the users' pseudonyms, which must be the same in every process and after restarts")
	}
	if c.Redis.Addr == "" {
		bad("redis.addr", "is required with privacy.masterKeyEnv: the users' data keys live in Redis")
	}
	if p.PreviousMasterKeyEnv == p.MasterKeyEnv {
		bad("privacy.previousMasterKeyEnv", "names the same variable as privacy.masterKeyEnv")
	}
	if p.CacheTTL < 0 {
		bad("privacy.cacheTTL", "must not be negative")
	}
	if a, b := p.Prefix(), c.Redis.KeyPrefix; b != "" && (strings.HasPrefix(a, b) || strings.HasPrefix(b, a)) {
		bad("privacy.keyPrefix", "%q overlaps redis.keyPrefix %q: a scan of the cache's keys would take the data keys too", a, b)
	}
}
