package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/runner/config"
)

// The override flags are one set, the same on run and, for the listener
// flags, on demo.
func TestRunAndDemoShareTheFlags(t *testing.T) {
	runFlagNames := []string{"config", "brokers", "redis", "http", "api-key", "model-sha256", "audit-file", "tls-cert", "tls-key", "admin", "admin-token"}
	for _, name := range runFlagNames {
		require.NotNil(t, runCmd().Flags().Lookup(name), "run --%s", name)
	}
	for _, name := range []string{"tls-cert", "tls-key", "admin", "admin-token"} {
		require.Equal(t, runCmd().Flags().Lookup(name).Usage, demoCmd().Flags().Lookup(name).Usage, "demo --%s", name)
	}
}

func parseRunFlags(t *testing.T, args ...string) *runFlags {
	t.Helper()
	cmd := &cobra.Command{Use: "x"}
	f := addRunFlags(cmd)
	require.NoError(t, cmd.ParseFlags(args))
	return f
}

func TestRunFlagsOverrideTheFile(t *testing.T) {
	t.Setenv("AETHER_API_KEY", "")
	file := filepath.Join(t.TempDir(), "p.yaml")
	require.NoError(t, os.WriteFile(file, []byte("kafka: {brokers: [k:9092]}\nmodel: {dir: m}\nhttp:\n  apiKeys: {shop: k1}\n"), 0o600))

	cfg, err := parseRunFlags(t, "-c", file).load()
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:8081", cfg.HTTP.Admin.Listen)
	require.False(t, cfg.HTTP.TLS.Enabled())

	cfg, err = parseRunFlags(t, "-c", file, "--brokers", "a:1,b:2", "--redis", "r:6379", "--http", "0.0.0.0:8443",
		"--api-key", "k2", "--audit-file", "/tmp/a.jsonl", "--tls-cert", "c.pem", "--tls-key", "k.pem",
		"--admin", "0.0.0.0:8444", "--admin-token", "t0ken").load()
	require.NoError(t, err)
	require.Equal(t, []string{"a:1", "b:2"}, cfg.Kafka.Brokers)
	require.Equal(t, "r:6379", cfg.Redis.Addr)
	require.Equal(t, "0.0.0.0:8443", cfg.HTTP.Listen)
	require.Equal(t, map[string]string{"shop": "k1", "cli": "k2"}, cfg.HTTP.APIKeys)
	require.Equal(t, "/tmp/a.jsonl", cfg.Audit.File)
	require.Equal(t, config.ServerTLS{CertFile: "c.pem", KeyFile: "k.pem"}, cfg.HTTP.TLS)
	require.Equal(t, config.Admin{Listen: "0.0.0.0:8444", Token: "t0ken"}, cfg.HTTP.Admin)

	// The result is validated: half a TLS configuration, or the admin API
	// off loopback without TLS, is refused.
	_, err = parseRunFlags(t, "-c", file, "--tls-cert", "c.pem").load()
	require.ErrorContains(t, err, "config "+file+" with flags: http.tls: certFile and keyFile go together")
	_, err = parseRunFlags(t, "-c", file, "--admin", "0.0.0.0:8444").load()
	require.ErrorContains(t, err, `http.admin.listen: "0.0.0.0:8444" is not a loopback address`)
	cfg, err = parseRunFlags(t, "-c", file, "--admin", "off").load()
	require.NoError(t, err)
	require.False(t, cfg.HTTP.Admin.Enabled())

	// --api-key falls back to AETHER_API_KEY when the file declares no
	// client; a file that does is left as it is (it may name the same key
	// as env:AETHER_API_KEY, as the example does).
	t.Setenv("AETHER_API_KEY", "from-env")
	cfg, err = parseRunFlags(t, "-c", file).load()
	require.NoError(t, err)
	require.Equal(t, map[string]string{"shop": "k1"}, cfg.HTTP.APIKeys)
	keyless := filepath.Join(t.TempDir(), "keyless.yaml")
	require.NoError(t, os.WriteFile(keyless, []byte("kafka: {brokers: [k:9092]}\nmodel: {dir: m}\n"), 0o600))
	cfg, err = parseRunFlags(t, "-c", keyless).load()
	require.NoError(t, err)
	require.Equal(t, map[string]string{"cli": "from-env"}, cfg.HTTP.APIKeys)

	_, err = parseRunFlags(t).load()
	require.EqualError(t, err, "-c FILE is required")
}

// apply works on a configuration from elsewhere (a command building its
// own, or a test).
func TestRunFlagsApply(t *testing.T) {
	t.Setenv("AETHER_API_KEY", "")
	cfg := &config.Config{Kafka: config.Kafka{Brokers: []string{"k:1"}}, Model: config.Model{Dir: "m"}}
	cfg.Defaults()
	require.NoError(t, parseRunFlags(t, "--redis", "r:1").apply(cfg))
	require.Equal(t, "r:1", cfg.Redis.Addr)
}

func TestAPIKeyHash(t *testing.T) {
	hash := func(stdin string) (string, error) {
		cmd := apikeyCmd()
		var out bytes.Buffer
		cmd.SetIn(strings.NewReader(stdin))
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs([]string{"hash"})
		err := cmd.Execute()
		return out.String(), err
	}
	out, err := hash("test\n")
	require.NoError(t, err)
	require.Equal(t, "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n", out)
	out, err = hash("test")
	require.NoError(t, err)
	require.Equal(t, "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n", out)
	_, err = hash("")
	require.EqualError(t, err, "no key on stdin: printf %s KEY | runner apikey hash")
	_, err = hash("two words\n")
	require.EqualError(t, err, "the key holds spaces or characters other than printable ASCII")
	// The digest is what the config accepts for http.apiKeys.
	_, err = config.Parse([]byte("kafka: {brokers: [k:1]}\nmodel: {dir: m}\nhttp:\n  apiKeys: {shop: " + strings.TrimSpace(config.HashKey("test")) + "}\n"))
	require.NoError(t, err)
}
