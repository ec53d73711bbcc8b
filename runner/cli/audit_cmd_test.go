package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/audit/audittest"
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
	require.Equal(t, "ok: 20 records, chain intact (0 redacted)\nlast record: seq 20, hash "+head+"\n", out)

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
