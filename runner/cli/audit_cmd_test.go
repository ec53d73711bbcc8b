package cli_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/olivere/elastic/v7"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/audit/audittest"
	es "github.com/aetherai/aether/audit/elasticsearch"
	"github.com/aetherai/aether/internal/esfake"
)

func TestAuditVerify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := audit.OpenFile(path)
	require.NoError(t, err)
	var evs []audit.Event
	for i := range 20 {
		evs = append(evs, audittest.Event(t, i))
	}
	require.NoError(t, s.Write(context.Background(), evs...))
	_, head := s.Head()
	require.NoError(t, s.Close())

	code, out, stderr := run("audit", "verify", path)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "ok: 20 records, chain intact (0 redacted)\nlast record: seq 20, hash "+head+"\nattestations: 0, covering 0 partitions and 0 records\n", out)

	n, err := audit.Redact(path, func(e audit.Event) bool { return e.Kind == audit.KindInference })
	require.NoError(t, err)
	require.Equal(t, 3, n)
	code, out, stderr = run("audit", "verify", path)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "ok: 20 records, chain intact (3 redacted)\n")

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.SplitAfter(string(b), "\n")
	for name, tc := range map[string]struct {
		lines  []string
		stderr string
	}{
		"altered":  {append(append([]string{}, lines[:4]...), append([]string{strings.Replace(lines[4], `"ok"`, `"OK"`, 1)}, lines[5:]...)...), "record seq 5 (line 5): altered: content does not match the record's hash"},
		"removed":  {append(append([]string{}, lines[:4]...), lines[5:]...), "record seq 6 (line 5): removed: record seq 5 is missing before it"},
		"swapped":  {append(append([]string{}, lines[:4]...), append([]string{lines[5], lines[4]}, lines[6:]...)...), "record seq 6 (line 5): reordered: comes before record seq 5 (line 6)"},
		"inserted": {append(append([]string{}, lines[:4]...), append([]string{lines[1]}, lines[4:]...)...), "record seq 2 (line 5): inserted: record seq 5 was expected here"},
	} {
		t.Run(name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.jsonl")
			require.NoError(t, os.WriteFile(bad, []byte(strings.Join(tc.lines, "")), 0o600))
			code, out, stderr := run("audit", "verify", bad)
			require.Equal(t, 1, code)
			require.Empty(t, out)
			require.True(t, strings.HasPrefix(stderr, "runner: "+bad+": "+tc.stderr), stderr)
		})
	}

	code, _, stderr = run("audit", "verify")
	require.Equal(t, 2, code)
	require.Equal(t, "runner: audit verify: give one trail FILE, got 0 arguments\n", stderr)
	code, _, stderr = run("audit", "verify", filepath.Join(t.TempDir(), "missing.jsonl"))
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "no such file or directory")
}

func TestAuditVerifyElasticsearch(t *testing.T) {
	ctx := context.Background()
	srv := esfake.New()
	defer srv.Close()
	srv.RequireBasicAuth("auditor", "pw-from-env")
	s, err := es.Open(ctx, es.URLs(srv.URL()), es.BasicAuth("auditor", "pw-from-env"), es.IndexPrefix("trail"),
		es.SpillDir(t.TempDir()), es.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	require.NoError(t, err)
	var evs []audit.Event
	for i := range 20 {
		evs = append(evs, audittest.Event(t, i))
	}
	require.NoError(t, s.Write(ctx, evs...))
	_, head := s.Head()
	require.NoError(t, s.Close())

	t.Setenv("AETHER_ES_PASSWORD", "pw-from-env")
	searches := srv.Stats().Searches
	code, out, stderr := run("audit", "verify", "--elasticsearch", srv.URL(), "--index-prefix", "trail", "--username", "auditor")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "ok: 20 records, chain intact (0 redacted)\nlast record: seq 20, hash "+head+"\nattestations: 0, covering 0 partitions and 0 records\n", out)
	require.Equal(t, 1, srv.Stats().Searches-searches, "the chain and the attestations are checked in one read of the trail")

	n, err := es.Redact(ctx, "trail", func(e audit.Event) bool { return e.Kind == audit.KindInference },
		es.URLs(srv.URL()), es.BasicAuth("auditor", "pw-from-env"))
	require.NoError(t, err)
	require.Equal(t, 3, n)
	code, out, stderr = run("audit", "verify", "--elasticsearch", srv.URL(), "--index-prefix", "trail", "--username", "auditor")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "ok: 20 records, chain intact (3 redacted)\nlast record: seq 20, hash "+head+"\nattestations: 0, covering 0 partitions and 0 records\n", out)

	c, err := elastic.NewClient(elastic.SetURL(srv.URL()), elastic.SetSniff(false), elastic.SetHealthcheck(false),
		elastic.SetBasicAuth("auditor", "pw-from-env"))
	require.NoError(t, err)
	_, err = c.Update().Index("trail-2026.11.27").Id("evt-000004").Doc(map[string]any{"event": map[string]any{"outcome": "OK"}}).Do(ctx)
	require.NoError(t, err)
	code, out, stderr = run("audit", "verify", "--elasticsearch", srv.URL(), "--index-prefix", "trail", "--username", "auditor")
	require.Equal(t, 1, code)
	require.Empty(t, out)
	require.Equal(t, "runner: "+srv.URL()+"/trail-*: trail-2026.11.27/_doc/evt-000004: record seq 5 (line 5): altered: content does not match the record's hash\n", stderr)

	t.Setenv("AETHER_ES_PASSWORD", "not-the-password")
	code, _, stderr = run("audit", "verify", "--elasticsearch", srv.URL(), "--index-prefix", "trail", "--username", "auditor")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "Error 401 (Unauthorized): unable to authenticate user [auditor]")
	require.NotContains(t, stderr, "not-the-password")
	t.Setenv("AETHER_ES_PASSWORD", "")
	code, _, stderr = run("audit", "verify", "--elasticsearch", srv.URL(), "--username", "auditor")
	require.Equal(t, 1, code)
	require.Equal(t, "runner: audit verify: --username needs the password in AETHER_ES_PASSWORD\n", stderr)

	code, _, stderr = run("audit", "verify", "--elasticsearch", srv.URL(), "trail.jsonl")
	require.Equal(t, 2, code)
	require.Equal(t, "runner: audit verify: give a trail FILE or --elasticsearch URL, not both\n", stderr)
	code, _, stderr = run("audit", "verify", "--username", "u", "trail.jsonl")
	require.Equal(t, 2, code)
	require.Equal(t, "runner: audit verify: --username and --ca-file need --elasticsearch\n", stderr)
}

// A trail whose chain holds but whose attestations leave offsets out fails,
// naming the gap.
func TestAuditVerifyFindsAttestationGaps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := audit.OpenFile(path)
	require.NoError(t, err)
	for _, run := range [][2]int64{{0, 9}, {10, 19}, {30, 39}} {
		e, err := audit.New(audit.Attestation{Actor: "processor:sessionizer", Group: "sessionizer", Topic: "user_events_raw",
			Partition: 2, FirstOffset: run[0], LastOffset: run[1], Count: 10, Outcomes: map[string]int64{"applied": 10},
			Digest: strings.Repeat("ab", 32)}.Event())
		require.NoError(t, err)
		require.NoError(t, s.Write(context.Background(), e))
	}
	require.NoError(t, s.Close())
	code, out, stderr := run("audit", "verify", path)
	require.Equal(t, 1, code)
	require.Contains(t, out, "ok: 3 records, chain intact (0 redacted)\n", stderr)
	require.Contains(t, out, "attestations: 3, covering 1 partitions and 30 records\n", stderr)
	require.Contains(t, stderr, "20-29")
	require.Contains(t, stderr, "user_events_raw")
}
