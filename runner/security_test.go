package runner_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/internal/testcert"
	"github.com/aetherai/aether/runner"
	"github.com/aetherai/aether/runner/config"
)

// TestStartServesHTTPSAllowlistAndAdmin starts the runner library from a
// configuration with HTTPS, a hashed key, an allowlist and the admin
// listener, and checks each from outside: an allowed client's event reaches
// Kafka with its clientIp pseudonymised, the admin API answers only its
// token, and every request is in the trail.
func TestStartServesHTTPSAllowlistAndAdmin(t *testing.T) {
	b, _, c := embedded(t, 2)
	ca := testcert.New(t)
	srv := ca.Server(t, "127.0.0.1")
	t.Setenv(config.EnvAdminToken, "adm-token")
	cfg, err := config.Parse(fmt.Appendf(nil, `
kafka: {brokers: [%s], partitions: 2}
model: {dir: m}
http:
  listen: 127.0.0.1:0
  tls: {certFile: %s, keyFile: %s}
  apiKeys: {shop: %s, elsewhere: other-key}
  clients: {shop: {allow: [127.0.0.1/32]}, elsewhere: {allow: [10.0.0.0/8]}}
  admin: {listen: "127.0.0.1:0"}
`, b.Addrs()[0], srv.CertFile, srv.KeyFile, config.HashKey("shop-key")))
	require.NoError(t, err)
	trail := audit.NewMemory()
	run, err := runner.Start(t.Context(), runner.Parts{Config: cfg, Scorer: fixedScorer{}, Cache: c, Audit: trail})
	require.NoError(t, err)
	defer run.Stop()

	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	do := func(method, url, key, body string) (int, string) {
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("X-Forwarded-For", "10.1.2.3") // from an untrusted peer: ignored
		resp, err := cl.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		bb, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(bb))
	}
	ev := `{"userId":"u1","productId":"p1","eventType":"view","timestamp":"` + time.Now().UTC().Format(time.RFC3339) + `","clientIp":"192.0.2.77"}`
	code, body := do("POST", "https://"+run.Addr+"/v1/events", "shop-key", ev)
	require.Equal(t, http.StatusAccepted, code, body)
	code, body = do("POST", "https://"+run.Addr+"/v1/events", "other-key", ev)
	require.Equal(t, http.StatusForbidden, code, body)
	code, body = do("GET", "https://"+run.AdminAddr+"/admin/v1/health", "adm-token", "")
	require.Equal(t, http.StatusOK, code, body)
	code, body = do("GET", "https://"+run.AdminAddr+"/admin/v1/health", "shop-key", "")
	require.Equal(t, http.StatusUnauthorized, code, body)
	resp, err := http.Get("http://" + run.Addr + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP to the TLS listener is refused")

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	recs, err := broker.Consume(ctx, b.Addrs(), broker.SaramaConfig("security-test"), "user_events_raw")
	require.NoError(t, err)
	require.Len(t, recs, 1, "only the allowed client's event reaches Kafka")
	require.NotContains(t, string(recs[0].Value), "192.0.2.77")
	require.Contains(t, string(recs[0].Value), `"clientIp":"`)

	var kinds []string
	for _, e := range trail.Events() {
		if e.Kind == audit.KindJobEvent || e.Kind == audit.KindKafkaMessage {
			continue // the processors' trail, tested in processors
		}
		kinds = append(kinds, fmt.Sprintf("%s %s %s", e.Kind, e.Actor, e.Outcome))
		require.NotContains(t, fmt.Sprint(e), "192.0.2.77")
		require.NotContains(t, fmt.Sprint(e), "shop-key")
		require.NotContains(t, fmt.Sprint(e), "adm-token")
	}
	require.Equal(t, []string{"api_request shop 202", "api_request elsewhere 403", "access_denied elsewhere 403 ip_not_allowed",
		"admin_action admin 200", "admin_action anonymous 401", "access_denied anonymous 401 invalid_admin_token"}, kinds)
}
