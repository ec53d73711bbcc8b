package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/aetherai/aether/clickstream"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/model"
)

func trainCmd() *cobra.Command {
	var events, out, version string
	var synthetic int
	var seed uint64
	cmd := &cobra.Command{
		Use:   "train (--events FILE | --synthetic N) -o DIR",
		Short: "Train the recommendation model from an event history and write it to DIR",
		Long: `Train the item-to-item model from an event history and write model.onnx,
vocab.json and metadata.json to DIR. The history is a JSON-lines file of
events as on user_events_raw (--events), or N synthetic events (--synthetic).
It prints the model's SHA-256, to pin in the pipeline file (model.sha256).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" || (events == "") == (synthetic == 0) {
				return usageError{fmt.Errorf("train: give -o DIR and one of --events FILE or --synthetic N")}
			}
			var src iter.Seq[event.Event]
			var readErr error
			if events != "" {
				f, err := os.Open(events)
				if err != nil {
					return err
				}
				defer f.Close()
				src = readEvents(f, &readErr)
			} else {
				gen, err := clickstream.New(clickstream.Config{Seed: seed})
				if err != nil {
					return err
				}
				src = history(gen, synthetic)
			}
			start := time.Now()
			opts := []model.TrainOption{}
			if version != "" {
				opts = append(opts, model.Version(version))
			}
			m, err := model.Train(src, opts...)
			if readErr != nil {
				return readErr
			}
			if err != nil {
				return err
			}
			if err := m.Save(out); err != nil {
				return err
			}
			meta := m.Metadata()
			fmt.Fprintf(cmd.OutOrStdout(), "trained on %d events (%d users, %d sessions) in %s: %d items\nwrote %s (model version %s)\nmodel.sha256: %s\n",
				meta.Stats.Events, meta.Stats.Users, meta.Stats.Sessions, time.Since(start).Round(time.Millisecond), meta.Items, out, meta.Version, meta.SHA256)
			return nil
		},
	}
	cmd.Flags().StringVar(&events, "events", "", "JSON-lines file of events (userId, productId, eventType, timestamp)")
	cmd.Flags().IntVar(&synthetic, "synthetic", 0, "train on this many synthetic events instead")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "seed of the synthetic events")
	cmd.Flags().StringVarP(&out, "output", "o", "", "directory to write the model to")
	cmd.Flags().StringVar(&version, "version", "", "model version (default: from the training time)")
	return cmd
}

// readEvents yields the valid events of a JSON-lines file; the first bad
// line stops it with an error naming the line.
func readEvents(r io.Reader, errp *error) iter.Seq[event.Event] {
	return func(yield func(event.Event) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		line := 0
		for sc.Scan() {
			line++
			if len(sc.Bytes()) == 0 {
				continue
			}
			var e event.Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				*errp = fmt.Errorf("line %d: %w", line, err)
				return
			}
			if err := e.ValidateAt(e.Timestamp); err != nil {
				*errp = fmt.Errorf("line %d: %w", line, err)
				return
			}
			if !yield(e) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			*errp = err
		}
	}
}
