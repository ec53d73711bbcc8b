package runner_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/clickstream"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/internal/redistest"
	"github.com/aetherai/aether/model"
	"github.com/aetherai/aether/recommend"
)

// The end-to-end test runs the runner binary as separate processes
// (`runner broker`, `runner run`), feeds them with kcat, a real Kafka
// client, and reads answers over HTTP and from the real redis-server.

func need(t *testing.T, what string, ok bool, how string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required in CI: %s", what, how)
	}
	t.Skipf("%s is missing (%s); CI installs it", what, how)
}

func needONNX(t *testing.T) {
	t.Helper()
	lib, _ := model.DefaultRuntimeLibrary()
	_, err := os.Stat(lib)
	need(t, "the ONNX Runtime library ("+lib+")", err == nil, model.InstallCommand)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func buildRunner(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "runner")
	out, err := exec.Command("go", "build", "-o", bin, "./cmd/runner").CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

// process is a runner subprocess whose output is collected.
type process struct {
	cmd *exec.Cmd
	out *lockedBuffer
}

type lockedBuffer struct {
	ch  chan string
	all bytes.Buffer
}

func start(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	require.NoError(t, cmd.Start())
	p := &process{cmd: cmd, out: &lockedBuffer{ch: make(chan string, 1000)}}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			select {
			case p.out.ch <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
		w.Close()
	})
	return p
}

// waitLine waits for a line containing want and returns it. Every line
// read is appended to *seen, if seen is not nil: a test that checks the
// whole output keeps it across calls. A timeout shows the lines seen.
func (p *process) waitLine(t *testing.T, want string, within time.Duration, seen *[]string) string {
	t.Helper()
	if seen == nil {
		seen = new([]string)
	}
	deadline := time.After(within)
	for {
		select {
		case line := <-p.out.ch:
			*seen = append(*seen, line)
			if strings.Contains(line, want) {
				return line
			}
		case <-deadline:
			t.Fatalf("no line with %q within %s; output:\n%s", want, within, strings.Join(*seen, "\n"))
		}
	}
}

func trainModel(t *testing.T, dir string) string {
	t.Helper()
	gen, err := clickstream.New(clickstream.Config{Users: 300, Products: 500, Seed: 3})
	require.NoError(t, err)
	m, err := model.Train(func(yield func(event.Event) bool) {
		for range 20000 {
			if !yield(gen.Next().Event) {
				return
			}
		}
	}, model.Version("e2e"))
	require.NoError(t, err)
	require.NoError(t, m.Save(dir))
	return m.Metadata().SHA256
}

func writeConfig(t *testing.T, dir, brokerAddr, httpAddr, modelDir, sha, prefix string) string {
	t.Helper()
	p := filepath.Join(dir, "aether.yaml")
	require.NoError(t, os.WriteFile(p, []byte(fmt.Sprintf(`
kafka:
  brokers: [%s]
  partitions: 4
redis:
  addr: 127.0.0.1:6379
  ttl: 10m
  keyPrefix: "%s"
model:
  dir: %s
  sha256: %s
http:
  listen: %s
  apiKeys:
    e2e-shop: env:E2E_KEY
  admin: {listen: "127.0.0.1:0", token: e2e-admin-token}
sessions:
  gap: 30m
  # One feature record per session start, then none for an hour: the test
  # controls when the recommender writes the cache.
  emitInterval: 1h
`, brokerAddr, prefix, modelDir, sha, httpAddr)), 0o600))
	return p
}

func kcatProduce(t *testing.T, brokerAddr, topic string, lines []string) {
	t.Helper()
	cmd := exec.Command("kcat", "-b", brokerAddr, "-t", topic, "-P", "-K", "\t")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
}

func kcatCount(t *testing.T, brokerAddr, topic string) int {
	t.Helper()
	out, err := exec.Command("kcat", "-b", brokerAddr, "-t", topic, "-C", "-e", "-o", "beginning", "-q", "-f", "%o\n").Output()
	if err != nil {
		return 0
	}
	return strings.Count(string(out), "\n")
}

func get(t *testing.T, url, key string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func TestRunnerEndToEnd(t *testing.T) {
	_, kcatErr := exec.LookPath("kcat")
	need(t, "kcat", kcatErr == nil, "apt-get install -y kcat")
	rdb := redistest.Real(t)
	needONNX(t)

	bin := buildRunner(t)
	dir := t.TempDir()
	modelDir := filepath.Join(dir, "model")
	sha := trainModel(t, modelDir)
	brokerAddr, httpAddr := freePort(t), freePort(t)
	prefix := fmt.Sprintf("aether:e2e:%d:", time.Now().UnixNano())
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	const key = "e2e-secret-key"
	env := []string{"E2E_KEY=" + key}

	b := start(t, bin, nil, "broker", "--listen", brokerAddr, "--partitions", "4")
	b.waitLine(t, "broker listening", 30*time.Second, nil)

	// A model whose SHA-256 is not the pinned one is refused at start.
	bad := writeConfig(t, t.TempDir(), brokerAddr, freePort(t), modelDir, strings.Repeat("0", 64), prefix)
	refuse := exec.Command(bin, "run", "-c", bad)
	refuse.Env = append(os.Environ(), env...)
	out, err := refuse.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "SHA-256 mismatch: expected "+strings.Repeat("0", 64))
	require.Contains(t, string(out), sha, "the error names the actual SHA-256")

	cfgPath := writeConfig(t, dir, brokerAddr, httpAddr, modelDir, sha, prefix)
	r := start(t, bin, env, "run", "-c", cfgPath, "--audit-file", filepath.Join(dir, "audit.jsonl"))
	r.waitLine(t, "pipeline running", 90*time.Second, nil)
	base := "http://" + httpAddr
	adminLine := r.waitLine(t, "admin API on http://", 10*time.Second, nil)
	adminBase := adminLine[strings.Index(adminLine, "http://"):]

	// Events from a real Kafka client, malformed ones among them.
	now := time.Now().UTC()
	var lines []string
	for i := range 30 {
		e := event.Event{UserID: "kcat_user", ProductID: fmt.Sprintf("prod_%d", i%7), EventType: event.Click,
			Timestamp: now.Add(time.Duration(i) * time.Second), EventID: fmt.Sprintf("k%d", i)}
		js, _ := json.Marshal(e)
		lines = append(lines, "kcat_user\t"+string(js))
	}
	lines = append(lines, "kcat_user\t{not json", "kcat_user\t{\"userId\":\"kcat_user\"}")
	kcatProduce(t, brokerAddr, "user_events_raw", lines)
	require.Eventually(t, func() bool { return kcatCount(t, brokerAddr, "user_events_raw.dlq") == 2 }, 30*time.Second, 200*time.Millisecond,
		"the two malformed events are dead-lettered")

	// The recommender scores the user's features and caches them in Redis.
	var cached recommend.Recommendations
	require.Eventually(t, func() bool {
		v, err := rdb.Get(context.Background(), prefix+"kcat_user").Result()
		if err != nil {
			return false
		}
		return json.Unmarshal([]byte(v), &cached) == nil
	}, 60*time.Second, 200*time.Millisecond, "recommendations for kcat_user reach Redis")
	require.Equal(t, sha, cached.Model.SHA256)
	require.NotEmpty(t, cached.Items)
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(context.Background(), cursor, prefix+"*", 100).Result()
		require.NoError(t, err)
		for _, k := range keys {
			ttl, err := rdb.TTL(context.Background(), k).Result()
			require.NoError(t, err)
			require.Greater(t, ttl, time.Duration(0), "key %s has a TTL", k)
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	code, body := get(t, base+"/v1/recommendations/kcat_user?k=5", key)
	require.Equal(t, http.StatusOK, code, string(body))
	var ans recommend.Recommendations
	require.NoError(t, json.Unmarshal(body, &ans))
	require.Equal(t, recommend.FromCache, ans.Source)
	require.Equal(t, sha, ans.Model.SHA256)

	// A new user's 20 events over HTTP, then two GETs: inference, then cache.
	var batch []event.Event
	for i := range 20 {
		batch = append(batch, event.Event{UserID: "http_user", ProductID: fmt.Sprintf("prod_%d", i%9), EventType: event.Click,
			Timestamp: now.Add(time.Duration(i) * time.Second), EventID: fmt.Sprintf("h%d", i)})
	}
	js, _ := json.Marshal(batch)
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/events", bytes.NewReader(js))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	accepted, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(accepted))
	require.JSONEq(t, `{"accepted":20}`, string(accepted))
	require.Eventually(t, func() bool {
		code, body := get(t, base+"/v1/features/http_user", key)
		var rec struct {
			EventsTotal int `json:"eventsTotal"`
		}
		return code == 200 && json.Unmarshal(body, &rec) == nil && rec.EventsTotal == 20
	}, 30*time.Second, 100*time.Millisecond, "the feature store has all 20 events")
	// The recommender caches the session's first record; once it has, it
	// writes nothing more for an hour. Start from a miss.
	require.Eventually(t, func() bool {
		return rdb.Exists(context.Background(), prefix+"http_user").Val() == 1
	}, 30*time.Second, 50*time.Millisecond, "the recommender cached the session's start")
	rdb.Del(context.Background(), prefix+"http_user")
	code, body = get(t, base+"/v1/recommendations/http_user", key)
	require.Equal(t, 200, code, string(body))
	var first, second recommend.Recommendations
	require.NoError(t, json.Unmarshal(body, &first))
	code, body = get(t, base+"/v1/recommendations/http_user", key)
	require.Equal(t, 200, code, string(body))
	require.NoError(t, json.Unmarshal(body, &second))
	require.Equal(t, recommend.FromInference, first.Source)
	require.Equal(t, recommend.FromCache, second.Source)
	require.Equal(t, first.Items, second.Items)
	require.Equal(t, sha, first.Model.SHA256)
	require.Equal(t, sha, second.Model.SHA256)

	// An unknown user gets the popular items.
	code, body = get(t, base+"/v1/recommendations/nobody?k=3", key)
	require.Equal(t, 200, code)
	require.NoError(t, json.Unmarshal(body, &ans))
	require.Equal(t, recommend.FromFallback, ans.Source)
	require.Len(t, ans.Items, 3)

	// The broker package can read what kcat wrote (same protocol, other client).
	msgs, err := broker.Consume(context.Background(), []string{brokerAddr}, broker.SaramaConfig("e2e"), "user_events_raw")
	require.NoError(t, err)
	require.Len(t, msgs, 32+20)

	// Monitoring: consumer lag per group, topic and partition, the build,
	// and the controls, evaluated while the pipeline runs.
	wants := []string{`(?m)^aether_kafka_consumer_lag\{group="sessionizer",partition="\d",topic="user_events_raw"\} 0$`,
		`(?m)^aether_kafka_consumer_lag\{group="recommender",partition="\d",topic="user_features_processed"\} \d+$`,
		`(?m)^aether_build_info\{`, `(?m)^aether_control_status\{control="redis_key_ttl",criteria="C1.2,P4.2"\} 1$`,
		`(?m)^aether_control_status\{control="acl_drift",criteria="CC6.1,CC6.3"\} 0$`, // no ACLs applied on this broker
		`(?m)^aether_audit_events_written_total \d+$`}
	var missing []string
	require.Eventually(t, func() bool {
		code, body := get(t, base+"/metrics", "")
		missing = missing[:0]
		for _, want := range wants {
			if code != 200 || !regexp.MustCompile(want).Match(body) {
				missing = append(missing, want)
			}
		}
		return len(missing) == 0
	}, 30*time.Second, 500*time.Millisecond, "/metrics lacks %q", &missing)
	code, body = get(t, adminBase+"/admin/v1/evidence.json", "e2e-admin-token")
	require.Equal(t, 200, code, string(body))
	var rep struct {
		Controls []struct{ ID, Status string }
	}
	require.NoError(t, json.Unmarshal(body, &rep))
	status := map[string]string{}
	for _, c := range rep.Controls {
		status[c.ID] = c.Status
	}
	require.Equal(t, "pass", status["redis_key_ttl"])
	require.Equal(t, "pass", status["audit_trail"])
	require.Equal(t, "fail", status["encryption_in_transit"], "this test runs without TLS")
	code, _ = get(t, adminBase+"/admin/v1/evidence.json", key)
	require.Equal(t, http.StatusUnauthorized, code, "the API key does not open the admin API")
}

// TestDemoAnswersWithModelScoredItems runs `runner demo` as a user would and
// asks for the suggested user's recommendations until the model answers. The
// demo runs with crypto-shredding on: its clickstream goes through the API,
// so Kafka holds pseudonyms only and nothing is dead-lettered.
func TestDemoAnswersWithModelScoredItems(t *testing.T) {
	needONNX(t)
	bin := buildRunner(t)
	httpAddr := freePort(t)
	d := start(t, bin, nil, "demo", "--http", httpAddr, "--api-key", "demo-key", "--rate", "200",
		"--audit-file", filepath.Join(t.TempDir(), "audit.jsonl"))
	var lines []string
	line := d.waitLine(t, "/v1/recommendations/", 60*time.Second, &lines)
	url := strings.Fields(line)[len(strings.Fields(line))-1]
	require.True(t, strings.HasPrefix(url, "http://"+httpAddr+"/v1/recommendations/user_"), line)
	all := strings.Join(lines, "\n")
	require.Contains(t, all, "privacy: user ids pseudonymised, events sealed per user")
	m := regexp.MustCompile(`embedded Kafka-protocol broker on \[(\S+)\]`).FindStringSubmatch(all)
	require.NotNil(t, m, "the demo prints its broker:\n%s", all)
	var ans recommend.Recommendations
	require.Eventually(t, func() bool {
		code, body := get(t, url, "demo-key")
		return code == 200 && json.Unmarshal(body, &ans) == nil && ans.Source != recommend.FromFallback
	}, 60*time.Second, 250*time.Millisecond, "the demo answers from the model")
	require.Len(t, ans.Items, 5)
	require.Len(t, ans.Model.SHA256, 64)

	// Kafka holds the users' pseudonyms, never their ids.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := broker.Consume(ctx, []string{m[1]}, broker.SaramaConfig("demo-test"), "user_events_raw")
	require.NoError(t, err)
	require.NotEmpty(t, msgs)
	pseudonym := regexp.MustCompile(`^[0-9a-f]{64}$`)
	for _, msg := range msgs {
		require.Regexp(t, pseudonym, string(msg.Key), "a record of user_events_raw keyed by a raw user id")
		require.NotContains(t, string(msg.Value), `"userId"`, "an unsealed record in user_events_raw")
	}
	// The processors applied the sealed records and dead-lettered none.
	code, body := get(t, "http://"+httpAddr+"/metrics", "")
	require.Equal(t, 200, code)
	require.Regexp(t, `(?m)^aether_records_total\{outcome="applied",processor="sessionizer",topic="user_events_raw"\} [1-9]\d*$`, string(body))
	require.Regexp(t, `(?m)^aether_records_total\{outcome="dead_lettered",processor="sessionizer",topic="user_events_raw"\} 0$`, string(body))
	require.Regexp(t, `(?m)^aether_records_total\{outcome="dead_lettered",processor="recommender",topic="user_features_processed"\} 0$`, string(body))

	require.NoError(t, d.cmd.Process.Signal(os.Interrupt))
	d.waitLine(t, "stopped cleanly", 30*time.Second, &lines)
	all = strings.Join(lines, "\n")
	require.NotContains(t, all, "no sealer is configured", "the demo runs with sealing on")
	require.NotContains(t, all, "demo clickstream:", "the API accepts the demo's clickstream")
}

// TestDemoWritesAVerifiableAuditTrail runs `runner demo`, makes a known
// number of API requests, stops it and verifies its trail: one record per
// request, exactly, and the hash chain intact.
func TestDemoWritesAVerifiableAuditTrail(t *testing.T) {
	needONNX(t)
	bin := buildRunner(t)
	httpAddr := freePort(t)
	trail := filepath.Join(t.TempDir(), "demo-audit.jsonl")
	d := start(t, bin, nil, "demo", "--http", httpAddr, "--api-key", "demo-key", "--rate", "0",
		"--history", "5000", "--audit-file", trail)
	d.waitLine(t, "audit trail: "+trail, 60*time.Second, nil)
	d.waitLine(t, "Ctrl-C stops the demo", 60*time.Second, nil)
	base := "http://" + httpAddr
	requests := 0
	for _, path := range []string{"/v1/recommendations/user_1?k=5", "/v1/features/user_2", "/healthz", "/readyz"} {
		code, body := get(t, base+path, "demo-key")
		requests++
		require.NotEqual(t, http.StatusUnauthorized, code, string(body))
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/events", strings.NewReader(
		`{"userId":"me","productId":"prod_7","eventType":"click","timestamp":"`+time.Now().UTC().Format(time.RFC3339)+`"}`))
	req.Header.Set("Authorization", "Bearer demo-key")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	requests++
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Eventually(t, func() bool {
		code, _ := get(t, base+"/v1/features/me", "demo-key")
		requests++
		return code == http.StatusOK
	}, 30*time.Second, 100*time.Millisecond, "the sessionizer has the event")
	require.NoError(t, d.cmd.Process.Signal(os.Interrupt))
	d.waitLine(t, "stopped cleanly", 30*time.Second, nil)

	_, err = audit.VerifyFile(trail)
	require.NoError(t, err, "the demo's trail verifies")
	raw, err := os.ReadFile(trail)
	require.NoError(t, err)
	kinds := map[audit.Kind]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var r struct{ Event audit.Event }
		require.NoError(t, json.Unmarshal([]byte(line), &r))
		kinds[r.Event.Kind]++
	}
	require.Equal(t, requests, kinds[audit.KindAPIRequest], "one record per API request")
	require.Positive(t, kinds[audit.KindJobEvent], "the processors' start and stop")
	require.Positive(t, kinds[audit.KindKafkaMessage], "the processors' attestations")
	cov, err := audit.CoverageFile(trail)
	require.NoError(t, err)
	require.NoError(t, cov.Err(), "every offset the processors read is attested")
	require.NotContains(t, string(raw), "user_1", "no raw user id in the trail")
	require.NotContains(t, string(raw), "demo-key", "no API key in the trail")
}
