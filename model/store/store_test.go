package store_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/model"
	"github.com/aetherai/aether/model/store"
	"github.com/aetherai/aether/model/store/storetest"
)

// location is one kind of store under test: a root URI holding versions,
// the options to reach it, and a way to change an object behind the
// store's back.
type location struct {
	root      string
	opts      []store.Option
	overwrite func(t *testing.T, rel string, data []byte) // rel: "<version>/<file>"
	remove    func(t *testing.T, rel string)
}

func fileLocation(t *testing.T) location {
	root := t.TempDir()
	return location{
		root: "file://" + root,
		overwrite: func(t *testing.T, rel string, data []byte) {
			require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(root, rel)), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(root, rel), data, 0o644))
		},
		remove: func(t *testing.T, rel string) { require.NoError(t, os.Remove(filepath.Join(root, rel))) },
	}
}

func s3Location(t *testing.T) location {
	s := storetest.StartS3(t, "models")
	return location{
		root: "s3://models/published",
		opts: []store.Option{store.Endpoint(s.Endpoint), store.Credentials(storetest.AccessKeyID, storetest.SecretAccessKey)},
		overwrite: func(t *testing.T, rel string, data []byte) {
			_, err := s.Backend.PutObject("models", "published/"+rel, map[string]string{}, bytes.NewReader(data), int64(len(data)), nil)
			require.NoError(t, err)
		},
		remove: func(t *testing.T, rel string) {
			_, err := s.Backend.DeleteObject("models", "published/"+rel)
			require.NoError(t, err)
		},
	}
}

// TestStores runs the same contract against every kind of store.
func TestStores(t *testing.T) {
	for name, newLoc := range map[string]func(*testing.T) location{"file": fileLocation, "s3": s3Location} {
		t.Run(name, func(t *testing.T) {
			t.Run("PutFetch", func(t *testing.T) { testPutFetch(t, newLoc(t)) })
			t.Run("Tampered", func(t *testing.T) { testTampered(t, newLoc(t)) })
			t.Run("Missing", func(t *testing.T) { testMissing(t, newLoc(t)) })
			t.Run("Immutable", func(t *testing.T) { testImmutable(t, newLoc(t)) })
			t.Run("Versions", func(t *testing.T) { testVersions(t, newLoc(t)) })
		})
	}
}

func testPutFetch(t *testing.T, loc location) {
	ctx := context.Background()
	src := t.TempDir()
	meta := storetest.Model(t, src, "v1", 1)
	uri := loc.root + "/v1"
	require.NoError(t, store.Put(ctx, src, uri, loc.opts...))

	cache := t.TempDir()
	dir, err := store.Fetch(ctx, uri, cache, loc.opts...)
	require.NoError(t, err)
	require.Equal(t, cache, filepath.Dir(dir))
	for _, f := range []string{model.FileModel, model.FileVocab, model.FileMetadata} {
		want, err := os.ReadFile(filepath.Join(src, f))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		require.Equal(t, want, got, f)
	}
	got, err := store.Verify(dir)
	require.NoError(t, err)
	require.Equal(t, meta.SHA256, got.SHA256)
	require.Equal(t, "v1", got.Version)

	// Content-addressed: the same model lands in the same directory, and
	// no temporary directory is left behind.
	again, err := store.Fetch(ctx, uri, cache, loc.opts...)
	require.NoError(t, err)
	require.Equal(t, dir, again)
	entries, err := os.ReadDir(cache)
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

func testTampered(t *testing.T, loc location) {
	ctx := context.Background()
	src := t.TempDir()
	meta := storetest.Model(t, src, "v1", 1)
	require.NoError(t, store.Put(ctx, src, loc.root+"/v1", loc.opts...))
	onnx, err := os.ReadFile(filepath.Join(src, model.FileModel))
	require.NoError(t, err)
	onnx[len(onnx)-1] ^= 1
	loc.overwrite(t, "v1/"+model.FileModel, onnx)

	cache := t.TempDir()
	_, err = store.Fetch(ctx, loc.root+"/v1", cache, loc.opts...)
	var ce *model.ChecksumError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, meta.SHA256, ce.Expected)
	require.NotEqual(t, meta.SHA256, ce.Actual)
	require.Contains(t, err.Error(), meta.SHA256)
	require.Contains(t, err.Error(), ce.Actual)
	require.Contains(t, err.Error(), loc.root+"/v1/model.onnx")
	entries, err := os.ReadDir(cache)
	require.NoError(t, err)
	require.Empty(t, entries, "a refused model leaves nothing in the cache")
}

func testMissing(t *testing.T, loc location) {
	ctx := context.Background()
	src := t.TempDir()
	storetest.Model(t, src, "v1", 1)
	require.NoError(t, store.Put(ctx, src, loc.root+"/v1", loc.opts...))
	loc.remove(t, "v1/"+model.FileVocab)

	_, err := store.Fetch(ctx, loc.root+"/v1", t.TempDir(), loc.opts...)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorContains(t, err, loc.root+"/v1/vocab.json")

	_, err = store.Fetch(ctx, loc.root+"/nope", t.TempDir(), loc.opts...)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, _, err = store.Latest(ctx, loc.root+"/nope", loc.opts...)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorContains(t, err, "no model version")
}

func testImmutable(t *testing.T, loc location) {
	ctx := context.Background()
	a, b := t.TempDir(), t.TempDir()
	ma := storetest.Model(t, a, "v1", 1)
	mb := storetest.Model(t, b, "v1", 2)
	require.NotEqual(t, ma.SHA256, mb.SHA256)
	require.NoError(t, store.Put(ctx, a, loc.root+"/v1", loc.opts...))
	require.NoError(t, store.Put(ctx, a, loc.root+"/v1", loc.opts...), "the same model again")
	err := store.Put(ctx, b, loc.root+"/v1", loc.opts...)
	var ie *store.ImmutableError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, ma.SHA256, ie.Existing)
	require.Equal(t, mb.SHA256, ie.New)

	// A broken local directory is not published.
	require.NoError(t, os.WriteFile(filepath.Join(b, model.FileModel), []byte("x"), 0o644))
	var ce *model.ChecksumError
	require.ErrorAs(t, store.Put(ctx, b, loc.root+"/v2", loc.opts...), &ce)
}

func testVersions(t *testing.T, loc location) {
	ctx := context.Background()
	vs, err := store.Versions(ctx, loc.root, loc.opts...)
	require.NoError(t, err)
	require.Empty(t, vs)
	src := t.TempDir()
	storetest.Model(t, src, "m", 1)
	for _, v := range []string{"v2", "v10", "v1"} {
		require.NoError(t, store.Put(ctx, src, loc.root+"/"+v, loc.opts...))
	}
	// Half-published: no metadata.json yet.
	loc.overwrite(t, "v11/"+model.FileModel, []byte("partial"))
	vs, err = store.Versions(ctx, loc.root, loc.opts...)
	require.NoError(t, err)
	require.Equal(t, []string{"v1", "v2", "v10"}, vs)
	v, uri, err := store.Latest(ctx, loc.root, loc.opts...)
	require.NoError(t, err)
	require.Equal(t, "v10", v)
	require.Equal(t, loc.root+"/v10", uri)
	_, err = store.Fetch(ctx, uri, t.TempDir(), loc.opts...)
	require.NoError(t, err)
}

// The SDK's standard environment variables are enough: endpoint,
// credentials and region.
func TestS3FromEnvironment(t *testing.T) {
	s := storetest.StartS3(t, "models")
	s.SetEnv(t)
	ctx := context.Background()
	src := t.TempDir()
	meta := storetest.Model(t, src, "env", 3)
	require.NoError(t, store.Put(ctx, src, "s3://models/env/1", nil))
	dir, err := store.Fetch(ctx, "s3://models/env/1", t.TempDir())
	require.NoError(t, err)
	got, err := store.Verify(dir)
	require.NoError(t, err)
	require.Equal(t, meta.SHA256, got.SHA256)

	_, err = store.Fetch(ctx, "s3://nobucket/env/1", t.TempDir())
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorContains(t, err, "s3://nobucket/env/1/model.onnx: no such bucket")
}

func TestVerify(t *testing.T) {
	dir := t.TempDir()
	meta := storetest.Model(t, dir, "v", 1)
	got, err := store.Verify(dir)
	require.NoError(t, err)
	require.Equal(t, meta.SHA256, got.SHA256)
	require.NoError(t, os.WriteFile(filepath.Join(dir, model.FileModel), []byte("tampered"), 0o644))
	_, err = store.Verify(dir)
	var ce *model.ChecksumError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, filepath.Join(dir, model.FileModel), ce.Path)
	_, err = store.Verify(t.TempDir())
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestParseURI(t *testing.T) {
	ok := map[string]store.URI{
		"file:///srv/models/v1":          {Scheme: "file", Path: "/srv/models/v1"},
		"file://localhost/srv/models/":   {Scheme: "file", Path: "/srv/models"},
		"models/v1":                      {Scheme: "file", Path: "models/v1"},
		"/abs/v1":                        {Scheme: "file", Path: "/abs/v1"},
		"s3://bucket/models/v1/":         {Scheme: "s3", Bucket: "bucket", Path: "models/v1"},
		"s3://bucket":                    {Scheme: "s3", Bucket: "bucket"},
		"s3://bucket/itemcf-20260101T00": {Scheme: "s3", Bucket: "bucket", Path: "itemcf-20260101T00"},
	}
	for in, want := range ok {
		got, err := store.ParseURI(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	bad := map[string]string{
		"":                      "empty model URI",
		"http://host/m":         `unsupported scheme "http"`,
		"file://host/m":         "not host",
		"s3:///models":          "no bucket",
		"s3://b/a//c":           "empty path segment",
		"s3://b/a/../c":         `".." segments`,
		"s3://b/m?versionId=1":  "query",
		"s3://key:secret@b/m/1": "user info",
	}
	for in, want := range bad {
		_, err := store.ParseURI(in)
		require.ErrorContains(t, err, want, in)
	}
	u, _ := store.ParseURI("s3://b/models")
	require.Equal(t, "s3://b/models/v1", u.Join("v1").String())
	u, _ = store.ParseURI("s3://b")
	require.Equal(t, "s3://b/v1", u.Join("v1").String())
	u, _ = store.ParseURI("file:///srv/models")
	require.Equal(t, "file:///srv/models/v1", u.Join("v1").String())

	_, err := store.Fetch(context.Background(), "s3://b", t.TempDir())
	require.ErrorContains(t, err, "needs a key prefix")
	_, err = store.Fetch(context.Background(), "s3://b/m", t.TempDir(), store.Endpoint("127.0.0.1:9000"))
	require.ErrorContains(t, err, `S3 endpoint "127.0.0.1:9000" is not an http:// or https:// URL`)
}
