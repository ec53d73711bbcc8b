package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/aetherai/aether/clickstream"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/model"
	"github.com/aetherai/aether/model/eval"
	hist "github.com/aetherai/aether/model/history"
)

// defaultProgressEvery is how many events separate progress lines.
const defaultProgressEvery = 1_000_000

// trainedMetadata is metadata.json as runner train writes it: the model's
// metadata (model.Load reads that part) and what the trainer knows about
// the data and the model's quality.
type trainedMetadata struct {
	model.Metadata
	// TrainingData identifies the events the model was trained on.
	TrainingData trainingData `json:"trainingData"`
	// Evaluation is the evaluation on --test, if given.
	Evaluation *evaluation `json:"evaluation,omitempty"`
}

// trainingData is a hist.Digest of the training file; for synthetic
// events, the digest of their JSON lines (as `--events` would read them)
// and the generator's seed.
type trainingData struct {
	hist.Digest
	SyntheticSeed *uint64 `json:"syntheticSeed,omitempty"`
}

// evaluation is an eval.Result (its JSON line's fields) with the test
// data's digest and the data's statistics.
type evaluation struct {
	Test hist.Digest `json:"test"`
	*eval.Result
	Stats eval.Stats `json:"stats"`
}

func trainCmd() *cobra.Command {
	var events, out, version, test string
	var synthetic, vocab, neighbours, window, coWindow, opset, every int
	var distExp, coWeight float64
	var seed uint64
	cmd := &cobra.Command{
		Use:   "train (--events FILE | --synthetic N) -o DIR [--test FILE]",
		Short: "Train the recommendation model from an event history and write it to DIR",
		Long: `Train the item-to-item model from an event history and write model.onnx,
vocab.json and metadata.json to DIR. The history (--events) is a file of
JSON-lines events as on user_events_raw, the tab-separated session format of
session-based recommendation benchmarks (header SessionId, ItemId, Time in
Unix seconds), or OTTO sessions (JSON lines); the format is detected, gzip
too. --synthetic N trains on N synthetic events instead.

metadata.json records the model's SHA-256, parameters and item count, the
training data's digest (SHA-256 of the file) and, with --test FILE, the
evaluation of 'runner eval' on that file. The model's SHA-256 is printed,
to pin in the pipeline file (model.sha256). Progress goes to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" || (events == "") == (synthetic == 0) {
				return usageError{fmt.Errorf("train: give -o DIR and one of --events FILE or --synthetic N")}
			}
			if every < 1 {
				return usageError{fmt.Errorf("train: --progress-every must be at least 1")}
			}
			logw := cmd.ErrOrStderr()
			logf := func(format string, args ...any) { fmt.Fprintf(logw, "train: "+format+"\n", args...) }
			opts := []model.TrainOption{}
			for _, o := range []struct {
				v   int
				opt func(int) model.TrainOption
			}{{vocab, model.VocabSize}, {neighbours, model.Neighbours}, {window, model.Window}, {opset, model.Opset}} {
				if o.v != 0 {
					opts = append(opts, o.opt(o.v))
				}
			}
			if version != "" {
				opts = append(opts, model.Version(version))
			}
			if cmd.Flags().Changed("distance-exponent") {
				opts = append(opts, model.DistanceExponent(distExp))
			}
			if cmd.Flags().Changed("co-occurrence") {
				opts = append(opts, model.CoOccurrence(coWeight))
			}
			if cmd.Flags().Changed("co-window") {
				opts = append(opts, model.CoWindow(coWindow))
			}

			var (
				src    iter.Seq[event.Event]
				reader *hist.Reader
				data   trainingData
				synth  hashedSynthetic
				format = hist.FormatEvents
			)
			if events != "" {
				r, err := hist.Open(events)
				if err != nil {
					return err
				}
				defer r.Close()
				reader, format, src = r, r.Format(), r.Events()
				logf("reading %s (%s format)", events, format)
			} else {
				gen, err := clickstream.New(clickstream.Config{Seed: seed})
				if err != nil {
					return err
				}
				synth = hashedSynthetic{gen: gen, n: synthetic}
				src = synth.events()
				logf("generating %d synthetic events (seed %d)", synthetic, seed)
			}
			// Sessions as the file gives them: whole in the session TSV, as
			// `runner eval` reads it; split at the model's gap otherwise.
			opts = append(opts, model.SessionGap(hist.SessionGap(format)))
			var collector *hist.Collector
			if test != "" {
				collector = hist.NewCollector(hist.SessionGap(format))
				src = collector.Tee(src)
			}
			start := time.Now()
			src = progress(src, every, func(n uint64, done bool) {
				if reader != nil && reader.Err() != nil {
					return // Train gets no more events; the error is reported below
				}
				if done {
					logf("read %d events in %s; building the model", n, time.Since(start).Round(time.Millisecond))
				} else {
					logf("read %d events (%s)", n, time.Since(start).Round(time.Millisecond))
				}
			})
			m, err := model.Train(src, opts...)
			if reader != nil && reader.Err() != nil {
				return reader.Err()
			}
			if err != nil {
				return err
			}
			meta := m.Metadata()
			logf("built in %s: %d items from %d sessions", time.Since(start).Round(time.Millisecond), meta.Items, meta.Stats.Sessions)
			if reader != nil {
				data.Digest = reader.Digest()
			} else {
				data.Digest = synth.digest()
				data.SyntheticSeed = &seed
			}
			if err := m.Save(out); err != nil {
				return err
			}
			full := trainedMetadata{Metadata: meta, TrainingData: data}
			// metadata.json with the data's digest now, so that an
			// evaluation that fails leaves a complete model directory.
			if err := writeMetadata(out, &full); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "trained on %d events (%d users, %d sessions) in %s: %d items\nwrote %s (model version %s)\nmodel.sha256: %s\n",
				meta.Stats.Events, meta.Stats.Users, meta.Stats.Sessions, time.Since(start).Round(time.Millisecond), meta.Items, out, meta.Version, meta.SHA256)
			if test == "" {
				return nil
			}

			logf("evaluating on %s", test)
			testSessions, testDigest, err := readSessions(test, every, logw)
			if err != nil {
				return err
			}
			loaded, err := model.Load(out, model.ExpectSHA256(meta.SHA256))
			if err != nil {
				return err
			}
			defer loaded.Close()
			res, err := eval.Evaluate(cmd.Context(), collector.Sessions(), testSessions, loaded, eval.Progress(logw))
			if err != nil {
				return err
			}
			full.Evaluation = &evaluation{Test: testDigest, Result: res, Stats: res.Stats}
			if err := writeMetadata(out, &full); err != nil {
				return err
			}
			printResult(cmd.OutOrStdout(), res)
			return nil
		},
	}
	cmd.Flags().StringVar(&events, "events", "", "history file: JSON-lines events, TSV sessions (SessionId, ItemId, Time) or OTTO sessions")
	cmd.Flags().IntVar(&synthetic, "synthetic", 0, "train on this many synthetic events instead")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "seed of the synthetic events")
	cmd.Flags().StringVarP(&out, "output", "o", "", "directory to write the model to")
	cmd.Flags().StringVar(&version, "version", "", "model version (default: from the training time)")
	cmd.Flags().StringVar(&test, "test", "", "evaluate the model on this history (as runner eval) and record the result in metadata.json")
	cmd.Flags().IntVar(&vocab, "vocab-size", 0, fmt.Sprintf("items the model knows, the most frequent (default %d)", model.DefaultVocabSize))
	cmd.Flags().IntVar(&neighbours, "neighbours", 0, fmt.Sprintf("successors kept per item (default %d)", model.DefaultNeighbours))
	cmd.Flags().IntVar(&window, "window", 0, fmt.Sprintf("following items of a session that count as successors (default %d)", model.DefaultWindow))
	cmd.Flags().Float64Var(&distExp, "distance-exponent", model.DefaultDistanceExponent, "a successor d places on weighs 1/d^e (2 with --window 20 is the SR baseline's rule; see model/doc.go)")
	cmd.Flags().Float64Var(&coWeight, "co-occurrence", model.DefaultCoOccurrence, "weight of the items a session clicks together, in either order, next to the successors (0: successors alone; see model/doc.go)")
	cmd.Flags().IntVar(&coWindow, "co-window", model.DefaultCoWindow, "places apart that two items of a session still co-occur")
	cmd.Flags().IntVar(&opset, "opset", 0, fmt.Sprintf("ONNX opset of model.onnx, 13 or 16 (default %d)", model.DefaultOpset))
	cmd.Flags().IntVar(&every, "progress-every", defaultProgressEvery, "events between progress lines")
	_ = cmd.Flags().MarkHidden("progress-every")
	return cmd
}

// progress yields seq's events and calls report every `every` events, and
// once with done at the end of seq.
func progress(seq iter.Seq[event.Event], every int, report func(n uint64, done bool)) iter.Seq[event.Event] {
	return func(yield func(event.Event) bool) {
		var n uint64
		for e := range seq {
			n++
			if n%uint64(every) == 0 {
				report(n, false)
			}
			if !yield(e) {
				return
			}
		}
		report(n, true)
	}
}

// hashedSynthetic yields n synthetic events and hashes their JSON lines.
type hashedSynthetic struct {
	gen   *clickstream.Generator
	n     int
	sha   [sha256.Size]byte
	bytes int64
	count uint64
}

func (h *hashedSynthetic) events() iter.Seq[event.Event] {
	return func(yield func(event.Event) bool) {
		d := sha256.New()
		defer func() { copy(h.sha[:], d.Sum(nil)) }()
		for range h.n {
			rec := h.gen.Next()
			if rec.Kind == clickstream.Malformed {
				continue
			}
			d.Write(rec.Raw)
			d.Write([]byte{'\n'})
			h.bytes += int64(len(rec.Raw)) + 1
			h.count++
			if !yield(rec.Event) {
				return
			}
		}
	}
}

func (h *hashedSynthetic) digest() hist.Digest {
	return hist.Digest{Format: hist.FormatEvents, SHA256: hex.EncodeToString(h.sha[:]), Bytes: h.bytes, Events: h.count}
}

// readSessions reads a history file into sessions, with progress lines.
func readSessions(path string, every int, logw io.Writer) (*hist.Sessions, hist.Digest, error) {
	r, err := hist.Open(path)
	if err != nil {
		return nil, hist.Digest{}, err
	}
	defer r.Close()
	start := time.Now()
	c := hist.NewCollector(hist.SessionGap(r.Format()))
	for e := range progress(r.Events(), every, func(n uint64, done bool) {
		if !done {
			fmt.Fprintf(logw, "reading %s: %d events (%s)\n", path, n, time.Since(start).Round(time.Millisecond))
		}
	}) {
		c.Add(e)
	}
	if err := r.Err(); err != nil {
		return nil, hist.Digest{}, fmt.Errorf("%s: %w", path, err)
	}
	s := c.Sessions()
	fmt.Fprintf(logw, "read %s (%s format): %d events, %d sessions, %d items in %s\n",
		path, r.Format(), s.Events, len(s.List), len(s.Items), time.Since(start).Round(time.Millisecond))
	return s, r.Digest(), nil
}

// writeMetadata replaces dir's metadata.json, through a temporary file
// and a rename.
func writeMetadata(dir string, meta *trainedMetadata) error {
	b, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return fmt.Errorf("train: encoding metadata: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+model.FileMetadata+".*")
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(append(b, '\n'))
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
		err = os.Rename(tmp, filepath.Join(dir, model.FileMetadata))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("train: writing metadata: %w", err)
	}
	return nil
}
