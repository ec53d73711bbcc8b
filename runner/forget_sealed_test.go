package runner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/controls/forget"
	"github.com/aetherai/aether/internal/engine"
	"github.com/aetherai/aether/keyring"
	"github.com/aetherai/aether/processors"
	"github.com/aetherai/aether/runner"
	"github.com/aetherai/aether/runner/api"
)

const sealedMasterKey = "sealed-test-master-key-0123456789abcdef"

// topicScan is what a scan of every topic of the cluster finds about a
// user: records keyed by the user's pseudonym (control records apart),
// how many of them a fresh keyring still opens (or, unsealed, reads), and
// any record or Redis key that holds the raw user id or address.
type topicScan struct {
	records, readable map[string]int64 // by topic
	rawHits           []string
}

func (e *forgetEnv) scanAll(user, subject string, kr *keyring.Keyring) topicScan {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	adm, err := broker.NewAdmin(ctx, e.b.Addrs(), broker.SaramaConfig("sealed-scan"))
	require.NoError(t, err)
	topics, err := adm.ListTopics()
	require.NoError(t, err)
	require.NoError(t, adm.Close())
	s := topicScan{records: map[string]int64{}, readable: map[string]int64{}}
	leak := func(b []byte) bool {
		return bytes.Contains(b, []byte(user)) || bytes.Contains(b, []byte("192.0.2.7"))
	}
	for topic := range topics {
		msgs, err := broker.Consume(ctx, e.b.Addrs(), broker.SaramaConfig("sealed-scan"), topic)
		require.NoError(t, err)
		for _, m := range msgs {
			hit := leak(m.Key) || leak(m.Value)
			for _, h := range m.Headers {
				hit = hit || leak(h.Value)
			}
			if hit {
				s.rawHits = append(s.rawHits, topic)
			}
			if string(m.Key) != subject || processors.IsForget(m) || len(m.Value) == 0 {
				continue
			}
			s.records[topic]++
			v := m.Value
			if strings.HasSuffix(topic, "-table") {
				off, err := engine.StateOffset(v) // the sealed state after the envelope's bookkeeping
				require.NoError(t, err)
				v = v[off:]
			}
			if !keyring.IsSealed(v) {
				s.readable[topic]++ // in clear
				continue
			}
			if _, err := kr.Open(ctx, subject, v); err == nil {
				s.readable[topic]++
			} else {
				require.ErrorIs(t, err, keyring.ErrDestroyed)
			}
		}
	}
	for _, k := range e.redisKeys("*") {
		if strings.Contains(k, user) {
			s.rawHits = append(s.rawHits, "redis "+k)
		}
	}
	return s
}

// TestForgetSealedLeavesNothingReadable runs the pipeline with privacy on
// and forgets alice: before, no topic, header or Redis key holds her id or
// address (the stores know her by pseudonym) and every record of hers
// opens; after, none does — raw, processed, dead-letter and table topics
// alike — while bob's still do; the receipt's counts are what the scan
// found before; the trail verifies.
func TestForgetSealedLeavesNothingReadable(t *testing.T) {
	t.Setenv("AETHER_TEST_MASTER_KEY", sealedMasterKey)
	e := startForgetEnv(t, "privacy: {masterKeyEnv: AETHER_TEST_MASTER_KEY}")
	alice, bob := api.SubjectRef([]byte(forgetSubjectKey), "alice"), api.SubjectRef([]byte(forgetSubjectKey), "bob")
	rdb := redis.NewClient(&redis.Options{Addr: e.mr.Addr()})
	defer rdb.Close()
	// A second process's keyring: nothing cached.
	fresh := func() *keyring.Keyring {
		kr, err := runner.NewKeyring(e.cfg, rdb, e.run.Pipeline.Topology, nil)
		require.NoError(t, err)
		return kr
	}

	now := time.Now().UTC().Add(-time.Minute)
	e.send("alice", 3, now)
	e.send("bob", 2, now)
	// A sealed record that does not decode: a dead letter of alice's.
	kr := fresh()
	bad, err := kr.Seal(t.Context(), alice, []byte(`{"userId":"`+alice+`",`))
	require.NoError(t, err)
	em, err := processors.NewEmitter(e.b.Addrs(), e.run.Pipeline.Raw)
	require.NoError(t, err)
	require.NoError(t, em.EmitRaw(alice, bad))
	require.NoError(t, em.Finish())
	raw, feats := e.run.Pipeline.Raw.Name(), e.run.Pipeline.Features.Name()
	require.Eventually(t, func() bool {
		fa, fb := e.features("alice"), e.features("bob")
		return fa != nil && fb != nil && fa["eventsTotal"] == 3.0 && fb["eventsTotal"] == 2.0 &&
			e.mr.Exists("aether:recs:"+alice) && e.mr.Exists("aether:recs:"+bob) && e.count(raw+".dlq", alice) == 1
	}, 60*time.Second, 100*time.Millisecond, "alice and bob have features, recommendations, and alice a dead letter")
	code, body := e.do("GET", "http://"+e.run.Addr+"/v1/recommendations/alice", "shop-key", "")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"userId":"alice"`, "answers name the user as asked")

	// Every key Aether wrote, data keys included, expires.
	for _, k := range e.redisKeys("*") {
		require.Positive(t, e.mr.TTL(k), "key %s has no TTL", k)
	}
	require.True(t, e.mr.Exists("aether:keys:"+alice), "alice's data key")

	before := e.scanAll("alice", alice, fresh())
	t.Logf("before: records %v, readable %v", before.records, before.readable)
	require.Empty(t, before.rawHits, "no store holds alice's id or address")
	require.EqualValues(t, 4, before.records[raw], "3 events and the bad record of alice on %s", raw)
	require.Positive(t, before.records[feats])
	require.EqualValues(t, 1, before.records[raw+".dlq"])
	require.Positive(t, before.records["sessionizer-table"])
	require.Equal(t, before.records, before.readable, "every record of alice opens before")

	code, body = e.do("POST", "http://"+e.run.AdminAddr+"/admin/v1/users/alice/forget", "adm-token", "")
	require.Equal(t, http.StatusOK, code, body)
	t.Logf("receipt: %s", body)
	var rc forget.Receipt
	require.NoError(t, json.Unmarshal([]byte(body), &rc))
	require.True(t, rc.Complete, body)
	require.Equal(t, []string{"data-key", "feature-store", "redis", "topic:" + raw, "topic:" + feats, "dead-letters", "loopback", "audit"}, rc.Expected)
	got := map[string]forget.StoreReceipt{}
	for _, s := range rc.Stores {
		got[s.Name] = s
	}
	require.Equal(t, forget.StatusDeleted, got["data-key"].Status)
	require.EqualValues(t, 1, *got["data-key"].Count)
	require.EqualValues(t, before.records[raw], *got["topic:"+raw].Count)
	require.EqualValues(t, before.records[feats], *got["topic:"+feats].Count)
	require.EqualValues(t, before.records[raw+".dlq"]+before.records[feats+".dlq"], *got["dead-letters"].Count)
	for _, name := range []string{"topic:" + raw, "topic:" + feats, "dead-letters"} {
		require.Equal(t, forget.StatusShredded, got[name].Status, name)
		for _, tr := range got[name].Topics {
			require.NotNil(t, tr.Readable, tr.Topic)
			require.Zero(t, *tr.Readable, tr.Topic)
		}
	}

	after := e.scanAll("alice", alice, fresh())
	t.Logf("after: records %v, readable %v", after.records, after.readable)
	require.Empty(t, after.rawHits)
	for topic, n := range after.readable {
		require.Zero(t, n, "%d records of alice still open on %s", n, topic)
	}
	require.Equal(t, before.records[raw], after.records[raw], "Kafka still holds them, unreadable")
	require.Nil(t, e.features("alice"))
	require.Empty(t, e.redisKeys("*"+alice+"*"), "no cache entry, no data key")
	// bob is intact, and his records still open.
	require.NotNil(t, e.features("bob"))
	bobs := e.scanAll("bob", bob, fresh())
	require.Positive(t, bobs.readable[raw])
	require.Equal(t, bobs.records, bobs.readable)

	// Alice again: a new data key, a fresh state.
	e.send("alice", 1, time.Now().UTC())
	require.Eventually(t, func() bool {
		fa := e.features("alice")
		return fa != nil && fa["eventsTotal"] == 1.0
	}, 30*time.Second, 100*time.Millisecond)

	e.stop()
	trail, err := os.ReadFile(e.trailPath)
	require.NoError(t, err)
	require.NotContains(t, string(trail), "alice")
	// runner audit verify: the chain, and attestations covering every
	// offset the processors read, sealed or not.
	var out, errOut bytes.Buffer
	code = cliMain([]string{"audit", "verify", e.trailPath}, &out, &errOut)
	require.Equal(t, 0, code, "%s%s", out.String(), errOut.String())
}
