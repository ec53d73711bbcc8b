package cli

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/aetherai/aether/model"
	"github.com/aetherai/aether/model/eval"
)

func evalCmd() *cobra.Command {
	var modelDir, train, test string
	var asJSON, sknn bool
	var every int
	cmd := &cobra.Command{
		Use:   "eval --model DIR --train FILE --test FILE [--json] [--sknn]",
		Short: "Evaluate a model and the POP, AR and SR baselines on next-item prediction",
		Long: `Evaluate the model in DIR with the standard protocol of session-based
recommendation: test sessions in file order, each session's clicks sorted
by time; every position p >= 1 is a prediction point where a method sees
the items before p and is scored on the item at p. Candidates are all
items of the training file; items with score 0 are not recommended; ties
go to the smaller item id (numbers by value, before other ids). HR@K is
the share of points whose item ranks within K, MRR@K the mean of 1/rank
(0 beyond K), for K = 20 and 10.

The model is scored through ONNX Runtime, as the recommender scores it.
The baselines are learnt from the training file: POP (most clicked items),
AR (association rules: item pairs within a session, the 20 best partners
of the last item) and SR (sequential rules: items up to 20 steps later,
weighted 1/d^2, the 20 best of the last item). --sknn adds SKNN
(session-based kNN: of the 500 most recent training sessions sharing an
item with the session so far, the 100 most similar by cosine similarity
of their item sets vote for their items with their similarity).

Files are read as by 'runner train --events': JSON-lines events (a user's
events split into sessions at 30-minute gaps), TSV sessions (header
SessionId, ItemId, Time) or OTTO sessions. With --json the last line
printed is {"points":N,"model":{...},"baselines":{"pop":{...},"ar":{...},
"sr":{...}}} (with "sknn":{...} after "sr" under --sknn), each with
hr20, mrr20, hr10 and mrr10; otherwise a table.
Progress goes to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if modelDir == "" || train == "" || test == "" {
				return usageError{fmt.Errorf("eval: give --model DIR, --train FILE and --test FILE")}
			}
			if every < 1 {
				return usageError{fmt.Errorf("eval: --progress-every must be at least 1")}
			}
			logw := cmd.ErrOrStderr()
			loaded, err := model.Load(modelDir)
			if err != nil {
				return err
			}
			defer loaded.Close()
			trainSessions, _, err := readSessions(train, every, logw)
			if err != nil {
				return err
			}
			testSessions, _, err := readSessions(test, every, logw)
			if err != nil {
				return err
			}
			var opt eval.Option
			if sknn {
				opt = eval.SKNN(eval.SKNNNeighbours, eval.SKNNSampleSize)
			}
			res, err := eval.Evaluate(cmd.Context(), trainSessions, testSessions, loaded, eval.Progress(logw), opt)
			if err != nil {
				return err
			}
			if res.Stats.Uncertain > 0 {
				fmt.Fprintf(logw, "eval: note: at %d points items beyond the model's %d best could tie into its top 20\n", res.Stats.Uncertain, model.MaxK)
			}
			if asJSON {
				b, err := json.Marshal(res)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), string(b))
				return nil
			}
			printResult(cmd.OutOrStdout(), res)
			return nil
		},
	}
	cmd.Flags().StringVar(&modelDir, "model", "", "model directory (as runner train writes it)")
	cmd.Flags().StringVar(&train, "train", "", "training history: the candidates and the baselines' data")
	cmd.Flags().StringVar(&test, "test", "", "test history")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as one JSON line")
	cmd.Flags().BoolVar(&sknn, "sknn", false, "also evaluate the SKNN baseline (session-based kNN, k 100, sample 500)")
	cmd.Flags().IntVar(&every, "progress-every", defaultProgressEvery, "events between progress lines")
	_ = cmd.Flags().MarkHidden("progress-every")
	return cmd
}

// printResult prints an evaluation as a table.
func printResult(w io.Writer, res *eval.Result) {
	st := res.Stats
	fmt.Fprintf(w, "%d prediction points in %d test sessions (train: %d sessions, %d items; %d targets not in train, %d repeat the last item)\n",
		res.Points, st.TestSessions, st.TrainSessions, st.TrainItems, st.UnknownTargets, st.RepeatTargets)
	fmt.Fprintf(w, "%-6s %7s %7s %7s %7s\n", "", "HR@20", "MRR@20", "HR@10", "MRR@10")
	rows := []struct {
		name string
		m    eval.Metrics
	}{{"model", res.Model}, {"POP", res.Baselines.POP}, {"AR", res.Baselines.AR}, {"SR", res.Baselines.SR}}
	if res.Baselines.SKNN != nil {
		rows = append(rows, struct {
			name string
			m    eval.Metrics
		}{"SKNN", *res.Baselines.SKNN})
	}
	for _, row := range rows {
		fmt.Fprintf(w, "%-6s %7.4f %7.4f %7.4f %7.4f\n", row.name, row.m.HR20, row.m.MRR20, row.m.HR10, row.m.MRR10)
	}
}
