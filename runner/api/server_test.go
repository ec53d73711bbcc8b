package api

import (
	"bufio"
	"crypto/subtle"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestNewValidates(t *testing.T) {
	valid := func() Config {
		f := newFixture(t)
		return Config{Events: f.sink, Features: f.store, Scorer: f.scorer, Cache: f.cache, APIKeys: map[string]string{shopKey: shopName}}
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string // in the error; "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"no sink", func(c *Config) { c.Events = nil }, "Events is required"},
		{"no store", func(c *Config) { c.Features = nil }, "Features is required"},
		{"no scorer", func(c *Config) { c.Scorer = nil }, "Scorer is required"},
		{"no cache", func(c *Config) { c.Cache = nil }, "Cache is required"},
		{"no keys", func(c *Config) { c.APIKeys = nil }, "at least one API key is required"},
		{"empty key", func(c *Config) { c.APIKeys = map[string]string{"": "shop"} }, `the key of client "shop" is empty`},
		{"key with a space", func(c *Config) { c.APIKeys = map[string]string{"abc def": "shop"} }, `the key of client "shop" is empty or holds characters other than printable ASCII`},
		{"empty client", func(c *Config) { c.APIKeys = map[string]string{"abc": ""} }, "empty client name"},
		{"negative limit", func(c *Config) { c.MaxBodyBytes = -1 }, "must not be negative"},
		{"default k above max", func(c *Config) { c.DefaultK = 30; c.MaxK = 10 }, "DefaultK 30 is larger than MaxK 10"},
		{"max k below default", func(c *Config) { c.MaxK = 10 }, "DefaultK 20 is larger than MaxK 10"},
		{"gatherer only", func(c *Config) { c.Gatherer = prometheus.NewRegistry() }, ""},
		{"registerer only", func(c *Config) { c.Registerer = prometheus.NewRegistry() }, ""},
		{"gatherer without registerer", func(c *Config) { c.Gatherer = prometheus.Gatherers{} }, "Registerer is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.edit(&cfg)
			s, err := New(cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one with %q", err, tt.want)
			case tt.want == "":
				if s.maxBody != DefaultMaxBodyBytes || s.maxBatch != DefaultMaxBatch || s.defK != DefaultK || s.maxK != DefaultMaxK {
					t.Errorf("defaults %d %d %d %d", s.maxBody, s.maxBatch, s.defK, s.maxK)
				}
			}
			if err != nil && strings.Contains(err.Error(), "abc") {
				t.Error("the error holds the key")
			}
		})
	}
	t.Run("registered twice", func(t *testing.T) {
		cfg := valid()
		cfg.Registerer = prometheus.NewRegistry()
		if _, err := New(cfg); err != nil {
			t.Fatal(err)
		}
		if _, err := New(cfg); err == nil {
			t.Fatal("two servers on one registry")
		}
	})
}

// TestKeysConstantTime: keys are compared with subtle.ConstantTimeCompare,
// on fixed-length digests, against every key whether one matches or not.
func TestKeysConstantTime(t *testing.T) {
	kr, err := newKeyring(map[string]string{"k1": "a", "k2": "b", "k3": "c", "k4": "d"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.ValueOf(kr.compare).Pointer() != reflect.ValueOf(subtle.ConstantTimeCompare).Pointer() {
		t.Fatal("keys are not compared with subtle.ConstantTimeCompare")
	}
	compare := kr.compare
	var calls int
	kr.compare = func(x, y []byte) int {
		calls++
		if len(x) != 32 || len(y) != 32 {
			t.Errorf("compared %d and %d bytes, want two SHA-256 digests", len(x), len(y))
		}
		return compare(x, y)
	}
	for _, tt := range []struct{ key, client string }{{"k1", "a"}, {"k2", "b"}, {"k3", "c"}, {"k4", "d"}, {"k5", ""}, {"", ""}, {"a-much-longer-key-than-any", ""}} {
		calls = 0
		client, ok := kr.client(tt.key)
		if client != tt.client || ok != (tt.client != "") {
			t.Errorf("key %q: client %q %v", tt.key, client, ok)
		}
		if calls != 4 {
			t.Errorf("key %q: %d comparisons, want 4", tt.key, calls)
		}
	}
}

func TestAuthHeader(t *testing.T) {
	tests := []struct {
		header string
		code   int
		reason string
	}{
		{"Bearer " + shopKey, 202, ""},
		{"bearer " + shopKey, 202, ""},
		{"Bearer  " + shopKey + " ", 202, ""},
		{"Bearer " + otherKey, 202, ""},
		{"", 401, reasonMissingKey},
		{"Bearer", 401, reasonMissingKey},
		{"Bearer ", 401, reasonMissingKey},
		{"Basic " + shopKey, 401, reasonMissingKey},
		{shopKey, 401, reasonMissingKey},
		{"Bearer " + shopKey + "x", 401, reasonInvalidKey},
		{"Bearer " + shopKey[:len(shopKey)-1], 401, reasonInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			f := newFixture(t)
			req := httptest.NewRequest("POST", "/v1/events", strings.NewReader(validEvent))
			req.Header.Set("Authorization", tt.header)
			w := httptest.NewRecorder()
			f.srv.ServeHTTP(w, req)
			if w.Code != tt.code {
				t.Fatalf("got %d %s", w.Code, body(w))
			}
			if tt.code == 401 {
				want := `Bearer realm="aether"`
				if tt.reason == reasonInvalidKey {
					want += `, error="invalid_token"`
				}
				if got := w.Header().Get("WWW-Authenticate"); got != want {
					t.Errorf("WWW-Authenticate %q, want %q", got, want)
				}
				if got := counterValue(t, f.srv.metrics.rejected[tt.reason]); got != 1 {
					t.Errorf("rejected{%s} = %v", tt.reason, got)
				}
			}
		})
	}
}

func TestHealthAndReadiness(t *testing.T) {
	tests := []struct {
		name          string
		storeReady    bool
		pipelineReady func() bool
		code          int
		want          string
	}{
		{"all ready", true, func() bool { return true }, 200, `{"status":"ok"}`},
		{"no extra check", true, nil, 200, `{"status":"ok"}`},
		{"store recovering", false, func() bool { return true }, 503, `{"status":"not ready","notReady":["featureStore"]}`},
		{"model not loaded", true, func() bool { return false }, 503, `{"status":"not ready","notReady":["pipeline"]}`},
		{"nothing ready", false, func() bool { return false }, 503, `{"status":"not ready","notReady":["featureStore","pipeline"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.Ready = tt.pipelineReady })
			f.store.ready = tt.storeReady
			check(t, f.do("GET", "/readyz", "", ""), tt.code, tt.want)
			check(t, f.do("GET", "/healthz", "", ""), 200, `{"status":"ok"}`)
		})
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	f := newFixture(t)
	check(t, f.do("GET", "/v1/nothing", shopKey, ""), 404, `{"error":"no such endpoint"}`)
	check(t, f.do("GET", "/v1/recommendations/", shopKey, ""), 404, `{"error":"no such endpoint"}`)
	w := f.do("GET", "/v1/events", shopKey, "")
	check(t, w, 405, `{"error":"method GET not allowed; use POST"}`)
	if w.Header().Get("Allow") != "POST" {
		t.Errorf("Allow %q", w.Header().Get("Allow"))
	}
	w = f.do("DELETE", "/v1/recommendations/u1", shopKey, "")
	check(t, w, 405, `{"error":"method DELETE not allowed; use GET, HEAD"}`)
	if len(f.sink.sent()) != 0 {
		t.Error("events sent")
	}
}

// TestMetricsExposed: /metrics needs no key and exposes the request,
// duration and rejection metrics labelled by route pattern, never by path.
func TestMetricsExposed(t *testing.T) {
	f := newFixture(t)
	f.do("POST", "/v1/events", shopKey, batchJSON("user_secret_1", 3))
	f.do("POST", "/v1/events", "", validEvent)
	f.do("GET", "/v1/recommendations/user_secret_1", shopKey, "")
	f.do("GET", "/v1/recommendations/user_secret_1", shopKey, "")
	f.do("GET", "/v1/recommendations/user_secret_2?k=0", shopKey, "")
	f.do("GET", "/nowhere", "", "")
	w := f.do("GET", "/metrics", "", "")
	if w.Code != 200 {
		t.Fatalf("/metrics: %d", w.Code)
	}
	out := w.Body.String()
	for _, want := range []string{
		`aether_http_requests_total{code="202",route="POST /v1/events"} 1`,
		`aether_http_requests_total{code="401",route="POST /v1/events"} 1`,
		`aether_http_requests_total{code="200",route="GET /v1/recommendations/{userId}"} 2`,
		`aether_http_requests_total{code="400",route="GET /v1/recommendations/{userId}"} 1`,
		`aether_http_requests_total{code="404",route="unmatched"} 1`,
		`aether_http_request_duration_seconds_count{route="GET /v1/recommendations/{userId}"} 3`,
		`aether_http_rejected_total{reason="missing_api_key"} 1`,
		`aether_http_rejected_total{reason="invalid_k"} 1`,
		`aether_http_rejected_total{reason="not_found"} 1`,
		`aether_http_rejected_total{reason="body_too_large"} 0`,
		`aether_api_events_accepted_total{client="shop-eu"} 3`,
		`aether_api_recommendations_total{source="inference"} 1`,
		`aether_api_recommendations_total{source="cache"} 1`,
		`aether_api_cache_errors_total{op="put"} 0`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(out, "user_secret") {
		t.Error("a user id reaches the metrics")
	}
}

// TestAccessLog: one line per request with the request id, method, route
// pattern, status, duration and client; never the key, the path's user id
// or the body.
func TestAccessLog(t *testing.T) {
	f := newFixture(t)
	req := httptest.NewRequest("POST", "/v1/events", strings.NewReader(eventJSON("user_secret_1", 0)))
	req.Header.Set("Authorization", "Bearer "+shopKey)
	req.Header.Set(RequestIDHeader, "req-123")
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, req)
	if w.Code != 202 || w.Header().Get(RequestIDHeader) != "req-123" {
		t.Fatalf("got %d, request id %q", w.Code, w.Header().Get(RequestIDHeader))
	}
	f.do("GET", "/v1/recommendations/user_secret_1", shopKey, "")
	f.do("GET", "/v1/features/user_secret_1", "wrong-key-value", "")

	logs := f.logs.String()
	for _, leak := range []string{shopKey, "wrong-key-value", "user_secret", "prod_000", "192.168"} {
		if strings.Contains(logs, leak) {
			t.Errorf("the log holds %q:\n%s", leak, logs)
		}
	}
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		if m["msg"] == "http request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 3 {
		t.Fatalf("%d access log lines:\n%s", len(lines), logs)
	}
	want := []map[string]any{
		{"request_id": "req-123", "method": "POST", "route": "POST /v1/events", "status": 202.0, "client": shopName},
		{"method": "GET", "route": "GET /v1/recommendations/{userId}", "status": 200.0, "client": shopName},
		{"method": "GET", "route": "GET /v1/features/{userId}", "status": 401.0, "reason": reasonInvalidKey},
	}
	for i, l := range lines {
		for k, v := range want[i] {
			if l[k] != v {
				t.Errorf("line %d: %s = %v, want %v", i, k, l[k], v)
			}
		}
		if _, ok := l["duration"]; !ok {
			t.Errorf("line %d has no duration", i)
		}
		if id, _ := l["request_id"].(string); id == "" {
			t.Errorf("line %d has no request id", i)
		}
	}
	if _, ok := lines[2]["client"]; ok {
		t.Error("an unauthenticated request is logged with a client")
	}
}

func TestRequestID(t *testing.T) {
	tests := []struct {
		given string
		keep  bool
	}{
		{"", false},
		{"abc-123", true},
		{"0f8e2c1a-5b7d-4f3e-9a6b-1c2d3e4f5a6b", true},
		{"trace:span/1+2=3_x.y", true},
		{"has space", false},
		{"line\nbreak", false},
		{`quote"`, false},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
	}
	for _, tt := range tests {
		f := newFixture(t)
		req := httptest.NewRequest("GET", "/healthz", nil)
		req.Header.Set(RequestIDHeader, tt.given)
		w := httptest.NewRecorder()
		f.srv.ServeHTTP(w, req)
		got := w.Header().Get(RequestIDHeader)
		if tt.keep && got != tt.given || !tt.keep && (got == tt.given || len(got) != 26) {
			t.Errorf("given %q: echoed %q", tt.given, got)
		}
	}
}

// TestPanicRecovered: a panicking handler answers 500, is logged and
// counted, and the server goes on serving.
func TestPanicRecovered(t *testing.T) {
	f := newFixture(t)
	check(t, f.do("POST", "/v1/events", shopKey, eventJSON("u1", 0)), 202, `{"accepted":1}`)
	f.scorer.panics = true
	check(t, f.do("GET", "/v1/recommendations/u1", shopKey, ""), 500, `{"error":"internal error"}`)
	if got := counterValue(t, f.srv.metrics.rejected[reasonPanic]); got != 1 {
		t.Errorf("rejected{panic} = %v", got)
	}
	if !strings.Contains(f.logs.String(), `"msg":"http handler panic"`) || !strings.Contains(f.logs.String(), "scorer exploded") {
		t.Errorf("panic not logged:\n%s", f.logs.String())
	}
	f.scorer.panics = false
	check(t, f.do("GET", "/healthz", "", ""), 200, `{"status":"ok"}`)
	if w := f.do("GET", "/v1/recommendations/u1", shopKey, ""); w.Code != 200 {
		t.Errorf("after the panic: %d", w.Code)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
