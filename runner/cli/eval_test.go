package cli_test

import (
	"bufio"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/clickstream"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/model"
)

// evalNeedsRuntime skips a test that needs the ONNX Runtime library when it is
// not installed, and fails it under CI (CI=true), naming the install
// command either way.
func evalNeedsRuntime(t *testing.T) {
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

// evalJSON is the JSON line of runner eval --json.
type evalJSON struct {
	Points    int                    `json:"points"`
	Model     evalMetrics            `json:"model"`
	Baselines map[string]evalMetrics `json:"baselines"`
}

type evalMetrics struct {
	HR20  float64 `json:"hr20"`
	MRR20 float64 `json:"mrr20"`
	HR10  float64 `json:"hr10"`
	MRR10 float64 `json:"mrr10"`
}

// evalJSONShape matches the line's exact shape: keys in order, nothing else.
var evalJSONShape = func() string {
	m := `\{"hr20":[0-9.e-]+,"mrr20":[0-9.e-]+,"hr10":[0-9.e-]+,"mrr10":[0-9.e-]+\}`
	return `^\{"points":[0-9]+,"model":` + m + `,"baselines":\{"pop":` + m + `,"ar":` + m + `,"sr":` + m + `\}\}$`
}()

// lastEvalJSON checks that stdout's last line is the JSON line and decodes it.
func lastEvalJSON(t *testing.T, stdout string) evalJSON {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	last := lines[len(lines)-1]
	require.Regexp(t, evalJSONShape, last)
	var l evalJSON
	require.NoError(t, json.Unmarshal([]byte(last), &l))
	return l
}

// syntheticSessionsSplit writes the generator's events as the benchmarks' TSV
// sessions (a user's events split at 30-minute gaps), every fifth session
// by start time to test.tsv, the others to train.tsv.
func syntheticSessionsSplit(t *testing.T, dir string, cfg clickstream.Config, n int) (train, test string) {
	t.Helper()
	g, err := clickstream.New(cfg)
	require.NoError(t, err)
	byUser := map[string][]event.Event{}
	for _, r := range g.Take(n) {
		byUser[r.Event.UserID] = append(byUser[r.Event.UserID], r.Event)
	}
	var sessions [][]event.Event
	for _, h := range byUser {
		slices.SortStableFunc(h, func(a, b event.Event) int { return a.Timestamp.Compare(b.Timestamp) })
		start := 0
		for i := 1; i <= len(h); i++ {
			if i == len(h) || h[i].Timestamp.Sub(h[i-1].Timestamp) > clickstream.SessionTimeout {
				sessions = append(sessions, h[start:i])
				start = i
			}
		}
	}
	slices.SortFunc(sessions, func(a, b []event.Event) int {
		return cmp.Or(a[0].Timestamp.Compare(b[0].Timestamp), strings.Compare(a[0].UserID, b[0].UserID))
	})
	var tr, te strings.Builder
	tr.WriteString("SessionId\tItemId\tTime\n")
	te.WriteString("SessionId\tItemId\tTime\n")
	for i, s := range sessions {
		w := &tr
		if i%5 == 4 {
			w = &te
		}
		for _, e := range s {
			fmt.Fprintf(w, "%d\t%s\t%d.%03d\n", i, e.ProductID, e.Timestamp.Unix(), e.Timestamp.Nanosecond()/1e6)
		}
	}
	train, test = filepath.Join(dir, "train.tsv"), filepath.Join(dir, "test.tsv")
	require.NoError(t, os.WriteFile(train, []byte(tr.String()), 0o600))
	require.NoError(t, os.WriteFile(test, []byte(te.String()), 0o600))
	return train, test
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestEvalSynthetic trains on the synthetic generator's sessions (TSV),
// evaluates with train --test and with eval, and checks that the model
// beats POP by a wide margin: the generator's sessions follow each item's
// successors, which the model learns and popularity does not.
func TestEvalSynthetic(t *testing.T) {
	evalNeedsRuntime(t)
	dir := t.TempDir()
	train, test := syntheticSessionsSplit(t, dir, clickstream.Config{Users: 300, Products: 1000, Seed: 5}, 30000)
	m := filepath.Join(dir, "m")

	code, out, stderr := run("train", "--events", train, "-o", m, "--test", test, "--progress-every", "10000")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "train: reading "+train+" (sessions format)\n")
	require.Contains(t, stderr, "train: read 10000 events (")
	require.Contains(t, stderr, "; building the model\n")
	require.Contains(t, stderr, "eval: model: ")
	require.Regexp(t, `model.sha256: [0-9a-f]{64}\n`, out)
	require.Contains(t, out, "MRR@20")

	var meta struct {
		SHA256       string `json:"sha256"`
		Items        int    `json:"items"`
		Params       struct{ Neighbours int }
		TrainingData struct {
			File, Format, SHA256 string
			Events               uint64
		}
		Evaluation struct {
			evalJSON
			Test  struct{ File, SHA256 string }
			Stats struct{ TestSessions int }
		}
	}
	b, err := os.ReadFile(filepath.Join(m, model.FileMetadata))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &meta))
	require.Equal(t, "train.tsv", meta.TrainingData.File)
	require.Equal(t, "sessions", meta.TrainingData.Format)
	require.Equal(t, fileSHA256(t, train), meta.TrainingData.SHA256)
	require.Equal(t, fileSHA256(t, filepath.Join(m, model.FileModel)), meta.SHA256)
	require.Equal(t, model.DefaultNeighbours, meta.Params.Neighbours)
	require.Equal(t, 974, meta.Items) // of the 1,000 products, those in train.tsv
	require.Equal(t, fileSHA256(t, test), meta.Evaluation.Test.SHA256)
	require.NotZero(t, meta.Evaluation.Stats.TestSessions)

	code, out, stderr = run("eval", "--model", m, "--train", train, "--test", test, "--json")
	require.Equal(t, 0, code, stderr)
	res := lastEvalJSON(t, out)
	// train --test recorded the same evaluation.
	require.Equal(t, meta.Evaluation.evalJSON, res)
	pop := res.Baselines["pop"]
	t.Logf("synthetic: %d points; HR@20/MRR@20 model %.4f/%.4f, POP %.4f/%.4f, AR %.4f/%.4f, SR %.4f/%.4f",
		res.Points, res.Model.HR20, res.Model.MRR20, pop.HR20, pop.MRR20,
		res.Baselines["ar"].HR20, res.Baselines["ar"].MRR20, res.Baselines["sr"].HR20, res.Baselines["sr"].MRR20)
	require.Greater(t, res.Points, 4000)
	// Measured: model 0.726/0.421, POP 0.283/0.103.
	require.Greater(t, res.Model.HR20, pop.HR20+0.35)
	require.Greater(t, res.Model.MRR20, pop.MRR20+0.25)

	code, out, stderr = run("eval", "--model", m, "--train", train, "--test", test)
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `(?m)^model +0\.\d{4} +0\.\d{4} +0\.\d{4} +0\.\d{4}$`, out)
	require.Regexp(t, `(?m)^SR +0\.\d{4}`, out)
	require.NotContains(t, out, "SKNN")

	// --sknn adds "sknn" after "sr", and leaves the rest as it was.
	code, out, stderr = run("eval", "--model", m, "--train", train, "--test", test, "--json", "--sknn")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "eval: baseline SKNN (k 100, sample 500): ")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	last := lines[len(lines)-1]
	require.Regexp(t, strings.Replace(evalJSONShape, `\}\}$`, `,"sknn":\{"hr20":[0-9.e-]+,"mrr20":[0-9.e-]+,"hr10":[0-9.e-]+,"mrr10":[0-9.e-]+\}\}\}$`, 1), last)
	var withSKNN evalJSON
	require.NoError(t, json.Unmarshal([]byte(last), &withSKNN))
	sknn := withSKNN.Baselines["sknn"]
	delete(withSKNN.Baselines, "sknn")
	require.Equal(t, res, withSKNN)
	t.Logf("synthetic: SKNN %.4f/%.4f", sknn.HR20, sknn.MRR20)
	require.Greater(t, sknn.HR20, pop.HR20)
	code, out, stderr = run("eval", "--model", m, "--train", train, "--test", test, "--sknn")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `(?m)^SKNN +0\.\d{4} +0\.\d{4} +0\.\d{4} +0\.\d{4}$`, out)
}

// TestEvalOTTO trains on the OTTO sample's first 10 sessions (a month of
// each user) and evaluates on the other 10 (the following week).
func TestEvalOTTO(t *testing.T) {
	evalNeedsRuntime(t)
	dir := t.TempDir()
	f, err := os.Open("../../clickstream/testdata/otto/sessions.jsonl")
	require.NoError(t, err)
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	require.NoError(t, sc.Err())
	require.Len(t, lines, 20)
	train, test := filepath.Join(dir, "otto_train.jsonl"), filepath.Join(dir, "otto_test.jsonl")
	require.NoError(t, os.WriteFile(train, []byte(strings.Join(lines[:10], "\n")+"\n"), 0o600))
	require.NoError(t, os.WriteFile(test, []byte(strings.Join(lines[10:], "\n")+"\n"), 0o600))

	m := filepath.Join(dir, "m")
	code, _, stderr := run("train", "--events", train, "-o", m)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "(otto format)")
	code, out, stderr := run("eval", "--model", m, "--train", train, "--test", test, "--json")
	require.Equal(t, 0, code, stderr)
	res := lastEvalJSON(t, out)
	// The test sessions' 23 events, 10 sessions: 13 points.
	require.Equal(t, 13, res.Points)
	t.Logf("OTTO sample: %d points; HR@20/MRR@20 model %.4f/%.4f, POP %.4f/%.4f, AR %.4f/%.4f, SR %.4f/%.4f",
		res.Points, res.Model.HR20, res.Model.MRR20, res.Baselines["pop"].HR20, res.Baselines["pop"].MRR20,
		res.Baselines["ar"].HR20, res.Baselines["ar"].MRR20, res.Baselines["sr"].HR20, res.Baselines["sr"].MRR20)
}

func TestEvalUsageAndErrors(t *testing.T) {
	code, _, stderr := run("eval", "--model", "m")
	require.Equal(t, 2, code)
	require.Equal(t, "runner: eval: give --model DIR, --train FILE and --test FILE\n", stderr)

	dir := t.TempDir()
	code, _, stderr = run("eval", "--model", dir, "--train", "x", "--test", "y")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "metadata.json")

	bad := filepath.Join(dir, "bad.tsv")
	require.NoError(t, os.WriteFile(bad, []byte("SessionId\tItemId\tTime\n1\t2\t3\n1\t2\tnoon\n"), 0o600))
	code, _, stderr = run("train", "--events", bad, "-o", filepath.Join(dir, "m"))
	require.Equal(t, 1, code)
	require.Equal(t, "runner: line 3: Time \"noon\" is not Unix seconds (like 1396839069 or 1396839069.277)\n",
		stderr[strings.Index(stderr, "runner: "):])
}

// TestTrainSyntheticDigest: synthetic training records the digest of the
// events' JSON lines, which is the digest of the same events as a file.
func TestTrainSyntheticDigest(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := run("train", "--synthetic", "2000", "--seed", "3", "-o", filepath.Join(dir, "m"))
	require.Equal(t, 0, code, stderr)
	var meta struct {
		TrainingData struct {
			SHA256        string
			Events        uint64
			SyntheticSeed *uint64
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "m", model.FileMetadata))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &meta))
	g, err := clickstream.New(clickstream.Config{Seed: 3})
	require.NoError(t, err)
	var lines strings.Builder
	for _, r := range g.Take(2000) {
		lines.Write(r.Raw)
		lines.WriteByte('\n')
	}
	events := filepath.Join(dir, "events.jsonl")
	require.NoError(t, os.WriteFile(events, []byte(lines.String()), 0o600))
	require.Equal(t, fileSHA256(t, events), meta.TrainingData.SHA256)
	require.Equal(t, uint64(2000), meta.TrainingData.Events)
	require.Equal(t, uint64(3), *meta.TrainingData.SyntheticSeed)

	// Trained from that file, the model is the same.
	code, _, stderr = run("train", "--events", events, "-o", filepath.Join(dir, "m2"), "--version", "x")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, fileSHA256(t, filepath.Join(dir, "m", model.FileModel)), fileSHA256(t, filepath.Join(dir, "m2", model.FileModel)))
}
