package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/runner/config"
)

const minimal = `
kafka:
  brokers: [127.0.0.1:9092]
model:
  dir: ./model
`

func TestDefaults(t *testing.T) {
	c, err := config.Parse([]byte(minimal))
	require.NoError(t, err)
	require.Equal(t, "recommendations", c.Pipeline)
	require.Equal(t, int32(8), c.Kafka.Partitions)
	require.Equal(t, time.Hour, c.Redis.TTL)
	require.Equal(t, "127.0.0.1:8080", c.HTTP.Listen)
	require.Equal(t, 30*time.Minute, c.Sessions.Gap)
}

func TestErrorsNameTheField(t *testing.T) {
	cases := map[string]string{
		"kafka:\n  brokers: []\nmodel:\n  dir: m\n":                     "kafka.brokers: at least one broker address is required",
		"kafka:\n  brokers: [nohost]\nmodel:\n  dir: m\n":               `kafka.brokers[0]: "nohost" is not host:port`,
		minimal + "redis:\n  ttl: -1s\n":                                "redis.ttl: must be positive: every key Aether writes expires",
		minimal + "model:\n  dir: m\n  sha256: abc\n":                   "mapping key \"model\" already defined",
		"kafka:\n  brokers: [a:1]\nmodel:\n  dir: m\n  sha256: abc\n":   "model.sha256: must be 64 hex digits",
		"kafka:\n  brokers: [a:1]\n":                                    "model.dir: the model directory is required",
		minimal + "http:\n  listen: 8080\n":                             `http.listen: "8080" is not host:port`,
		minimal + "kafka2: {}\n":                                        "field kafka2 not found in type config.Config",
		minimal + "sessions:\n  gap: soon\n":                            "cannot unmarshal !!str `soon` into time.Duration",
		"pipeline: fraud\nkafka:\n  brokers: [a:1]\nmodel:\n  dir: m\n": `pipeline: unknown pipeline "fraud" (built in: recommendations)`,
		minimal + "http:\n  apiKeys:\n    shop: \"\"\n":                 "http.apiKeys.shop: the key is empty",

		"kafka:\n  brokers: [a:1]\nmodel:\n  dir: m\n  uri: s3://b/m/v1\n": "model.uri: give model.dir or model.uri, not both",
		"kafka:\n  brokers: [a:1]\nmodel:\n  uri: https://x/m\n":           `model.uri: "https://x/m" has the unsupported scheme "https"`,
		"kafka:\n  brokers: [a:1]\nmodel:\n  uri: s3://bucket\n":           `model.uri: "s3://bucket" names no bucket or no key prefix`,
		"kafka:\n  brokers: [a:1]\nmodel:\n  uri: file://rel/m\n":          `model.uri: "file://rel/m" is not an absolute file URI`,
		"kafka:\n  brokers: [a:1]\nmodel:\n  uri: models/v1\n":             `model.uri: "models/v1" is not a URI (want file:///abs/path or s3://bucket/prefix)`,
		"kafka:\n  brokers: [a:1]\nmodel:\n  uri: s3://b/m?v=1\n":          `model.uri: "s3://b/m?v=1" has a query`,
		"kafka:\n  brokers: [a:1]\nmodel:\n  dir: m\n  manifest: \" \"\n":  "model.manifest: is blank",
	}
	for in, want := range cases {
		_, err := config.Parse([]byte(in))
		require.Error(t, err, in)
		require.Contains(t, err.Error(), want, in)
	}
}

func TestModelFromAStore(t *testing.T) {
	c, err := config.Parse([]byte("kafka:\n  brokers: [a:1]\nmodel:\n  uri: s3://models/published/v3\n  manifest: approved-models.json\n  cacheDir: /var/cache/aether\n"))
	require.NoError(t, err)
	require.Equal(t, config.Model{URI: "s3://models/published/v3", Manifest: "approved-models.json", CacheDir: "/var/cache/aether"}, c.Model)
	c, err = config.Parse([]byte("kafka:\n  brokers: [a:1]\nmodel:\n  uri: file:///srv/models/v3\n"))
	require.NoError(t, err)
	require.Equal(t, "file:///srv/models/v3", c.Model.URI)
}

func TestLoadNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(p, []byte("kafka: {brokers: [x]}\nmodel: {dir: m}\n"), 0o600))
	_, err := config.Load(p)
	require.ErrorContains(t, err, "config "+p+": kafka.brokers[0]")
	_, err = config.Load(filepath.Join(dir, "missing.yaml"))
	require.ErrorContains(t, err, "no such file")
}

func TestKeysFromEnvironment(t *testing.T) {
	t.Setenv("SHOP_KEY", "s3cret")
	h := config.HTTP{APIKeys: map[string]string{"shop": "env:SHOP_KEY", "other": "plain"}}
	keys, err := h.ResolveKeys()
	require.NoError(t, err)
	require.Equal(t, map[string]string{"shop": "s3cret", "other": "plain"}, keys)
	_, err = config.HTTP{APIKeys: map[string]string{"x": "env:AETHER_UNSET_VAR"}}.ResolveKeys()
	require.EqualError(t, err, "http.apiKeys.x: environment variable AETHER_UNSET_VAR is empty")
	require.False(t, strings.Contains(err.Error(), "s3cret"))
}

func TestModelRolloutFields(t *testing.T) {
	c, err := config.Parse([]byte("kafka:\n  brokers: [a:1]\nmodel:\n  uri: s3://models/published\n  manifest: m.json\n" +
		"  pollInterval: 30s\n  candidate: s3://models/published/v4\n  candidateShare: 0.1\n"))
	require.NoError(t, err)
	require.Equal(t, 30*time.Second, c.Model.PollInterval)
	require.Equal(t, "s3://models/published/v4", c.Model.Candidate)
	require.Equal(t, 0.1, c.Model.CandidateShare)

	const base = "kafka:\n  brokers: [a:1]\nmodel:\n"
	cases := map[string]string{
		base + "  dir: m\n  manifest: m.json\n  pollInterval: 1m\n":                                 "model.pollInterval: needs model.uri",
		base + "  uri: s3://b/m\n  pollInterval: 1m\n":                                              "model.pollInterval: needs model.manifest",
		base + "  uri: s3://b/m\n  manifest: m.json\n  pollInterval: -1s\n":                         "model.pollInterval: must not be negative",
		base + "  uri: s3://b/m\n  manifest: m.json\n  pollInterval: 1m\n  sha256: " + sha64 + "\n": "model.pollInterval: cannot be combined with model.sha256",
		base + "  dir: m\n  manifest: m.json\n  candidate: c\n  candidateShare: 1.5\n":              "model.candidateShare: must be between 0 and 1, got 1.5",
		base + "  dir: m\n  manifest: m.json\n  candidate: c\n  candidateShare: -0.1\n":             "model.candidateShare: must be between 0 and 1",
		base + "  dir: m\n  manifest: m.json\n  candidateShare: 0.2\n":                              "model.candidateShare: is set but model.candidate is not",
		base + "  dir: m\n  candidate: c\n  sha256: " + sha64 + "\n":                                "model.candidate: needs model.manifest",
		base + "  dir: m\n  manifest: m.json\n  candidate: https://x/c\n":                           `model.candidate: "https://x/c" has the unsupported scheme "https"`,
		base + "  dir: m\n  manifest: m.json\n  candidate: \" \"\n":                                 "model.candidate: is blank",
	}
	for in, want := range cases {
		_, err := config.Parse([]byte(in))
		require.Error(t, err, in)
		require.Contains(t, err.Error(), want, in)
	}
}

const sha64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestAuditFile(t *testing.T) {
	c, err := config.Parse([]byte(minimal))
	require.NoError(t, err)
	require.Empty(t, c.Audit.File, "no file: the runner picks a default")
	c, err = config.Parse([]byte(minimal + "audit:\n  file: /var/log/aether/audit.jsonl\n"))
	require.NoError(t, err)
	require.Equal(t, "/var/log/aether/audit.jsonl", c.Audit.File)
	_, err = config.Parse([]byte(minimal + "audit:\n  path: x\n"))
	require.ErrorContains(t, err, "field path not found")
}
