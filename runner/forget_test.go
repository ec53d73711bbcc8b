package runner_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/broker/brokertest"
	"github.com/aetherai/aether/controls/evidence"
	"github.com/aetherai/aether/controls/forget"
	"github.com/aetherai/aether/operators/cache"
	"github.com/aetherai/aether/processors"
	"github.com/aetherai/aether/runner"
	"github.com/aetherai/aether/runner/api"
	"github.com/aetherai/aether/runner/cli"
	"github.com/aetherai/aether/runner/config"
)

const forgetSubjectKey = "forget-test-subject-key-0123456789"

// forgetEnv is a running pipeline (embedded Kafka, miniredis, a file
// trail held by the runner) with alice and bob known everywhere.
type forgetEnv struct {
	t                  *testing.T
	b                  *broker.Broker
	mr                 *miniredis.Miniredis
	cfg                *config.Config
	run                *runner.Running
	trail              *audit.FileSink
	trailPath, cfgPath string
	receipts           string
}

// startForgetEnv starts the pipeline with extra appended to its
// configuration file.
func startForgetEnv(t *testing.T, extra ...string) *forgetEnv {
	t.Helper()
	b := brokertest.Start(t, broker.Partitions(2))
	mr := miniredis.RunT(t)
	dir := t.TempDir()
	t.Setenv(config.EnvAdminToken, "adm-token")
	t.Setenv("AETHER_TEST_SUBJECT_KEY", forgetSubjectKey)
	e := &forgetEnv{t: t, b: b, mr: mr, trailPath: filepath.Join(dir, "audit.jsonl"), receipts: filepath.Join(dir, "receipts")}
	yaml := fmt.Sprintf(`
kafka: {brokers: [%s], partitions: 2}
redis: {addr: %q, ttl: 1h}
model: {dir: m}
http:
  listen: 127.0.0.1:0
  apiKeys: {shop: shop-key}
  admin: {listen: "127.0.0.1:0"}
audit: {file: %q}
evidence: {receipts: %q}
forget: {subjectKeyEnv: AETHER_TEST_SUBJECT_KEY, timeout: 30s}
`, b.Addrs()[0], mr.Addr(), e.trailPath, e.receipts) + strings.Join(extra, "\n")
	e.cfgPath = filepath.Join(dir, "aether.yaml")
	require.NoError(t, os.WriteFile(e.cfgPath, []byte(yaml), 0o600))
	cfg, err := config.Parse([]byte(yaml))
	require.NoError(t, err)
	e.cfg = cfg
	e.start()
	return e
}

func (e *forgetEnv) start() {
	t := e.t
	rdb := redis.NewClient(&redis.Options{Addr: e.mr.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	c, err := cache.Redis(rdb, cache.TTL(time.Hour))
	require.NoError(t, err)
	e.trail, err = audit.OpenFile(e.trailPath)
	require.NoError(t, err)
	e.run, err = runner.Start(t.Context(), runner.Parts{Config: e.cfg, Scorer: fixedScorer{}, Cache: c, Audit: e.trail})
	require.NoError(t, err)
}

func (e *forgetEnv) stop() {
	require.NoError(e.t, e.run.Stop())
	require.NoError(e.t, e.trail.Close())
}

func (e *forgetEnv) do(method, url, key, body string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(e.t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *forgetEnv) send(user string, n int, at time.Time) {
	e.t.Helper()
	var evs []string
	for i := range n {
		evs = append(evs, fmt.Sprintf(`{"userId":%q,"productId":"p%d","eventType":"click","timestamp":%q,"clientIp":"192.0.2.7"}`,
			user, i, at.Add(time.Duration(i)*time.Second).UTC().Format(time.RFC3339)))
	}
	code, body := e.do("POST", "http://"+e.run.Addr+"/v1/events", "shop-key", "["+strings.Join(evs, ",")+"]")
	require.Equal(e.t, http.StatusAccepted, code, body)
}

// features returns the user's feature record from the API, or nil.
func (e *forgetEnv) features(user string) map[string]any {
	code, body := e.do("GET", "http://"+e.run.Addr+"/v1/features/"+user, "shop-key", "")
	if code != http.StatusOK {
		return nil
	}
	var m map[string]any
	require.NoError(e.t, json.Unmarshal([]byte(body), &m))
	return m
}

// count scans topic for records keyed user (control records apart).
func (e *forgetEnv) count(topic, user string) int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 20*time.Second)
	defer cancel()
	msgs, err := broker.Consume(ctx, e.b.Addrs(), broker.SaramaConfig("forget-test-scan"), topic)
	require.NoError(e.t, err)
	var n int64
	for _, m := range msgs {
		if string(m.Key) == user && !processors.IsForget(m) {
			n++
		}
	}
	return n
}

func (e *forgetEnv) redisKeys(pattern string) []string {
	keys, err := redis.NewClient(&redis.Options{Addr: e.mr.Addr()}).Keys(context.Background(), pattern).Result()
	require.NoError(e.t, err)
	return keys
}

// TestForgetThroughTheAdminAPI runs the pipeline, makes alice and bob
// known to every store, forgets alice through the admin API and scans
// every store: alice is gone (or expires by retention, as the receipt
// says), bob is intact, the receipt's counts are what the scans found
// before, the audit trail still verifies, and alice starts afresh.
func TestForgetThroughTheAdminAPI(t *testing.T) {
	e := startForgetEnv(t)
	now := time.Now().UTC().Add(-time.Minute)
	e.send("alice", 3, now)
	e.send("bob", 2, now)
	// A record that does not decode: a dead letter keyed by alice.
	em, err := processors.NewEmitter(e.b.Addrs(), e.run.Pipeline.Raw)
	require.NoError(t, err)
	require.NoError(t, em.EmitRaw("alice", []byte(`{"userId":"alice",`)))
	require.NoError(t, em.Finish())

	require.Eventually(t, func() bool {
		fa, fb := e.features("alice"), e.features("bob")
		return fa != nil && fb != nil && fa["eventsTotal"] == 3.0 && fb["eventsTotal"] == 2.0 &&
			e.mr.Exists("aether:recs:alice") && e.mr.Exists("aether:recs:bob")
	}, 60*time.Second, 100*time.Millisecond, "alice and bob have features and recommendations")
	code, body := e.do("GET", "http://"+e.run.Addr+"/v1/recommendations/alice", "shop-key", "")
	require.Equal(t, http.StatusOK, code, body)
	require.Eventually(t, func() bool { return e.count(e.run.Pipeline.Raw.Name()+".dlq", "alice") == 1 }, 20*time.Second, 100*time.Millisecond)

	// What a scan finds before.
	raw, feats := e.run.Pipeline.Raw.Name(), e.run.Pipeline.Features.Name()
	rawBefore, featsBefore := e.count(raw, "alice"), e.count(feats, "alice")
	dlqBefore := e.count(raw+".dlq", "alice") + e.count(feats+".dlq", "alice")
	redisBefore := len(e.redisKeys("*alice*"))
	subject := api.SubjectRef([]byte(forgetSubjectKey), "alice")
	require.Equal(t, int64(4), rawBefore)
	require.Positive(t, featsBefore)
	require.Equal(t, 1, redisBefore)

	code, body = e.do("POST", "http://"+e.run.AdminAddr+"/admin/v1/users/bad%0Aid/forget", "adm-token", "")
	require.Equal(t, http.StatusBadRequest, code, body)
	code, body = e.do("POST", "http://"+e.run.AdminAddr+"/admin/v1/users/alice/forget", "adm-token", "")
	require.Equal(t, http.StatusOK, code, body)
	t.Logf("receipt: %s", body)
	// The trail as the deletion left it (later requests about alice, like
	// the scans below, are new records), once the admin API recorded the
	// request too.
	var trailBytes []byte
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(e.trailPath)
		require.NoError(t, err)
		trailBytes = b
		return bytes.Contains(b, []byte(`"resource":"`+runner.RouteForget+`"`))
	}, 5*time.Second, 10*time.Millisecond)
	require.NotContains(t, body, `"alice"`)
	var rc forget.Receipt
	require.NoError(t, json.Unmarshal([]byte(body), &rc))
	require.True(t, rc.Complete, body)
	require.Equal(t, subject, rc.Subject)
	got := map[string]forget.StoreReceipt{}
	for _, s := range rc.Stores {
		require.NotNil(t, s.Count, s.Name)
		got[s.Name] = s
	}
	require.Equal(t, []string{"feature-store", "redis", "topic:" + raw, "topic:" + feats, "dead-letters", "loopback", "audit"}, rc.Expected)
	require.EqualValues(t, 1, *got["feature-store"].Count)
	require.EqualValues(t, redisBefore, *got["redis"].Count)
	require.EqualValues(t, rawBefore, *got["topic:"+raw].Count)
	require.EqualValues(t, featsBefore, *got["topic:"+feats].Count)
	require.EqualValues(t, dlqBefore, *got["dead-letters"].Count)
	require.Positive(t, *got["audit"].Count)
	require.Equal(t, forget.StatusRedacted, got["audit"].Status)
	for _, name := range []string{"topic:" + raw, "topic:" + feats, "dead-letters"} {
		s := got[name]
		require.Equal(t, forget.StatusExpires, s.Status, name)
		require.NotNil(t, s.ExpiresBy, name)
		require.WithinDuration(t, time.Now(), *s.ExpiresBy, 31*24*time.Hour, name)
		require.True(t, s.ExpiresBy.After(time.Now().Add(6*24*time.Hour)), name)
	}

	// Every store, scanned after.
	require.Nil(t, e.features("alice"), "the feature store no longer has alice")
	require.Empty(t, e.redisKeys("*alice*"), "a SCAN finds no key of alice")
	require.NotNil(t, e.features("bob"))
	require.True(t, e.mr.Exists("aether:recs:bob"))
	require.EqualValues(t, 1, e.run.Runtime.Forgotten("sessionizer"))
	require.EqualValues(t, 1, e.run.Runtime.Forgotten("recommender"))
	require.Zero(t, e.count(raw+".dlq", "bob"), "the control record is never dead-lettered")
	require.Equal(t, dlqBefore, e.count(raw+".dlq", "alice")+e.count(feats+".dlq", "alice"))

	// The receipt file is complete for runner evidence.
	res := evidence.DeletionReceipts(e.receipts, "feature-store", "redis", "audit").Run(t.Context())
	require.Equal(t, evidence.StatusPass, res.Status, "%+v", res)

	// The trail: no raw "alice", no un-redacted record of hers but the
	// records of the deletion itself; and it verifies.
	require.NotContains(t, string(trailBytes), "alice")
	var forgetRecords int
	sc := bufio.NewScanner(bytes.NewReader(trailBytes))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r audit.Record
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		var ev audit.Event
		require.NoError(t, json.Unmarshal(r.Event, &ev))
		if ev.Subject == subject {
			require.True(t, forget.IsForgetRecord(ev), "an un-redacted record of alice: %s", sc.Text())
			forgetRecords++
		}
	}
	require.Equal(t, 2, forgetRecords, "the forget action and the admin request")
	rep, err := audit.Verify(bytes.NewReader(trailBytes))
	require.NoError(t, err)
	require.EqualValues(t, *got["audit"].Count, rep.Redacted)
	_, err = audit.VerifyFile(e.trailPath)
	require.NoError(t, err)

	// Alice again: a fresh state.
	e.send("alice", 1, time.Now().UTC())
	require.Eventually(t, func() bool {
		fa := e.features("alice")
		return fa != nil && fa["eventsTotal"] == 1.0
	}, 30*time.Second, 100*time.Millisecond, "a new event for alice starts a fresh state")

	// runner audit verify passes: the chain with the redacted records, and
	// the processors' attestations cover every offset, control records
	// included.
	e.stop()
	var out, errOut bytes.Buffer
	code = cliMain([]string{"audit", "verify", e.trailPath}, &out, &errOut)
	require.Equal(t, 0, code, "%s%s", out.String(), errOut.String())
	t.Logf("audit verify: %s", out.String())
}

// TestForgetCommandAgainstARunningRunner runs `runner forget` from the
// command line while the runner holds the file trail: the control record
// goes through Kafka, the Redis key is deleted, and the trail is reported
// pending; after the runner stops, the command redacts it.
func TestForgetCommandAgainstARunningRunner(t *testing.T) {
	e := startForgetEnv(t)
	now := time.Now().UTC().Add(-time.Minute)
	e.send("alice", 2, now)
	e.send("bob", 1, now)
	require.Eventually(t, func() bool {
		return e.features("alice") != nil && e.features("bob") != nil &&
			e.mr.Exists("aether:recs:alice") && e.mr.Exists("aether:recs:bob")
	}, 60*time.Second, 100*time.Millisecond)
	code, body := e.do("GET", "http://"+e.run.Addr+"/v1/recommendations/alice", "shop-key", "")
	require.Equal(t, http.StatusOK, code, body)

	var out, errOut bytes.Buffer
	rc := runForget(t, e, &out, &errOut)
	require.Equal(t, 1, rc.code, "pending audit: exit 1\n%s", errOut.String())
	t.Logf("progress:\n%s", errOut.String())
	require.False(t, rc.receipt.Complete)
	for _, s := range rc.receipt.Stores {
		switch s.Name {
		case "audit":
			require.Equal(t, forget.StatusPending, s.Status)
			require.Positive(t, *s.Count)
		case "feature-store", "redis":
			require.Equal(t, forget.StatusDeleted, s.Status, s.Error)
			require.EqualValues(t, 1, *s.Count, s.Name)
		default:
			require.Empty(t, s.Error, s.Name)
		}
	}
	require.Nil(t, e.features("alice"))
	require.Empty(t, e.redisKeys("*alice*"))
	require.NotNil(t, e.features("bob"))
	require.EqualValues(t, 1, e.run.Runtime.Forgotten("sessionizer"))
	e.stop()

	// The runner stopped: the trail is redacted from the command.
	out.Reset()
	errOut.Reset()
	rc = runForget(t, e, &out, &errOut)
	require.Equal(t, 0, rc.code, errOut.String())
	for _, s := range rc.receipt.Stores {
		if s.Name == "audit" {
			require.Equal(t, forget.StatusRedacted, s.Status)
			require.Positive(t, *s.Count)
		}
	}
	b, err := os.ReadFile(e.trailPath)
	require.NoError(t, err)
	require.NotContains(t, string(b), "alice")
	_, err = audit.VerifyFile(e.trailPath)
	require.NoError(t, err)
}

type forgetRun struct {
	code    int
	receipt forget.Receipt
}

func runForget(t *testing.T, e *forgetEnv, out, errOut *bytes.Buffer) forgetRun {
	t.Helper()
	code := cliMain([]string{"forget", "--user", "alice", "-c", e.cfgPath}, out, errOut)
	var rc forget.Receipt
	require.NoError(t, json.Unmarshal(out.Bytes(), &rc), "stdout: %s\nstderr: %s", out.String(), errOut.String())
	return forgetRun{code, rc}
}

var cliMain = cli.Main
