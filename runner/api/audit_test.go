package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aetherai/aether/audit"
)

func newAuditFixture(t *testing.T, sink audit.Sink, key []byte) *fixture {
	t.Helper()
	return newFixture(t, func(c *Config) { c.Audit, c.AuditSubjectKey = sink, key })
}

func TestAuditOneEventPerRequest(t *testing.T) {
	mem := audit.NewMemory()
	key := []byte("audit-test-key")
	f := newAuditFixture(t, mem, key)

	// A 202 ingest.
	w := f.do("POST", "/v1/events", shopKey, eventJSON("alice_42", 1))
	if w.Code != 202 {
		t.Fatalf("ingest: %d %s", w.Code, w.Body)
	}
	ev := mem.Events()
	if len(ev) != 1 {
		t.Fatalf("after the ingest: %d events, want 1: %+v", len(ev), ev)
	}
	e := ev[0]
	if e.Kind != audit.KindAPIRequest || e.Actor != shopName || e.Resource != routeEvents || e.Action != "POST" ||
		e.Outcome != "202" || e.Subject != "" || e.CorrelationID != w.Header().Get(RequestIDHeader) || e.CorrelationID == "" ||
		e.Attributes["client"] != shopName || e.Attributes["status"] != "202" || e.ID == "" || !e.Time.Equal(now) {
		t.Errorf("ingest event: %+v", e)
	}

	// A 401: an api_request and an access_denied event.
	w = f.do("GET", "/v1/recommendations/alice_42", "", "")
	if w.Code != 401 {
		t.Fatalf("no key: %d", w.Code)
	}
	ev = mem.Events()
	if len(ev) != 3 {
		t.Fatalf("after the 401: %d events, want 3: %+v", len(ev), ev)
	}
	req, denied := ev[1], ev[2]
	wantSubject := func(user string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(user))
		return hex.EncodeToString(m.Sum(nil))
	}
	if req.Kind != audit.KindAPIRequest || req.Actor != "anonymous" || req.Resource != routeRecommendations ||
		req.Action != "GET" || req.Outcome != "401" || req.Subject != wantSubject("alice_42") ||
		req.Attributes["status"] != "401" || req.Attributes["reason"] != reasonMissingKey || req.Attributes["client"] != "" {
		t.Errorf("401 request event: %+v", req)
	}
	if denied.Kind != audit.KindAccessDenied || denied.Actor != "anonymous" || denied.Resource != routeRecommendations ||
		denied.Action != "GET" || denied.Outcome != "401 "+reasonMissingKey || denied.Subject != req.Subject ||
		denied.CorrelationID != req.CorrelationID || denied.CorrelationID != w.Header().Get(RequestIDHeader) || denied.ID == req.ID {
		t.Errorf("access_denied event: %+v", denied)
	}

	// A wrong key is denied too, with its own reason.
	f.do("GET", "/v1/features/alice_42", "wrong-key", "")
	ev = mem.Events()
	if len(ev) != 5 || ev[4].Kind != audit.KindAccessDenied || ev[4].Outcome != "401 "+reasonInvalidKey || ev[4].Resource != routeFeatures {
		t.Fatalf("after the bad key: %+v", ev)
	}

	// A GET with the key: the subject is pseudonymised.
	w = f.do("GET", "/v1/recommendations/alice_42?k=3", shopKey, "")
	if w.Code != 200 {
		t.Fatalf("get: %d %s", w.Code, w.Body)
	}
	ev = mem.Events()
	if len(ev) != 7 {
		t.Fatalf("after the GET: %d events, want 7 (the request and its inference)", len(ev))
	}
	g, inf := ev[5], ev[6]
	m := f.srv.scorer.Model()
	if g.Kind != audit.KindAPIRequest || g.Actor != shopName || g.Resource != routeRecommendations || g.Outcome != "200" ||
		g.Subject != wantSubject("alice_42") || g.Attributes["client"] != shopName ||
		g.Attributes["source"] != "inference" || g.Attributes["modelSha256"] != m.SHA256 || g.Attributes["modelVersion"] != m.Version {
		t.Errorf("GET event: %+v", g)
	}
	if inf.Kind != audit.KindInference || inf.Actor != shopName || inf.Resource != "model/"+m.SHA256 || inf.Action != "score" ||
		inf.Outcome != "ok" || inf.Subject != g.Subject || inf.CorrelationID != g.CorrelationID || inf.Attributes["modelVersion"] != m.Version {
		t.Errorf("inference event: %+v", inf)
	}

	// A 400 for an invalid user id is audited once, not as a denial.
	f.do("GET", "/v1/recommendations/"+strings.Repeat("x", 300), shopKey, "")
	ev = mem.Events()
	if len(ev) != 8 || ev[7].Kind != audit.KindAPIRequest || ev[7].Outcome != "400" || ev[7].Attributes["reason"] != reasonInvalidUserID {
		t.Fatalf("after the 400: %+v", ev[len(ev)-1])
	}

	// The raw user id, the path and the keys never enter the trail.
	for i, e := range ev {
		js, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"alice_42", "/v1/recommendations/alice", "/v1/recommendations/x", shopKey, "wrong-key", "Bearer"} {
			if strings.Contains(string(js), bad) {
				t.Errorf("event %d holds %q: %s", i, bad, js)
			}
		}
	}
	if n := counterValue(t, f.srv.metrics.auditErrors); n != 0 {
		t.Errorf("audit write errors %v", n)
	}
}

// Without AuditSubjectKey the key is random per server: references match
// within one server, not across two.
func TestAuditSubjectKeyIsPerProcess(t *testing.T) {
	m1, m2 := audit.NewMemory(), audit.NewMemory()
	f1, f2 := newAuditFixture(t, m1, nil), newAuditFixture(t, m2, nil)
	for range 2 {
		f1.do("GET", "/v1/recommendations/bob", shopKey, "")
	}
	f2.do("GET", "/v1/recommendations/bob", shopKey, "")
	e1, e2 := m1.Events(), m2.Events()
	if len(e1) != 2 || len(e2) != 1 {
		t.Fatalf("%d and %d events", len(e1), len(e2))
	}
	if e1[0].Subject == "" || e1[0].Subject != e1[1].Subject || e1[0].Subject == e2[0].Subject {
		t.Errorf("subjects %q %q %q", e1[0].Subject, e1[1].Subject, e2[0].Subject)
	}
}

type failingSink struct{}

func (failingSink) Write(context.Context, ...audit.Event) error { return errors.New("disk full") }
func (failingSink) Close() error                                { return nil }

// A failed audit write does not fail the request: it is counted and logged.
func TestAuditWriteFailureDoesNotFailTheRequest(t *testing.T) {
	f := newAuditFixture(t, failingSink{}, nil)
	w := f.do("POST", "/v1/events", shopKey, eventJSON("carol", 1))
	if w.Code != 202 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	f.do("GET", "/healthz", "", "")
	if n := counterValue(t, f.srv.metrics.auditErrors); n != 2 {
		t.Errorf("aether_audit_write_errors_total = %v, want 2", n)
	}
	if !strings.Contains(f.logs.String(), "audit write failed") || !strings.Contains(f.logs.String(), "disk full") {
		t.Errorf("not logged: %s", f.logs.String())
	}
}

// The file sink's trail of API requests verifies.
func TestAuditFileTrailVerifies(t *testing.T) {
	path := t.TempDir() + "/audit.jsonl"
	fs, err := audit.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := newAuditFixture(t, fs, nil)
	f.do("POST", "/v1/events", shopKey, eventJSON("dave", 1))
	f.do("GET", "/v1/recommendations/dave", "", "")
	f.do("GET", "/v1/recommendations/dave", shopKey, "")
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 5 { // 202; 401 and its denial; 200 and its inference
		t.Errorf("%d records, want 5", rep.Records)
	}
}
