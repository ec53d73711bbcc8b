package cli_test

import (
	"bytes"
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
	require.Contains(t, out, "processor sessionizer\n  consumes user_events_raw [json<event.Event>, retention 7d, 8 partitions, personal: userId, clientIp]")
	code, out, _ = run("describe", "-c", "../../examples/recommendations/aether.yaml", "--format", "mermaid")
	require.Equal(t, 0, code)
	require.Contains(t, out, "flowchart LR")
}

func TestUsageErrors(t *testing.T) {
	code, _, stderr := run("describe")
	require.Equal(t, 2, code)
	require.Equal(t, "runner: describe: -c FILE is required\n", stderr)
	code, _, stderr = run("describe", "-c", "../../examples/recommendations/aether.yaml", "--format", "dot")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `unknown describe format "dot"`)
	code, _, stderr = run("nope")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, `unknown command "nope"`)
}
