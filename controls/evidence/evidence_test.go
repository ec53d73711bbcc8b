package evidence_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/controls/evidence"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden files")

func constCheck(id string, res evidence.Result) evidence.Check {
	return evidence.Check{ID: id, Title: "control " + id, Criteria: []string{"CC7.2"},
		Run: func(context.Context) evidence.Result { return res }}
}

func TestEvidenceEvaluateContainsPanicsTimeoutsAndBadStatuses(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	checks := []evidence.Check{
		constCheck("ok", evidence.Result{Status: evidence.StatusPass, Why: "fine"}),
		{ID: "panics", Run: func(context.Context) evidence.Result { panic("boom") }},
		{ID: "hangs", Run: func(context.Context) evidence.Result { <-release; return evidence.Result{Status: evidence.StatusPass} }},
		{ID: "honours_ctx", Run: func(ctx context.Context) evidence.Result {
			<-ctx.Done()
			return evidence.Result{Status: evidence.StatusPass, Why: "should not count"}
		}},
		constCheck("no_status", evidence.Result{Why: "forgot"}),
		{ID: "no_func"},
		constCheck("fails", evidence.Result{Status: evidence.StatusFail, Why: "broken"}),
	}
	start := time.Now()
	rep := evidence.Evaluate(context.Background(), checks, evidence.Timeout(200*time.Millisecond))
	require.Less(t, time.Since(start), 5*time.Second, "a hanging check held the evaluation")
	got := map[string]evidence.Control{}
	var order []string
	for _, c := range rep.Controls {
		got[c.ID] = c
		order = append(order, c.ID)
	}
	require.Equal(t, []string{"ok", "panics", "hangs", "honours_ctx", "no_status", "no_func", "fails"}, order)
	require.Equal(t, evidence.StatusPass, got["ok"].Status)
	require.Equal(t, evidence.StatusError, got["panics"].Status)
	require.Contains(t, got["panics"].Why, "panicked: boom")
	require.Equal(t, evidence.StatusError, got["hangs"].Status)
	require.Contains(t, got["hangs"].Why, "did not finish within 200ms")
	require.Equal(t, evidence.StatusError, got["honours_ctx"].Status)
	require.Equal(t, evidence.StatusError, got["no_status"].Status)
	require.Contains(t, got["no_status"].Why, `status ""`)
	require.Equal(t, evidence.StatusError, got["no_func"].Status)
	require.Equal(t, evidence.StatusFail, got["fails"].Status)
	require.Equal(t, evidence.Summary{Total: 7, Pass: 1, Fail: 1, Error: 5}, rep.Summary)
	require.False(t, rep.OK())
}

func TestEvidenceEvaluateRunsChecksConcurrently(t *testing.T) {
	var checks []evidence.Check
	for _, id := range []string{"a", "b", "c", "d"} {
		checks = append(checks, evidence.Check{ID: id, Run: func(context.Context) evidence.Result {
			time.Sleep(300 * time.Millisecond)
			return evidence.Result{Status: evidence.StatusPass}
		}})
	}
	start := time.Now()
	rep := evidence.Evaluate(context.Background(), checks)
	require.True(t, rep.OK())
	require.Less(t, time.Since(start), 1100*time.Millisecond)
}

func TestEvidenceCancelledEvaluationIsAnError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep := evidence.Evaluate(ctx, []evidence.Check{{ID: "x", Run: func(ctx context.Context) evidence.Result {
		<-ctx.Done()
		return evidence.Result{Status: evidence.StatusPass}
	}}})
	require.Equal(t, evidence.StatusError, rep.Controls[0].Status)
	require.Contains(t, rep.Controls[0].Why, "not evaluated: context canceled")
}

// sampleReport is a report with one control of each status, a skipped
// control and a fixed clock, for the golden file and the HTML tests.
func sampleReport() evidence.Report {
	at := time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)
	return evidence.Evaluate(context.Background(), []evidence.Check{
		{ID: "redis_key_ttl", Title: "Every Redis key Aether writes expires", Criteria: []string{"C1.2", "P4.2"},
			Run: func(context.Context) evidence.Result {
				return evidence.Result{Status: evidence.StatusFail, Declared: "every key matching aether:recs:* has a TTL",
					Live: "3 keys scanned, 1 without a TTL", Why: "1 key with no TTL",
					Details: []string{"aether:recs:<sha256 3f2a9c1b0e4d>"}}
			}},
		{ID: "encryption_in_transit", Title: "Every connection is encrypted with TLS", Criteria: []string{"CC6.1", "CC6.7"},
			Run: func(context.Context) evidence.Result {
				return evidence.Result{Status: evidence.StatusPass, Declared: "TLS on: kafka, redis", Live: "2 of 2 connections in use encrypted",
					Why: "every connection in use is configured with TLS"}
			}},
		{ID: "model_approval", Title: "The served model is approved <sha>", Criteria: []string{"CC8.1"},
			Run: func(context.Context) evidence.Result {
				return evidence.Result{Status: evidence.StatusError, Declared: "only approved models", Live: "unknown",
					Why: "the manifest cannot be read: <script>alert(1)</script>"}
			}},
	}, evidence.Clock(func() time.Time { return at }), evidence.ConfigDigest(evidence.DigestConfig([]byte("pipeline: recommendations\n"))),
		evidence.NotEvaluated(evidence.Skipped{ID: "deletion_receipts", Why: "no receipts directory configured"}))
}

func TestEvidenceJSONGolden(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, evidence.WriteJSON(&buf, sampleReport()))
	golden := filepath.Join("testdata", "report.golden.json")
	if *update {
		require.NoError(t, os.WriteFile(golden, buf.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), buf.String(), "JSON report changed; if on purpose, bump evidence.Format when a field is renamed or removed, and run go test -update")

	// The field names, independently of the values.
	var doc map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &doc))
	require.Equal(t, []string{"configDigest", "controls", "durationSeconds", "format", "generatedAt", "notEvaluated", "summary"}, keys(doc))
	ctl := doc["controls"].([]any)[0].(map[string]any)
	require.Equal(t, []string{"criteria", "declared", "details", "durationSeconds", "id", "live", "status", "title", "why"}, keys(ctl))
	require.Equal(t, []string{"error", "fail", "pass", "total"}, keys(doc["summary"].(map[string]any)))
	require.Equal(t, "aether.evidence/1", doc["format"])
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestEvidenceSummaryTable(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, evidence.WriteSummary(&buf, sampleReport()))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 5)
	require.Regexp(t, `^FAIL\s+redis_key_ttl\s+1 key with no TTL$`, lines[0])
	require.Regexp(t, `^PASS\s+encryption_in_transit\s+every connection`, lines[1])
	require.Regexp(t, `^ERROR\s+model_approval\s+the manifest cannot be read`, lines[2])
	require.Regexp(t, `^SKIP\s+deletion_receipts\s+no receipts directory configured$`, lines[3])
	require.Equal(t, "3 controls: 1 pass, 1 fail, 1 error; 1 not evaluated", lines[4])
}

func TestEvidenceDigestHidesTheConfiguration(t *testing.T) {
	d := evidence.DigestConfig([]byte("redis:\n  password: hunter2\n"))
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, d)
	require.NotContains(t, d, "hunter2")
}
