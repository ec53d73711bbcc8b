package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The end-to-end runs of runner forget (against a running runner, and
// after it stopped) are in runner/forget_test.go, next to the pipeline
// they need.

func TestForgetUsageErrors(t *testing.T) {
	const example = "../../examples/recommendations/aether.yaml"
	code, _, stderr := run("forget", "-c", example)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "--user: forget: invalid user id: empty")
	code, _, stderr = run("forget", "--user", "a\x01b", "-c", example)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "control characters")
	code, _, stderr = run("forget", "--user", "alice")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "-c FILE is required")
	// The example names the subject key's variable; it is not set.
	t.Setenv("AETHER_SUBJECT_KEY", "")
	code, _, stderr = run("forget", "--user", "alice", "-c", example)
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, "forget.subjectKeyEnv: environment variable AETHER_SUBJECT_KEY must hold a key of at least 16 bytes")
	// The run flags are accepted, as on every -c command.
	code, _, stderr = run("forget", "--user", "alice", "-c", example, "--brokers", "127.0.0.1:1", "--redis", "127.0.0.1:1", "--audit-file", "x.jsonl")
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, "AETHER_SUBJECT_KEY must hold a key")
	// A file that names no subject key at all.
	noKey := filepath.Join(t.TempDir(), "aether.yaml")
	b, err := os.ReadFile(example)
	require.NoError(t, err)
	b = []byte(strings.NewReplacer("privacy:\n  masterKeyEnv: AETHER_MASTER_KEY", "", "forget:\n  subjectKeyEnv: AETHER_SUBJECT_KEY", "").Replace(string(b)))
	require.NoError(t, os.WriteFile(noKey, b, 0o600))
	code, _, stderr = run("forget", "--user", "alice", "-c", noKey)
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, "forget.subjectKeyEnv is not set")
}
