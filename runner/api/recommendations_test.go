package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/recommend"
)

func decodeRecs(t *testing.T, b string) recommend.Recommendations {
	t.Helper()
	var r recommend.Recommendations
	dec := json.NewDecoder(strings.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return r
}

// TestRecommendationsFlow: a new user gets the fallback; after 20 events
// the first answer is a fresh inference, the second the same answer from
// the cache.
func TestRecommendationsFlow(t *testing.T) {
	f := newFixture(t)
	const user = "user_new_42"
	path := "/v1/recommendations/" + user + "?k=5"

	w := f.do("GET", path, shopKey, "")
	check(t, w, 200, `{"userId":"user_new_42","items":[{"productId":"pop_0","score":1},{"productId":"pop_1","score":0.8},{"productId":"pop_2","score":0.6},{"productId":"pop_3","score":0.4},{"productId":"pop_4","score":0.2}],"model":{"version":"v1","sha256":"`+modelSHA+`"},"source":"fallback","generatedAt":"2023-10-27T12:00:00Z"}`)
	if f.cache.putCount() != 0 {
		t.Error("the fallback was cached")
	}
	check(t, f.do("GET", "/v1/features/"+user, shopKey, ""), 404, `{"error":"no features for this user"}`)

	check(t, f.do("POST", "/v1/events", shopKey, batchJSON(user, 20)), 202, `{"accepted":20}`)

	w = f.do("GET", path, shopKey, "")
	first := decodeRecs(t, body(w))
	if w.Code != 200 || first.Source != recommend.FromInference {
		t.Fatalf("first answer: %d %s", w.Code, body(w))
	}
	var wantItems []recommend.Item
	for i := range 5 { // the fake scorer ranks the user's recent products newest first
		wantItems = append(wantItems, recommend.Item{ProductID: fmt.Sprintf("prod_%03d", 5-i), Score: 1 - float32(i)/128})
	}
	if fmt.Sprint(first.Items) != fmt.Sprint(wantItems) || first.UserID != user || first.Model.SHA256 != modelSHA || !first.GeneratedAt.Equal(now) {
		t.Errorf("first answer %+v", first)
	}

	f.srv.now = func() time.Time { return now.Add(time.Minute) }
	w = f.do("GET", path, shopKey, "")
	second := decodeRecs(t, body(w))
	if w.Code != 200 || second.Source != recommend.FromCache {
		t.Fatalf("second answer: %d %s", w.Code, body(w))
	}
	if fmt.Sprint(second.Items) != fmt.Sprint(first.Items) || second.Model != first.Model || !second.GeneratedAt.Equal(first.GeneratedAt) || second.UserID != user {
		t.Errorf("cached answer %+v differs from %+v", second, first)
	}
	if n := f.scorer.calls.Load(); n != 1 {
		t.Errorf("scorer called %d times, want 1", n)
	}

	w = f.do("GET", "/v1/features/"+user, shopKey, "")
	var rec features.Record
	if err := json.Unmarshal(w.Body.Bytes(), &rec); err != nil || w.Code != 200 {
		t.Fatalf("features: %d %s %v", w.Code, body(w), err)
	}
	if rec.UserID != user || rec.EventsTotal != 20 || rec.Session.Events != 20 || !rec.Session.Open || len(rec.RecentItems) != 20 {
		t.Errorf("features %+v", rec)
	}
}

// TestRecommendationsExactBody pins the JSON of an inference answer.
func TestRecommendationsExactBody(t *testing.T) {
	f := newFixture(t)
	check(t, f.do("POST", "/v1/events", shopKey, eventJSON("u1", 0)), 202, `{"accepted":1}`)
	w := f.do("GET", "/v1/recommendations/u1?k=2", shopKey, "")
	check(t, w, 200, `{"userId":"u1","items":[{"productId":"prod_000","score":1},{"productId":"cat_0","score":0.49609375}],"model":{"version":"v1","sha256":"`+modelSHA+`"},"source":"inference","generatedAt":"2023-10-27T12:00:00Z"}`)
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q", got)
	}
}

func TestRecommendationsK(t *testing.T) {
	tests := []struct {
		query string
		code  int
		items int
	}{
		{"", 200, DefaultK},
		{"?k=1", 200, 1},
		{"?k=100", 200, 100},
		{"?k=7&k=9", 200, 7},
		{"?k=0", 400, 0},
		{"?k=101", 400, 0},
		{"?k=-1", 400, 0},
		{"?k=", 400, 0},
		{"?k=abc", 400, 0},
		{"?k=1.5", 400, 0},
		{"?k=99999999999999999999", 400, 0},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			for _, user := range []string{"cold", "warm"} { // fallback and inference
				f := newFixture(t)
				check(t, f.do("POST", "/v1/events", shopKey, eventJSON("warm", 0)), 202, `{"accepted":1}`)
				w := f.do("GET", "/v1/recommendations/"+user+tt.query, shopKey, "")
				if tt.code == 400 {
					check(t, w, 400, `{"error":"k must be an integer from 1 to 100"}`)
					continue
				}
				if r := decodeRecs(t, body(w)); w.Code != 200 || len(r.Items) != tt.items {
					t.Errorf("%s: %d with %d items, want %d", user, w.Code, len(r.Items), tt.items)
				}
			}
		})
	}
}

// TestRecommendationsCacheSizes: a cached answer longer than k is cut to
// k; one shorter than k is a miss.
func TestRecommendationsCacheSizes(t *testing.T) {
	f := newFixture(t)
	check(t, f.do("POST", "/v1/events", shopKey, eventJSON("u1", 0)), 202, `{"accepted":1}`)
	if w := f.do("GET", "/v1/recommendations/u1?k=30", shopKey, ""); w.Code != 200 || f.scorer.calls.Load() != 1 {
		t.Fatalf("no inference: %d %s", w.Code, body(w))
	}
	w := f.do("GET", "/v1/recommendations/u1?k=10", shopKey, "")
	if r := decodeRecs(t, body(w)); r.Source != recommend.FromCache || len(r.Items) != 10 || r.Items[9].ProductID != "cat_8" {
		t.Errorf("k=10: %s", body(w))
	}
	w = f.do("GET", "/v1/recommendations/u1?k=50", shopKey, "")
	if r := decodeRecs(t, body(w)); r.Source != recommend.FromInference || len(r.Items) != 50 || f.scorer.calls.Load() != 2 {
		t.Errorf("k=50: %s", body(w))
	}
	if r := f.cache.m["u1"]; len(r.Items) != 50 {
		t.Errorf("cache holds %d items after the larger inference", len(r.Items))
	}
}

func TestRecommendationsFailures(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(*fixture)
		code   int
		want   string // the body, or the source of a 200
		cached bool   // whether the answer is in the cache afterwards
	}{
		{"feature store down", func(f *fixture) { f.store.err = errDown }, 503, `{"error":"the feature store is unavailable: retry later"}`, false},
		{"model down", func(f *fixture) { f.scorer.err = errDown }, 503, `{"error":"the model is unavailable: retry later"}`, false},
		{"model returns NaN", func(f *fixture) { f.scorer.nan = true }, 500, `{"error":"internal error: the model returned an invalid answer"}`, false},
		{"model panics", func(f *fixture) { f.scorer.panics = true }, 500, `{"error":"internal error"}`, false},
		{"cache read fails", func(f *fixture) { f.cache.getErr = errDown }, 200, "inference", true},
		{"cache write fails", func(f *fixture) { f.cache.putErr = errDown }, 200, "inference", false},
		{"cache holds another user's answer", func(f *fixture) {
			f.cache.m["u1"] = recommend.Recommendations{UserID: "alice_secret", Items: make([]recommend.Item, 50)}
		}, 200, "inference", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			check(t, f.do("POST", "/v1/events", shopKey, eventJSON("u1", 0)), 202, `{"accepted":1}`)
			tt.setup(f)
			w := f.do("GET", "/v1/recommendations/u1?k=3", shopKey, "")
			if tt.code != 200 {
				check(t, w, tt.code, tt.want)
			} else if r := decodeRecs(t, body(w)); w.Code != 200 || string(r.Source) != tt.want || r.UserID != "u1" {
				t.Errorf("got %d %s", w.Code, body(w))
			}
			if tt.code == 503 && w.Header().Get("Retry-After") == "" {
				t.Error("no Retry-After on a 503")
			}
			if strings.Contains(w.Body.String(), errDown.Error()) || strings.Contains(w.Body.String(), "alice") {
				t.Errorf("body leaks: %s", body(w))
			}
			f.cache.getErr = nil
			r, ok, _ := f.cache.Get(t.Context(), "u1")
			if cached := ok && r.UserID == "u1" && r.Source == recommend.FromInference; cached != tt.cached {
				t.Errorf("cached %v, want %v", cached, tt.cached)
			}
		})
	}
}

// TestRecommendationsFallbackEmpty: a scorer without popular items answers
// an empty list, not null.
func TestRecommendationsFallbackEmpty(t *testing.T) {
	f := newFixture(t)
	f.scorer.popular = func(int) []recommend.Item { return nil }
	check(t, f.do("GET", "/v1/recommendations/nobody", shopKey, ""), 200,
		`{"userId":"nobody","items":[],"model":{"version":"v1","sha256":"`+modelSHA+`"},"source":"fallback","generatedAt":"2023-10-27T12:00:00Z"}`)
}

func TestFeatures(t *testing.T) {
	f := newFixture(t)
	check(t, f.do("POST", "/v1/events", shopKey, eventJSON("u1", 0)), 202, `{"accepted":1}`)
	check(t, f.do("GET", "/v1/features/u1", shopKey, ""), 200,
		`{"userId":"u1","eventsTotal":1,"session":{"seq":1,"start":"2023-10-27T10:30:00Z","lastEventAt":"2023-10-27T10:30:00Z","durationSeconds":0,"events":1,"open":true,"counts":{"view":1,"click":0,"addToCart":0,"purchase":0}},"recentItems":[{"productId":"prod_000","eventType":"view","at":"2023-10-27T10:30:00Z"}],"lifetimeCounts":{"view":1,"click":0,"addToCart":0,"purchase":0},"sessions":1,"avgSessionSeconds":0,"lastSessionSeconds":0,"firstSeen":"2023-10-27T10:30:00Z","lastSeen":"2023-10-27T10:30:00Z","gapBeforeSessionSeconds":0,"lateEvents":0,"reason":""}`)
	check(t, f.do("GET", "/v1/features/u2", shopKey, ""), 404, `{"error":"no features for this user"}`)
	check(t, f.do("GET", "/v1/features/u1", "", ""), 401, `{"error":"API key required: send the header Authorization: Bearer <key>"}`)

	f.store.other = &features.Record{UserID: "alice_secret", EventsTotal: 9}
	check(t, f.do("GET", "/v1/features/u1", shopKey, ""), 500, `{"error":"internal error"}`)
	f.store.other = nil

	f.store.err = errDown
	check(t, f.do("GET", "/v1/features/u1", shopKey, ""), 503, `{"error":"the feature store is unavailable: retry later"}`)
}

// TestUserIDPathValue: both user routes validate {userId} as events do.
func TestUserIDPathValue(t *testing.T) {
	tests := []struct {
		id   string
		code int
		want string
	}{
		{strings.Repeat("u", 128), 200, ""},
		{"user%2Fwith%20slash", 200, ""},
		{"%C3%A9l%C3%A8ve", 200, ""},
		{strings.Repeat("u", 129), 400, `{"error":"invalid userId: longer than 128 bytes"}`},
		{"u%00", 400, `{"error":"invalid userId: contains control characters or invalid UTF-8"}`},
		{"u%0Ax", 400, `{"error":"invalid userId: contains control characters or invalid UTF-8"}`},
		{"u%FF", 400, `{"error":"invalid userId: contains control characters or invalid UTF-8"}`},
	}
	for _, tt := range tests {
		for _, route := range []string{"/v1/recommendations/", "/v1/features/"} {
			t.Run(route+tt.id, func(t *testing.T) {
				f := newFixture(t)
				w := f.do("GET", route+tt.id, shopKey, "")
				switch {
				case tt.code == 400:
					check(t, w, 400, tt.want)
				case route == "/v1/features/":
					check(t, w, 404, `{"error":"no features for this user"}`)
				case w.Code != 200:
					t.Errorf("got %d %s", w.Code, body(w))
				}
			})
		}
	}
}

func TestReadAuth(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/v1/recommendations/u1", "/v1/features/u1"} {
		check(t, f.do("GET", path, "", ""), 401, `{"error":"API key required: send the header Authorization: Bearer <key>"}`)
		check(t, f.do("GET", path, "wrong", ""), 401, `{"error":"invalid API key"}`)
	}
	if f.scorer.calls.Load() != 0 || f.cache.putCount() != 0 {
		t.Error("an unauthenticated read reached the model or cache")
	}
}
