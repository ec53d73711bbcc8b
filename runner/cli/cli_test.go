package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/runner/cli"
)

func run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = cli.Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestDescribeTheExampleFile(t *testing.T) {
	code, out, stderr := run("describe", "-c", "../../examples/recommendations/aether.yaml")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "processor sessionizer\n  consumes user_events_raw [json<event.Event>, retention 7d, 8 partitions, personal: userId, clientIp, sealed per subject]")
	code, out, _ = run("describe", "-c", "../../examples/recommendations/aether.yaml", "--format", "mermaid")
	require.Equal(t, 0, code)
	require.Contains(t, out, "flowchart LR")
}

func TestUsageErrors(t *testing.T) {
	code, _, stderr := run("describe")
	require.Equal(t, 2, code)
	require.Equal(t, "runner: describe: -c FILE is required\n", stderr)
	code, _, stderr = run("describe", "-c", "../../examples/recommendations/aether.yaml", "--format", "svg")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `unknown describe format "svg"`)
	code, _, stderr = run("nope")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, `unknown command "nope"`)
}

func TestTrain(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	var lines []string
	for i := range 200 {
		lines = append(lines, fmt.Sprintf(`{"userId":"u%d","productId":"prod_%d","eventType":"click","timestamp":"2026-01-01T00:%02d:%02dZ"}`, i%10, i%17, i/60, i%60))
	}
	require.NoError(t, os.WriteFile(events, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	code, out, stderr := run("train", "--events", events, "-o", filepath.Join(dir, "m"))
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "trained on 200 events (10 users")
	require.Regexp(t, `model.sha256: [0-9a-f]{64}\n`, out)
	for _, f := range []string{"model.onnx", "vocab.json", "metadata.json"} {
		_, err := os.Stat(filepath.Join(dir, "m", f))
		require.NoError(t, err, f)
	}

	// The co-occurrence blend: default 0.1 within 20 places, set by flags,
	// recorded in metadata.json, checked.
	params := func(dir string) map[string]any {
		b, err := os.ReadFile(filepath.Join(dir, "metadata.json"))
		require.NoError(t, err)
		var md struct{ Params map[string]any }
		require.NoError(t, json.Unmarshal(b, &md))
		return md.Params
	}
	require.Equal(t, 0.1, params(filepath.Join(dir, "m"))["coOccurrence"])
	require.Equal(t, 20.0, params(filepath.Join(dir, "m"))["coWindow"])
	code, _, stderr = run("train", "--events", events, "-o", filepath.Join(dir, "mco"), "--co-occurrence", "0.5", "--co-window", "5")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, 0.5, params(filepath.Join(dir, "mco"))["coOccurrence"])
	require.Equal(t, 5.0, params(filepath.Join(dir, "mco"))["coWindow"])
	code, _, stderr = run("train", "--events", events, "-o", filepath.Join(dir, "mbad"), "--co-occurrence", "-1")
	require.Equal(t, 1, code)
	require.True(t, strings.HasSuffix(stderr, "\nrunner: model: CoOccurrence must be between 0 and 100, got -1\n"), stderr)

	// The session TSV's sessions are kept whole, however long their gaps.
	tsv := filepath.Join(dir, "sessions.tsv")
	require.NoError(t, os.WriteFile(tsv, []byte("SessionId\tItemId\tTime\n1\t10\t1000\n1\t11\t9000\n2\t11\t1000\n2\t12\t1001\n"), 0o600))
	code, _, stderr = run("train", "--events", tsv, "-o", filepath.Join(dir, "mtsv"))
	require.Equal(t, 0, code, stderr)
	b, err := os.ReadFile(filepath.Join(dir, "mtsv", "metadata.json"))
	require.NoError(t, err)
	require.Contains(t, string(b), `"sessions": 2,`)
	require.Equal(t, "0s", params(filepath.Join(dir, "mtsv"))["sessionGap"])

	require.NoError(t, os.WriteFile(events, []byte(lines[0]+"\n{\"userId\":1}\n"), 0o600))
	code, _, stderr = run("train", "--events", events, "-o", filepath.Join(dir, "m2"))
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "runner: line 2: ")

	code, _, stderr = run("train", "-o", dir)
	require.Equal(t, 2, code)
	require.Equal(t, "runner: train: give -o DIR and one of --events FILE or --synthetic N\n", stderr)
}
