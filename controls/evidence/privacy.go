package evidence

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/aetherai/aether/keyring"
	"github.com/aetherai/aether/topology"
	"github.com/redis/go-redis/v9"
)

// ProbeSubject starts the subject of the data key PersonalDataSealed
// creates and destroys; a random suffix keeps concurrent evaluations (two
// runners on one Redis) apart.
const ProbeSubject = "aether-evidence-probe"

// probeCleanupTimeout bounds the Destroy that removes the probe's data key
// when the probe ends early (the check's context may be done by then).
const probeCleanupTimeout = 5 * time.Second

// Sealing is what PersonalDataSealed checks: the configuration's privacy
// section and the topology's streams.
type Sealing struct {
	// Streams are the topology's streams, dead-letter topics included
	// (topology.Topology.Streams).
	Streams []topology.StreamSpec
	// MasterKeyEnv is privacy.masterKeyEnv; empty means sealing is off.
	MasterKeyEnv string
	// Prefix is the Redis key prefix of the data keys (privacy.keyPrefix
	// or its default).
	Prefix string
	// MasterKey reports whether the master key is readable: nil, or the
	// configuration error saying why not (never the key). A nil MasterKey
	// is taken as readable.
	MasterKey func() error
	// Keyring builds the keyring the runner uses (runner.NewKeyring) on
	// the configured Redis. Its errors (Redis unreachable) make the
	// control an error, not a fail.
	Keyring func(ctx context.Context) (*keyring.Keyring, error)
	// Redis, if set, is the data keys' Redis, whose eviction and
	// persistence settings the control reads (CONFIG GET).
	Redis redis.UniversalClient
}

// PersonalDataSealed is the crypto-shredding control: every stream that
// declares personal fields is sealed per user (dead-letter topics inherit
// the declaration), privacy.masterKeyEnv is set and its key readable, and
// a live probe on the configured Redis seals a value under a fresh probe
// subject, opens it, destroys the subject's data key and checks that the
// value then no longer opens (keyring.ErrDestroyed): deleting a user
// really makes what Kafka holds of them unreadable. The probe's key is
// destroyed whatever happens.
func PersonalDataSealed(s Sealing) Check {
	return Check{
		ID:       "personal_data_sealed",
		Title:    "Personal data in Kafka is sealed per user (crypto-shredding)",
		Criteria: []string{"C1.2", "P4.3"},
		Run: func(ctx context.Context) Result {
			return personalDataSealed(ctx, s)
		},
	}
}

func personalDataSealed(ctx context.Context, s Sealing) Result {
	var sealed, unsealed, details []string
	for _, st := range s.Streams {
		if len(st.Personal) == 0 {
			continue
		}
		fields := strings.Join(st.Personal, ", ")
		if st.Sealed {
			sealed = append(sealed, st.Name)
			details = append(details, fmt.Sprintf("sealed: %s (personal: %s)", st.Name, fields))
		} else {
			unsealed = append(unsealed, st.Name)
			details = append(details, fmt.Sprintf("NOT SEALED: %s (personal: %s)", st.Name, fields))
		}
	}
	declared := "no stream declares personal fields"
	if len(sealed)+len(unsealed) > 0 {
		declared = "streams with personal fields sealed per user: " + cmpOr(strings.Join(sealed, ", "), "none")
		if len(unsealed) > 0 {
			declared += "; not sealed: " + strings.Join(unsealed, ", ")
		}
	}
	declared += "; data keys in Redis under " + s.Prefix
	if s.MasterKeyEnv == "" {
		declared += ", sealing off (privacy.masterKeyEnv not set)"
	} else {
		declared += ", wrapped by the master key in $" + s.MasterKeyEnv
	}
	details = capped(details, maxDetails)

	var problems []string
	if len(unsealed) > 0 {
		problems = append(problems, fmt.Sprintf("%s with personal fields not sealed, so deleting a user leaves their records there readable: %s",
			plural(len(unsealed), "stream", "streams"), strings.Join(unsealed, ", ")))
	}
	var keyErr error
	if s.MasterKeyEnv != "" && s.MasterKey != nil {
		keyErr = s.MasterKey()
	}
	live, probeErr := "", ""
	switch {
	case s.MasterKeyEnv == "":
		live = "sealing is off: no data key probed"
		problems = append(problems, "sealing is off: privacy.masterKeyEnv is not set, so the personal data in Kafka cannot be crypto-shredded")
	case keyErr != nil:
		live = "the master key is not readable: no data key probed"
		problems = append(problems, "the master key is not readable: "+keyErr.Error())
	default:
		var bad string
		live, bad, probeErr = probe(ctx, s)
		if bad != "" {
			problems = append(problems, bad)
		}
		if s.Redis != nil {
			detail, bad := keyDurability(ctx, s.Redis)
			details = append(details, detail)
			if bad != "" {
				problems = append(problems, bad)
			}
		}
	}
	switch {
	case len(problems) > 0:
		return fail(declared, live, strings.Join(problems, "; "), details...)
	case probeErr != "":
		return Result{Status: StatusError, Declared: declared, Live: live, Why: probeErr, Details: details}
	}
	return pass(declared, live, "every personal stream is sealed, and a destroyed data key makes what it sealed unreadable", details...)
}

// probe seals, opens and destroys under a fresh probe subject. It returns
// what it found (live), why the control fails (bad) or why it could not be
// shown (failed: Redis errors), at most one of the last two.
func probe(ctx context.Context, s Sealing) (live, bad, failed string) {
	if s.Keyring == nil {
		return "no keyring: no data key probed", "", "no way to build the keyring was given"
	}
	kr, err := s.Keyring(ctx)
	if err != nil {
		return "no keyring: no data key probed", "", "the keyring cannot be built: " + err.Error()
	}
	if kr == nil {
		return "no keyring: no data key probed", "sealing is off: the runner builds no keyring", ""
	}
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	subject := ProbeSubject + "-" + hex.EncodeToString(nonce[:])
	plain := []byte("aether evidence probe " + hex.EncodeToString(nonce[:]))
	where := "probe data key under " + kr.Prefix()
	defer func() {
		// Whatever happened, the probe's key goes (a no-op when the probe
		// destroyed it), even when ctx is done.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeCleanupTimeout)
		defer cancel()
		_, _ = kr.Destroy(dctx, subject)
	}()

	box, err := kr.Seal(ctx, subject, plain)
	if err != nil {
		return where + ": Seal failed", "", "the probe could not seal (Redis): " + err.Error()
	}
	if !keyring.IsSealed(box) || bytes.Contains(box, plain) {
		return where + ": Seal returned the value unsealed", "Seal does not encrypt: the probe value is readable in what it returned", ""
	}
	got, err := kr.Open(ctx, subject, box)
	switch {
	case err != nil && !errors.Is(err, keyring.ErrDestroyed) && !errors.Is(err, keyring.ErrTampered):
		return where + ": Open failed", "", "the probe could not open its value (Redis): " + err.Error()
	case err != nil:
		return where + ": the sealed value does not open", "a value just sealed does not open: " + err.Error(), ""
	case !bytes.Equal(got, plain):
		return where + ": the value opened differs", "a value just sealed opens to something else", ""
	}
	existed, err := kr.Destroy(ctx, subject)
	if err != nil {
		return where + ": sealed and opened, Destroy failed", "", "the probe could not destroy its data key (Redis): " + err.Error()
	}
	if !existed {
		return where + ": sealed and opened, but no data key was in Redis to destroy",
			"the data key was not stored in Redis under " + kr.Prefix() + ": deleting a user would not destroy it", ""
	}
	_, err = kr.Open(ctx, subject, box)
	switch {
	case err == nil:
		return where + ": sealed, opened, destroyed, and the value still opens",
			"the value still opens after its data key was destroyed: deleting a user does not make their records unreadable", ""
	case errors.Is(err, keyring.ErrDestroyed):
		return where + ": sealed, opened back intact, destroyed; the value then no longer opens (" + err.Error() + ")", "", ""
	case errors.Is(err, keyring.ErrTampered) || errors.Is(err, keyring.ErrNotSealed):
		return where + ": sealed, opened, destroyed; the value then fails with " + err.Error(),
			"after the destruction the value fails with " + err.Error() + ", not as destroyed", ""
	}
	return where + ": sealed, opened, destroyed; Open then failed", "", "the probe could not check the destruction (Redis): " + err.Error()
}

// keyDurability reads how the data keys' Redis keeps them: a Redis that
// may evict keys (maxmemory with any policy but noeviction; the data keys
// have a TTL, so volatile-* policies take them too) deletes users' data
// at random, which fails the control; persistence is reported, since a
// Redis that keeps nothing loses every key on restart.
func keyDurability(ctx context.Context, rdb redis.UniversalClient) (detail, bad string) {
	cfg, err := configGet(ctx, rdb, "maxmemory", "maxmemory-policy", "appendonly", "save")
	if err != nil {
		return "data keys' Redis settings unknown (CONFIG GET: " + err.Error() + ")", ""
	}
	maxmemory, policy := cfg["maxmemory"], cfg["maxmemory-policy"]
	persist := "appendonly " + cmpOr(cfg["appendonly"], "?") + ", save " + strconv.Quote(cfg["save"])
	detail = fmt.Sprintf("data keys' Redis: maxmemory %s, maxmemory-policy %s, %s", cmpOr(maxmemory, "?"), cmpOr(policy, "?"), persist)
	if cfg["appendonly"] == "no" && strings.TrimSpace(cfg["save"]) == "" {
		detail += " (NOT PERSISTED: a restart loses every data key, and with them all sealed data)"
	}
	if maxmemory != "" && maxmemory != "0" && policy != "noeviction" {
		bad = fmt.Sprintf("the data keys' Redis may evict keys (maxmemory %s, maxmemory-policy %s): an evicted data key deletes its user's data; set maxmemory-policy noeviction", maxmemory, policy)
	}
	return detail, bad
}

// configGet reads the Redis settings names, one CONFIG GET each (before
// Redis 7 it takes a single parameter) in one round trip; the error is the
// first command's that failed.
func configGet(ctx context.Context, rdb redis.UniversalClient, names ...string) (map[string]string, error) {
	cmds := make([]*redis.MapStringStringCmd, len(names))
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, name := range names {
			cmds[i] = p.ConfigGet(ctx, name)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	cfg := make(map[string]string, len(names))
	for _, c := range cmds {
		maps.Copy(cfg, c.Val())
	}
	return cfg, nil
}
