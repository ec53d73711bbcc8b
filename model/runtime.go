package model

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

const (
	// RuntimeVersion is the ONNX Runtime version that InstallCommand
	// installs by default, and whose directory DefaultRuntimeLibrary names.
	// onnxruntime_go v1.27.0 needs 1.24 or newer.
	RuntimeVersion = "1.24.3"
	// InstallCommand installs the ONNX Runtime library at its default
	// location; run it from the repository root.
	InstallCommand = "bash scripts/onnxruntime.sh"
	// EnvRuntimeLibrary names the environment variable that overrides the
	// library's default location.
	EnvRuntimeLibrary = "ONNXRUNTIME_SHARED_LIBRARY_PATH"
	// EnvCacheDir names the environment variable of the cache directory
	// InstallCommand installs into (default $HOME/.cache/aether).
	EnvCacheDir = "AETHER_CACHE_DIR"
)

// DefaultRuntimeLibrary returns where Load looks for the ONNX Runtime
// shared library without a RuntimeLibrary option: $ONNXRUNTIME_SHARED_LIBRARY_PATH
// if set, else the file InstallCommand writes,
// ${AETHER_CACHE_DIR:-$HOME/.cache/aether}/onnxruntime/<RuntimeVersion>/libonnxruntime.so.
// source says which of the two it is.
func DefaultRuntimeLibrary() (path, source string) {
	if p := os.Getenv(EnvRuntimeLibrary); p != "" {
		return p, "from " + EnvRuntimeLibrary
	}
	cache := os.Getenv(EnvCacheDir)
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", "the default location, but the home directory is unknown"
		}
		cache = filepath.Join(home, ".cache", "aether")
	}
	return filepath.Join(cache, "onnxruntime", RuntimeVersion, "libonnxruntime.so"), "the default location"
}

// ErrRuntimeMissing is matched (errors.Is) by a RuntimeMissingError.
var ErrRuntimeMissing = errors.New("model: ONNX Runtime library not installed")

// RuntimeMissingError reports that the ONNX Runtime shared library is not
// where Load looked for it, and how to install it.
type RuntimeMissingError struct {
	// Path is where the library was looked for (empty if no location could
	// be determined).
	Path string
	// Source says where Path came from: the RuntimeLibrary option,
	// ONNXRUNTIME_SHARED_LIBRARY_PATH or the default location.
	Source string
	// Err is the underlying file system error, if any.
	Err error
}

func (e *RuntimeMissingError) Error() string {
	return fmt.Sprintf("model: ONNX Runtime library not found at %q (%s): install it with `%s` "+
		"from the repository root (it prints the library's path), or set %s to an ONNX Runtime %s or newer library",
		e.Path, e.Source, InstallCommand, EnvRuntimeLibrary, "1.24")
}

// Is makes errors.Is(err, ErrRuntimeMissing) true.
func (e *RuntimeMissingError) Is(target error) bool { return target == ErrRuntimeMissing }

func (e *RuntimeMissingError) Unwrap() error { return e.Err }

// runtimeEnv is the process's ONNX Runtime environment. onnxruntime_go
// keeps it in package globals (the library handle and one OrtEnv), so it
// can be initialised once per process only: the first successful Load
// fixes the library, later Loads share it, and a Load naming another
// library fails. A mutex rather than sync.Once guards it, so that a failed
// attempt (say, before the library was installed) can be retried. The
// environment is never destroyed: it lives as long as the process.
var runtimeEnv struct {
	mu      sync.Mutex
	path    string // resolved path of the loaded library
	foreign bool   // initialised by other code of the process
}

// initRuntime makes sure the ONNX Runtime environment is initialised with
// the library at path.
func initRuntime(path, source string) error {
	if path == "" {
		return &RuntimeMissingError{Source: source}
	}
	fi, err := os.Stat(path)
	if err == nil && fi.IsDir() {
		err = fmt.Errorf("%s is a directory", path)
	}
	if err != nil {
		return &RuntimeMissingError{Path: path, Source: source, Err: err}
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err == nil {
		resolved, err = filepath.Abs(resolved)
	}
	if err != nil {
		return fmt.Errorf("model: resolving the ONNX Runtime library path %q: %w", path, err)
	}

	runtimeEnv.mu.Lock()
	defer runtimeEnv.mu.Unlock()
	switch {
	case runtimeEnv.foreign:
		return nil
	case runtimeEnv.path == resolved:
		return nil
	case runtimeEnv.path != "":
		return fmt.Errorf("model: this process already runs the ONNX Runtime library %s; "+
			"it cannot load %s (%s) as well", runtimeEnv.path, path, source)
	case ort.IsInitialized():
		// Someone else initialised onnxruntime_go: use what they loaded.
		runtimeEnv.foreign = true
		return nil
	}
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("model: initialising ONNX Runtime from %s (%s): %w "+
			"(onnxruntime_go needs ONNX Runtime 1.24 or newer: `%s` installs %s)",
			path, source, err, InstallCommand, RuntimeVersion)
	}
	runtimeEnv.path = resolved
	return nil
}
