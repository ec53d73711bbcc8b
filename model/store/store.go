// Package store moves model directories (model.onnx, vocab.json,
// metadata.json, as model.Save writes them) between a model store and the
// local disk, verifying model.onnx against the SHA-256 that metadata.json
// records on the way.
//
// # Locations
//
// A location is a URI naming a model directory:
//
//   - file:///abs/path/DIR, or a plain path: a directory on the local disk;
//   - s3://bucket/prefix: the objects prefix/model.onnx, prefix/vocab.json
//     and prefix/metadata.json of an S3 bucket, through the AWS SDK for Go
//     v2, so any S3-compatible server works.
//
// # Versioned layout
//
// Published models live one version per directory under a common prefix:
//
//	s3://bucket/models/<version>/model.onnx
//	s3://bucket/models/<version>/vocab.json
//	s3://bucket/models/<version>/metadata.json
//
// (file:///srv/models/<version>/... alike). Put writes metadata.json last,
// and Versions counts a version only once its metadata.json exists, so a
// half-published version is never listed. A published version is
// immutable: Put refuses to overwrite a version holding another model.
// Versions sort in natural order (digit runs compare as numbers, so v9 <
// v10); `runner train`'s default names (itemcf-<UTC time>) sort by age.
// Latest is the last of them.
//
// # S3 settings
//
// The client reads the standard AWS settings: credentials from
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (or the
// shared files and the rest of the SDK's default chain), the region from
// AWS_REGION (us-east-1 if none is set), the endpoint from
// AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_S3. The Endpoint, Region and
// Credentials options override them. With a custom endpoint (an
// S3-compatible server such as MinIO or Ceph) the client uses path-style
// addressing (http://host/bucket/key) and adds the SDK's CRC checksums to
// uploads only where the API requires them (unless
// AWS_REQUEST_CHECKSUM_CALCULATION says otherwise), since many such
// servers reject them; integrity comes from the SHA-256 check. Downloads
// that carry a checksum are still checked against it by the SDK.
//
// # Cache
//
// Fetch downloads into a fresh directory under the cache directory, checks
// it, and renames it to <cache>/<digest>, the SHA-256 over the three
// files' SHA-256s: the cache is content-addressed, a directory in it is
// never modified once complete, and fetching the same model twice yields
// the same directory. Nothing is evicted.
package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/aetherai/aether/model"
)

// files are the files of a model directory, in the order Fetch downloads
// and Put uploads them: metadata.json last, so that a reader finding it
// finds the others complete.
var files = []string{model.FileModel, model.FileVocab, model.FileMetadata}

// maxMetadata bounds metadata.json (it holds one count per item: a few
// hundred kB for the largest vocabulary).
const maxMetadata = 64 << 20

// ErrNotFound is matched (errors.Is) by a *NotFoundError.
var ErrNotFound = errors.New("store: not found")

// NotFoundError reports a missing object, directory or version.
type NotFoundError struct {
	// URI is what was looked for.
	URI string
	// What says what is missing ("no such object", "no model version").
	What string
	// Err is the underlying error, if any.
	Err error
}

func (e *NotFoundError) Error() string {
	what := e.What
	if what == "" {
		what = "not found"
	}
	return "store: " + e.URI + ": " + what
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

func (e *NotFoundError) Unwrap() error { return e.Err }

// ImmutableError reports a Put to a version that already holds another
// model.
type ImmutableError struct {
	// URI is the destination; Existing and New are the SHA-256s of the
	// model there and of the one being put.
	URI, Existing, New string
}

func (e *ImmutableError) Error() string {
	return fmt.Sprintf("store: %s already holds model sha256 %s: a published version is immutable; publish sha256 %s under a new version",
		e.URI, e.Existing, e.New)
}

// Option configures the S3 client of Fetch, Put, Versions and Latest;
// file locations ignore them.
type Option func(*options)

type options struct {
	endpoint, region  string
	accessKey, secret string
	staticCredentials bool
}

// Endpoint sets the S3 endpoint URL (http://127.0.0.1:9000), overriding
// AWS_ENDPOINT_URL; path-style addressing is used with it.
func Endpoint(url string) Option { return func(o *options) { o.endpoint = url } }

// Region sets the S3 region, overriding AWS_REGION.
func Region(region string) Option { return func(o *options) { o.region = region } }

// Credentials sets static S3 credentials instead of the SDK's default
// chain (environment, shared files, instance roles).
func Credentials(accessKeyID, secretAccessKey string) Option {
	return func(o *options) {
		o.accessKey, o.secret, o.staticCredentials = accessKeyID, secretAccessKey, true
	}
}

// backend is one kind of store.
type backend interface {
	// get copies the object at u to w; a *NotFoundError if it is missing.
	get(ctx context.Context, u URI, w io.Writer) error
	// put stores size bytes from r at u.
	put(ctx context.Context, u URI, r io.ReadSeeker, size int64) error
	// versions returns the names v of the directories u/v holding a
	// metadata.json, in any order.
	versions(ctx context.Context, u URI) ([]string, error)
}

func open(ctx context.Context, u URI, opts []Option) (backend, error) {
	if u.Scheme == SchemeFile {
		return fileBackend{}, nil
	}
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return newS3(ctx, o)
}

// parseDir parses uri as the location of one model directory.
func parseDir(uri string) (URI, error) {
	u, err := ParseURI(uri)
	if err != nil {
		return URI{}, err
	}
	if u.Scheme == SchemeS3 && u.Path == "" {
		return URI{}, fmt.Errorf("store: %s: a model directory needs a key prefix (s3://bucket/models/<version>)", uri)
	}
	return u, nil
}

// Fetch copies the model directory at uri into a new directory under
// cacheDir (created if needed) and returns that directory. It verifies,
// before returning, that model.onnx's SHA-256 is the one metadata.json
// records: a mismatch is a *model.ChecksumError naming both, and nothing
// is left in the cache. A missing file is a *NotFoundError. See the
// package documentation for the cache's layout.
func Fetch(ctx context.Context, uri, cacheDir string, opts ...Option) (dir string, err error) {
	u, err := parseDir(uri)
	if err != nil {
		return "", err
	}
	if cacheDir == "" {
		return "", fmt.Errorf("store: fetch %s: no cache directory", uri)
	}
	b, err := open(ctx, u, opts)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("store: cache: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, ".fetch-*")
	if err != nil {
		return "", fmt.Errorf("store: cache: %w", err)
	}
	defer func() {
		if tmp != "" {
			os.RemoveAll(tmp)
		}
	}()

	sums := make(map[string]string, len(files))
	for _, name := range files {
		sum, err := download(ctx, b, u.Join(name), filepath.Join(tmp, name))
		if err != nil {
			return "", err
		}
		sums[name] = sum
	}
	meta, err := readMetadata(filepath.Join(tmp, model.FileMetadata), u.Join(model.FileMetadata).String())
	if err != nil {
		return "", err
	}
	if !strings.EqualFold(meta.SHA256, sums[model.FileModel]) {
		return "", &model.ChecksumError{Path: u.Join(model.FileModel).String(),
			Expected: meta.SHA256, Actual: sums[model.FileModel], Source: model.FileMetadata}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("store: cache: %w", err)
	}

	target := filepath.Join(cacheDir, digest(sums))
	if _, err := Verify(target); err == nil {
		return target, nil // already fetched
	} else if _, serr := os.Stat(target); serr == nil {
		// A damaged cache entry (its files were changed): replace it.
		if err := os.RemoveAll(target); err != nil {
			return "", fmt.Errorf("store: cache: replacing the damaged %s: %w", target, err)
		}
	}
	if err := os.Rename(tmp, target); err != nil {
		if _, verr := Verify(target); verr == nil {
			return target, nil // a concurrent Fetch of the same model won
		}
		return "", fmt.Errorf("store: cache: %w", err)
	}
	tmp = ""
	return target, nil
}

// download copies the object at u into the file path and returns its hex
// SHA-256.
func download(ctx context.Context, b backend, u URI, path string) (string, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", fmt.Errorf("store: cache: %w", err)
	}
	h := sha256.New()
	err = b.get(ctx, u, io.MultiWriter(f, h))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("store: cache: %w", cerr)
	}
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// digest names a model directory by its three files' SHA-256s.
func digest(sums map[string]string) string {
	h := sha256.New()
	for _, name := range files {
		fmt.Fprintf(h, "%s %s\n", sums[name], name)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func readMetadata(path, name string) (model.Metadata, error) {
	var meta model.Metadata
	f, err := os.Open(path)
	if err != nil {
		return meta, fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(io.LimitReader(f, maxMetadata))
	if err := dec.Decode(&meta); err != nil {
		return meta, fmt.Errorf("store: %s: %w", name, err)
	}
	if b, err := hex.DecodeString(meta.SHA256); err != nil || len(b) != sha256.Size {
		return meta, fmt.Errorf("store: %s: sha256 %q is not 64 hex digits", name, meta.SHA256)
	}
	return meta, nil
}

// Verify checks the local model directory dir: metadata.json parses and
// records a SHA-256, vocab.json exists, and model.onnx's SHA-256 is the
// recorded one (a *model.ChecksumError otherwise). It returns the
// metadata; its SHA256 is then model.onnx's.
func Verify(dir string) (model.Metadata, error) {
	meta, err := readMetadata(filepath.Join(dir, model.FileMetadata), filepath.Join(dir, model.FileMetadata))
	if err != nil {
		return meta, err
	}
	if _, err := os.Stat(filepath.Join(dir, model.FileVocab)); err != nil {
		return meta, fmt.Errorf("store: %w", err)
	}
	path := filepath.Join(dir, model.FileModel)
	f, err := os.Open(path)
	if err != nil {
		return meta, fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return meta, fmt.Errorf("store: %s: %w", path, err)
	}
	actual := hex.EncodeToString(h.Sum(nil))
	if !strings.EqualFold(meta.SHA256, actual) {
		return meta, &model.ChecksumError{Path: path, Expected: meta.SHA256, Actual: actual, Source: model.FileMetadata}
	}
	meta.SHA256 = actual
	return meta, nil
}

// Put uploads the model directory localDir (checked with Verify first) to
// uri: model.onnx, vocab.json, then metadata.json. If uri already holds a
// model with another SHA-256 it refuses with an *ImmutableError; putting
// the same model again rewrites its files.
func Put(ctx context.Context, localDir, uri string, opts ...Option) error {
	meta, err := Verify(localDir)
	if err != nil {
		return err
	}
	u, err := parseDir(uri)
	if err != nil {
		return err
	}
	b, err := open(ctx, u, opts)
	if err != nil {
		return err
	}
	var existing bytes.Buffer
	switch err := b.get(ctx, u.Join(model.FileMetadata), &existing); {
	case err == nil:
		var old model.Metadata
		if jerr := json.Unmarshal(existing.Bytes(), &old); jerr != nil {
			return fmt.Errorf("store: %s holds an unreadable %s (%w); refusing to overwrite it", u, model.FileMetadata, jerr)
		}
		if !strings.EqualFold(old.SHA256, meta.SHA256) {
			return &ImmutableError{URI: u.String(), Existing: old.SHA256, New: meta.SHA256}
		}
	case !errors.Is(err, ErrNotFound):
		return err
	}
	for _, name := range files {
		if err := putFile(ctx, b, filepath.Join(localDir, name), u.Join(name)); err != nil {
			return err
		}
	}
	return nil
}

func putFile(ctx context.Context, b backend, path string, u URI) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return b.put(ctx, u, f, fi.Size())
}

// Versions lists the model versions under uri (see the package
// documentation's layout), in natural order, oldest name first. An empty
// or missing prefix has no versions.
func Versions(ctx context.Context, uri string, opts ...Option) ([]string, error) {
	u, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	b, err := open(ctx, u, opts)
	if err != nil {
		return nil, err
	}
	vs, err := b.versions(ctx, u)
	if err != nil {
		return nil, err
	}
	sortNatural(vs)
	return vs, nil
}

// Latest returns the last of Versions and its location,
// uri/<version>; a *NotFoundError if there is none.
func Latest(ctx context.Context, uri string, opts ...Option) (version, versionURI string, err error) {
	vs, err := Versions(ctx, uri, opts...)
	if err != nil {
		return "", "", err
	}
	if len(vs) == 0 {
		return "", "", &NotFoundError{URI: uri, What: "no model version (no <version>/" + model.FileMetadata + " below it)"}
	}
	u, _ := ParseURI(uri) // parsed by Versions
	v := vs[len(vs)-1]
	return v, u.Join(v).String(), nil
}
