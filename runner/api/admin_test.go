package api

import (
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aetherai/aether/audit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const adminToken = "admin-token-0123456789abcdef"

func newAdmin(t *testing.T, mem audit.Sink) *AdminServer {
	t.Helper()
	a, err := NewAdmin(AdminConfig{TokenSHA256: sha256.Sum256([]byte(adminToken)), Audit: mem,
		AuditSubjectKey: []byte(auditKey), Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func adminDo(a *AdminServer, method, path, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	req.RemoteAddr = "127.0.0.1:40000"
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	a.ServeHTTP(w, req)
	return w
}

func TestAdminNeedsAToken(t *testing.T) {
	if _, err := NewAdmin(AdminConfig{}); err == nil || err.Error() != "api: admin: TokenSHA256 is required: the admin API never runs without a token" {
		t.Errorf("no token: %v", err)
	}
}

// Every admin request is audited as admin_action; every denial also as
// access_denied, naming the route even when the caller may not learn it.
func TestAdminHealthAndAudit(t *testing.T) {
	mem := audit.NewMemory()
	a := newAdmin(t, mem)
	check(t, adminDo(a, "GET", "/admin/v1/health", adminToken), 200, `{"status":"ok"}`)
	w := adminDo(a, "GET", "/admin/v1/health", "")
	check(t, w, 401, `{"error":"admin token required: send the header Authorization: Bearer <admin token>"}`)
	if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="aether-admin"` {
		t.Errorf("WWW-Authenticate %q", got)
	}
	check(t, adminDo(a, "GET", "/admin/v1/health", "wrong"), 401, `{"error":"invalid admin token"}`)
	// Unknown routes: 401 without the token (nothing learnt), 404 with it.
	check(t, adminDo(a, "GET", "/admin/v1/nothing", ""), 401, `{"error":"admin token required: send the header Authorization: Bearer <admin token>"}`)
	check(t, adminDo(a, "GET", "/admin/v1/nothing", adminToken), 404, `{"error":"no such admin endpoint"}`)
	w = adminDo(a, "POST", "/admin/v1/health", adminToken)
	check(t, w, 405, `{"error":"method POST not allowed; use GET, HEAD"}`)
	if got := w.Header().Get("Allow"); got != "GET, HEAD" {
		t.Errorf("Allow %q", got)
	}

	ev := mem.Events()
	type row struct{ Kind, Actor, Resource, Outcome, Reason, IPRef string }
	var got []row
	for _, e := range ev {
		got = append(got, row{string(e.Kind), e.Actor, e.Resource, e.Outcome, e.Attributes["reason"], e.Attributes["clientIpRef"]})
	}
	ref := hmacOf(auditKey, "127.0.0.1")
	want := []row{
		{"admin_action", "admin", "GET /admin/v1/health", "200", "", ""},
		{"admin_action", "anonymous", "GET /admin/v1/health", "401", "missing_admin_token", ""},
		{"access_denied", "anonymous", "GET /admin/v1/health", "401 missing_admin_token", "missing_admin_token", ref},
		{"admin_action", "anonymous", "GET /admin/v1/health", "401", "invalid_admin_token", ""},
		{"access_denied", "anonymous", "GET /admin/v1/health", "401 invalid_admin_token", "invalid_admin_token", ref},
		{"admin_action", "anonymous", "unmatched", "401", "missing_admin_token", ""},
		{"access_denied", "anonymous", "unmatched", "401 missing_admin_token", "missing_admin_token", ref},
		{"admin_action", "admin", "unmatched", "404", "not_found", ""},
		{"admin_action", "admin", "GET /admin/v1/health", "405", "method_not_allowed", ""},
	}
	if g, wnt := mustJSON(t, got), mustJSON(t, want); g != wnt {
		t.Errorf("trail\n got %s\nwant %s", g, wnt)
	}
	noRaw(t, ev, adminToken, "wrong", "127.0.0.1")
}

// Routes added with Handle run behind the token; the {userId} value is
// audited pseudonymised, with the handler's attributes.
func TestAdminHandle(t *testing.T) {
	mem := audit.NewMemory()
	a := newAdmin(t, mem)
	forget := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		AdminAuditAttr(r, "redisKeys", "3")
		WriteJSON(w, http.StatusOK, map[string]string{"forgotten": r.PathValue("userId")})
	})
	if err := a.Handle("POST /admin/v1/users/{userId}/forget", forget); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"/admin/v1/x", "POST /v1/events", "POST /admin/v1/users/{userId}/forget", "GET admin/v1/x"} {
		if err := a.Handle(bad, forget); err == nil {
			t.Errorf("Handle(%q) accepted", bad)
		}
	}
	check(t, adminDo(a, "POST", "/admin/v1/users/alice_42/forget", adminToken), 200, `{"forgotten":"alice_42"}`)
	check(t, adminDo(a, "POST", "/admin/v1/users/alice_42/forget", ""), 401, `{"error":"admin token required: send the header Authorization: Bearer <admin token>"}`)
	ev := mem.Events()
	if len(ev) != 3 {
		t.Fatalf("%d events", len(ev))
	}
	e := ev[0]
	if e.Kind != audit.KindAdminAction || e.Actor != AdminActor || e.Resource != "POST /admin/v1/users/{userId}/forget" || e.Action != "POST" ||
		e.Outcome != "200" || e.Subject != hmacOf(auditKey, "alice_42") || e.Attributes["redisKeys"] != "3" || e.CorrelationID == "" {
		t.Errorf("admin_action %+v", e)
	}
	if d := ev[2]; d.Kind != audit.KindAccessDenied || d.Resource != "POST /admin/v1/users/{userId}/forget" || d.Attributes["redisKeys"] != "" {
		t.Errorf("access_denied %+v", d)
	}
	js, _ := json.Marshal(ev)
	if strings.Contains(string(js), "alice_42") {
		t.Errorf("raw user id in the trail: %s", js)
	}
}

// Without TLS the admin listener binds loopback only.
func TestListenAdmin(t *testing.T) {
	ln, err := ListenAdmin("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	_, err = ListenAdmin("0.0.0.0:0", nil)
	if err == nil || !strings.Contains(err.Error(), "admin API: 0.0.0.0:0 is not a loopback address: bind it to 127.0.0.1 or ::1 (--admin), or turn TLS on (--tls-cert, --tls-key)") {
		t.Errorf("0.0.0.0 without TLS: %v", err)
	}
	certFile, keyFile, pool := selfSigned(t)
	cfg, err := LoadTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err = ListenAdmin("0.0.0.0:0", cfg)
	if err != nil {
		t.Fatalf("0.0.0.0 with TLS: %v", err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	serve(t, ln, newAdmin(t, nil))
	req, _ := http.NewRequest("GET", "https://127.0.0.1:"+port+"/admin/v1/health", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := tlsClient(pool, 0, 0).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != `{"status":"ok"}` {
		t.Errorf("%d %s", resp.StatusCode, b)
	}
}

// A failed audit write of the admin API is counted where the API counts
// its own, and the request is answered all the same.
func TestAdminCountsFailedAuditWrites(t *testing.T) {
	failed := prometheus.NewCounter(prometheus.CounterOpts{Name: "aether_audit_write_errors_total"})
	a, err := NewAdmin(AdminConfig{TokenSHA256: sha256.Sum256([]byte(adminToken)), Audit: failingSink{},
		AuditErrors: failed, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	check(t, adminDo(a, "GET", "/admin/v1/health", adminToken), 200, `{"status":"ok"}`)
	adminDo(a, "GET", "/admin/v1/health", "wrong")
	if got := testutil.ToFloat64(failed); got != 2 {
		t.Errorf("failed audit writes counted: %v, want 2", got)
	}
}
