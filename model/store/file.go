package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/aetherai/aether/model"
)

// fileBackend is a directory tree on the local disk.
type fileBackend struct{}

func (fileBackend) get(ctx context.Context, u URI, w io.Writer) error {
	f, err := os.Open(u.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return &NotFoundError{URI: u.String(), What: "no such file", Err: err}
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("store: %s: %w", u, err)
	}
	return ctx.Err()
}

// put writes through a temporary file and a rename, so a reader never
// sees a partial file.
func (fileBackend) put(ctx context.Context, u URI, r io.ReadSeeker, _ int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := filepath.Dir(u.Path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(u.Path)+".*")
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	tmp := f.Name()
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, u.Path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: %s: %w", u, err)
	}
	return nil
}

func (fileBackend) versions(_ context.Context, u URI) ([]string, error) {
	entries, err := os.ReadDir(u.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var vs []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if fi, err := os.Stat(filepath.Join(u.Path, e.Name(), model.FileMetadata)); err == nil && fi.Mode().IsRegular() {
			vs = append(vs, e.Name())
		}
	}
	return vs, nil
}
