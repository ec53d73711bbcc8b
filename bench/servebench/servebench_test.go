package servebench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aetherai/aether/bench/internal/report"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/model"
)

func TestParseCSV(t *testing.T) {
	v7 := `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"GET aether:bench:serve:0011:user_7","81300.81","0.060","0.008","0.055","0.119","0.167","1.127"
`
	rb, err := parseCSV([]byte(v7))
	if err != nil {
		t.Fatal(err)
	}
	if rb.rps != 81300.81 || rb.p50ms != 0.055 || rb.p99ms != 0.167 {
		t.Errorf("v7: %+v", rb)
	}
	// redis-benchmark -t get names the test "GET"; before 7, the CSV had
	// no header and no latencies.
	rb, err = parseCSV([]byte("\"GET\",\"98522.17\"\n"))
	if err != nil || rb.rps != 98522.17 || rb.p99ms != 0 {
		t.Errorf("old: %+v, %v", rb, err)
	}
	for _, bad := range []string{"", `"test","rps"` + "\n" + `"SET","1.0"` + "\n", `"GET","x"` + "\n", `"GET","0"` + "\n", `"GET`} {
		if _, err := parseCSV([]byte(bad)); err == nil {
			t.Errorf("parseCSV(%q): no error", bad)
		}
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 1000; i++ {
		d = append(d, time.Duration(i))
	}
	for p, want := range map[float64]time.Duration{0.5: 500, 0.99: 990, 0.999: 999, 1: 1000, 0: 1} {
		if got := percentile(d, p); got != want {
			t.Errorf("percentile(%v) = %v, want %v", p, got, want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("percentile of nothing")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{Redis: "localhost"}, {Users: -1}, {Duration: time.Millisecond}, {Connections: -3}, {K: model.MaxK + 1}, {TrainEvents: 10}, {RedisRequests: -1}} {
		if err := c.withDefaults().validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := (Config{}).withDefaults().validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestUserRecords(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var evs []event.Event
	for i := range 50 {
		evs = append(evs, event.Event{UserID: "user_1", ProductID: fmt.Sprintf("prod_%d", i), EventType: event.Click, Timestamp: at.Add(time.Duration(i) * time.Second)})
	}
	evs = append(evs, event.Event{UserID: "user_9", ProductID: "prod_0", EventType: event.View, Timestamp: at})
	recs := userRecords(evs, 3, 20)
	if len(recs) != 3 || recs[0].UserID != "user_0" || len(recs[0].RecentItems) != 0 || recs[0].RecentItems == nil {
		t.Fatalf("records: %+v", recs)
	}
	r := recs[1]
	if r.UserID != "user_1" || r.EventsTotal != 50 || len(r.RecentItems) != 20 ||
		r.RecentItems[0].ProductID != "prod_30" || r.RecentItems[19].ProductID != "prod_49" {
		t.Fatalf("user_1: %d events, recent %v", r.EventsTotal, r.RecentItems)
	}
}

// TestDriverChecksAnswers: every answer that is not 200, not from the
// cache, of another user or with the wrong number of items is a failure.
func TestDriverChecksAnswers(t *testing.T) {
	const good = `{"userId":"user_0","items":[{"productId":"a","score":1},{"productId":"b","score":0.5}],"model":{},"source":"cache","generatedAt":"2026-01-01T00:00:00Z"}`
	for name, tc := range map[string]struct {
		status int
		body   string
		want   string // in the failure; "" = success
	}{
		"hit":         {200, good, ""},
		"503":         {503, `{"error":"the model is unavailable"}`, "status 503"},
		"inference":   {200, strings.Replace(good, `"cache"`, `"inference"`, 1), "not from the cache"},
		"fallback":    {200, strings.Replace(good, `"cache"`, `"fallback"`, 1), "not from the cache"},
		"other user":  {200, strings.Replace(good, "user_0", "user_1", 1), "not the answer of the user"},
		"short":       {200, strings.Replace(good, `,{"productId":"b","score":0.5}`, "", 1), "1 items, want 2"},
		"unauthorize": {401, `{"error":"invalid API key"}`, "status 401"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer k" || r.URL.Path != "/v1/recommendations/user_0" {
					w.WriteHeader(http.StatusTeapot)
					return
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			d := &driver{client: srv.Client(), auth: "Bearer k", k: 2,
				urls: []string{srv.URL + "/v1/recommendations/user_0?k=2"}, needles: [][]byte{[]byte(`"userId":"user_0"`)}}
			var buf bytes.Buffer
			got := d.get(context.Background(), 0, &buf)
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("get = %q, want %q", got, tc.want)
			}
			res, err := d.run(context.Background(), 2, 50*time.Millisecond, false)
			var fe *FailuresError
			if tc.want == "" && err != nil || tc.want != "" && (!errors.As(err, &fe) || fe.Failures == 0 || res.requests != 0) {
				t.Errorf("warm-up run: %+v, %v", res, err)
			}
		})
	}
}

// need skips the test when a prerequisite is missing, and fails it under
// CI, naming how to install it.
func need(t *testing.T, what string, ok bool, how string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required in CI: %s", what, how)
	}
	t.Skipf("%s is missing: %s", what, how)
}

// TestRun runs a tiny benchmark end to end against the redis-server on
// 127.0.0.1:6379: every phase measures something, every HTTP request is a
// cache hit, and the run deletes its keys.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model and drives Redis, ONNX Runtime and HTTP for several seconds")
	}
	lib, source := model.DefaultRuntimeLibrary()
	_, err := os.Stat(lib)
	need(t, "the ONNX Runtime library ("+lib+", "+source+")", err == nil, "install it with `"+model.InstallCommand+"` from the repository root")
	_, err = exec.LookPath("redis-benchmark")
	need(t, "redis-benchmark", err == nil, "install it with `"+InstallRedisTools+"`")
	rdb := redis.NewClient(&redis.Options{Addr: DefaultRedis})
	defer rdb.Close()
	pctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	err = rdb.Ping(pctx).Err()
	cancel()
	need(t, "redis-server on "+DefaultRedis, err == nil, "`apt-get install -y redis-server redis-tools && "+report.StartRedis+"`")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var log strings.Builder
	res, err := Run(ctx, Config{Users: 200, Duration: time.Second, Connections: 4}, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Log(log.String())
	if res.InferenceSingleUsersPerSec <= 0 || res.InferenceBatch64UsersPerSec <= 0 || res.InferenceSingleP99us <= 0 ||
		res.HTTPCacheHitRPS <= 0 || res.HTTPCacheHitP50ms <= 0 || res.HTTPCacheHitP99ms < res.HTTPCacheHitP50ms ||
		res.RedisBenchmarkGetRPS <= 0 || res.HTTPVsRedisRPSRatio <= 0 {
		t.Errorf("non-positive result: %+v", res)
	}
	if res.HTTPFailures != 0 || res.HTTPRequests == 0 || res.Users != 200 || res.Connections != 4 || res.DurationS != 1 {
		t.Errorf("result: %+v", res)
	}

	js, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	const head = `{"users":200,"inference_single_users_per_sec":`
	if !strings.HasPrefix(string(js), head) {
		t.Errorf("JSON starts %.60s, want %s", js, head)
	}
	for _, k := range []string{"inference_batch64_users_per_sec", "inference_single_p99_us", "http_cache_hit_rps",
		"http_cache_hit_p50_ms", "http_cache_hit_p99_ms", "redis_benchmark_get_rps", "redis_benchmark_get_p99_ms",
		"http_vs_redis_rps_ratio", "connections", "duration_s"} {
		if !strings.Contains(string(js), `"`+k+`":`) {
			t.Errorf("JSON lacks %s: %s", k, js)
		}
	}

	// The run deleted what it wrote.
	m := regexp.MustCompile(`deleted (\d+) cache keys under (\S+)`).FindStringSubmatch(log.String())
	if m == nil || m[1] != "200" {
		t.Fatalf("no deletion of 200 keys in the log: %v", m)
	}
	var keys []string
	it := rdb.Scan(context.Background(), 0, m[2]+"*", 1000).Iterator()
	for it.Next(context.Background()) {
		keys = append(keys, it.Val())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("keys left under %s: %v", m[2], keys)
	}
}
