package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/model"
	"github.com/aetherai/aether/model/store"
	"github.com/aetherai/aether/model/store/storetest"
)

func TestModelApproveThenList(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "approved.json")
	m := storetest.Model(t, filepath.Join(dir, "m1"), "v1", 1)

	code, out, stderr := run("model", "approve", filepath.Join(dir, "m1"), "--by", "alice", "--ticket", "CHG-1", "--manifest", manifest)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "approved model v1 (sha256 "+m.SHA256+") in "+manifest+": by alice, ticket CHG-1, at ")
	require.Contains(t, stderr, "event=model_change action=approve outcome=approved sha256="+m.SHA256+" version=v1 by=alice ticket=CHG-1")

	code, out, stderr = run("model", "list", "--manifest", manifest)
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	require.Regexp(t, `^SHA256\s+VERSION\s+APPROVED BY\s+TICKET\s+APPROVED AT$`, lines[0])
	require.Regexp(t, `^`+m.SHA256+`\s+v1\s+alice\s+CHG-1\s+20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, lines[1])

	// Again under the same ticket: nothing changes; another ticket: refused.
	code, out, _ = run("model", "approve", "file://"+filepath.Join(dir, "m1"), "--by", "bob", "--ticket", "CHG-1", "--manifest", manifest)
	require.Equal(t, 0, code)
	require.Contains(t, out, "was already approved in "+manifest+" by alice, ticket CHG-1")
	trail := filepath.Join(dir, "audit.jsonl")
	code, _, stderr = run("model", "approve", filepath.Join(dir, "m1"), "--by", "bob", "--ticket", "CHG-2", "--manifest", manifest,
		"--audit-file", trail)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "runner: model sha256 "+m.SHA256+" is already approved in "+manifest+" by alice under ticket CHG-1")
	require.Contains(t, stderr, "outcome=refused")
	// With --audit-file the refusal is in the trail too, and the trail verifies.
	b, err := os.ReadFile(trail)
	require.NoError(t, err)
	require.Contains(t, string(b), `"kind":"model_change","actor":"bob","resource":"model/`+m.SHA256+`","action":"approve","outcome":"refused"`)
	code, _, stderr = run("audit", "verify", trail)
	require.Equal(t, 0, code, stderr)

	// The manifest named by the configuration.
	cfg := writeRunConfig(t, dir, "dir: "+filepath.Join(dir, "m1"), "manifest: "+filepath.Join(dir, "from-config.json"))
	m2 := storetest.Model(t, filepath.Join(dir, "m2"), "v2", 2)
	code, _, stderr = run("model", "approve", filepath.Join(dir, "m2"), "--by", "carol", "--ticket", "CHG-3", "-c", cfg)
	require.Equal(t, 0, code, stderr)
	code, out, _ = run("model", "list", "-c", cfg)
	require.Equal(t, 0, code)
	require.Contains(t, out, m2.SHA256)
	require.NotContains(t, out, m.SHA256)

	// A model whose files do not match its metadata is not approved.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "m2", model.FileModel), []byte("tampered"), 0o644))
	code, _, stderr = run("model", "approve", filepath.Join(dir, "m2"), "--by", "carol", "--ticket", "CHG-4", "--manifest", manifest)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "SHA-256 mismatch: expected "+m2.SHA256)
}

func TestModelUsageErrors(t *testing.T) {
	dir := t.TempDir()
	storetest.Model(t, dir, "v1", 1)
	manifest := filepath.Join(dir, "approved.json")
	for _, args := range [][]string{
		{"model", "approve", dir, "--ticket", "CHG-1", "--manifest", manifest},
		{"model", "approve", dir, "--by", "alice", "--manifest", manifest},
		{"model", "approve", dir, "--by", " ", "--ticket", "CHG-1", "--manifest", manifest},
	} {
		code, _, stderr := run(args...)
		require.Equal(t, 2, code, args)
		require.Equal(t, "runner: model approve: --by NAME and --ticket ID are required\n", stderr, args)
	}
	code, _, stderr := run("model", "approve", "--by", "a", "--ticket", "b")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "model approve: give one model directory or URI, got 0 arguments")
	_, err := os.Stat(manifest)
	require.ErrorIs(t, err, os.ErrNotExist, "nothing written")

	code, _, stderr = run("model", "list", "--manifest", manifest)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, manifest+": no such file or directory")
}

func TestModelApproveFromS3(t *testing.T) {
	s := storetest.StartS3(t, "models")
	s.SetEnv(t)
	dir := t.TempDir()
	m := storetest.Model(t, filepath.Join(dir, "m"), "v7", 7)
	require.NoError(t, store.Put(context.Background(), filepath.Join(dir, "m"), "s3://models/published/v7"))
	manifest := filepath.Join(dir, "approved.json")

	code, out, stderr := run("model", "approve", "s3://models/published/v7", "--by", "alice", "--ticket", "CHG-7", "--manifest", manifest)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "approved model v7 (sha256 "+m.SHA256+")")

	// Tampered in the store: refused, and not approved.
	tamper(t, s, "published/v7/"+model.FileModel)
	code, _, stderr = run("model", "approve", "s3://models/published/v7", "--by", "alice", "--ticket", "CHG-8", "--manifest", filepath.Join(dir, "other.json"))
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "refusing s3://models/published/v7/model.onnx: SHA-256 mismatch: expected "+m.SHA256)
	_, err := os.Stat(filepath.Join(dir, "other.json"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// runner run refuses, before it touches Redis or Kafka, a model that is not
// in the manifest, and one that is neither pinned nor subject to a
// manifest. Neither needs ONNX Runtime.
func TestRunRefusesUnapprovedModel(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // runner run writes its audit trail here
	manifest := filepath.Join(dir, "approved.json")
	storetest.Model(t, filepath.Join(dir, "m1"), "v1", 1)
	m2 := storetest.Model(t, filepath.Join(dir, "m2"), "v2", 2)
	code, _, stderr := run("model", "approve", filepath.Join(dir, "m1"), "--by", "alice", "--ticket", "CHG-1", "--manifest", manifest)
	require.Equal(t, 0, code, stderr)

	cfg := writeRunConfig(t, dir, "dir: "+filepath.Join(dir, "m2"), "manifest: "+manifest)
	code, _, stderr = run("run", "-c", cfg)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "runner: model sha256 "+m2.SHA256+" (version v2) is not approved: it is not in the approved-models manifest "+manifest)
	require.Contains(t, stderr, "event=model_change action=load outcome=refused sha256="+m2.SHA256+" version=v2")
	require.NotContains(t, stderr, "redis", "refused before Redis")
	// The refusal is in the run's audit trail, which still verifies.
	trails, err := filepath.Glob(filepath.Join(dir, "aether-audit-*.jsonl"))
	require.NoError(t, err)
	require.Len(t, trails, 1)
	trail, err := os.ReadFile(trails[0])
	require.NoError(t, err)
	require.Contains(t, string(trail), `"kind":"model_change","actor":"runner","resource":"model/`+m2.SHA256+`","action":"load","outcome":"refused"`)
	code, out, stderr := run("audit", "verify", trails[0])
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "ok: ")
	require.NoError(t, os.Remove(trails[0]))

	cfg = writeRunConfig(t, dir, "dir: "+filepath.Join(dir, "m2"))
	code, _, stderr = run("run", "-c", cfg)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "runner: model.sha256 or model.manifest is required: pin the model (the model in "+
		filepath.Join(dir, "m2")+" is version v2, sha256 "+m2.SHA256+")")

	// A pin that is not the model's.
	cfg = writeRunConfig(t, dir, "dir: "+filepath.Join(dir, "m2"), "sha256: "+strings.Repeat("0", 64))
	code, _, stderr = run("run", "-c", cfg)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "SHA-256 mismatch: expected "+strings.Repeat("0", 64)+" (model.sha256), actual "+m2.SHA256)
}

// runner run with model.uri on S3: the model is fetched and checked, then
// the manifest decides.
func TestRunFetchesTheModelFromS3(t *testing.T) {
	s := storetest.StartS3(t, "models")
	s.SetEnv(t)
	dir := t.TempDir()
	t.Chdir(dir) // runner run writes its audit trail here
	manifest := filepath.Join(dir, "approved.json")
	m := storetest.Model(t, filepath.Join(dir, "m"), "v3", 3)
	require.NoError(t, store.Put(context.Background(), filepath.Join(dir, "m"), "s3://models/published/v3"))
	cache := filepath.Join(dir, "cache")
	cfg := writeRunConfig(t, dir, "uri: s3://models/published/v3", "manifest: "+manifest, "cacheDir: "+cache)

	// Not approved yet (the manifest does not exist): refused.
	code, _, stderr := run("run", "-c", cfg)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "runner: model sha256 "+m.SHA256+" (version v3) refused: no approved-models manifest to check it against")

	code, _, stderr = run("model", "approve", "s3://models/published/v3", "--by", "alice", "--ticket", "CHG-3", "--manifest", manifest)
	require.Equal(t, 0, code, stderr)

	// Approved: fetched, admitted and loaded; the run then stops at Redis,
	// which is not there.
	t.Run("approved", func(t *testing.T) {
		needRuntime(t)
		code, _, stderr := run("run", "-c", cfg)
		require.Equal(t, 1, code)
		require.Contains(t, stderr, "outcome=admitted sha256="+m.SHA256+" version=v3 by=alice ticket=CHG-3")
		require.Contains(t, stderr, "outcome=loaded sha256="+m.SHA256)
		require.Contains(t, stderr, "source=s3://models/published/v3")
		require.Contains(t, stderr, "runner: redis://127.0.0.1:")
		entries, err := os.ReadDir(cache)
		require.NoError(t, err)
		require.Len(t, entries, 1)
	})

	// Tampered in the store: refused at fetch, whatever the manifest says.
	tamper(t, s, "published/v3/"+model.FileModel)
	code, _, stderr = run("run", "-c", cfg)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "runner: model: refusing s3://models/published/v3/model.onnx: SHA-256 mismatch: expected "+m.SHA256+" (metadata.json)")
	require.Contains(t, stderr, "outcome=refused")
}

// writeRunConfig writes a runner configuration whose model section holds
// modelLines, with Kafka and Redis addresses where nothing listens.
func writeRunConfig(t *testing.T, dir string, modelLines ...string) string {
	t.Helper()
	closed := closedAddr(t)
	var b bytes.Buffer
	fmt.Fprintf(&b, "kafka:\n  brokers: [%s]\nredis:\n  addr: %s\nhttp:\n  listen: 127.0.0.1:0\n  apiKeys:\n    test: test-key\nmodel:\n", closed, closed)
	for _, l := range modelLines {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	f, err := os.CreateTemp(dir, "aether-*.yaml")
	require.NoError(t, err)
	_, err = f.Write(b.Bytes())
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return f.Name()
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// tamper flips the last byte of an object behind the store's back.
func tamper(t *testing.T, s *storetest.S3, key string) {
	t.Helper()
	obj, err := s.Backend.GetObject("models", key, nil)
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = buf.ReadFrom(obj.Contents)
	require.NoError(t, err)
	obj.Contents.Close()
	data := buf.Bytes()
	data[len(data)-1] ^= 1
	_, err = s.Backend.PutObject("models", key, map[string]string{}, bytes.NewReader(data), int64(len(data)), nil)
	require.NoError(t, err)
}

// needRuntime skips a test that needs the ONNX Runtime library when it is
// not installed, and fails it under CI (CI=true).
func needRuntime(t *testing.T) {
	t.Helper()
	path, source := model.DefaultRuntimeLibrary()
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("ONNX Runtime library not found at %q (%s): install it with `%s` from the repository root",
			path, source, model.InstallCommand)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// With a versioned model.uri, runner run starts on the newest approved
// version: a newer one published ahead of its approval is refused (and
// said so) and the one before it is loaded.
func TestRunStartsOnTheNewestApprovedVersion(t *testing.T) {
	needRuntime(t)
	dir := t.TempDir()
	t.Chdir(dir) // runner run writes its audit trail here
	manifest, published, metas := publishVersions(t, dir)
	cfg := writeRunConfig(t, dir, "uri: "+published, "manifest: "+manifest, "pollInterval: 1m", "cacheDir: "+filepath.Join(dir, "cache"))
	code, _, stderr := run("run", "-c", cfg)
	require.Equal(t, 1, code, "stops at Redis, which is not there")
	require.Contains(t, stderr, "outcome=refused sha256="+metas[2].SHA256+" version=v3")
	require.Contains(t, stderr, "outcome=loaded sha256="+metas[1].SHA256+" version=v2 by=alice ticket=CHG-v2")
	require.Contains(t, stderr, "outcome=fallback source="+published+"/v2")
	require.NotContains(t, stderr, "version=v1")
	require.Contains(t, stderr, "runner: redis://127.0.0.1:")

	// Nothing approved at all: the newest version's refusal.
	cfg = writeRunConfig(t, dir, "uri: "+published, "manifest: "+filepath.Join(dir, "empty.json"), "pollInterval: 1m",
		"cacheDir: "+filepath.Join(dir, "cache"))
	code, _, stderr = run("run", "-c", cfg)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "runner: model sha256 "+metas[2].SHA256+" (version v3)")
}

// publishVersions publishes models v1, v2 and v3 under dir's "published"
// prefix and approves v1 and v2 in dir's approved.json; it returns the
// manifest, the prefix's URI and the three models' metadata.
func publishVersions(t *testing.T, dir string) (manifest, published string, metas []model.Metadata) {
	t.Helper()
	manifest = filepath.Join(dir, "approved.json")
	published = "file://" + filepath.Join(dir, "published")
	for i, v := range []string{"v1", "v2", "v3"} {
		metas = append(metas, storetest.Model(t, filepath.Join(dir, v), v, i+1))
		require.NoError(t, store.Put(context.Background(), filepath.Join(dir, v), published+"/"+v))
	}
	for _, v := range []string{"v1", "v2"} {
		code, _, stderr := run("model", "approve", published+"/"+v, "--by", "alice", "--ticket", "CHG-"+v, "--manifest", manifest)
		require.Equal(t, 0, code, stderr)
	}
	return manifest, published, metas
}
