package model

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/model/onnxpb"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/recommend"
)

const scoreTolerance = 1e-4

// sameTopK checks that got (ONNX) and want (Go) hold the same items with
// scores within scoreTolerance, best first; items may differ only where
// their scores tie at the cut-off.
func sameTopK(got, want []recommend.Item) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d items, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	for i := range got {
		if !(got[i].Score > 0) || i > 0 && got[i].Score > got[i-1].Score {
			return fmt.Errorf("scores not positive and descending: %v", got)
		}
		if d := math.Abs(float64(got[i].Score - want[i].Score)); d > scoreTolerance {
			return fmt.Errorf("position %d: score %v, want %v", i, got[i].Score, want[i].Score)
		}
	}
	gotScore := map[string]float32{}
	for _, it := range got {
		gotScore[it.ProductID] = it.Score
	}
	for _, w := range want {
		s, ok := gotScore[w.ProductID]
		switch {
		case ok && math.Abs(float64(s-w.Score)) > scoreTolerance:
			return fmt.Errorf("%s: score %v, want %v", w.ProductID, s, w.Score)
		case !ok && math.Abs(float64(w.Score-got[len(got)-1].Score)) > scoreTolerance:
			return fmt.Errorf("%s (score %v) missing, and not a tie at the cut-off:\n got %v\nwant %v", w.ProductID, w.Score, got, want)
		}
	}
	return nil
}

func TestONNXMatchesGo(t *testing.T) {
	f := trained(t)
	for _, tc := range []struct {
		opset int
		dir   string
	}{{13, f.dir}, {16, f.dir16}} {
		t.Run(fmt.Sprintf("opset%d", tc.opset), func(t *testing.T) {
			l := loadDir(t, tc.dir)
			if got := l.Metadata().Opset; got != tc.opset {
				t.Fatalf("opset %d", got)
			}
			matchesGo(t, f, l)
		})
	}
}

func matchesGo(t *testing.T, f *fixture, l *Loaded) {
	recs := f.records
	// Add users with one item, unknown items only, and nothing.
	recs = append(recs, recentOf(f.model.vocab[0]), recentOf("no-such-product"), features.Record{UserID: "empty"})
	for _, k := range []int{1, 20, MaxK} {
		want, err := f.model.ScoreGo(recs, k)
		if err != nil {
			t.Fatal(err)
		}
		// All users in one batch, and in batches of 1 and 64.
		for _, batch := range []int{len(recs), 1, 64} {
			exact := 0
			for start := 0; start < len(recs); start += batch {
				end := min(start+batch, len(recs))
				got, err := l.Score(context.Background(), recs[start:end], k)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != end-start {
					t.Fatalf("%d results for %d records", len(got), end-start)
				}
				for i := range got {
					if err := sameTopK(got[i], want[start+i]); err != nil {
						t.Fatalf("k=%d batch=%d user %s: %v", k, batch, recs[start+i].UserID, err)
					}
					if slices.EqualFunc(got[i], want[start+i], func(a, b recommend.Item) bool { return a.ProductID == b.ProductID }) {
						exact++
					}
					if got[i] == nil {
						t.Fatalf("nil list for %s", recs[start+i].UserID)
					}
				}
			}
			if batch == len(recs) {
				t.Logf("k=%d: %d of %d users with identical item lists (the rest differ in ties only)", k, exact, len(recs))
			}
		}
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	f, l := loaded(t)
	m := f.model
	if got := l.Model(); got != (recommend.Model{Version: "test-model", SHA256: m.SHA256()}) {
		t.Errorf("Model() = %+v", got)
	}
	b, err := os.ReadFile(filepath.Join(f.dir, FileModel))
	if err != nil || !slices.Equal(b, m.ONNX()) {
		t.Errorf("model.onnx differs from Model.ONNX (err %v)", err)
	}
	var vocab []string
	if b, err := os.ReadFile(filepath.Join(f.dir, FileVocab)); err != nil || json.Unmarshal(b, &vocab) != nil || !slices.Equal(vocab, m.vocab) {
		t.Errorf("vocab.json does not hold the vocabulary (err %v)", err)
	}
	meta := l.Metadata()
	if meta.Format != formatVersion || meta.SHA256 != m.SHA256() || meta.Items != m.Items() || meta.Version != "test-model" ||
		meta.IRVersion != 8 || meta.Opset != 13 || meta.MaxK != MaxK || meta.Params != m.Params() || meta.Stats != m.Stats() ||
		!meta.Created.Equal(m.Created()) {
		t.Errorf("metadata %+v", meta)
	}
	if l.Items() != m.Items() {
		t.Errorf("items %d, want %d", l.Items(), m.Items())
	}
	for _, k := range []int{0, 1, 20, m.Items() + 5} {
		if got, want := l.Popular(k), m.Popular(k); !slices.Equal(got, want) || len(got) != min(max(k, 0), m.Items()) {
			t.Errorf("Popular(%d) = %v, want %v", k, got, want)
		}
	}
	if p := l.Popular(3); p[0].ProductID != "prod_0" || !(p[0].Score > p[1].Score) {
		t.Errorf("Popular(3) = %v, want prod_0 first", p)
	}
	// Saving again into the same directory replaces the files.
	if err := m.Save(f.dir); err != nil {
		t.Fatal(err)
	}
	l2, err := Load(f.dir, ExpectSHA256(strings.ToUpper(m.SHA256())))
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	entries, _ := os.ReadDir(f.dir)
	if len(entries) != 3 {
		t.Errorf("directory holds %d entries, want the 3 files", len(entries))
	}
}

// copyModel copies the fixture's model directory.
func copyModel(t *testing.T, f *fixture) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{FileModel, FileVocab, FileMetadata} {
		b, err := os.ReadFile(filepath.Join(f.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Checksums are verified before ONNX Runtime is touched: no library needed.
func TestLoadRefusesChecksumMismatch(t *testing.T) {
	f := trained(t)
	actual := f.model.SHA256()
	wrong := strings.Repeat("ab", 32)
	_, err := Load(f.dir, ExpectSHA256(wrong), RuntimeLibrary("/nonexistent/libonnxruntime.so"))
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Expected != wrong || ce.Actual != actual || ce.Source != "ExpectSHA256" {
		t.Fatalf("got %v, want a ChecksumError", err)
	}
	for _, s := range []string{"expected " + wrong, "actual " + actual, "refusing", FileModel} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}

	// A model.onnx changed after Save is refused by metadata.json's sum.
	dir := copyModel(t, f)
	b, _ := os.ReadFile(filepath.Join(dir, FileModel))
	b[len(b)-1] ^= 1
	os.WriteFile(filepath.Join(dir, FileModel), b, 0o644)
	_, err = Load(dir, RuntimeLibrary("/nonexistent/libonnxruntime.so"))
	if !errors.As(err, &ce) || ce.Expected != actual || ce.Source != FileMetadata {
		t.Fatalf("tampered model.onnx: got %v, want a ChecksumError against metadata.json", err)
	}

	if _, err := Load(f.dir, ExpectSHA256("abc")); err == nil || !strings.Contains(err.Error(), "64 hex digits") {
		t.Errorf("malformed ExpectSHA256: got %v", err)
	}
}

func TestLoadRejectsBrokenDirectories(t *testing.T) {
	f := trained(t)
	noLib := RuntimeLibrary("/nonexistent/libonnxruntime.so")
	if _, err := Load(t.TempDir(), noLib); err == nil || !strings.Contains(err.Error(), FileMetadata) {
		t.Errorf("empty directory: got %v", err)
	}
	dir := copyModel(t, f)
	os.WriteFile(filepath.Join(dir, FileVocab), []byte(`["a"]`), 0o644)
	if _, err := Load(dir, noLib); err == nil || !strings.Contains(err.Error(), "items in vocab.json") {
		t.Errorf("short vocab: got %v", err)
	}
	dir = copyModel(t, f)
	b, _ := os.ReadFile(filepath.Join(dir, FileMetadata))
	os.WriteFile(filepath.Join(dir, FileMetadata), []byte(strings.Replace(string(b), formatVersion, "other/9", 1)), 0o644)
	if _, err := Load(dir, noLib); err == nil || !strings.Contains(err.Error(), `format "other/9"`) {
		t.Errorf("other format: got %v", err)
	}
	if _, err := Load(f.dir, Threads(0)); err == nil {
		t.Error("Threads(0) accepted")
	}
}

func TestLoadReportsMissingRuntime(t *testing.T) {
	f := trained(t)
	missing := filepath.Join(t.TempDir(), "libonnxruntime.so")
	check := func(err error, source string) {
		t.Helper()
		var re *RuntimeMissingError
		if !errors.As(err, &re) || !errors.Is(err, ErrRuntimeMissing) || re.Path != missing {
			t.Fatalf("got %v, want a RuntimeMissingError for %s", err, missing)
		}
		for _, s := range []string{"`bash scripts/onnxruntime.sh`", missing, source} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not say %q", err, s)
			}
		}
	}
	_, err := Load(f.dir, RuntimeLibrary(missing))
	check(err, "RuntimeLibrary option")

	t.Setenv(EnvRuntimeLibrary, missing)
	_, err = Load(f.dir)
	check(err, EnvRuntimeLibrary)

	// The default location follows AETHER_CACHE_DIR, as the script does.
	t.Setenv(EnvRuntimeLibrary, "")
	cache := t.TempDir()
	t.Setenv(EnvCacheDir, cache)
	missing = filepath.Join(cache, "onnxruntime", RuntimeVersion, "libonnxruntime.so")
	_, err = Load(f.dir)
	check(err, "default location")
}

// The script's default version is the one DefaultRuntimeLibrary expects,
// and the script names no registry host.
func TestInstallScriptMatches(t *testing.T) {
	b, err := os.ReadFile("../scripts/onnxruntime.sh")
	if err != nil {
		t.Fatal(err)
	}
	script := string(b)
	m := regexp.MustCompile(`ONNXRUNTIME_VERSION:-([0-9.]+)\}`).FindStringSubmatch(script)
	if m == nil || m[1] != RuntimeVersion {
		t.Errorf("script default version %v, want %s", m, RuntimeVersion)
	}
	for _, s := range []string{"ONNXRUNTIME_NODE_INSTALL=skip", "npm pack", "AETHER_CACHE_DIR", "$cache/onnxruntime/$version", "$dest_dir/libonnxruntime.so", "napi-v6/linux/x64/libonnxruntime.so.1"} {
		if !strings.Contains(script, s) {
			t.Errorf("script lacks %q", s)
		}
	}
	if regexp.MustCompile(`https?://`).MatchString(script) {
		t.Error("script names a URL")
	}
}

func TestScoreEdgeCases(t *testing.T) {
	f, l := loaded(t)
	ctx := context.Background()
	for _, k := range []int{0, -1, MaxK + 1} {
		if _, err := l.Score(ctx, f.records[:1], k); err == nil {
			t.Errorf("k=%d accepted", k)
		}
	}
	got, err := l.Score(ctx, nil, 10)
	if err != nil || len(got) != 0 {
		t.Errorf("no records: %v, %v", got, err)
	}
	// Records without known items get the popular items, alone in a call
	// (no inference) or next to a known one.
	for i, recs := range [][]features.Record{{{}, recentOf("unknown")}, {{}, f.records[0]}} {
		got, err = l.Score(ctx, recs, 10)
		if err != nil || len(got) != 2 || !slices.Equal(got[0], l.Popular(10)) || len(got[1]) == 0 {
			t.Errorf("records without known items: %v, %v", got, err)
		}
		if i == 0 && !slices.Equal(got[1], l.Popular(10)) {
			t.Errorf("record with an unknown item: %v", got[1])
		}
	}
	// A long history: only the newest MaxHistory items count.
	long := recentOf()
	for range 3 * MaxHistory {
		long.RecentItems = append(long.RecentItems, f.records[0].RecentItems...)
	}
	want, _ := f.model.ScoreGo([]features.Record{long}, MaxK)
	got, err = l.Score(ctx, []features.Record{long}, MaxK)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameTopK(got[0], want[0]); err != nil {
		t.Error(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.Score(cctx, f.records, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Score(ctx, f.records[:1], 10); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestScoreConcurrent(t *testing.T) {
	f, l := loaded(t)
	want, err := f.model.ScoreGo(f.records, 20)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for round := range 20 {
				start := (w*37 + round*11) % len(f.records)
				end := min(start+1+(w+round)%64, len(f.records))
				got, err := l.Score(context.Background(), f.records[start:end], 20)
				if err != nil {
					errs <- err
					return
				}
				for i := range got {
					if err := sameTopK(got[i], want[start+i]); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Close waits for running calls; calls after it fail cleanly.
	var closeWG sync.WaitGroup
	for range 4 {
		closeWG.Go(func() {
			for range 50 {
				if _, err := l.Score(context.Background(), f.records[:8], 5); err != nil && !errors.Is(err, ErrClosed) {
					t.Error(err)
					return
				}
			}
		})
	}
	l.Close()
	closeWG.Wait()
}

// One library per process: asking for another after the first Load fails.
func TestLoadRefusesSecondRuntime(t *testing.T) {
	f, _ := loaded(t)
	other := filepath.Join(t.TempDir(), "libonnxruntime.so")
	os.WriteFile(other, []byte("not a library"), 0o644)
	_, err := Load(f.dir, RuntimeLibrary(other))
	if err == nil || !strings.Contains(err.Error(), "already runs the ONNX Runtime library") {
		t.Errorf("got %v", err)
	}
	// A symlink to the loaded library is the same library.
	path, _ := DefaultRuntimeLibrary()
	link := filepath.Join(t.TempDir(), "lib.so")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	l, err := Load(f.dir, RuntimeLibrary(link))
	if err != nil {
		t.Fatalf("symlink to the loaded library: %v", err)
	}
	l.Close()
}

// model.onnx is an ONNX ModelProto of IR version 8, opset 13, with the
// documented inputs and outputs.
func TestGraphFormat(t *testing.T) {
	f := trained(t)
	checkGraph(t, f.model.ONNX(), 13)
	checkGraph(t, f.model16.ONNX(), 16)
	if f.model16.SHA256() == f.model.SHA256() {
		t.Error("opset 13 and 16 models have the same SHA-256")
	}
}

func checkGraph(t *testing.T, data []byte, opset int64) {
	t.Helper()
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		t.Fatal(err)
	}
	if mp.GetIrVersion() != 8 || len(mp.GetOpsetImport()) != 1 || mp.GetOpsetImport()[0].GetVersion() != opset || mp.GetOpsetImport()[0].GetDomain() != "" {
		t.Errorf("IR %d, opsets %v, want IR 8, opset %d", mp.GetIrVersion(), mp.GetOpsetImport(), opset)
	}
	names := func(vs []*onnxpb.ValueInfoProto) (out []string) {
		for _, v := range vs {
			out = append(out, v.GetName())
		}
		return out
	}
	g := mp.GetGraph()
	if in := names(g.GetInput()); !slices.Equal(in, []string{InputItems, InputWeights, InputK}) {
		t.Errorf("inputs %v", in)
	}
	if out := names(g.GetOutput()); !slices.Equal(out, []string{OutputScores, OutputIndices}) {
		t.Errorf("outputs %v", out)
	}
	scatters := 0
	for _, n := range g.GetNode() {
		if n.GetOpType() == "ScatterElements" {
			scatters++
		}
	}
	if want := map[int64]int{13: 0, 16: 1}[opset]; scatters != want {
		t.Errorf("opset %d graph has %d ScatterElements, want %d", opset, scatters, want)
	}
}

// A vocabulary smaller than k, for both graphs: the graph clamps k.
func TestTinyVocabulary(t *testing.T) {
	needRuntime(t)
	var evs []event.Event
	t0 := time.Unix(0, 0)
	for u, seq := range [][]string{{"a", "b", "c"}, {"b", "c"}, {"c", "a"}} {
		for i, p := range seq {
			evs = append(evs, event.Event{UserID: fmt.Sprint(u), ProductID: p, Timestamp: t0.Add(time.Duration(i) * time.Second)})
		}
	}
	for _, opset := range []int{13, 16} {
		// Successor rows alone (CoOccurrence(0)), so that "c, b" has
		// exactly two candidates.
		m, err := Train(slices.Values(evs), Opset(opset), CoOccurrence(0))
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := m.Save(dir); err != nil {
			t.Fatal(err)
		}
		l := loadDir(t, dir)
		recs := []features.Record{recentOf("a"), recentOf("c", "b"), recentOf("x"), {}}
		got, err := l.Score(context.Background(), recs, MaxK)
		if err != nil {
			t.Fatalf("opset %d: %v", opset, err)
		}
		want, _ := m.ScoreGo(recs, MaxK)
		for i := range recs {
			if err := sameTopK(got[i], want[i]); err != nil {
				t.Errorf("opset %d, record %d: %v", opset, i, err)
			}
		}
		if len(got[1]) != 2 {
			t.Errorf("opset %d: %v, want a and c after c, b", opset, got[1])
		}
	}
}
