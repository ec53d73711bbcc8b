package model

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/recommend"
)

// ErrClosed is returned by Score after Close.
var ErrClosed = errors.New("model: scorer closed")

// ChecksumError reports a model.onnx whose SHA-256 is not the expected one.
type ChecksumError struct {
	// Path is the model file.
	Path string
	// Expected is the hex SHA-256 wanted, Actual the file's.
	Expected, Actual string
	// Source says where Expected came from: the ExpectSHA256 option or
	// metadata.json.
	Source string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("model: refusing %s: SHA-256 mismatch: expected %s (%s), actual %s",
		e.Path, e.Expected, e.Source, e.Actual)
}

// LoadOption configures Load.
type LoadOption func(*loadConfig)

type loadConfig struct {
	sha     string
	lib     string
	threads int
}

// ExpectSHA256 makes Load refuse a model.onnx whose SHA-256 is not hex
// (case does not matter), with a *ChecksumError naming both.
func ExpectSHA256(hex string) LoadOption {
	return func(c *loadConfig) { c.sha = strings.ToLower(strings.TrimSpace(hex)) }
}

// RuntimeLibrary sets the path of the ONNX Runtime shared library
// (default: DefaultRuntimeLibrary). Only one library can be loaded per
// process; see Load.
func RuntimeLibrary(path string) LoadOption { return func(c *loadConfig) { c.lib = path } }

// Threads sets the ONNX Runtime intra-op threads of each inference
// (default 1). One thread keeps one inference on one core, which suits a
// stream processor scoring from several partitions at once; more threads
// only help large batches on an otherwise idle machine.
func Threads(n int) LoadOption { return func(c *loadConfig) { c.threads = n } }

// Loaded is a model loaded into ONNX Runtime. It implements
// recommend.Scorer.
//
// It is safe for concurrent use without a lock around inference: ONNX
// Runtime's Run is thread-safe on one session, and each Score call creates
// its own input and output tensors. A read-write mutex only keeps Close
// from destroying the session under a running Score.
type Loaded struct {
	meta  Metadata
	vocab []string
	index map[string]int32
	id    recommend.Model

	mu      sync.RWMutex
	session *ort.DynamicAdvancedSession // nil once closed
}

var _ recommend.Scorer = (*Loaded)(nil)

// Load reads a model directory written by Save and creates an ONNX Runtime
// session for it. It checks, before touching ONNX Runtime, that
// model.onnx's SHA-256 is the one metadata.json records and the one
// ExpectSHA256 asks for (a *ChecksumError otherwise), and that vocab.json
// matches the metadata.
//
// ONNX Runtime is initialised on the first successful Load of the process,
// from the library RuntimeLibrary names or DefaultRuntimeLibrary; a
// missing library is a *RuntimeMissingError that names InstallCommand.
// The environment is process-wide (onnxruntime_go keeps it in globals): a
// later Load with a different library fails, and the environment lives
// until the process exits. Close a Loaded to free its session.
func Load(dir string, opts ...LoadOption) (*Loaded, error) {
	cfg := loadConfig{threads: 1}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.threads < 1 {
		return nil, fmt.Errorf("model: Threads must be at least 1, got %d", cfg.threads)
	}
	if cfg.sha != "" {
		if b, err := hex.DecodeString(cfg.sha); err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("model: ExpectSHA256 wants 64 hex digits, got %q", cfg.sha)
		}
	}

	var meta Metadata
	if err := readJSON(filepath.Join(dir, FileMetadata), &meta); err != nil {
		return nil, err
	}
	if meta.Format != formatVersion {
		return nil, fmt.Errorf("model: %s: format %q, this build reads %q", filepath.Join(dir, FileMetadata), meta.Format, formatVersion)
	}
	modelPath := filepath.Join(dir, FileModel)
	data, err := os.ReadFile(modelPath)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	sum := sha256.Sum256(data)
	actual := hex.EncodeToString(sum[:])
	if cfg.sha != "" && cfg.sha != actual {
		return nil, &ChecksumError{Path: modelPath, Expected: cfg.sha, Actual: actual, Source: "ExpectSHA256"}
	}
	if !strings.EqualFold(meta.SHA256, actual) {
		return nil, &ChecksumError{Path: modelPath, Expected: meta.SHA256, Actual: actual, Source: FileMetadata}
	}
	var vocab []string
	if err := readJSON(filepath.Join(dir, FileVocab), &vocab); err != nil {
		return nil, err
	}
	if len(vocab) != meta.Items || len(meta.Popularity) != meta.Items || meta.Items == 0 {
		return nil, fmt.Errorf("model: %s: %d items in vocab.json, %d popularity counts, metadata says %d items",
			dir, len(vocab), len(meta.Popularity), meta.Items)
	}
	index := make(map[string]int32, len(vocab))
	for i, p := range vocab {
		if _, dup := index[p]; dup {
			return nil, fmt.Errorf("model: %s: product %q appears twice", filepath.Join(dir, FileVocab), p)
		}
		index[p] = int32(i)
	}

	lib, source := cfg.lib, "from the RuntimeLibrary option"
	if lib == "" {
		lib, source = DefaultRuntimeLibrary()
	}
	if err := initRuntime(lib, source); err != nil {
		return nil, err
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("model: session options: %w", err)
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(cfg.threads); err != nil {
		return nil, fmt.Errorf("model: session options: %w", err)
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("model: session options: %w", err)
	}
	session, err := ort.NewDynamicAdvancedSessionWithONNXData(data,
		[]string{InputItems, InputWeights, InputK}, []string{OutputScores, OutputIndices}, so)
	if err != nil {
		return nil, fmt.Errorf("model: creating the ONNX Runtime session for %s: %w", modelPath, err)
	}
	return &Loaded{
		meta:    meta,
		vocab:   vocab,
		index:   index,
		id:      recommend.Model{Version: meta.Version, SHA256: actual},
		session: session,
	}, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("model: %s: %w", path, err)
	}
	return nil
}

// Model identifies the loaded model: its version and model.onnx's SHA-256.
func (l *Loaded) Model() recommend.Model { return l.id }

// Metadata returns the model's metadata.json content.
func (l *Loaded) Metadata() Metadata { return l.meta }

// Items is the vocabulary size V.
func (l *Loaded) Items() int { return len(l.vocab) }

// Popular returns the k most frequent training items (k capped at the
// vocabulary size), scored by their share of the training events.
func (l *Loaded) Popular(k int) []recommend.Item {
	return popular(l.vocab, l.meta.Popularity, l.meta.Stats.Events, k)
}

// Score scores all records in one inference and returns, per record in
// order, the top k (1 <= k <= MaxK) items with a score above 0, best first.
// A record's newest MaxHistory recent items enter with HistoryWeight by
// their position; items outside the vocabulary are skipped, and a record
// without known items gets Popular(k) (no inference for it). Nothing is excluded: an item the
// user has seen can be recommended. Scores equal ScoreGo's within float32
// rounding.
func (l *Loaded) Score(ctx context.Context, records []features.Record, k int) ([][]recommend.Item, error) {
	if err := checkK(k); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([][]recommend.Item, len(records))
	hist := make([][]slot, len(records))
	width := 0
	for i := range records {
		hist[i] = history(l.index, &records[i], nil)
		width = max(width, len(hist[i]))
	}
	for i, h := range hist {
		if len(h) == 0 {
			out[i] = l.Popular(k)
		}
	}
	if width == 0 {
		return out, nil
	}
	items := make([]int64, len(records)*width)
	weights := make([]float32, len(records)*width)
	for i, h := range hist {
		row := i * width
		for c := range width {
			if c < len(h) {
				items[row+c], weights[row+c] = int64(h[c].item), h[c].weight
			} else {
				items[row+c] = -1
			}
		}
	}

	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.session == nil {
		return nil, ErrClosed
	}
	shape := ort.NewShape(int64(len(records)), int64(width))
	itemsT, err := ort.NewTensor(shape, items)
	if err != nil {
		return nil, fmt.Errorf("model: score: %w", err)
	}
	defer itemsT.Destroy()
	weightsT, err := ort.NewTensor(shape, weights)
	if err != nil {
		return nil, fmt.Errorf("model: score: %w", err)
	}
	defer weightsT.Destroy()
	kT, err := ort.NewTensor(ort.NewShape(1), []int64{int64(k)})
	if err != nil {
		return nil, fmt.Errorf("model: score: %w", err)
	}
	defer kT.Destroy()
	outputs := []ort.Value{nil, nil}
	err = l.session.Run([]ort.Value{itemsT, weightsT, kT}, outputs)
	for _, o := range outputs {
		if o != nil {
			defer o.Destroy()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("model: score: %w", err)
	}
	scoresT, ok1 := outputs[0].(*ort.Tensor[float32])
	indicesT, ok2 := outputs[1].(*ort.Tensor[int64])
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("model: score: unexpected output types %T, %T", outputs[0], outputs[1])
	}
	s := scoresT.GetShape()
	if len(s) != 2 || s[0] != int64(len(records)) || !s.Equals(indicesT.GetShape()) {
		return nil, fmt.Errorf("model: score: unexpected output shapes %v, %v", s, indicesT.GetShape())
	}
	kk := int(s[1])
	scores, indices := scoresT.GetData(), indicesT.GetData()
	for i := range out {
		if len(hist[i]) == 0 {
			continue // Popular(k) above
		}
		list := make([]recommend.Item, 0, kk)
		for c := range kk {
			sc, j := scores[i*kk+c], indices[i*kk+c]
			if !(sc > 0) {
				break // sorted: the rest are fillers
			}
			if j < 0 || j >= int64(len(l.vocab)) {
				return nil, fmt.Errorf("model: score: item index %d outside the vocabulary of %d", j, len(l.vocab))
			}
			list = append(list, recommend.Item{ProductID: l.vocab[j], Score: sc})
		}
		out[i] = list
	}
	return out, nil
}

// Close frees the ONNX Runtime session; it waits for running Score calls.
// Score fails with ErrClosed afterwards. The process-wide environment
// stays (see Load).
func (l *Loaded) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.session == nil {
		return nil
	}
	err := l.session.Destroy()
	l.session = nil
	return err
}
