package rollout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/aetherai/aether/model"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/recommend"
)

// fake is a scorer whose every item is named after its SHA-256, so an
// answer shows which model made it. It records in-flight calls and
// Close calls, and fails a call that runs after Close.
type fake struct {
	id       recommend.Model
	delay    time.Duration
	inflight atomic.Int64
	calls    atomic.Int64
	closes   atomic.Int64
	closedAt atomic.Int64 // in-flight calls when Close ran
	closed   atomic.Bool
}

func newFake(version string) *fake {
	return &fake{id: recommend.Model{Version: version, SHA256: "sha-" + version}}
}

func (f *fake) Score(ctx context.Context, records []features.Record, k int) ([][]recommend.Item, error) {
	f.inflight.Add(1)
	defer f.inflight.Add(-1)
	f.calls.Add(1)
	if f.closed.Load() {
		return nil, errors.New("fake: scored after Close")
	}
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	if f.closed.Load() {
		return nil, errors.New("fake: closed during a call")
	}
	out := make([][]recommend.Item, len(records))
	for i := range records {
		out[i] = []recommend.Item{{ProductID: f.id.SHA256, Score: 1}}
	}
	return out, nil
}

func (f *fake) Popular(k int) []recommend.Item { return []recommend.Item{{ProductID: f.id.SHA256}} }
func (f *fake) Model() recommend.Model         { return f.id }
func (f *fake) Close() error {
	f.closedAt.Store(f.inflight.Load())
	f.closes.Add(1)
	f.closed.Store(true)
	return nil
}

func recs(users ...string) []features.Record {
	out := make([]features.Record, len(users))
	for i, u := range users {
		out[i] = features.Record{UserID: u}
	}
	return out
}

// checkAttributed fails unless each answer's item names the model the
// Switch says scored it.
func checkAttributed(t testing.TB, items [][]recommend.Item, models []recommend.Model) {
	t.Helper()
	if len(items) != len(models) {
		t.Fatalf("%d answers, %d models", len(items), len(models))
	}
	for i := range items {
		if len(items[i]) != 1 || items[i][0].ProductID != models[i].SHA256 {
			t.Fatalf("answer %d: items %v attributed to %v", i, items[i], models[i])
		}
	}
}

func TestScoreAttributesTheCurrentModel(t *testing.T) {
	old := newFake("v1")
	sw := New(old)
	items, models, err := recommend.ScoreWithModel(context.Background(), sw, recs("a", "b"), 5)
	if err != nil {
		t.Fatal(err)
	}
	checkAttributed(t, items, models)
	if models[0] != old.id || sw.Model() != old.id {
		t.Fatalf("models %v, Model %v, want %v", models, sw.Model(), old.id)
	}
	if p := sw.Popular(1); p[0].ProductID != old.id.SHA256 {
		t.Fatalf("Popular %v", p)
	}
}

// An approved model is swapped in while goroutines score without pause:
// no call fails, no call mixes models, answers move from the old SHA-256
// to the new one, and the old model is closed exactly once, after its
// last call.
func TestSwapUnderLoad(t *testing.T) {
	old, next := newFake("v1"), newFake("v2")
	old.delay, next.delay = 200*time.Microsecond, 200*time.Microsecond
	reg := prometheus.NewRegistry()
	sw := New(old, Registerer(reg))

	const workers = 16
	var (
		wg       sync.WaitGroup
		stop     atomic.Bool
		failures atomic.Int64
		sawOld   atomic.Int64
		sawNew   atomic.Int64
		mixed    atomic.Int64
		errMu    sync.Mutex
		firstErr error
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seenNew := false
			for i := 0; !stop.Load(); i++ {
				users := recs(fmt.Sprint("u", w, "-", i), fmt.Sprint("x", w, "-", i), "z")
				items, models, err := sw.ScoreWithModel(context.Background(), users, 10)
				if err != nil {
					failures.Add(1)
					errMu.Lock()
					firstErr = err
					errMu.Unlock()
					continue
				}
				for j := range items {
					if items[j][0].ProductID != models[j].SHA256 || models[j] != models[0] {
						mixed.Add(1)
					}
				}
				switch models[0].SHA256 {
				case old.id.SHA256:
					if seenNew {
						mixed.Add(1) // back to the old model after the swap
					}
					sawOld.Add(1)
				case next.id.SHA256:
					seenNew = true
					sawNew.Add(1)
				}
			}
		}()
	}
	for sawOld.Load() < 100 {
		time.Sleep(time.Millisecond)
	}
	sw.Swap(next)
	before := sawNew.Load()
	for sawNew.Load() < before+100 {
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()

	if n := failures.Load(); n != 0 {
		t.Fatalf("%d failed calls, e.g. %v", n, firstErr)
	}
	if n := mixed.Load(); n != 0 {
		t.Fatalf("%d answers mixed models or went back to the old one", n)
	}
	if old.closes.Load() != 1 {
		t.Fatalf("old model closed %d times, want 1", old.closes.Load())
	}
	if n := old.closedAt.Load(); n != 0 {
		t.Fatalf("old model closed with %d calls in flight", n)
	}
	if next.closes.Load() != 0 {
		t.Fatal("the new model was closed")
	}
	if sw.Model() != next.id {
		t.Fatalf("Model %v after the swap", sw.Model())
	}
	if got := value(t, sw.swaps); got != 1 {
		t.Fatalf("%s = %v, want 1", MetricSwaps, got)
	}
	if got := value(t, sw.loaded.WithLabelValues(RoleCurrent, "v2", "sha-v2")); got != 1 {
		t.Fatalf("loaded_info for v2 = %v", got)
	}
	if n := count(sw.loaded); n != 1 {
		t.Fatalf("%d loaded_info series after the swap, want 1", n)
	}
	// Every record was counted once, under the model that scored it.
	reqOld := value(t, sw.requests.WithLabelValues(RoleCurrent, "v1"))
	reqNew := value(t, sw.requests.WithLabelValues(RoleCurrent, "v2"))
	if want := float64(3 * (sawOld.Load() + sawNew.Load())); reqOld+reqNew != want {
		t.Fatalf("requests %v + %v, want %v", reqOld, reqNew, want)
	}
}

// A call that started on the old model finishes on it, even when the swap
// happens mid-call, and the old model is closed only afterwards.
func TestSwapWaitsForInflightCall(t *testing.T) {
	old, next := newFake("v1"), newFake("v2")
	old.delay = 50 * time.Millisecond
	sw := New(old)
	done := make(chan error, 1)
	var models []recommend.Model
	go func() {
		var err error
		_, models, err = sw.ScoreWithModel(context.Background(), recs("a"), 1)
		done <- err
	}()
	for old.inflight.Load() == 0 {
		time.Sleep(100 * time.Microsecond)
	}
	sw.Swap(next)
	if old.closes.Load() != 0 {
		t.Fatal("old model closed under a running call")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if models[0] != old.id {
		t.Fatalf("in-flight call answered by %v", models[0])
	}
	if old.closes.Load() != 1 || old.closedAt.Load() != 0 {
		t.Fatalf("closes %d, in flight at close %d", old.closes.Load(), old.closedAt.Load())
	}
}

// The candidate's share holds within 2 points over 10,000 users, every
// user always gets the same model, and a mixed batch is split and merged
// back in order.
func TestRolloutShare(t *testing.T) {
	cur, cand := newFake("v1"), newFake("v2")
	reg := prometheus.NewRegistry()
	sw := New(cur, Registerer(reg))
	for _, share := range []float64{0.1, 0.25, 0.5, 0.9} {
		sw.SetCandidate(cand, share)
		const users = 10000
		all := make([]features.Record, users)
		for i := range all {
			all[i] = features.Record{UserID: fmt.Sprintf("user-%d", i)}
		}
		items, models, err := sw.ScoreWithModel(context.Background(), all, 5)
		if err != nil {
			t.Fatal(err)
		}
		checkAttributed(t, items, models)
		n := 0
		for i, m := range models {
			if m == cand.id {
				n++
			}
			// Deterministic: alone, and again, the user gets the same model.
			if i%97 == 0 {
				for range 2 {
					_, one, err := sw.ScoreWithModel(context.Background(), all[i:i+1], 5)
					if err != nil {
						t.Fatal(err)
					}
					if one[0] != m {
						t.Fatalf("user %s: %v alone, %v in a batch", all[i].UserID, one[0], m)
					}
				}
			}
			if want := Hash(all[i].UserID) < share; (m == cand.id) != want {
				t.Fatalf("user %s routed to %v", all[i].UserID, m)
			}
		}
		if got := float64(n) / users; math.Abs(got-share) > 0.02 {
			t.Fatalf("share %v: candidate scored %.4f of the users", share, got)
		}
	}
	if cand.closes.Load() != 0 {
		t.Fatal("changing the share closed the candidate")
	}
	if value(t, sw.requests.WithLabelValues(RoleCandidate, "v2")) == 0 ||
		value(t, sw.requests.WithLabelValues(RoleCurrent, "v1")) == 0 {
		t.Fatal("requests not counted per role")
	}
	if n := count(sw.inference); n != 2 {
		t.Fatalf("%d inference histograms, want 2 (current, candidate)", n)
	}
	if got := value(t, sw.loaded.WithLabelValues(RoleCandidate, "v2", "sha-v2")); got != 1 {
		t.Fatalf("candidate loaded_info %v", got)
	}
}

func TestCandidateLifecycle(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	cur, c1, c2 := newFake("v1"), newFake("v2"), newFake("v3")
	sw := New(cur, Logger(log))
	if _, ok := sw.Promote(); ok {
		t.Fatal("Promote without a candidate")
	}
	sw.SetCandidate(c1, 1)
	_, models, _ := sw.ScoreWithModel(context.Background(), recs("a", "b"), 1)
	if models[0] != c1.id || models[1] != c1.id {
		t.Fatalf("share 1: %v", models)
	}
	sw.SetCandidate(c2, 0.5) // replaces c1
	if c1.closes.Load() != 1 {
		t.Fatal("replaced candidate not closed")
	}
	sw.SetCandidate(c2, 0) // share 0: nobody on the candidate
	_, models, _ = sw.ScoreWithModel(context.Background(), recs("a", "b", "c"), 1)
	for _, m := range models {
		if m != cur.id {
			t.Fatalf("share 0: %v", models)
		}
	}
	sw.SetCandidate(c2, 0.3)
	if m, share, ok := sw.Candidate(); !ok || m != c2.id || share != 0.3 {
		t.Fatalf("Candidate = %v %v %v", m, share, ok)
	}
	if _, ok := sw.Promote(); !ok {
		t.Fatal("Promote failed")
	}
	if sw.Model() != c2.id || cur.closes.Load() != 1 || c2.closes.Load() != 0 {
		t.Fatalf("after Promote: model %v, closes cur %d c2 %d", sw.Model(), cur.closes.Load(), c2.closes.Load())
	}
	if _, _, ok := sw.Candidate(); ok {
		t.Fatal("candidate still set after Promote")
	}
	c3 := newFake("v4")
	sw.SetCandidate(c3, 0.5)
	sw.ClearCandidate()
	if c3.closes.Load() != 1 {
		t.Fatal("cleared candidate not closed")
	}
	_, models, _ = sw.ScoreWithModel(context.Background(), recs("a", "b", "c"), 1)
	for _, m := range models {
		if m != c2.id {
			t.Fatalf("after ClearCandidate: %v", models)
		}
	}
	lines := strings.Count(buf.String(), `"event":"model_change"`)
	// load, candidate x4, promote, candidate, clear_candidate
	if lines != 8 {
		t.Fatalf("%d model_change lines, want 8:\n%s", lines, buf.String())
	}
	for _, a := range []string{`"action":"promote"`, `"action":"clear_candidate"`, `"action":"candidate"`, `"share":0.3`} {
		if !strings.Contains(buf.String(), a) {
			t.Fatalf("no %s in the log:\n%s", a, buf.String())
		}
	}
}

// Promote and ClearCandidate return the model they acted on, checked and
// changed in one step: of concurrent calls on one candidate, exactly one
// acts, and it names that candidate.
func TestPromoteAndClearReturnTheModel(t *testing.T) {
	cur, c1, c2 := newFake("v1"), newFake("v2"), newFake("v3")
	sw := New(cur)
	if m, ok := sw.Promote(); ok || m != (recommend.Model{}) {
		t.Fatalf("Promote without a candidate = %v %v", m, ok)
	}
	if m, ok := sw.ClearCandidate(); ok || m != (recommend.Model{}) {
		t.Fatalf("ClearCandidate without a candidate = %v %v", m, ok)
	}

	once := func(name string, act func() (recommend.Model, bool)) recommend.Model {
		t.Helper()
		const callers = 16
		var wg sync.WaitGroup
		got := make(chan recommend.Model, callers)
		for range callers {
			wg.Go(func() {
				if m, ok := act(); ok {
					got <- m
				}
			})
		}
		wg.Wait()
		close(got)
		var acted []recommend.Model
		for m := range got {
			acted = append(acted, m)
		}
		if len(acted) != 1 {
			t.Fatalf("%d concurrent %s calls acted, want 1: %v", callers, name, acted)
		}
		return acted[0]
	}

	sw.SetCandidate(c1, 0.5)
	if m := once("ClearCandidate", sw.ClearCandidate); m != c1.id {
		t.Fatalf("ClearCandidate returned %v, want %v", m, c1.id)
	}
	if _, _, ok := sw.Candidate(); ok || sw.Model() != cur.id {
		t.Fatalf("after ClearCandidate: candidate %v, current %v", ok, sw.Model())
	}

	sw.SetCandidate(c2, 0.5)
	if m := once("Promote", sw.Promote); m != c2.id {
		t.Fatalf("Promote returned %v, want %v", m, c2.id)
	}
	if _, _, ok := sw.Candidate(); ok || sw.Model() != c2.id {
		t.Fatalf("after Promote: candidate %v, current %v", ok, sw.Model())
	}

	sw.SetCandidate(newFake("v4"), 0.5)
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	if m, ok := sw.Promote(); ok {
		t.Fatalf("Promote after Close = %v", m)
	}
}

func TestScoreErrorNamesTheModel(t *testing.T) {
	cur := newFake("v1")
	cur.Close() // its calls fail from now on
	cur.closes.Store(0)
	sw := New(cur)
	if _, err := sw.Score(context.Background(), recs("a"), 1); err == nil || !strings.Contains(err.Error(), "current model v1") {
		t.Fatalf("err = %v", err)
	}
}

func TestBatchOption(t *testing.T) {
	cur := newFake("v1")
	sw := New(cur, Batch(8))
	items, models, err := sw.ScoreWithModel(context.Background(), recs("a", "b"), 3)
	if err != nil {
		t.Fatal(err)
	}
	checkAttributed(t, items, models)
	sw.Swap(newFake("v2"))
	if cur.closes.Load() != 1 {
		t.Fatal("a batched model was not closed after the swap")
	}
}

func TestSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := New(newFake("v1"), Registerer(reg))
	b := New(newFake("v2"), Registerer(reg))
	if a.requests != b.requests {
		t.Fatal("two Switches on one registry do not share their counters")
	}
}

// The poller refuses an unapproved model (the old one keeps serving,
// answers keep its SHA-256) and swaps in an approved one.
func TestWatchRefusesUnapprovedAndSwapsApproved(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	old := newFake("v1")
	sw := New(old, Logger(log))

	var mu sync.Mutex
	latest := model.Metadata{Version: "v1", SHA256: "sha-v1"}
	approved := map[string]bool{"sha-v1": true}
	refusals := 0
	loads := 0
	var loaded *fake
	fetch := func(context.Context) (string, model.Metadata, error) {
		mu.Lock()
		defer mu.Unlock()
		return "/models/" + latest.Version, latest, nil
	}
	admit := func(meta model.Metadata) error {
		mu.Lock()
		defer mu.Unlock()
		if !approved[meta.SHA256] {
			refusals++
			return fmt.Errorf("sha256 %s is not approved", meta.SHA256)
		}
		return nil
	}
	load := func(dir string) (recommend.Scorer, error) {
		mu.Lock()
		defer mu.Unlock()
		loads++
		loaded = newFake(strings.TrimPrefix(dir, "/models/"))
		return loaded, nil
	}
	var w watcher
	step := func() string { return w.poll(context.Background(), fetch, admit, load, sw, log) }

	if got := step(); got != "unchanged" {
		t.Fatalf("same model: %s", got)
	}
	mu.Lock()
	latest = model.Metadata{Version: "v2", SHA256: "sha-v2"}
	mu.Unlock()
	for range 3 {
		if got := step(); got != "refused" {
			t.Fatalf("unapproved model: %s", got)
		}
	}
	if loads != 0 || sw.Model() != old.id || old.closes.Load() != 0 {
		t.Fatalf("after refusals: loads %d, model %v, closes %d", loads, sw.Model(), old.closes.Load())
	}
	_, models, err := sw.ScoreWithModel(context.Background(), recs("a"), 1)
	if err != nil || models[0].SHA256 != "sha-v1" {
		t.Fatalf("answers after a refusal: %v %v", models, err)
	}
	if strings.Count(buf.String(), "outcome=refused") != 1 || !strings.Contains(buf.String(), "not approved") {
		t.Fatalf("refusal not logged once at Warn:\n%s", buf.String())
	}

	// Approved meanwhile: the next Watch poll swaps it in.
	mu.Lock()
	approved["sha-v2"] = true
	mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, time.Millisecond, fetch, admit, load, sw, log) }()
	deadline := time.Now().Add(5 * time.Second)
	for sw.Model().SHA256 != "sha-v2" {
		if time.Now().After(deadline) {
			t.Fatal("the approved model was not swapped in")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond) // more polls: nothing more to do
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch returned %v", err)
	}
	if loads != 1 || old.closes.Load() != 1 || refusals != 3 {
		t.Fatalf("loads %d, old closes %d, refusals %d", loads, old.closes.Load(), refusals)
	}
	_, models, _ = sw.ScoreWithModel(context.Background(), recs("a"), 1)
	if models[0].SHA256 != "sha-v2" {
		t.Fatalf("answers after the swap: %v", models)
	}
	if !strings.Contains(buf.String(), "action=swap") || !strings.Contains(buf.String(), "previous_sha256=sha-v1") {
		t.Fatalf("swap not logged:\n%s", buf.String())
	}
}

func TestWatchKeepsServingOnErrors(t *testing.T) {
	old := newFake("v1")
	sw := New(old)
	fetchErr := func(context.Context) (string, model.Metadata, error) {
		return "", model.Metadata{}, errors.New("store down")
	}
	var w watcher
	if got := w.poll(context.Background(), fetchErr, nil, nil, sw, slog.New(slog.DiscardHandler)); got != "fetch_failed" {
		t.Fatal(got)
	}
	fetch := func(context.Context) (string, model.Metadata, error) {
		return "d", model.Metadata{Version: "v2", SHA256: "sha-v2"}, nil
	}
	loadErr := func(string) (recommend.Scorer, error) { return nil, errors.New("corrupt") }
	if got := w.poll(context.Background(), fetch, func(model.Metadata) error { return nil }, loadErr, sw, slog.New(slog.DiscardHandler)); got != "load_failed" {
		t.Fatal(got)
	}
	if sw.Model() != old.id || old.closes.Load() != 0 {
		t.Fatal("the current model changed after a failed poll")
	}
}

// value reads a counter or gauge.
func value(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatalf("not a counter or gauge: %v", m.Desc())
	return 0
}

// count is how many series c has.
func count(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
	n := 0
	for range ch {
		n++
	}
	return n
}

func TestClose(t *testing.T) {
	cur, cand := newFake("v1"), newFake("v2")
	sw := New(cur)
	sw.SetCandidate(cand, 0.5)
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	if cur.closes.Load() != 1 || cand.closes.Load() != 1 {
		t.Fatalf("closes: current %d, candidate %d", cur.closes.Load(), cand.closes.Load())
	}
	if _, err := sw.Score(context.Background(), recs("a"), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Score after Close: %v", err)
	}
	if sw.Model() != cur.id || sw.Popular(3) != nil {
		t.Fatal("Model or Popular after Close")
	}
	late := newFake("v3")
	sw.Swap(late)
	if late.closes.Load() != 1 {
		t.Fatal("a model swapped into a closed Switch was not closed")
	}
	_ = sw.Close()
}

// Hash is part of the rollout contract: a user keeps its model across
// restarts and releases.
func TestHashIsStable(t *testing.T) {
	for user, want := range map[string]float64{"": 0.93676944839044, "user-1": 0.2563932327962135, "c0ffee": 0.9305555515504044} {
		if got := Hash(user); got != want {
			t.Fatalf("Hash(%q) = %v, want %v: changing it moves users between models", user, got, want)
		}
	}
	if h := Hash("user-1"); h < 0 || h >= 1 {
		t.Fatalf("Hash out of [0,1): %v", h)
	}
}
