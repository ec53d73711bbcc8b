package cli_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/audit/audittest"
	es "github.com/aetherai/aether/audit/elasticsearch"
	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/broker/brokertest"
	"github.com/aetherai/aether/controls/evidence"
	"github.com/aetherai/aether/internal/esfake"
	"github.com/aetherai/aether/internal/testcert"
	"github.com/aetherai/aether/model"
	"github.com/aetherai/aether/model/approval"
	"github.com/aetherai/aether/runner/cli"
)

// evidenceSetup is a configuration under which every control of runner
// evidence can pass: TLS everywhere (Redis is a miniredis over TLS), an
// approved model, a fresh audit trail, the required alert rule and a
// complete deletion receipt.
type evidenceSetup struct {
	config, rules, receipts string
	redis                   *miniredis.Miniredis
	kafka                   sarama.ClusterAdmin
}

// evidenceMasterKeyEnv holds the master key of the evidence setup.
const evidenceMasterKeyEnv = "AETHER_TEST_MASTER_KEY"

func newEvidenceSetup(t *testing.T) evidenceSetup {
	t.Helper()
	dir := t.TempDir()
	ca := testcert.New(t)
	srv := ca.Server(t, "127.0.0.1")
	mr, err := miniredis.RunTLS(&tls.Config{Certificates: []tls.Certificate{srv.TLS}, MinVersion: tls.VersionTLS12})
	require.NoError(t, err)
	t.Cleanup(mr.Close)
	b := brokertest.Start(t, broker.ListenTLS(&tls.Config{Certificates: []tls.Certificate{srv.TLS}, MinVersion: tls.VersionTLS12}))
	sec := broker.Security{TLS: &broker.TLS{CAFile: ca.CertFile}}
	sc, err := sec.SaramaConfigs()
	require.NoError(t, err)
	kafka, err := sarama.NewClusterAdmin(b.Addrs(), sc("evidence-test"))
	require.NoError(t, err)
	t.Cleanup(func() { kafka.Close() })

	modelDir := filepath.Join(dir, "model")
	require.NoError(t, os.Mkdir(modelDir, 0o700))
	onnx := []byte("not really onnx, but hashed like it")
	sum := sha256.Sum256(onnx)
	sha := hex.EncodeToString(sum[:])
	require.NoError(t, os.WriteFile(filepath.Join(modelDir, model.FileModel), onnx, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(modelDir, model.FileVocab), []byte("[]"), 0o600))
	meta, err := json.Marshal(model.Metadata{Format: "aether.itemcf/1", Version: "itemcf-test", SHA256: sha})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(modelDir, model.FileMetadata), meta, 0o600))
	manifest := filepath.Join(dir, "approved-models.json")
	_, _, err = approval.Approve(manifest, model.Metadata{SHA256: sha, Version: "itemcf-test"}, "alice", "CHG-7", time.Now(), nil)
	require.NoError(t, err)

	trail := filepath.Join(dir, "audit.jsonl")
	s, err := audit.OpenFile(trail)
	require.NoError(t, err)
	e := audittest.Event(t, 1)
	e.Time = time.Now().UTC().Round(0)
	require.NoError(t, s.Write(context.Background(), e))
	require.NoError(t, s.Close())

	rules := filepath.Join(dir, "alerts.yml")
	require.NoError(t, os.WriteFile(rules, []byte("groups:\n  - name: c\n    rules:\n      - alert: AetherControlFailing\n        expr: aether_control_status < 1\n"), 0o600))

	receipts := filepath.Join(dir, "receipts")
	require.NoError(t, os.Mkdir(receipts, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(receipts, "del-1.json"),
		[]byte(`{"id":"del-1","subject":"u-9f1c","time":"2026-11-27T05:00:00Z","stores":[{"name":"redis","count":1}]}`), 0o600))

	// Crypto-shredding on: the data keys live in the same miniredis.
	t.Setenv("AETHER_TEST_SUBJECT_KEY", strings.Repeat("s", 32))
	t.Setenv(evidenceMasterKeyEnv, strings.Repeat("m", 32))

	cfg := filepath.Join(dir, "aether.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`pipeline: recommendations
kafka:
  brokers: [%[8]s]
  security:
    tls: {caFile: %[1]q}
redis:
  addr: %[2]s
  tls: {caFile: %[1]q}
  keyPrefix: "aether:recs:"
model:
  dir: %[3]q
  manifest: %[4]q
http:
  listen: 127.0.0.1:8443
  tls: {certFile: %[5]q, keyFile: %[6]q}
  admin: {listen: off}
audit:
  file: %[7]q
forget:
  subjectKeyEnv: AETHER_TEST_SUBJECT_KEY
privacy:
  masterKeyEnv: %[9]s
`, ca.CertFile, mr.Addr(), modelDir, manifest, srv.CertFile, srv.KeyFile, trail, b.Addrs()[0], evidenceMasterKeyEnv)), 0o600))
	// The topics and ACLs the topology declares, applied.
	for _, cmd := range []string{"topics", "acls"} {
		code, _, stderr := run(cmd, "-c", cfg, "--apply")
		require.Equal(t, 0, code, stderr)
	}
	return evidenceSetup{config: cfg, rules: rules, receipts: receipts, redis: mr, kafka: kafka}
}

func (s evidenceSetup) args(extra ...string) []string {
	return append([]string{"evidence", "-c", s.config, "--rules", s.rules, "--require-alert", "AetherControlFailing",
		"--receipts", s.receipts}, extra...)
}

func readReport(t *testing.T, path string) (evidence.Report, map[string]evidence.Control) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var rep evidence.Report
	require.NoError(t, json.Unmarshal(b, &rep))
	byID := map[string]evidence.Control{}
	for _, c := range rep.Controls {
		byID[c.ID] = c
	}
	return rep, byID
}

func TestEvidenceCommand(t *testing.T) {
	s := newEvidenceSetup(t)
	out := filepath.Join(t.TempDir(), "report.json")

	code, stdout, stderr := run(s.args("-o", out)...)
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `^\S+Z `+out+`: 9 controls: 9 pass, 0 fail, 0 error; 0 not evaluated\n$`, stdout)
	rep, byID := readReport(t, out)
	require.True(t, rep.OK(), "%+v", rep)
	for _, id := range []string{"encryption_in_transit", "redis_key_ttl", "model_approval", "audit_trail", "alert_rules", "deletion_receipts", "acl_drift", "topic_drift", "personal_data_sealed"} {
		require.Equal(t, evidence.StatusPass, byID[id].Status, "%s: %s", id, byID[id].Why)
	}
	require.True(t, strings.HasPrefix(byID["model_approval"].Why, "approved by alice under ticket CHG-7 at "), byID["model_approval"].Why)
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, rep.ConfigDigest)
	require.Empty(t, rep.NotEvaluated)
	sealed := byID["personal_data_sealed"]
	require.Equal(t, []string{"C1.2", "P4.3"}, sealed.Criteria)
	require.Contains(t, sealed.Declared, "user_events_raw")
	require.Contains(t, sealed.Declared, "user_events_raw.dlq")
	require.Contains(t, sealed.Declared, "under aether:keys:")
	require.Contains(t, sealed.Live, "no longer opens")
	require.Empty(t, s.redis.Keys(), "the probe leaves no data key behind")
	require.Contains(t, byID["redis_key_ttl"].Declared, `aether:keys:*`)

	// A key written without a TTL turns the Redis control red: exit 1.
	require.NoError(t, s.redis.Set("aether:recs:user_42", "{}"))
	code, _, stderr = run(s.args("-o", out)...)
	require.Equal(t, 1, code)
	require.Equal(t, "runner: evidence: 1 of 9 controls do not pass (1 fail, 0 error)\n", stderr)
	_, byID = readReport(t, out)
	require.Equal(t, evidence.StatusFail, byID["redis_key_ttl"].Status)
	require.Regexp(t, `^aether:recs:<sha256 [0-9a-f]{12}>$`, byID["redis_key_ttl"].Details[0])

	// The table on stdout, one line per control.
	code, stdout, _ = run(s.args()...)
	require.Equal(t, 1, code)
	require.Regexp(t, `(?m)^FAIL\s+redis_key_ttl\s+1 key with no TTL`, stdout)
	require.Regexp(t, `(?m)^PASS\s+encryption_in_transit\s+every connection in use is configured with TLS$`, stdout)
	require.Regexp(t, `(?m)^PASS\s+acl_drift\s+`, stdout)
	require.Contains(t, stdout, "9 controls: 8 pass, 1 fail, 0 error; 0 not evaluated\n")

	// EXPIRE: green again; the HTML page this time.
	s.redis.SetTTL("aether:recs:user_42", time.Hour)
	page := filepath.Join(t.TempDir(), "report.html")
	code, _, stderr = run(s.args("-o", page)...)
	require.Equal(t, 0, code, stderr)
	b, err := os.ReadFile(page)
	require.NoError(t, err)
	require.Contains(t, string(b), `<tr id="control-redis_key_ttl" class="status-pass" data-status="pass">`)
	require.NotContains(t, string(b), "user_42")
}

func TestEvidenceCommandPlainTextAndUnreachable(t *testing.T) {
	s := newEvidenceSetup(t)
	// The same file without TLS anywhere, and Redis where nothing listens.
	dropLines(t, s.config, func(l string) bool { return strings.Contains(l, "tls:") || strings.HasPrefix(l, "  security:") })
	out := filepath.Join(t.TempDir(), "report.json")
	code, _, _ := run(s.args("-o", out, "--redis", "127.0.0.1:1", "--admin", "127.0.0.1:8081")...)
	require.Equal(t, 1, code)
	rep, byID := readReport(t, out)
	tlsCtl := byID["encryption_in_transit"]
	require.Equal(t, evidence.StatusFail, tlsCtl.Status)
	require.Equal(t, "data travels in plain text to or from kafka, redis, http-api, admin-api", tlsCtl.Why)
	require.Equal(t, evidence.StatusError, byID["redis_key_ttl"].Status)
	require.Contains(t, byID["redis_key_ttl"].Why, "cannot connect to Redis: redis://127.0.0.1:1")
	// Plain text to a TLS-only broker: the drift cannot be read.
	require.Equal(t, evidence.StatusError, byID["acl_drift"].Status)
	require.Equal(t, evidence.StatusError, byID["topic_drift"].Status)
	require.Equal(t, evidence.StatusError, byID["personal_data_sealed"].Status)
	require.Contains(t, byID["personal_data_sealed"].Why, "cannot connect to Redis: redis://127.0.0.1:1")
	require.Equal(t, 4, rep.Summary.Error)
}

// personal_data_sealed fails, saying why, when the master key is too
// short (never showing it) and when sealing is off.
func TestEvidencePersonalDataSealedFails(t *testing.T) {
	s := newEvidenceSetup(t)
	out := filepath.Join(t.TempDir(), "report.json")

	short := "short-master-key-0123456789"
	t.Setenv(evidenceMasterKeyEnv, short)
	code, _, _ := run(s.args("-o", out)...)
	require.Equal(t, 1, code)
	rep, byID := readReport(t, out)
	c := byID["personal_data_sealed"]
	require.Equal(t, evidence.StatusFail, c.Status, c.Why)
	require.Contains(t, c.Why, "the master key is not readable: ")
	require.Contains(t, c.Why, evidenceMasterKeyEnv+" must hold a key of at least 32 bytes")
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	require.NotContains(t, string(b), short)
	require.Equal(t, 1, rep.Summary.Fail)
	require.Empty(t, s.redis.Keys())

	// Sealing off.
	dropLines(t, s.config, func(l string) bool { return strings.HasPrefix(l, "privacy:") || strings.Contains(l, "masterKeyEnv:") })
	code, _, _ = run(s.args("-o", out)...)
	require.Equal(t, 1, code)
	_, byID = readReport(t, out)
	c = byID["personal_data_sealed"]
	require.Equal(t, evidence.StatusFail, c.Status, c.Why)
	require.Contains(t, c.Why, "sealing is off: privacy.masterKeyEnv is not set")
	require.Equal(t, "sealing is off: no data key probed", c.Live)
	require.Equal(t, evidence.StatusPass, byID["redis_key_ttl"].Status)
}

func TestEvidenceCommandUsage(t *testing.T) {
	code, _, stderr := run("evidence")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "-c FILE is required")
	code, _, stderr = run("evidence", "-c", "x.yaml", "-o", "report.txt")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "must end in .html or .json")
	code, _, stderr = run("evidence", "-c", "x.yaml", "--listen", "127.0.0.1:0")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "--listen needs --period")
}

// TestEvidenceCommandPeriodServes runs runner evidence --period with
// --listen: a key written without a TTL turns aether_control_status red
// within a period, EXPIRE turns it green, and /evidence serves the page.
func TestEvidenceCommandPeriodServes(t *testing.T) {
	s := newEvidenceSetup(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	out := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- cli.Main(s.args("-o", out, "--period", "100ms", "--listen", addr), &stdout, &stderr) }()
	exited := false
	t.Cleanup(func() {
		if !exited {
			_ = syscall.Kill(os.Getpid(), syscall.SIGINT)
			<-done
		}
	})

	get := func(path string) string {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	status := func(want string) {
		t.Helper()
		line := `aether_control_status{control="redis_key_ttl",criteria="C1.2,P4.2"} ` + want
		require.Eventually(t, func() bool { return strings.Contains(get("/metrics"), line) }, 10*time.Second, 20*time.Millisecond, line)
	}
	status("1")
	require.Contains(t, get("/metrics"), "aether_control_last_evaluated_timestamp_seconds ")
	require.NoError(t, s.redis.Set("aether:recs:user_7", "{}"))
	start := time.Now()
	status("0")
	require.Less(t, time.Since(start), 2*time.Second, "red within about one period")
	require.Contains(t, get("/evidence"), `<tr id="control-redis_key_ttl" class="status-fail" data-status="fail">`)
	require.Contains(t, get("/evidence.json"), `"status": "fail"`)
	s.redis.SetTTL("aether:recs:user_7", time.Minute)
	status("1")

	// A grant widened by hand turns acl_drift red within a period;
	// runner acls --apply removes it and the control is green again.
	aclStatus := func(want string) {
		t.Helper()
		line := `aether_control_status{control="acl_drift",criteria="CC6.1,CC6.3"} ` + want
		require.Eventually(t, func() bool { return strings.Contains(get("/metrics"), line) }, 10*time.Second, 20*time.Millisecond, line)
	}
	aclStatus("1")
	require.NoError(t, s.kafka.CreateACL(
		sarama.Resource{ResourceType: sarama.AclResourceTopic, ResourceName: "*", ResourcePatternType: sarama.AclPatternLiteral},
		sarama.Acl{Principal: "User:aether-recommender", Host: "*", Operation: sarama.AclOperationRead, PermissionType: sarama.AclPermissionAllow}))
	start = time.Now()
	aclStatus("0")
	require.Less(t, time.Since(start), 2*time.Second, "red within about one period")
	require.Contains(t, get("/evidence.json"), "ALLOW User:aether-recommender READ TOPIC *")
	code, _, stderrApply := run("acls", "-c", s.config, "--apply")
	require.Equal(t, 0, code, stderrApply)
	aclStatus("1")

	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGINT))
	select {
	case code := <-done:
		exited = true
		require.Equal(t, 0, code, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("runner evidence --period did not stop on SIGINT")
	}
	require.Contains(t, stdout.String(), "serving http://"+addr+"/evidence")
	rep, _ := readReport(t, out)
	require.True(t, rep.OK())
}

// With the trail in Elasticsearch, the audit_trail control verifies the
// indices, and the TLS control judges the Elasticsearch URLs.
func TestEvidenceAuditTrailInElasticsearch(t *testing.T) {
	fake := esfake.New()
	defer fake.Close()
	sink, err := es.Open(context.Background(), es.URLs(fake.URL()), es.SpillDir(t.TempDir()))
	require.NoError(t, err)
	e := audittest.Event(t, 1)
	e.Time = time.Now().UTC().Round(0)
	require.NoError(t, sink.Write(context.Background(), e))
	require.NoError(t, sink.Close())

	cfg := filepath.Join(t.TempDir(), "aether.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`kafka: {brokers: [127.0.0.1:1]}
model: {dir: m}
http: {admin: {listen: "off"}}
audit: {elasticsearch: {urls: [%q]}}
`, fake.URL())), 0o600))
	out := filepath.Join(t.TempDir(), "report.json")
	code, _, _ := run("evidence", "-c", cfg, "-o", out, "--timeout", "5s")
	require.Equal(t, 1, code, "plain text and no broker: not all pass")
	_, byID := readReport(t, out)
	require.Equal(t, evidence.StatusPass, byID["audit_trail"].Status, byID["audit_trail"].Why)
	require.Contains(t, byID["encryption_in_transit"].Why, "elasticsearch")
}

// dropLines rewrites the file at path without the lines drop picks.
func dropLines(t *testing.T, path string, drop func(line string) bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var kept []string
	for _, l := range strings.Split(string(b), "\n") {
		if !drop(l) {
			kept = append(kept, l)
		}
	}
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(kept, "\n")), 0o600))
}

// With a versioned model.uri (model.pollInterval), model_approval judges
// the version runner run starts on: the newest approved one, else the
// newest one.
func TestEvidenceModelApprovalOnAVersionedURI(t *testing.T) {
	dir := t.TempDir()
	manifest, published, metas := publishVersions(t, dir)
	modelApproval := func(uri, manifest string) evidence.Control {
		t.Helper()
		cfg := writeRunConfig(t, dir, "uri: "+uri, "manifest: "+manifest, "pollInterval: 1m", "cacheDir: "+filepath.Join(dir, "cache"))
		out := filepath.Join(t.TempDir(), "report.json")
		code, _, stderr := run("evidence", "-c", cfg, "-o", out, "--timeout", "2s")
		require.Equal(t, 1, code, "Kafka and Redis are not there")
		_, byID := readReport(t, out)
		require.Contains(t, byID, "model_approval", stderr)
		return byID["model_approval"]
	}

	c := modelApproval(published, manifest)
	require.Equal(t, evidence.StatusPass, c.Status, c.Why)
	require.Equal(t, "serving version v2, sha256 "+metas[1].SHA256, c.Live)
	require.True(t, strings.HasPrefix(c.Why, "approved by alice under ticket CHG-v2 at "), c.Why)

	// Nothing approved: the newest version, which fails.
	c = modelApproval(published, filepath.Join(dir, "empty.json"))
	require.Equal(t, evidence.StatusFail, c.Status, c.Why)
	require.Equal(t, "serving version v3, sha256 "+metas[2].SHA256, c.Live)

	// No version published: store.Latest's error.
	empty := "file://" + filepath.Join(dir, "unpublished")
	c = modelApproval(empty, manifest)
	require.Equal(t, evidence.StatusError, c.Status)
	require.Equal(t, "the served model is unknown: store: "+empty+": no model version (no <version>/metadata.json below it)", c.Why)
}
