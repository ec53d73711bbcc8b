package score_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/operators/optest"
	"github.com/aetherai/aether/operators/score"
	"github.com/aetherai/aether/recommend"
)

// fakeScorer recommends, for each record, items "after:<product>" for its
// recent items, newest first, with descending scores, and records calls.
type fakeScorer struct {
	mu     sync.Mutex
	calls  []call
	err    error
	extra  bool // return one result too many
	nilRes bool // return a nil list
	quiet  bool // do not record calls
}

type call struct {
	users []string
	k     int
}

func (f *fakeScorer) Score(_ context.Context, recs []features.Record, k int) ([][]recommend.Item, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := call{k: k}
	for _, r := range recs {
		c.users = append(c.users, r.UserID)
	}
	if !f.quiet {
		f.calls = append(f.calls, c)
	}
	if f.err != nil {
		return nil, f.err
	}
	out := make([][]recommend.Item, len(recs))
	for i, r := range recs {
		if f.nilRes {
			continue
		}
		out[i] = []recommend.Item{}
		for j := len(r.RecentItems) - 1; j >= 0 && len(out[i]) < k; j-- {
			out[i] = append(out[i], recommend.Item{ProductID: "after:" + r.RecentItems[j].ProductID, Score: float32(j + 1)})
		}
	}
	if f.extra {
		out = append(out, nil)
	}
	return out, nil
}

func (f *fakeScorer) Popular(k int) []recommend.Item { return nil }

func (f *fakeScorer) Model() recommend.Model {
	return recommend.Model{Version: "fake-1", SHA256: strings.Repeat("0", 64)}
}

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func record(user string, items ...string) features.Record {
	r := features.Record{UserID: user, RecentItems: []features.RecentItem{}}
	for i, p := range items {
		r.RecentItems = append(r.RecentItems, features.RecentItem{ProductID: p, At: t0.Add(time.Duration(i) * time.Second)})
	}
	return r
}

func TestEmitsRecommendations(t *testing.T) {
	fs := &fakeScorer{}
	op := score.New(fs)
	if op.Name() != "score" {
		t.Errorf("name %q", op.Name())
	}
	h := optest.New(op)
	if err := h.Process("u1", t0.Add(time.Minute), record("u1", "a", "b")); err != nil {
		t.Fatal(err)
	}
	if err := h.Process("u2", t0.Add(2*time.Minute), record("u2")); err != nil {
		t.Fatal(err)
	}
	if len(h.Emitted) != 2 {
		t.Fatalf("emitted %d values", len(h.Emitted))
	}
	got := h.Emitted[0].Value
	want := recommend.Recommendations{
		UserID: "u1",
		Items: []recommend.Item{
			{ProductID: "after:b", Score: 2}, {ProductID: "after:a", Score: 1},
		},
		Model:       fs.Model(),
		Source:      recommend.FromInference,
		GeneratedAt: t0.Add(time.Minute),
	}
	if got.UserID != want.UserID || got.Model != want.Model || got.Source != want.Source ||
		!got.GeneratedAt.Equal(want.GeneratedAt) || len(got.Items) != 2 || got.Items[0] != want.Items[0] || got.Items[1] != want.Items[1] {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if h.Emitted[0].Key != "u1" {
		t.Errorf("key %q", h.Emitted[0].Key)
	}
	// A user without recommendations gets an empty, non-nil list.
	if r := h.Emitted[1].Value; r.UserID != "u2" || r.Items == nil || len(r.Items) != 0 {
		t.Errorf("empty user: %+v", r)
	}
	// One record per call, with the default k.
	for _, c := range fs.calls {
		if len(c.users) != 1 || c.k != score.DefaultTopK {
			t.Errorf("call %+v, want one record and k = %d", c, score.DefaultTopK)
		}
	}
}

func TestTopK(t *testing.T) {
	for _, tc := range []struct {
		opts []score.Option
		want int
	}{
		{nil, 20},
		{[]score.Option{score.TopK(5)}, 5},
		{[]score.Option{score.TopK(0)}, 20},
		{[]score.Option{score.TopK(-3)}, 20},
		{[]score.Option{score.TopK(1000)}, score.MaxTopK},
		{[]score.Option{nil, score.TopK(7)}, 7},
	} {
		fs := &fakeScorer{}
		h := optest.New(score.New(fs, tc.opts...))
		if err := h.Process("u", t0, record("u", "a", "b", "c", "d", "e", "f", "g", "h")); err != nil {
			t.Fatal(err)
		}
		if fs.calls[0].k != tc.want {
			t.Errorf("k = %d, want %d", fs.calls[0].k, tc.want)
		}
		if n := len(h.Emitted[0].Value.Items); n != min(tc.want, 8) {
			t.Errorf("k = %d: %d items", tc.want, n)
		}
	}
}

func TestScorerFailureRejectsRecord(t *testing.T) {
	boom := errors.New("boom")
	fs := &fakeScorer{err: boom}
	h := optest.New(score.New(fs))
	err := h.Process("u", t0, record("u", "a"))
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "score: ") {
		t.Errorf("got %v", err)
	}
	if len(h.Emitted) != 0 {
		t.Errorf("emitted %v", h.Emitted)
	}

	fs = &fakeScorer{extra: true}
	h = optest.New(score.New(fs))
	if err := h.Process("u", t0, record("u", "a")); err == nil || !strings.Contains(err.Error(), "2 results for 1 record") {
		t.Errorf("wrong result count: got %v", err)
	}
}

func TestNilListAndMissingUserID(t *testing.T) {
	h := optest.New(score.New(&fakeScorer{nilRes: true}))
	rec := record("", "a")
	if err := h.Process("key-user", t0, rec); err != nil {
		t.Fatal(err)
	}
	r := h.Emitted[0].Value
	if r.UserID != "key-user" || r.Items == nil {
		t.Errorf("got %+v, want the key as user and an empty list", r)
	}
}

func TestNilScorerPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	score.New(nil)
}

func BenchmarkProcess(b *testing.B) {
	h := optest.New(score.New(&fakeScorer{quiet: true}))
	rec := record("u", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s", "t")
	b.ReportAllocs()
	for b.Loop() {
		if err := h.Process("u", t0, rec); err != nil {
			b.Fatal(err)
		}
		h.Reset()
	}
}
