// Package pipebench measures what the Aether runtime costs on the reference
// sessionizer pipeline. In one run, on one embedded broker, it pushes the
// same events through three Goka processors, one after the other:
//
//   - aether: the sessionizer topology of examples/recommendations/pipeline
//     (sessionize -> features, binary feature state, JSON feature records),
//     run by processors.New + Run;
//   - handwritten: the same operators called directly from a hand-written
//     Goka callback, with the same codecs, outputs and event-time timers,
//     but none of the runtime's envelope, fencing, de-duplication, dead
//     letters or metrics;
//   - bare: a Goka processor that only decodes each event and counts per
//     key in its table, the ceiling for any processor on this setup.
//
// A variant's rate is N divided by the time from the first record its
// callback sees to the moment all N records were handled, so group join and
// startup are excluded. Rates are compared as same-run medians (see FACTS:
// absolute rates drift by a third between runs).
package pipebench

import (
	"fmt"
	"slices"
	"time"
)

// Storage kinds for Config.Storage.
const (
	StorageMemory  = "memory"
	StorageLevelDB = "leveldb"
)

// Variant names, in the order they run within a round.
const (
	Aether = "aether"
	// AetherAudit is aether with the audit trail on (Config.Audit):
	// attestations to a hash-chained file, fsynced on every write.
	AetherAudit = "aether-audit"
	// AetherSeal is aether with sealing on (Config.Seal): its input
	// sealed per user, every input record opened and every table write
	// and output record sealed with a keyring on Redis.
	AetherSeal  = "aether-seal"
	Handwritten = "handwritten"
	Bare        = "bare"
)

// Variants lists the variants in run order; with Config.Audit, AetherAudit
// runs after Aether, and with Config.Seal, AetherSeal.
var Variants = []string{Aether, Handwritten, Bare}

// aetherGroup is Aether and the variants compared with it, in run order
// of odd rounds.
func (c Config) aetherGroup() []string {
	g := []string{Aether}
	if c.Audit {
		g = append(g, AetherAudit)
	}
	if c.Seal {
		g = append(g, AetherSeal)
	}
	return g
}

// variants are the variants this configuration runs, in order.
func (c Config) variants() []string {
	return slices.Concat(c.aetherGroup(), Variants[1:])
}

// order is the run order of round r (from 1): Variants rotated by r-1, so
// that no variant always runs first (on a fresh heap) or last. With Audit
// or Seal, AetherAudit and AetherSeal run right next to Aether, after it
// in odd rounds and before it in even ones: the pair whose ratio is
// reported runs seconds apart, under the same load.
func (c Config) order(r int) []string {
	i := (r - 1) % len(Variants)
	out := append(append([]string(nil), Variants[i:]...), Variants[:i]...)
	group := c.aetherGroup()
	if len(group) == 1 {
		return out
	}
	if r%2 == 0 {
		slices.Reverse(group)
	}
	at := slices.Index(out, Aether)
	return slices.Concat(out[:at], group, out[at+1:])
}

// Config describes a benchmark run. The zero value of a field selects its
// default (see Defaults).
type Config struct {
	// Events is the number of events pushed through each processor.
	Events int
	// Users is the number of distinct users (keys) of the clickstream.
	Users int
	// Partitions of the input, output and table topics.
	Partitions int
	// Rounds: each round runs every variant once.
	Rounds int
	// Storage is StorageMemory or StorageLevelDB (under a temporary
	// directory, removed at the end).
	Storage string
	// Seed of the clickstream generator.
	Seed uint64
	// Timeout bounds the processing of one variant in one round (after it
	// started); 0 = a generous default derived from Events.
	Timeout time.Duration
	// CPUProfile, when set, is the file the CPU profile of ProfileVariant
	// is written to: round 1 to CPUProfile, round r > 1 to CPUProfile.r<r>
	// (go tool pprof merges several files given together). The profile
	// covers the variant from its start until all events were handled.
	CPUProfile string
	// ProfileVariant is the variant profiled; default Aether.
	ProfileVariant string
	// Audit adds the AetherAudit variant: the aether pipeline with
	// processors.Audit writing attestations (the default mode) to an
	// audit.OpenFile trail with its default sync policy, in a temporary
	// directory. After each run the trail is verified and its attestations
	// must cover every input offset.
	Audit bool
	// Seal adds the AetherSeal variant: the same events, sealed per user
	// by a processors.Emitter with ClientSeal, on SealedRawTopic, run by
	// the aether pipeline with processors.Seal and a keyring.Keyring on
	// the Redis at Redis (a fresh keyring per run, the run's keys under a
	// prefix of its own, deleted at the end). After each run the keyring
	// must have opened and sealed at least one value per event, nothing
	// may be dead-lettered and the output must be sealed.
	Seal bool
	// Redis is the address of the keyring's Redis (Seal); default
	// DefaultRedis.
	Redis string
}

// Defaults of Config.
const (
	DefaultEvents     = 200000
	DefaultUsers      = 5000
	DefaultPartitions = 8
	DefaultRounds     = 5
	DefaultStorage    = StorageMemory
	DefaultSeed       = 1
)

func (c Config) withDefaults() Config {
	if c.Events == 0 {
		c.Events = DefaultEvents
	}
	if c.Users == 0 {
		c.Users = DefaultUsers
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Rounds == 0 {
		c.Rounds = DefaultRounds
	}
	if c.Storage == "" {
		c.Storage = DefaultStorage
	}
	if c.Timeout == 0 {
		// 2 minutes plus 1 ms per event: far above any sane rate.
		c.Timeout = 2*time.Minute + time.Duration(c.Events)*time.Millisecond
	}
	if c.ProfileVariant == "" {
		c.ProfileVariant = Aether
	}
	if c.Redis == "" {
		c.Redis = DefaultRedis
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Events < 1:
		return fmt.Errorf("events must be at least 1, got %d", c.Events)
	case c.Users < 1:
		return fmt.Errorf("users must be at least 1, got %d", c.Users)
	case c.Partitions < 1 || c.Partitions > 1024:
		return fmt.Errorf("partitions must be between 1 and 1024, got %d", c.Partitions)
	case c.Rounds < 1:
		return fmt.Errorf("rounds must be at least 1, got %d", c.Rounds)
	case c.Storage != StorageMemory && c.Storage != StorageLevelDB:
		return fmt.Errorf("storage must be %q or %q, got %q", StorageMemory, StorageLevelDB, c.Storage)
	case c.Timeout < 0:
		return fmt.Errorf("timeout must not be negative, got %s", c.Timeout)
	}
	if !slices.Contains(c.variants(), c.ProfileVariant) {
		return fmt.Errorf("profile variant must be one of %v, got %q", c.variants(), c.ProfileVariant)
	}
	return nil
}
