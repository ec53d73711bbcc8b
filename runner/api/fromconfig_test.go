package api

import (
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/runner/config"
)

// The http section of a runner file, end to end: a key stored hashed, a
// key from the environment, an allowlist behind a trusted proxy, limits,
// the rate limit and a clientIp key from the environment.
func TestApplyHTTP(t *testing.T) {
	t.Setenv("SHOP_US_KEY", otherKey)
	t.Setenv("CLIENT_IP_KEY", clientIPKey)
	t.Setenv(config.EnvAdminToken, "")
	yaml := `
kafka: {brokers: [127.0.0.1:9092]}
model: {dir: m}
http:
  apiKeys:
    shop-eu: ` + config.HashKey(shopKey) + `
    shop-us: env:SHOP_US_KEY
  clients:
    shop-eu: {allow: [203.0.113.0/24]}
  trustedProxies: [10.0.0.0/8]
  maxBodyBytes: 3000
  maxBatch: 2
  rateLimit: {perSecond: 1, burst: 3}
  clientIp: {mode: hash, keyEnv: CLIENT_IP_KEY}
  admin: {token: ` + config.HashKey(adminToken) + `}
`
	c, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	mem := audit.NewMemory()
	f := newFixture(t, func(cfg *Config) {
		cfg.APIKeys = nil
		cfg.ClientIP = ClientIPPolicy{}
		cfg.Audit, cfg.AuditSubjectKey = mem, []byte(auditKey)
		if err := cfg.ApplyHTTP(c.HTTP); err != nil {
			t.Fatal(err)
		}
	})
	if f.srv.maxBody != 3000 || f.srv.maxBatch != 2 || f.srv.limits["shop-eu"].Burst() != 3 || f.srv.clientIP.RandomKey() {
		t.Errorf("limits %d %d, burst %d, random key %v", f.srv.maxBody, f.srv.maxBatch, f.srv.limits["shop-eu"].Burst(), f.srv.clientIP.RandomKey())
	}
	check(t, f.doFrom("10.0.0.1:1", "203.0.113.4", "POST", "/v1/events", shopKey, batchJSON("u1", 2)), 202, `{"accepted":2}`)
	check(t, f.doFrom("198.51.100.1:1", "203.0.113.4", "POST", "/v1/events", shopKey, eventJSON("u1", 2)), 403,
		`{"error":"requests with this API key are not allowed from this address"}`)
	check(t, f.doFrom("198.51.100.1:1", "", "POST", "/v1/events", otherKey, batchJSON("u2", 3)), 413,
		`{"error":"batch larger than 2 events: split it into several requests"}`)
	if got := f.sink.sent()[0][0].ClientIP; got != hmacOf(clientIPKey, "192.168.1.100") {
		t.Errorf("clientIp %q", got)
	}
	if ev := mem.Events(); ev[0].Actor != "shop-eu" || ev[2].Actor != "shop-eu" || ev[2].Kind != audit.KindAccessDenied || ev[3].Actor != "shop-us" {
		t.Errorf("actors %+v", ev)
	}

	var ac AdminConfig
	if err := ac.ApplyHTTP(c.HTTP); err != nil || ac.TokenSHA256 != sha256.Sum256([]byte(adminToken)) {
		t.Errorf("admin token: %v", err)
	}
	c.HTTP.Admin.Token = ""
	err = ac.ApplyHTTP(c.HTTP)
	if err == nil || !strings.Contains(err.Error(), "pass --admin-token, set AETHER_ADMIN_TOKEN or http.admin.token") {
		t.Errorf("no admin token: %v", err)
	}

	// A key variable that is unset, or a clientIp key that is too short,
	// fails at start naming the field.
	t.Setenv("SHOP_US_KEY", "")
	var ec Config
	if err := ec.ApplyHTTP(c.HTTP); err == nil || err.Error() != "http.apiKeys.shop-us: environment variable SHOP_US_KEY is empty" {
		t.Errorf("unset key variable: %v", err)
	}
	t.Setenv("SHOP_US_KEY", otherKey)
	t.Setenv("CLIENT_IP_KEY", "short")
	if err := ec.ApplyHTTP(c.HTTP); err == nil || err.Error() != "http.clientIp.keyEnv: environment variable CLIENT_IP_KEY must hold a key of at least 16 bytes" {
		t.Errorf("short clientIp key: %v", err)
	}
}
