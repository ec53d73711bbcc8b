package forget_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/broker/brokertest"
	"github.com/aetherai/aether/controls/evidence"
	"github.com/aetherai/aether/controls/forget"
	"github.com/aetherai/aether/processors"
)

const (
	alice, bob       = "alice", "bob"
	aliceSubject     = "5ub1ec7a11ce"
	bobSubject       = "5ub1ec7b0b"
	prefix           = "aether:recs:"
	rawTopic, dlq    = "user_events_raw", "user_events_raw.dlq"
	week             = 7 * 24 * time.Hour
	missingDLQ       = "user_features_processed.dlq"
	auditEventsEach  = 3
	aliceRawRecords  = 2
	aliceDeadLetters = 1
)

// trail writes a file trail with auditEventsEach events for each subject
// and returns its path.
func trail(t *testing.T, subjects ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := audit.OpenFile(path)
	require.NoError(t, err)
	for _, sub := range subjects {
		for i := range auditEventsEach {
			e, err := audit.New(audit.Event{Kind: audit.KindAPIRequest, Actor: "shop", Action: "GET",
				Resource: "/v1/recommendations/{userId}", Subject: sub, Outcome: "200", Attributes: map[string]string{"i": string(rune('0' + i))}})
			require.NoError(t, err)
			require.NoError(t, s.Write(context.Background(), e))
		}
	}
	require.NoError(t, s.Close())
	return path
}

func produce(t *testing.T, addrs []string, topic, key string, value []byte, at time.Time, headers ...sarama.RecordHeader) {
	t.Helper()
	cfg := broker.SaramaConfig("forget-test")
	cfg.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(addrs, cfg)
	require.NoError(t, err)
	defer p.Close()
	_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(value), Timestamp: at, Headers: headers})
	require.NoError(t, err)
}

// TestForgetterStoresAndReceipt runs the Redis, topic and audit stores on
// real parts (miniredis, the embedded Kafka broker, a file trail) and
// checks the receipt: counts, expiry, files, the evidence format, and the
// audit record under the pseudonym.
func TestForgetterStoresAndReceipt(t *testing.T) {
	ctx := t.Context()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	for _, u := range []string{alice, bob} {
		require.NoError(t, rdb.Set(ctx, prefix+u, "{}", time.Hour).Err())
	}
	require.NoError(t, rdb.Set(ctx, prefix+alice+"x", "{}", time.Hour).Err(), "another user whose id starts with alice's")

	b := brokertest.Start(t, broker.Partitions(2))
	addrs, sc := b.Addrs(), broker.SaramaConfig("forget-test")
	for _, topic := range []string{rawTopic, dlq} {
		require.NoError(t, broker.EnsureTopic(ctx, addrs, sc, broker.TopicSpec{Name: topic, Partitions: 2, Retention: week}))
	}
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	produce(t, addrs, rawTopic, alice, []byte(`{"userId":"alice"}`), t0)
	produce(t, addrs, rawTopic, bob, []byte(`{"userId":"bob"}`), t0.Add(time.Hour))
	produce(t, addrs, rawTopic, alice, []byte(`{"userId":"alice"}`), t0.Add(2*time.Hour))
	produce(t, addrs, dlq, alice, []byte(`not json`), t0.Add(3*time.Hour))
	ctrl := sarama.RecordHeader{Key: []byte(processors.HeaderControl), Value: []byte(processors.ControlForget)}
	produce(t, addrs, rawTopic, alice, []byte{}, t0.Add(4*time.Hour), ctrl)

	scan := func(ctx context.Context, topic string) ([]*sarama.ConsumerMessage, error) {
		return broker.Consume(ctx, addrs, sc, topic)
	}
	retention := func(ctx context.Context, topic string) (time.Duration, error) {
		s, err := broker.DescribeTopic(ctx, addrs, sc, topic)
		return s.Retention, err
	}
	path := trail(t, aliceSubject, bobSubject)
	receipts := filepath.Join(t.TempDir(), "receipts")
	mem := audit.NewMemory()
	f, err := forget.New(forget.Config{
		Stores: []forget.Store{
			&forget.Redis{Client: rdb, Keys: func(u string) []string { return []string{prefix + u} }},
			&forget.Retained{StoreName: "topic:" + rawTopic, Topics: []string{rawTopic}, Scan: scan, Retention: retention},
			&forget.Retained{StoreName: "dead-letters", Topics: []string{dlq, missingDLQ}, Scan: scan, Retention: retention},
			&forget.AuditFile{Path: path},
		},
		ReceiptsDir: receipts, Audit: mem, Actor: "cli",
	})
	require.NoError(t, err)

	_, err = f.Forget(ctx, "", aliceSubject)
	require.ErrorIs(t, err, forget.ErrInvalidUser)
	_, err = f.Forget(ctx, "bad\nid", aliceSubject)
	require.ErrorIs(t, err, forget.ErrInvalidUser)

	rc, err := f.Forget(ctx, alice, aliceSubject)
	require.NoError(t, err)
	require.True(t, rc.Complete, "%+v", rc)
	require.Equal(t, aliceSubject, rc.Subject)
	require.Equal(t, []string{"redis", "topic:" + rawTopic, "dead-letters", "audit"}, rc.Expected)
	byName := map[string]forget.StoreReceipt{}
	for _, s := range rc.Stores {
		require.NotNil(t, s.Count, s.Name)
		require.False(t, s.Started.IsZero() || s.Finished.Before(s.Started), s.Name)
		byName[s.Name] = s
	}
	require.EqualValues(t, 1, *byName["redis"].Count)
	require.Equal(t, forget.StatusDeleted, byName["redis"].Status)
	require.EqualValues(t, aliceRawRecords, *byName["topic:"+rawTopic].Count, "control records are not counted")
	require.Equal(t, forget.StatusExpires, byName["topic:"+rawTopic].Status)
	require.Equal(t, t0.Add(4*time.Hour+week), *byName["topic:"+rawTopic].ExpiresBy, "the newest record keyed by the user, the control record included")
	require.EqualValues(t, aliceDeadLetters, *byName["dead-letters"].Count)
	require.Equal(t, t0.Add(3*time.Hour+week), *byName["dead-letters"].ExpiresBy)
	require.Equal(t, "topic does not exist", byName["dead-letters"].Topics[1].Retention)
	require.EqualValues(t, auditEventsEach, *byName["audit"].Count)
	require.Equal(t, forget.StatusRedacted, byName["audit"].Status)

	// Redis: alice's key gone, bob's and the look-alike intact.
	require.False(t, mr.Exists(prefix+alice))
	require.True(t, mr.Exists(prefix+bob))
	require.True(t, mr.Exists(prefix+alice+"x"))
	// The trail verifies, with no record of alice's left and bob's intact.
	rep, err := audit.VerifyFile(path)
	require.NoError(t, err)
	require.Equal(t, auditEventsEach, rep.Redacted)
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotContains(t, string(raw), aliceSubject)
	require.Contains(t, string(raw), bobSubject)

	// The receipt file is the evidence format, complete.
	b2, err := os.ReadFile(filepath.Join(receipts, rc.ID+".json"))
	require.NoError(t, err)
	var er evidence.Receipt
	require.NoError(t, json.Unmarshal(b2, &er))
	require.Empty(t, er.Problems("redis", "audit"))
	require.Equal(t, rc.ID, er.ID)
	require.NotContains(t, string(b2), `"alice"`)
	res := evidence.DeletionReceipts(receipts, "redis", "audit").Run(ctx)
	require.Equal(t, evidence.StatusPass, res.Status, "%+v", res)

	// The request is audited under the pseudonym, with the counts.
	evs := mem.Events()
	require.Len(t, evs, 1)
	e := evs[0]
	require.Equal(t, audit.KindAdminAction, e.Kind)
	require.Equal(t, forget.ActionForget, e.Action)
	require.Equal(t, aliceSubject, e.Subject)
	require.Equal(t, "1", e.Attributes["redis.count"])
	require.Equal(t, "2", e.Attributes["topic:"+rawTopic+".count"])
	require.Equal(t, rc.ID, e.Attributes["receipt"])
	require.NotContains(t, string(mustJSON(t, e)), alice+`"`)

	// Forgetting again finds nothing more, and the earlier receipt's audit
	// record is never redacted.
	require.NoError(t, mem.Write(ctx, e))
	rc2, err := f.Forget(ctx, alice, aliceSubject)
	require.NoError(t, err)
	for _, s := range rc2.Stores {
		if s.Name == "redis" || s.Name == "audit" {
			require.EqualValues(t, 0, *s.Count, s.Name)
		}
	}
	require.True(t, forget.IsForgetRecord(e))
}

// TestAuditFilePendingWhileHeld reports the file trail pending, with its
// count, when another process holds it and no sink is given; through the
// holding sink it is redacted.
func TestAuditFilePendingWhileHeld(t *testing.T) {
	path := trail(t, aliceSubject)
	held, err := audit.OpenFile(path)
	require.NoError(t, err)
	defer held.Close()
	receipts := t.TempDir()
	f, err := forget.New(forget.Config{Stores: []forget.Store{&forget.AuditFile{Path: path}}, ReceiptsDir: receipts})
	require.NoError(t, err)
	rc, err := f.Forget(t.Context(), alice, aliceSubject)
	require.NoError(t, err)
	require.False(t, rc.Complete)
	s := rc.Stores[0]
	require.Equal(t, forget.StatusPending, s.Status)
	require.Contains(t, s.Error, "pending: ")
	require.EqualValues(t, auditEventsEach, *s.Count)
	res := evidence.DeletionReceipts(receipts).Run(t.Context())
	require.Equal(t, evidence.StatusFail, res.Status, "a pending store leaves the request incomplete")

	f, err = forget.New(forget.Config{Stores: []forget.Store{&forget.AuditFile{Path: path, Sink: held}}})
	require.NoError(t, err)
	rc, err = f.Forget(t.Context(), alice, aliceSubject)
	require.NoError(t, err)
	require.True(t, rc.Complete)
	require.EqualValues(t, auditEventsEach, *rc.Stores[0].Count)
	require.NoError(t, held.Close())
	rep, err := audit.VerifyFile(path)
	require.NoError(t, err)
	require.Equal(t, auditEventsEach, rep.Redacted)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
