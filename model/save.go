package model

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Files of a model directory.
const (
	FileModel    = "model.onnx"
	FileVocab    = "vocab.json"
	FileMetadata = "metadata.json"
)

// formatVersion names the layout of a model directory and the graph's
// contract; Load refuses other formats.
const formatVersion = "aether.itemcf/1"

// Metadata is the content of metadata.json.
type Metadata struct {
	// Format is the directory layout and graph contract, "aether.itemcf/1".
	Format string `json:"format"`
	// Version names the model.
	Version string `json:"version"`
	// Created is when the model was trained (UTC, seconds).
	Created time.Time `json:"created"`
	// SHA256 is the hex SHA-256 of model.onnx.
	SHA256 string `json:"sha256"`
	// Items is the vocabulary size V: vocab.json's length.
	Items int `json:"items"`
	// IRVersion and Opset describe model.onnx.
	IRVersion int `json:"irVersion"`
	Opset     int `json:"opset"`
	// MaxK is the largest k Score accepts.
	MaxK   int           `json:"maxK"`
	Params Params        `json:"params"`
	Stats  TrainingStats `json:"training"`
	// Popularity holds the training events per item index (vocab.json
	// order, descending); Popular scores items by their share of
	// Stats.Events.
	Popularity []uint64 `json:"popularity"`
}

// Metadata returns the model's metadata.json content.
func (m *Model) Metadata() Metadata {
	return Metadata{
		Format:     formatVersion,
		Version:    m.version,
		Created:    m.created,
		SHA256:     m.sha256,
		Items:      len(m.vocab),
		IRVersion:  IRVersion,
		Opset:      m.opset,
		MaxK:       MaxK,
		Params:     m.params,
		Stats:      m.stats,
		Popularity: m.counts,
	}
}

// Save writes the model into dir (created if needed): model.onnx (the
// scoring graph), vocab.json (a JSON array: the product id of each item
// index, most frequent first) and metadata.json (Metadata). Each file is
// written to a temporary name and renamed, metadata.json last, so a reader
// that finds metadata.json finds the other two complete; Load also checks
// model.onnx against the SHA-256 in metadata.json.
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("model: save: %w", err)
	}
	vocab, err := json.Marshal(m.vocab)
	if err != nil {
		return fmt.Errorf("model: save: encoding vocab: %w", err)
	}
	meta, err := json.MarshalIndent(m.Metadata(), "", "  ")
	if err != nil {
		return fmt.Errorf("model: save: encoding metadata: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{FileModel, m.onnx}, {FileVocab, vocab}, {FileMetadata, append(meta, '\n')}} {
		if err := writeFile(filepath.Join(dir, f.name), f.data); err != nil {
			return fmt.Errorf("model: save: %w", err)
		}
	}
	return nil
}

// writeFile writes data to path through a temporary file and a rename.
func writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
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
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
