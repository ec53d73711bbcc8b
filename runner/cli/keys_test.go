package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/examples/recommendations/pipeline"
	"github.com/aetherai/aether/runner"
	"github.com/aetherai/aether/runner/config"
)

// runner keys rotate rewraps the data keys of the old master key under the
// new one: afterwards the new key alone opens what was sealed before.
func TestKeysRotate(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	oldKey, newKey := strings.Repeat("o", 32), strings.Repeat("n", 32)
	t.Setenv("AETHER_TEST_MASTER", oldKey)
	t.Setenv("AETHER_TEST_SUBJECT", strings.Repeat("s", 16))
	yaml := fmt.Sprintf(`
kafka: {brokers: [127.0.0.1:1]}
redis: {addr: %q}
model: {dir: m}
forget: {subjectKeyEnv: AETHER_TEST_SUBJECT}
privacy: {masterKeyEnv: AETHER_TEST_MASTER}
`, mr.Addr())
	file := filepath.Join(t.TempDir(), "aether.yaml")
	require.NoError(t, os.WriteFile(file, []byte(yaml), 0o600))
	keyring := func() func(string) []byte {
		cfg, err := config.Load(file)
		require.NoError(t, err)
		kr, err := runner.NewKeyring(cfg, rdb, pipeline.New(pipeline.Config{}).Topology, nil)
		require.NoError(t, err)
		return func(subject string) []byte {
			v, err := kr.Seal(context.Background(), subject, []byte("v"))
			require.NoError(t, err)
			return v
		}
	}
	seal := keyring()
	sealed := map[string][]byte{"a": seal("a"), "b": seal("b")}

	// Rotation: the new key, the old one as previous.
	t.Setenv("AETHER_TEST_MASTER", newKey)
	t.Setenv("AETHER_TEST_MASTER_OLD", oldKey)
	require.NoError(t, os.WriteFile(file, []byte(strings.Replace(yaml, "privacy: {masterKeyEnv: AETHER_TEST_MASTER}",
		"privacy: {masterKeyEnv: AETHER_TEST_MASTER, previousMasterKeyEnv: AETHER_TEST_MASTER_OLD}", 1)), 0o600))
	sealed["c"] = keyring()("c")
	code, out, stderr := run("keys", "rotate", "-c", file)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "rewrapped 2 data keys; 1 were already under the current master key\n", out)
	require.Contains(t, stderr, "keys: rewrapping the data keys under aether:keys:* with the master key of $AETHER_TEST_MASTER")
	require.NotContains(t, stderr+out, newKey)
	require.NotContains(t, stderr+out, oldKey)

	// The new key alone.
	require.NoError(t, os.WriteFile(file, []byte(yaml), 0o600))
	cfg, err := config.Load(file)
	require.NoError(t, err)
	kr, err := runner.NewKeyring(cfg, rdb, pipeline.New(pipeline.Config{}).Topology, nil)
	require.NoError(t, err)
	for s, v := range sealed {
		got, err := kr.Open(context.Background(), s, v)
		require.NoError(t, err, s)
		require.Equal(t, "v", string(got))
	}

	// Without privacy there is nothing to rotate.
	require.NoError(t, os.WriteFile(file, []byte(strings.Replace(yaml, "privacy: {masterKeyEnv: AETHER_TEST_MASTER}\n", "", 1)), 0o600))
	code, _, stderr = run("keys", "rotate", "-c", file)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "privacy.masterKeyEnv is not set: this pipeline seals nothing")
}
