package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/operators"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/operators/optest"
	"github.com/aetherai/aether/operators/sessionize"
	"github.com/aetherai/aether/recommend"
)

// now is the clock of every test server.
var now = time.Date(2023, 10, 27, 12, 0, 0, 0, time.UTC)

const (
	shopKey   = "key-shop-0123456789abcdef"
	shopName  = "shop-eu"
	otherKey  = "key-other-fedcba9876543210"
	modelSHA  = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	modelVers = "v1"
	// clientIPKey is the fixture's clientIp HMAC key.
	clientIPKey = "client-ip-test-key-0123"
)

// hmacOf is the hex HMAC-SHA256 of v under key, computed independently of
// the code under test.
func hmacOf(key, v string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil))
}

// fixture is a server wired to fakes.
type fixture struct {
	srv    *Server
	sink   *fakeSink
	store  *fakeStore
	scorer *fakeScorer
	cache  *memCache
	reg    *prometheus.Registry
	logs   *syncBuffer
}

// newFixture returns a server whose sink feeds a feature store running the
// real sessionize -> features chain, with a fake scorer and an in-memory
// cache; edit adjusts the config.
func newFixture(t testing.TB, edit ...func(*Config)) *fixture {
	t.Helper()
	f := &fixture{
		store:  newFakeStore(),
		scorer: &fakeScorer{model: recommend.Model{Version: modelVers, SHA256: modelSHA}},
		cache:  newMemCache(),
		reg:    prometheus.NewRegistry(),
		logs:   &syncBuffer{},
	}
	f.sink = &fakeSink{next: f.store.apply}
	cfg := Config{
		Events:     f.sink,
		Features:   f.store,
		Scorer:     f.scorer,
		Cache:      f.cache,
		APIKeys:    map[string]string{shopKey: shopName, otherKey: "other"},
		Logger:     slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: f.reg,
		Gatherer:   f.reg,
		Now:        func() time.Time { return now },
		ClientIP:   ClientIPPolicy{Key: []byte(clientIPKey)},
	}
	for _, e := range edit {
		e(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	return f
}

// do serves one request; key "" sends no Authorization header.
func (f *fixture) do(method, path, key, body string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, req)
	return w
}

// body is the response body without its final newline.
func body(w *httptest.ResponseRecorder) string { return strings.TrimSuffix(w.Body.String(), "\n") }

func check(t *testing.T, w *httptest.ResponseRecorder, code int, want string) {
	t.Helper()
	if w.Code != code || body(w) != want {
		t.Errorf("got %d %s\nwant %d %s", w.Code, body(w), code, want)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}

// eventJSON renders an event of user 3i seconds after 10:30.
func eventJSON(user string, i int) string {
	types := []string{"view", "click", "click", "add_to_cart", "view", "purchase"}
	ts := time.Date(2023, 10, 27, 10, 30, 0, 0, time.UTC).Add(time.Duration(i) * 3 * time.Second)
	return fmt.Sprintf(`{"userId":%q,"productId":"prod_%03d","eventType":%q,"timestamp":%q,"clientIp":"192.168.1.100","eventId":"ev-%s-%d"}`,
		user, i%7, types[i%len(types)], ts.Format(time.RFC3339), user, i)
}

func batchJSON(user string, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = eventJSON(user, i)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// fakeSink records what it is sent, then passes it on.
type fakeSink struct {
	mu      sync.Mutex
	batches [][]event.Event
	err     error
	next    func([]event.Event)
}

func (s *fakeSink) Send(_ context.Context, evs []event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.batches = append(s.batches, append([]event.Event(nil), evs...))
	if s.next != nil {
		s.next(evs)
	}
	return nil
}

func (s *fakeSink) sent() [][]event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batches
}

// fakeStore is a feature store fed by the real sessionize -> features
// chain, run by optest.
type fakeStore struct {
	mu    sync.Mutex
	h     *optest.Harness[features.State, event.Event, features.Record]
	err   error
	ready bool
	// other, if set, is returned for every user (a buggy store).
	other *features.Record
}

func newFakeStore() *fakeStore {
	return &fakeStore{
		h:     optest.New(operators.Chain(sessionize.New[features.State](), features.New())),
		ready: true,
	}
}

func (s *fakeStore) apply(evs []event.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range evs {
		if err := s.h.Process(e.UserID, e.Timestamp, e); err != nil {
			panic(err)
		}
	}
}

func (s *fakeStore) Get(userID string) (features.Record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return features.Record{}, false, s.err
	}
	if s.other != nil {
		return *s.other, true, nil
	}
	st, ok := s.h.States[userID]
	if !ok {
		return features.Record{}, false, nil
	}
	return st.Record(userID), true, nil
}

func (s *fakeStore) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready
}

// fakeScorer recommends the user's recent products, newest first, then
// catalog filler; its popular items are "pop_N".
type fakeScorer struct {
	model   recommend.Model
	calls   atomic.Int64
	err     error
	nan     bool
	panics  bool
	popular func(k int) []recommend.Item
}

func (s *fakeScorer) Score(_ context.Context, recs []features.Record, k int) ([][]recommend.Item, error) {
	s.calls.Add(1)
	if s.panics {
		panic("scorer exploded")
	}
	if s.err != nil {
		return nil, s.err
	}
	out := make([][]recommend.Item, len(recs))
	for i, r := range recs {
		seen := map[string]bool{}
		var items []recommend.Item
		for j := len(r.RecentItems) - 1; j >= 0 && len(items) < k; j-- {
			if p := r.RecentItems[j].ProductID; !seen[p] {
				seen[p] = true
				items = append(items, recommend.Item{ProductID: p, Score: 1 - float32(len(items))/128})
			}
		}
		for n := 0; len(items) < k; n++ {
			items = append(items, recommend.Item{ProductID: fmt.Sprintf("cat_%d", n), Score: 0.5 - float32(len(items))/256})
		}
		if s.nan {
			items[0].Score = float32(nanValue())
		}
		out[i] = items
	}
	return out, nil
}

func nanValue() float64 { var z float64; return z / z }

func (s *fakeScorer) Popular(k int) []recommend.Item {
	if s.popular != nil {
		return s.popular(k)
	}
	items := make([]recommend.Item, k)
	for i := range items {
		items[i] = recommend.Item{ProductID: fmt.Sprintf("pop_%d", i), Score: float32(k-i) / float32(k)}
	}
	return items
}

func (s *fakeScorer) Model() recommend.Model { return s.model }

// memCache is an in-memory recommend.Cache.
type memCache struct {
	mu             sync.Mutex
	m              map[string]recommend.Recommendations
	getErr, putErr error
	puts           int
}

func newMemCache() *memCache { return &memCache{m: map[string]recommend.Recommendations{}} }

func (c *memCache) Get(_ context.Context, userID string) (recommend.Recommendations, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.getErr != nil {
		return recommend.Recommendations{}, false, c.getErr
	}
	r, ok := c.m[userID]
	return r, ok, nil
}

func (c *memCache) Put(_ context.Context, recs ...recommend.Recommendations) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.puts++
	if c.putErr != nil {
		return c.putErr
	}
	for _, r := range recs {
		c.m[r.UserID] = r
	}
	return nil
}

func (c *memCache) putCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.puts
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

var errDown = errors.New("connection refused")

// ensure the fakes implement the interfaces.
var (
	_ EventSink        = (*fakeSink)(nil)
	_ FeatureStore     = (*fakeStore)(nil)
	_ recommend.Scorer = (*fakeScorer)(nil)
	_ recommend.Cache  = (*memCache)(nil)
	_ http.Handler     = (*Server)(nil)
)
