package evidence_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aetherai/aether/internal/redisglob"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/audit/audittest"
	"github.com/aetherai/aether/controls/evidence"
	"github.com/aetherai/aether/model"
	"github.com/aetherai/aether/model/approval"
)

func run(t *testing.T, c evidence.Check) evidence.Result {
	t.Helper()
	rep := evidence.Evaluate(context.Background(), []evidence.Check{c}, evidence.Timeout(10*time.Second))
	require.Len(t, rep.Controls, 1)
	return rep.Controls[0].Result
}

func TestEvidenceRedisTTL(t *testing.T) {
	redisBackends(t, func(t *testing.T, c *redis.Client) {
		ctx := context.Background()
		prefix := uniquePrefix(t, c)
		check := evidence.RedisTTL(c, redisglob.Escape(prefix)+"*")

		res := run(t, check)
		require.Equal(t, evidence.StatusPass, res.Status, res.Why)
		require.Equal(t, "0 keys scanned, 0 without a TTL", res.Live)

		for i := range 30 {
			require.NoError(t, c.Set(ctx, fmt.Sprintf("%su-%d", prefix, i), "{}", time.Hour).Err())
		}
		res = run(t, check)
		require.Equal(t, evidence.StatusPass, res.Status, res.Why)
		require.Equal(t, "30 keys scanned, 0 without a TTL", res.Live)

		// Twelve keys holding user ids, written without a TTL.
		for i := range 12 {
			require.NoError(t, c.Set(ctx, fmt.Sprintf("%suser_secret_%d", prefix, i), "{}", 0).Err())
		}
		res = run(t, check)
		require.Equal(t, evidence.StatusFail, res.Status)
		require.Equal(t, "42 keys scanned, 12 without a TTL", res.Live)
		require.Contains(t, res.Why, "12 keys with no TTL")
		require.Len(t, res.Details, 11, "ten keys and a line for the rest")
		require.Equal(t, "... and 2 more", res.Details[10])
		for _, d := range res.Details[:10] {
			require.Regexp(t, `^`+regexpQuote(prefix)+`<sha256 [0-9a-f]{12}>$`, d)
			require.NotContains(t, d, "user_secret")
		}

		for i := range 12 {
			require.NoError(t, c.Expire(ctx, fmt.Sprintf("%suser_secret_%d", prefix, i), time.Minute).Err())
		}
		res = run(t, check)
		require.Equal(t, evidence.StatusPass, res.Status, res.Why)
	})
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func TestEvidenceRedisTTLUnreachableIsAnError(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	res := run(t, evidence.RedisTTL(c, "aether:recs:*"))
	require.Equal(t, evidence.StatusError, res.Status)
	require.Contains(t, res.Why, "Redis could not be scanned")
	require.Equal(t, evidence.StatusError, run(t, evidence.RedisTTL(c)).Status, "no pattern")
}

func TestEvidenceGlobEscapedPrefix(t *testing.T) {
	c := miniRedis(t)
	ctx := context.Background()
	require.NoError(t, c.Set(ctx, "a*b:1", "x", 0).Err())
	require.NoError(t, c.Set(ctx, "aXb:1", "x", 0).Err())
	res := run(t, evidence.RedisTTL(c, redisglob.Escape("a*b:")+"*"))
	require.Equal(t, "1 key scanned, 1 without a TTL", res.Live)
}

func TestEvidenceTLSEverywhere(t *testing.T) {
	eps := []evidence.Endpoint{
		{Name: "kafka", Addr: "broker-1:9093,broker-2:9093", TLS: true},
		{Name: "redis", Addr: "redis:6380", TLS: true},
		{Name: "elasticsearch"},
		{Name: "http-api", Addr: "0.0.0.0:8443", TLS: true},
		{Name: "admin-api", Addr: "127.0.0.1:8081", TLS: true},
	}
	res := run(t, evidence.TLSEverywhere(eps))
	require.Equal(t, evidence.StatusPass, res.Status, res.Why)
	require.Equal(t, "TLS on: kafka, redis, http-api, admin-api; TLS off: none; not in use: elasticsearch", res.Declared)
	require.Contains(t, res.Details, "elasticsearch: not in use")

	eps[1].TLS, eps[4].TLS = false, false
	res = run(t, evidence.TLSEverywhere(eps))
	require.Equal(t, evidence.StatusFail, res.Status)
	require.Equal(t, "data travels in plain text to or from redis, admin-api", res.Why)
	require.Equal(t, "2 of 4 connections in use encrypted", res.Live)
	require.Contains(t, res.Details, "redis redis:6380: TLS OFF, plain text")

	require.Equal(t, evidence.StatusError, run(t, evidence.TLSEverywhere(nil)).Status)
}

func TestEvidenceModelApproved(t *testing.T) {
	manifest := filepath.Join(t.TempDir(), "approved-models.json")
	approved := strings.Repeat("ab", 32)
	other := strings.Repeat("cd", 32)
	served := approved
	check := evidence.ModelApproved(manifest, func(context.Context) (string, string, error) { return served, "v1", nil })

	res := run(t, check)
	require.Equal(t, evidence.StatusFail, res.Status)
	require.Contains(t, res.Why, "does not exist")

	_, _, err := approval.Approve(manifest, model.Metadata{SHA256: approved, Version: "v1"}, "alice", "CHG-1", time.Now(), nil)
	require.NoError(t, err)
	res = run(t, check)
	require.Equal(t, evidence.StatusPass, res.Status, res.Why)
	require.Contains(t, res.Why, "approved by alice under ticket CHG-1")
	require.Equal(t, "serving version v1, sha256 "+approved, res.Live)

	served = other
	res = run(t, check)
	require.Equal(t, evidence.StatusFail, res.Status)
	require.Contains(t, res.Why, "not in the approved-models manifest")

	require.NoError(t, os.WriteFile(manifest, []byte("{"), 0o600))
	require.Equal(t, evidence.StatusError, run(t, check).Status, "an unreadable manifest cannot be judged")

	res = run(t, evidence.ModelApproved(manifest, func(context.Context) (string, string, error) { return "", "", errors.New("no model dir") }))
	require.Equal(t, evidence.StatusError, res.Status)
	require.Contains(t, res.Why, "no model dir")
}

// writeTrail writes n events to a new trail, the last at last.
func writeTrail(t *testing.T, n int, last time.Time) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := audit.OpenFile(path)
	require.NoError(t, err)
	var evs []audit.Event
	for i := range n {
		e := audittest.Event(t, i)
		e.Time = last.Add(time.Duration(i-n+1) * time.Second).UTC().Round(0)
		evs = append(evs, e)
	}
	require.NoError(t, s.Write(context.Background(), evs...))
	require.NoError(t, s.Close())
	return path
}

func TestEvidenceAuditTrail(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	path := writeTrail(t, 10, now)
	res := run(t, evidence.AuditTrail(path, time.Hour))
	require.Equal(t, evidence.StatusPass, res.Status, res.Why)
	require.Equal(t, "10 records, chain intact (0 redacted), last seq 10, last at "+now.Format(time.RFC3339), res.Live)

	// Stalled: the last record is two hours old.
	old := writeTrail(t, 3, now.Add(-2*time.Hour))
	res = run(t, evidence.AuditTrail(old, time.Hour))
	require.Equal(t, evidence.StatusFail, res.Status)
	require.Contains(t, res.Why, "the trail stalled: its last record is 2h")
	require.Equal(t, evidence.StatusPass, run(t, evidence.AuditTrail(old, 0)).Status, "maxAge 0 does not judge age")

	// Broken: record 5 altered.
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.SplitAfter(string(b), "\n")
	lines[4] = strings.Replace(lines[4], `"ok"`, `"OK"`, 1)
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600))
	res = run(t, evidence.AuditTrail(path, time.Hour))
	require.Equal(t, evidence.StatusFail, res.Status)
	require.Equal(t, "record seq 5 (line 5): altered: content does not match the record's hash", res.Why)
	require.Equal(t, "chain broken at record seq 5 (line 5) after 4 intact records", res.Live)

	res = run(t, evidence.AuditTrail(filepath.Join(t.TempDir(), "none.jsonl"), time.Hour))
	require.Equal(t, evidence.StatusFail, res.Status)
	require.Contains(t, res.Why, "does not exist")

	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	res = run(t, evidence.AuditTrail(empty, time.Hour))
	require.Equal(t, evidence.StatusFail, res.Status)
	require.Contains(t, res.Why, "holds no record")

	// Another sink through AuditTrailFunc.
	res = run(t, evidence.AuditTrailFunc("elasticsearch aether-audit-*", time.Hour, func(context.Context) (audit.Report, time.Time, error) {
		return audit.Report{}, time.Time{}, errors.New("connection refused")
	}))
	require.Equal(t, evidence.StatusError, res.Status)
	require.Contains(t, res.Declared, "elasticsearch aether-audit-*")
}

func TestEvidenceAlertRules(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.yml")
	require.NoError(t, os.WriteFile(path, []byte(`groups:
  - name: aether-compliance
    rules:
      - alert: AetherControlFailing
        expr: aether_control_status < 1
        for: 5m
      - record: job:aether_records:rate5m
        expr: sum(rate(aether_records_total[5m]))
  - name: aether-audit
    rules:
      - alert: AetherAuditTrailStalled
        expr: time() - aether_audit_last_write_timestamp_seconds > 900
      - alert: AetherEmpty
        expr: ""
`), 0o600))
	res := run(t, evidence.AlertRules(path, "AetherControlFailing", "AetherAuditTrailStalled"))
	require.Equal(t, evidence.StatusPass, res.Status, res.Why)
	require.Equal(t, "3 alerts in 2 groups; 2 of 2 required present", res.Live)
	require.Contains(t, res.Details, "AetherControlFailing: defined in group aether-compliance")

	res = run(t, evidence.AlertRules(path, "AetherControlFailing", "AetherModelRefused", "AetherEmpty"))
	require.Equal(t, evidence.StatusFail, res.Status)
	require.Contains(t, res.Why, "missing alerts: AetherModelRefused, AetherEmpty")
	require.Contains(t, res.Details, "AetherEmpty: has no expression")

	require.NoError(t, os.WriteFile(path, []byte("groups: [\n"), 0o600))
	res = run(t, evidence.AlertRules(path, "AetherControlFailing"))
	require.Equal(t, evidence.StatusFail, res.Status)
	require.Contains(t, res.Why, "Prometheus would refuse the whole file")

	res = run(t, evidence.AlertRules(filepath.Join(t.TempDir(), "no.yml"), "AetherControlFailing"))
	require.Equal(t, evidence.StatusFail, res.Status)
}

func TestEvidenceAlertRulesOfTheRepository(t *testing.T) {
	path := filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml")
	res := run(t, evidence.AlertRules(path, "AetherControlFailing"))
	require.Equal(t, evidence.StatusPass, res.Status, res.Why)
}

func TestEvidenceDrift(t *testing.T) {
	var missing, excess []string
	check := evidence.Drift("acl_drift", []string{"CC6.1", "CC6.3"}, func(context.Context) ([]string, []string, error) {
		return missing, excess, nil
	})
	require.Equal(t, "acl_drift", check.ID)
	res := run(t, check)
	require.Equal(t, evidence.StatusPass, res.Status)

	missing = []string{"User:recommender WRITE topic user_features_processed"}
	excess = []string{"User:recommender WRITE topic user_events_raw", "User:ingest ALL topic *"}
	res = run(t, check)
	require.Equal(t, evidence.StatusFail, res.Status)
	require.Equal(t, "1 missing, 2 excess", res.Live)
	require.Equal(t, []string{
		"missing: User:recommender WRITE topic user_features_processed",
		"excess: User:ingest ALL topic *",
		"excess: User:recommender WRITE topic user_events_raw",
	}, res.Details)

	res = run(t, evidence.Drift("topic_drift", nil, func(context.Context) ([]string, []string, error) {
		return nil, nil, errors.New("broker unreachable")
	}))
	require.Equal(t, evidence.StatusError, res.Status)
	require.Contains(t, res.Why, "broker unreachable")
}

func writeReceipt(t *testing.T, dir, name string, r any) {
	t.Helper()
	b, err := json.Marshal(r)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o600))
}

func TestEvidenceDeletionReceipts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "receipts")
	check := evidence.DeletionReceipts(dir, "redis", "feature-store")
	res := run(t, check)
	require.Equal(t, evidence.StatusPass, res.Status, "no directory: no request")
	require.NoError(t, os.Mkdir(dir, 0o700))
	require.Equal(t, evidence.StatusPass, run(t, check).Status)

	n := func(v int64) *int64 { return &v }
	at := time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)
	writeReceipt(t, dir, "del-1.json", evidence.Receipt{ID: "del-1", Subject: "u-7f3a9c1b0e4d5a6b", Time: at,
		Expected: []string{"audit"},
		Stores:   []evidence.StoreReceipt{{Name: "redis", Count: n(1)}, {Name: "feature-store", Count: n(0)}, {Name: "audit", Count: n(12)}}})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "README.txt"), []byte("not a receipt"), 0o600))
	res = run(t, check)
	require.Equal(t, evidence.StatusPass, res.Status, res.Why)
	require.Equal(t, "1 receipts, 1 complete", res.Live)
	require.Equal(t, []string{"del-1 (subject u-7f3a9c1b0e…, 2026-11-27T05:00:00Z; redis 1, feature-store 0, audit 12): complete"}, res.Details)

	// A store failed, an expected store is unreported, a required store
	// is missing, and a file is not a receipt.
	writeReceipt(t, dir, "del-2.json", map[string]any{"id": "del-2", "subject": "u-1", "time": at,
		"expected": []string{"audit", "dead-letters"},
		"stores":   []map[string]any{{"name": "redis", "count": 1}, {"name": "audit", "count": nil}, {"name": "topics", "count": 0, "error": "timeout"}}})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "del-3.json"), []byte("{"), 0o600))
	res = run(t, check)
	require.Equal(t, evidence.StatusFail, res.Status)
	require.Equal(t, "3 receipts, 1 complete", res.Live)
	require.Contains(t, res.Why, "2 deletion requests have no complete receipt")
	require.Contains(t, res.Details, "del-2 (subject u-1, 2026-11-27T05:00:00Z; redis 1, audit ?, topics failed): INCOMPLETE: "+
		"audit did not report a count; topics failed: timeout; dead-letters missing from the receipt; feature-store missing from the receipt")
	require.Regexp(t, `^del-3.json \(subject \?, no time; none\): INCOMPLETE: not a receipt: `, res.Details[2])
}
