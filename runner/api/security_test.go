package api

import (
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aetherai/aether/audit"
)

const auditKey = "audit-test-key"

// doFrom serves one request from the TCP peer remote ("ip:port"), with an
// X-Forwarded-For header when xff is not "".
func (f *fixture) doFrom(remote, xff, method, path, key, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = remote
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, req)
	return w
}

// noRaw fails if any audit event holds one of the raw values.
func noRaw(t *testing.T, events []audit.Event, raw ...string) {
	t.Helper()
	for i, e := range events {
		js, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range raw {
			if strings.Contains(string(js), r) {
				t.Errorf("audit event %d holds %q: %s", i, r, js)
			}
		}
	}
}

// Keys given only as their SHA-256 authenticate; the audit actor is the
// client's name and no key reaches the trail.
func TestHashedKeys(t *testing.T) {
	mem := audit.NewMemory()
	f := newFixture(t, func(c *Config) {
		c.Audit, c.AuditSubjectKey = mem, []byte(auditKey)
		c.APIKeys = map[string]string{shopKey: shopName}
		c.Clients = map[string]Client{"shop-us": {KeySHA256: KeyDigest(otherKey)}}
	})
	check(t, f.do("POST", "/v1/events", otherKey, eventJSON("u1", 0)), 202, `{"accepted":1}`)
	check(t, f.do("POST", "/v1/events", shopKey, eventJSON("u1", 1)), 202, `{"accepted":1}`)
	check(t, f.do("POST", "/v1/events", "sha256:"+strings.Repeat("0", 64), eventJSON("u1", 2)), 401, `{"error":"invalid API key"}`)
	ev := mem.Events()
	if len(ev) != 4 || ev[0].Actor != "shop-us" || ev[1].Actor != shopName || ev[3].Kind != audit.KindAccessDenied || ev[3].Actor != "anonymous" {
		t.Fatalf("trail: %+v", ev)
	}
	d := KeyDigest(otherKey)
	noRaw(t, ev, shopKey, otherKey, string(d[:]))
}

func TestKeyringOneKeyPerClient(t *testing.T) {
	tests := []struct {
		name    string
		plain   map[string]string
		clients map[string]Client
		want    string
	}{
		{"two keys, one client", map[string]string{"k1": "shop", "k2": "shop"}, nil, `APIKeys: client "shop" has more than one key; give each client exactly one`},
		{"plain and hashed differ", map[string]string{"k1": "shop"}, map[string]Client{"shop": {KeySHA256: KeyDigest("k2")}}, `client "shop" has more than one key`},
		{"one key, two clients", map[string]string{"k1": "a"}, map[string]Client{"b": {KeySHA256: KeyDigest("k1")}}, `APIKeys: clients "a" and "b" have the same key`},
		{"no digest", nil, map[string]Client{"b": {}}, `Clients: client "b" has no key digest`},
		{"empty name", nil, map[string]Client{"": {KeySHA256: KeyDigest("k")}}, `Clients: a client name is empty`},
		{"same key both ways", map[string]string{"k1": "shop"}, map[string]Client{"shop": {KeySHA256: KeyDigest("k1")}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := newKeyring(tt.plain, tt.clients)
			if tt.want == "" {
				if err != nil || len(kr.keys) != 1 {
					t.Fatalf("%v %+v", err, kr.keys)
				}
				return
			}
			if err == nil || err.Error() != tt.want && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "k1") || strings.Contains(err.Error(), "k2") {
				t.Error("the error holds a key")
			}
		})
	}
}

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name, remote string
		xff          []string
		trusted      []netip.Prefix
		want         string // "" = unknown
	}{
		{"peer, no proxies configured", "198.51.100.7:4000", []string{"203.0.113.5"}, nil, "198.51.100.7"},
		{"untrusted peer: header ignored", "198.51.100.7:4000", []string{"203.0.113.5"}, trusted, "198.51.100.7"},
		{"trusted peer, no header", "10.1.2.3:4000", nil, trusted, "10.1.2.3"},
		{"trusted peer", "10.1.2.3:4000", []string{"203.0.113.5"}, trusted, "203.0.113.5"},
		{"client-supplied entries left of the client are ignored", "10.1.2.3:4000", []string{"192.0.2.66, 203.0.113.5"}, trusted, "203.0.113.5"},
		{"trusted hops are skipped", "10.1.2.3:4000", []string{"192.0.2.66, 203.0.113.5, 10.9.9.9"}, trusted, "203.0.113.5"},
		{"several headers", "10.1.2.3:4000", []string{"192.0.2.66", "203.0.113.5, 10.9.9.9"}, trusted, "203.0.113.5"},
		{"all trusted: left-most", "10.1.2.3:4000", []string{"10.7.7.7, 10.9.9.9"}, trusted, "10.7.7.7"},
		{"garbage where the client is", "10.1.2.3:4000", []string{"203.0.113.5, not-an-ip"}, trusted, ""},
		{"entry with a port", "10.1.2.3:4000", []string{"[2001:db8::1]:443"}, trusted, "2001:db8::1"},
		{"mapped IPv4 peer", "[::ffff:10.1.2.3]:4000", []string{"203.0.113.5"}, trusted, "203.0.113.5"},
		{"IPv6 loopback proxy", "[::1]:4000", []string{"2001:db8::7"}, trusted, "2001:db8::7"},
		{"unparseable peer", "pipe", []string{"203.0.113.5"}, trusted, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got := clientAddr(r, tt.trusted)
			if (tt.want == "" && got.IsValid()) || (tt.want != "" && got != netip.MustParseAddr(tt.want)) {
				t.Errorf("got %v, want %q", got, tt.want)
			}
		})
	}
}

// allowFixture: shop-eu may call from 203.0.113.0/24 only, 10.0.0.0/8 are
// trusted proxies, the trail goes to mem.
func allowFixture(t *testing.T, mem *audit.MemorySink) *fixture {
	return newFixture(t, func(c *Config) {
		c.Audit, c.AuditSubjectKey = mem, []byte(auditKey)
		c.APIKeys = map[string]string{otherKey: "other"}
		c.Clients = map[string]Client{shopName: {KeySHA256: KeyDigest(shopKey), Allow: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
}

// A request from outside the client's allowlist gets 403 and an
// access_denied record naming the client, the route and the reason, with
// the address pseudonymised; nothing is sent.
func TestAllowlistDenies(t *testing.T) {
	mem := audit.NewMemory()
	f := allowFixture(t, mem)
	w := f.doFrom("198.51.100.7:5555", "", "POST", "/v1/events", shopKey, eventJSON("alice", 0))
	check(t, w, 403, `{"error":"requests with this API key are not allowed from this address"}`)
	if n := len(f.sink.sent()); n != 0 {
		t.Fatalf("sink got %d batches", n)
	}
	ev := mem.Events()
	if len(ev) != 2 {
		t.Fatalf("%d audit events: %+v", len(ev), ev)
	}
	d := ev[1]
	want := audit.Event{ID: d.ID, Time: now, Kind: audit.KindAccessDenied, Actor: shopName, Resource: "POST /v1/events", Action: "POST",
		Outcome: "403 ip_not_allowed", CorrelationID: w.Header().Get(RequestIDHeader),
		Attributes: map[string]string{"status": "403", "client": shopName, "reason": "ip_not_allowed",
			"clientIpRef": hmacOf(auditKey, "198.51.100.7")}}
	if js, wjs := mustJSON(t, d), mustJSON(t, want); js != wjs {
		t.Errorf("access_denied event\n got %s\nwant %s", js, wjs)
	}
	if r := ev[0]; r.Kind != audit.KindAPIRequest || r.Outcome != "403" || r.Attributes["clientIpRef"] != "" {
		t.Errorf("api_request event %+v", r)
	}
	noRaw(t, ev, "198.51.100.7", shopKey)
	if n := counterValue(t, f.srv.metrics.rejected[reasonIPNotAllowed]); n != 1 {
		t.Errorf("rejected{ip_not_allowed} = %v", n)
	}

	// The allowlist covers every route the key opens, reads included.
	check(t, f.doFrom("198.51.100.7:5555", "", "GET", "/v1/recommendations/alice", shopKey, ""), 403,
		`{"error":"requests with this API key are not allowed from this address"}`)
	// From inside, directly or through a trusted proxy, the request passes.
	check(t, f.doFrom("203.0.113.9:5555", "", "POST", "/v1/events", shopKey, eventJSON("alice", 0)), 202, `{"accepted":1}`)
	check(t, f.doFrom("10.0.0.1:5555", "203.0.113.9", "POST", "/v1/events", shopKey, eventJSON("alice", 1)), 202, `{"accepted":1}`)
	// A client without an allowlist is not restricted.
	check(t, f.doFrom("198.51.100.7:5555", "", "POST", "/v1/events", otherKey, eventJSON("bob", 0)), 202, `{"accepted":1}`)
}

// A spoofed X-Forwarded-For changes nothing: from an untrusted peer it is
// ignored, and through a trusted proxy only the proxy's own entry counts.
func TestAllowlistSpoofedForwardedFor(t *testing.T) {
	mem := audit.NewMemory()
	f := allowFixture(t, mem)
	const denied = `{"error":"requests with this API key are not allowed from this address"}`
	// An outsider claims an allowed address: the peer decides.
	check(t, f.doFrom("198.51.100.7:5555", "203.0.113.9", "POST", "/v1/events", shopKey, eventJSON("alice", 0)), 403, denied)
	// The same claim passed on by the trusted proxy, which appends the
	// outsider's real address: the right-most untrusted entry decides.
	check(t, f.doFrom("10.0.0.1:5555", "203.0.113.9, 198.51.100.7", "POST", "/v1/events", shopKey, eventJSON("alice", 0)), 403, denied)
	// An outsider claiming to be a trusted proxy gains nothing either.
	check(t, f.doFrom("198.51.100.7:5555", "10.0.0.1, 203.0.113.9", "POST", "/v1/events", shopKey, eventJSON("alice", 0)), 403, denied)
	// Garbage where the client should be is an unknown address.
	check(t, f.doFrom("10.0.0.1:5555", "203.0.113.9, bogus", "POST", "/v1/events", shopKey, eventJSON("alice", 0)), 403, denied)
	if n := len(f.sink.sent()); n != 0 {
		t.Fatalf("sink got %d batches", n)
	}
	var refs []string
	for _, e := range mem.Events() {
		if e.Kind == audit.KindAccessDenied {
			refs = append(refs, e.Attributes["clientIpRef"])
		}
	}
	want := []string{hmacOf(auditKey, "198.51.100.7"), hmacOf(auditKey, "198.51.100.7"), hmacOf(auditKey, "198.51.100.7"), ""}
	if strings.Join(refs, ",") != strings.Join(want, ",") {
		t.Errorf("clientIpRef of the denials %q, want %q", refs, want)
	}
	noRaw(t, mem.Events(), "198.51.100.7", "203.0.113.9")
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The rate limit is a token bucket per client: past the burst a request
// gets 429 with Retry-After, an access_denied record and a count; another
// client is not affected; tokens come back with time.
func TestRateLimitPerClient(t *testing.T) {
	mem := audit.NewMemory()
	clock := now
	f := newFixture(t, func(c *Config) {
		c.Audit, c.AuditSubjectKey = mem, []byte(auditKey)
		c.RateLimit = RateLimit{PerSecond: 0.5, Burst: 2}
		c.Now = func() time.Time { return clock }
	})
	for i := range 2 {
		check(t, f.do("POST", "/v1/events", shopKey, eventJSON("u1", i)), 202, `{"accepted":1}`)
	}
	w := f.do("POST", "/v1/events", shopKey, eventJSON("u1", 2))
	check(t, w, 429, `{"error":"rate limit exceeded for this API key: retry after 2 s"}`)
	if ra := w.Header().Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q, want 2", ra)
	}
	// Reads spend the same budget.
	check(t, f.do("GET", "/v1/features/u1", shopKey, ""), 429, `{"error":"rate limit exceeded for this API key: retry after 2 s"}`)
	check(t, f.do("POST", "/v1/events", otherKey, eventJSON("u2", 0)), 202, `{"accepted":1}`)
	if n := counterValue(t, f.srv.metrics.rateLimited.WithLabelValues(shopName)); n != 2 {
		t.Errorf("aether_http_rate_limited_total{client=shop-eu} = %v, want 2", n)
	}
	if n := counterValue(t, f.srv.metrics.rateLimited.WithLabelValues("other")); n != 0 {
		t.Errorf("aether_http_rate_limited_total{client=other} = %v", n)
	}
	if n := counterValue(t, f.srv.metrics.rejected[reasonRateLimited]); n != 2 {
		t.Errorf("rejected{rate_limited} = %v", n)
	}
	var denials []audit.Event
	for _, e := range mem.Events() {
		if e.Kind == audit.KindAccessDenied {
			denials = append(denials, e)
		}
	}
	if len(denials) != 2 || denials[0].Actor != shopName || denials[0].Outcome != "429 rate_limited" ||
		denials[0].Resource != routeEvents || denials[0].Attributes["reason"] != "rate_limited" ||
		denials[1].Resource != routeFeatures || denials[0].Attributes["clientIpRef"] != hmacOf(auditKey, "192.0.2.1") {
		t.Errorf("denials %+v", denials)
	}
	// One token back after 2 s.
	clock = clock.Add(2 * time.Second)
	check(t, f.do("POST", "/v1/events", shopKey, eventJSON("u1", 3)), 202, `{"accepted":1}`)
	check(t, f.do("POST", "/v1/events", shopKey, eventJSON("u1", 4)), 429, `{"error":"rate limit exceeded for this API key: retry after 2 s"}`)
	// A bad key spends nobody's budget and is a 401, not a 429.
	check(t, f.do("POST", "/v1/events", "nope", eventJSON("u1", 5)), 401, `{"error":"invalid API key"}`)
}

func TestRateLimitValidation(t *testing.T) {
	for _, rl := range []RateLimit{{PerSecond: -1}, {PerSecond: 1, Burst: -1}} {
		_, err := New(Config{Events: &fakeSink{}, Features: newFakeStore(), Scorer: &fakeScorer{}, Cache: newMemCache(),
			APIKeys: map[string]string{shopKey: shopName}, RateLimit: rl})
		if err == nil || !strings.Contains(err.Error(), "RateLimit.") {
			t.Errorf("%+v: error %v", rl, err)
		}
	}
	lims, err := newLimiters(RateLimit{PerSecond: 2.5}, []string{"a"})
	if err != nil || lims["a"].Burst() != 3 {
		t.Errorf("default burst: %v %v", err, lims["a"].Burst())
	}
}

// Body and batch limits are 413s with clear errors.
func TestBodyAndBatchLimits(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxBatch, c.MaxBodyBytes = 3, 2000 })
	check(t, f.do("POST", "/v1/events", shopKey, batchJSON("u1", 3)), 202, `{"accepted":3}`)
	check(t, f.do("POST", "/v1/events", shopKey, batchJSON("u1", 4)), 413, `{"error":"batch larger than 3 events: split it into several requests"}`)
	check(t, f.do("POST", "/v1/events", shopKey, `[`+strings.Repeat(" ", 2000)+`]`), 413, `{"error":"request body larger than 2000 bytes"}`)
	if n := counterValue(t, f.srv.metrics.rejected[reasonBatchTooLarge]); n != 1 {
		t.Errorf("rejected{batch_too_large} = %v", n)
	}
}

// The emitted event's clientIp is the keyed hash of the address, stable
// for one key, different under another, the same however the address is
// written; mode drop removes it; a clientIp that is not an address is a 400.
func TestClientIPPseudonymised(t *testing.T) {
	f := newFixture(t)
	check(t, f.do("POST", "/v1/events", shopKey, `[`+eventJSON("u1", 0)+`,`+eventJSON("u1", 1)+`]`), 202, `{"accepted":2}`)
	mapped := strings.Replace(eventJSON("u1", 2), `"192.168.1.100"`, `"::ffff:192.168.1.100"`, 1)
	check(t, f.do("POST", "/v1/events", shopKey, mapped), 202, `{"accepted":1}`)
	noIP := `{"userId":"u1","productId":"p1","eventType":"view","timestamp":"2023-10-27T10:30:00Z"}`
	check(t, f.do("POST", "/v1/events", shopKey, noIP), 202, `{"accepted":1}`)
	sent := f.sink.sent()
	want := hmacOf(clientIPKey, "192.168.1.100")
	if got := []string{sent[0][0].ClientIP, sent[0][1].ClientIP, sent[1][0].ClientIP, sent[2][0].ClientIP}; strings.Join(got, ",") != strings.Join([]string{want, want, want, ""}, ",") {
		t.Errorf("clientIp sent %q, want %q thrice and none", got, want)
	}

	other := newFixture(t, func(c *Config) { c.ClientIP.Key = []byte("another-key-of-16+bytes") })
	check(t, other.do("POST", "/v1/events", shopKey, eventJSON("u1", 0)), 202, `{"accepted":1}`)
	if got := other.sink.sent()[0][0].ClientIP; got == want || got == "192.168.1.100" || len(got) != 64 {
		t.Errorf("another key gave %q", got)
	}

	drop := newFixture(t, func(c *Config) { c.ClientIP = ClientIPPolicy{Mode: ClientIPDrop} })
	check(t, drop.do("POST", "/v1/events", shopKey, eventJSON("u1", 0)), 202, `{"accepted":1}`)
	if got := drop.sink.sent()[0][0].ClientIP; got != "" {
		t.Errorf("drop mode sent clientIp %q", got)
	}

	bad := strings.Replace(eventJSON("u1", 0), `"192.168.1.100"`, `"my laptop"`, 1)
	check(t, f.do("POST", "/v1/events", shopKey, `[`+eventJSON("u1", 1)+`,`+bad+`]`), 400, `{"error":"event 1: invalid event: clientIp must be an IPv4 or IPv6 address"}`)
	if n := len(f.sink.sent()); n != 3 {
		t.Errorf("sink got %d batches, want 3", n)
	}
}

func TestClientIPPolicyValidation(t *testing.T) {
	for _, p := range []ClientIPPolicy{{Mode: "encrypt"}, {Key: []byte("short")}} {
		if _, err := NewClientIPPseudonymizer(p); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
	// Without a key: a random one, and one warning at start.
	f := newFixture(t, func(c *Config) { c.ClientIP = ClientIPPolicy{} })
	if !f.srv.clientIP.RandomKey() || strings.Count(f.logs.String(), "random per-process key") != 1 {
		t.Errorf("random key %v, logs %s", f.srv.clientIP.RandomKey(), f.logs.String())
	}
	for i := range 2 {
		check(t, f.do("POST", "/v1/events", shopKey, eventJSON("u1", i)), 202, `{"accepted":1}`)
	}
	s := f.sink.sent()
	if s[0][0].ClientIP != s[1][0].ClientIP || s[0][0].ClientIP == "192.168.1.100" || s[0][0].ClientIP == hmacOf(clientIPKey, "192.168.1.100") {
		t.Errorf("random-key pseudonyms %q %q", s[0][0].ClientIP, s[1][0].ClientIP)
	}
	if strings.Count(f.logs.String(), "random per-process key") != 1 {
		t.Error("warned more than once")
	}
}
