package runner

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/aetherai/aether/keyring"
	"github.com/aetherai/aether/runner/config"
	"github.com/aetherai/aether/topology"
)

// NewKeyring returns the keyring of privacy.masterKeyEnv, keeping the
// users' data keys in rdb, or nil when sealing is off. A data key lives a
// day longer than the longest retention of the topology's sealed streams
// (at least 7 days) after its last use, so it outlives every stream record
// sealed with it and still expires, as every key Aether writes does (a
// table's state sealed with an expired key is the state of a user away
// longer than that, who starts afresh).
func NewKeyring(cfg *config.Config, rdb redis.UniversalClient, t *topology.Topology, reg prometheus.Registerer) (*keyring.Keyring, error) {
	if !cfg.Privacy.Sealing() {
		return nil, nil
	}
	master, err := cfg.Privacy.MasterKey()
	if err != nil {
		return nil, err
	}
	defer clear(master) // the keyring keeps only what it derives
	previous, err := cfg.Privacy.PreviousMasterKeys()
	if err != nil {
		return nil, err
	}
	for _, p := range previous {
		defer clear(p)
	}
	return keyring.New(keyring.Options{Redis: rdb, MasterKey: master, PreviousMasterKeys: previous, Prefix: cfg.Privacy.Prefix(),
		TTL: DataKeyTTL(t), CacheTTL: cfg.Privacy.Cache(), Registerer: reg})
}

// DataKeyTTL is the lifetime of a data key after its last use: the longest
// retention of t's sealed streams (7 days when shorter or unset) plus a
// day.
func DataKeyTTL(t *topology.Topology) time.Duration {
	longest := 7 * 24 * time.Hour
	for _, s := range t.Streams() {
		if s.Sealed && s.Retention > longest {
			longest = s.Retention
		}
	}
	return longest + 24*time.Hour
}
