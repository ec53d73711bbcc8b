package cli_test

import (
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
	code, _, stderr = run("forget", "--user", "alice", "-c", example)
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, "forget.subjectKeyEnv is not set")
	// The run flags are accepted, as on every -c command.
	code, _, stderr = run("forget", "--user", "alice", "-c", example, "--brokers", "127.0.0.1:1", "--redis", "127.0.0.1:1", "--audit-file", "x.jsonl")
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, "forget.subjectKeyEnv is not set")
}
