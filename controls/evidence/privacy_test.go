package evidence_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/controls/evidence"
	"github.com/aetherai/aether/internal/redistest"
	"github.com/aetherai/aether/keyring"
	"github.com/aetherai/aether/operators"
	"github.com/aetherai/aether/runner"
	"github.com/aetherai/aether/runner/config"
	"github.com/aetherai/aether/topology"
)

type visit struct {
	UserID string `json:"userId"`
}

// privacyTopology has a sealed personal source read by a processor (so a
// sealed dead-letter topic), an impersonal output and, when leak is set, a
// personal stream that is not sealed (and its dead letters).
func privacyTopology(t *testing.T, leak bool) *topology.Topology {
	t.Helper()
	top := topology.New("privacy")
	raw := topology.NewStream("visits_raw", codec.JSON[visit](), topology.Personal("userId"), topology.Sealed())
	top.Source(raw)
	copyOp := func(name string) operators.Operator[struct{}, visit, visit] {
		return operators.Func(name, func(_ operators.Context[struct{}], in visit, emit func(visit) error) error { return emit(in) })
	}
	out := topology.NewStream("visits_count", codec.JSON[visit]())
	if leak {
		out = topology.NewStream("visits_enriched", codec.JSON[visit](), topology.Personal("userId"))
		topology.AddProcessor(top, "sink", out, nil, copyOp("sink")).Emit(topology.NewStream("visits_done", codec.JSON[visit]()))
	}
	topology.AddProcessor(top, "enrich", raw, nil, copyOp("enrich")).Emit(out)
	require.NoError(t, top.Validate())
	return top
}

const masterEnv = "AETHER_EVIDENCE_TEST_MASTER_KEY"

// sealing is the control's input for top and the privacy section p, with
// the keyring runner.NewKeyring builds on c.
func sealing(top *topology.Topology, p config.Privacy, c redis.UniversalClient) evidence.Sealing {
	cfg := &config.Config{Privacy: p}
	return evidence.Sealing{Streams: top.Streams(), MasterKeyEnv: p.MasterKeyEnv, Prefix: p.Prefix(),
		MasterKey: func() error { _, err := p.MasterKey(); return err },
		Keyring: func(context.Context) (*keyring.Keyring, error) {
			return runner.NewKeyring(cfg, c, top, nil)
		}}
}

// privacyOn is a real Redis, a unique data-key prefix cleaned up at the
// end, and a privacy block with a 32-byte master key under that prefix.
func privacyOn(t *testing.T) (*redis.Client, string, config.Privacy) {
	t.Helper()
	c := redistest.Real(t)
	prefix := uniquePrefix(t, c)
	t.Setenv(masterEnv, strings.Repeat("k", 32))
	return c, prefix, config.Privacy{MasterKeyEnv: masterEnv, KeyPrefix: prefix}
}

func TestEvidencePersonalDataSealedPasses(t *testing.T) {
	c, prefix, p := privacyOn(t)

	check := evidence.PersonalDataSealed(sealing(privacyTopology(t, false), p, c))
	require.Equal(t, "personal_data_sealed", check.ID)
	require.Equal(t, []string{"C1.2", "P4.3"}, check.Criteria)
	require.Equal(t, "Personal data in Kafka is sealed per user (crypto-shredding)", check.Title)
	res := run(t, check)
	require.Equal(t, evidence.StatusPass, res.Status, "%s / %s", res.Why, res.Live)
	require.Equal(t, "streams with personal fields sealed per user: visits_raw, visits_raw.dlq; data keys in Redis under "+prefix+
		", wrapped by the master key in $"+masterEnv, res.Declared)
	require.Equal(t, "probe data key under "+prefix+": sealed, opened back intact, destroyed; the value then no longer opens ("+
		keyring.ErrDestroyed.Error()+")", res.Live)
	require.Equal(t, []string{"sealed: visits_raw (personal: userId)", "sealed: visits_raw.dlq (personal: userId)"}, res.Details)
	require.NotContains(t, res.Declared+res.Live+res.Why, strings.Repeat("k", 32))
	require.Empty(t, redistest.ScanKeys(t, c, prefix), "the probe leaves no data key behind")
}

func TestEvidencePersonalDataSealedOff(t *testing.T) {
	c := miniRedis(t)
	res := run(t, evidence.PersonalDataSealed(sealing(privacyTopology(t, false), config.Privacy{}, c)))
	require.Equal(t, evidence.StatusFail, res.Status)
	require.Equal(t, "sealing is off: privacy.masterKeyEnv is not set, so the personal data in Kafka cannot be crypto-shredded", res.Why)
	require.Equal(t, "sealing is off: no data key probed", res.Live)
	require.Contains(t, res.Declared, "sealing off (privacy.masterKeyEnv not set)")
	require.Empty(t, redistest.ScanKeys(t, c, config.DefaultDataKeyPrefix))
}

func TestEvidencePersonalDataSealedNamesUnsealedStreams(t *testing.T) {
	c, prefix, p := privacyOn(t)
	res := run(t, evidence.PersonalDataSealed(sealing(privacyTopology(t, true), p, c)))
	require.Equal(t, evidence.StatusFail, res.Status, res.Why)
	require.Equal(t, "2 streams with personal fields not sealed, so deleting a user leaves their records there readable: visits_enriched, visits_enriched.dlq", res.Why)
	require.Contains(t, res.Declared, "not sealed: visits_enriched, visits_enriched.dlq")
	require.Contains(t, res.Details, "NOT SEALED: visits_enriched (personal: userId)")
	require.Contains(t, res.Live, "no longer opens", "the probe still runs")
	require.Empty(t, redistest.ScanKeys(t, c, prefix))
}

func TestEvidencePersonalDataSealedShortMasterKey(t *testing.T) {
	c := miniRedis(t)
	short := "too-short-a-master-key"
	t.Setenv(masterEnv, short)
	p := config.Privacy{MasterKeyEnv: masterEnv}
	res := run(t, evidence.PersonalDataSealed(sealing(privacyTopology(t, false), p, c)))
	require.Equal(t, evidence.StatusFail, res.Status)
	require.True(t, strings.HasPrefix(res.Why, "the master key is not readable: "), res.Why)
	require.Contains(t, res.Why, "environment variable "+masterEnv+" must hold a key of at least 32 bytes")
	require.NotContains(t, res.Declared+res.Live+res.Why+strings.Join(res.Details, "\n"), short)
	require.Empty(t, redistest.ScanKeys(t, c, p.Prefix()))
}

func TestEvidencePersonalDataSealedRedisErrors(t *testing.T) {
	t.Setenv(masterEnv, strings.Repeat("k", 32))
	p := config.Privacy{MasterKeyEnv: masterEnv}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	res := run(t, evidence.PersonalDataSealed(sealing(privacyTopology(t, false), p, c)))
	require.Equal(t, evidence.StatusError, res.Status)
	require.True(t, strings.HasPrefix(res.Why, "the probe could not seal (Redis): keyring: "), res.Why)

	// A keyring that cannot be built is an error too, with its reason.
	s := sealing(privacyTopology(t, false), p, c)
	s.Keyring = func(context.Context) (*keyring.Keyring, error) {
		return nil, errors.New("cannot connect to Redis: refused")
	}
	res = run(t, evidence.PersonalDataSealed(s))
	require.Equal(t, evidence.StatusError, res.Status)
	require.Equal(t, "the keyring cannot be built: cannot connect to Redis: refused", res.Why)
}

// cancelAfterSet cancels the evaluation once a key is written: the probe
// has its data key, and what follows fails.
type cancelAfterSet struct{ cancel func() }

func (h cancelAfterSet) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h cancelAfterSet) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if cmd.Name() == "set" {
			h.cancel()
		}
		return err
	}
}
func (h cancelAfterSet) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// The probe's key goes even when the evaluation's context ends mid-probe.
func TestEvidencePersonalDataSealedCleansUpOnFailure(t *testing.T) {
	c, prefix, p := privacyOn(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hooked := redis.NewClient(&redis.Options{Addr: redistest.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = hooked.Close() })
	hooked.AddHook(cancelAfterSet{cancel})

	res := evidence.PersonalDataSealed(sealing(privacyTopology(t, false), p, hooked)).Run(ctx)
	require.Equal(t, evidence.StatusError, res.Status, "%s / %s", res.Why, res.Live)
	require.Contains(t, res.Why, "context canceled")
	require.Empty(t, redistest.ScanKeys(t, c, prefix), "the probe's key is destroyed on failure too")
}

// A Redis that may evict the data keys fails the control (an evicted key
// deletes a user's data); one that keeps nothing on disk is reported.
func TestEvidencePersonalDataSealedKeyStoreDurability(t *testing.T) {
	t.Setenv(masterEnv, strings.Repeat("k", 32))
	p := config.Privacy{MasterKeyEnv: masterEnv}
	for _, tc := range []struct {
		name   string
		args   []string
		status evidence.Status
		detail string
	}{
		{"no limit", nil, evidence.StatusPass, "maxmemory 0, maxmemory-policy noeviction, appendonly no, save \"\" (NOT PERSISTED"},
		{"evicting", []string{"--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru", "--appendonly", "yes"}, evidence.StatusFail,
			"maxmemory 67108864, maxmemory-policy volatile-lru, appendonly yes"},
		{"capped, no eviction", []string{"--maxmemory", "64mb", "--maxmemory-policy", "noeviction"}, evidence.StatusPass, "maxmemory-policy noeviction"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := redistest.Start(t, tc.args...)
			s := sealing(privacyTopology(t, false), p, c)
			s.Redis = c
			res := evidence.PersonalDataSealed(s).Run(context.Background())
			require.Equal(t, tc.status, res.Status, "%+v", res)
			require.Contains(t, strings.Join(res.Details, "\n"), tc.detail)
			if tc.status == evidence.StatusFail {
				require.Contains(t, res.Why, "the data keys' Redis may evict keys (maxmemory 67108864, maxmemory-policy volatile-lru)")
			}
		})
	}
}
