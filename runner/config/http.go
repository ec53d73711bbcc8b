package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// HTTP is the API listener, its clients and the admin listener.
//
//	http:
//	  listen: 0.0.0.0:8443
//	  tls: {certFile: /etc/aether/tls.crt, keyFile: /etc/aether/tls.key}
//	  apiKeys:                      # one key per client
//	    shop-eu: sha256:9f86d0...   # hashed at rest (runner apikey hash)
//	    shop-us: env:SHOP_US_KEY    # or read from the environment
//	  clients:
//	    shop-eu: {allow: [203.0.113.0/24, 2001:db8::/32]}
//	  trustedProxies: [10.0.0.0/8]
//	  maxBodyBytes: 1048576
//	  maxBatch: 1000
//	  rateLimit: {perSecond: 200, burst: 400}
//	  clientIp: {mode: hash, keyEnv: AETHER_CLIENT_IP_KEY}
//	  admin: {listen: 127.0.0.1:8081, token: env:AETHER_ADMIN_TOKEN}
type HTTP struct {
	Listen string `yaml:"listen"`
	// TLS, when set, serves the API (and the admin API) over HTTPS, TLS
	// 1.2 at least.
	TLS ServerTLS `yaml:"tls"`
	// APIKeys maps each client's name to its one key: the key itself,
	// "env:NAME" (read from the environment variable NAME) or
	// "sha256:<64 hex>" (the key's SHA-256, so the file holds no key).
	APIKeys map[string]string `yaml:"apiKeys"`
	// Clients holds each client's network policy, by the client's name in
	// APIKeys. Kept apart from APIKeys so that a client still has exactly
	// one key.
	Clients map[string]HTTPClient `yaml:"clients"`
	// TrustedProxies are the networks (CIDR, or one address) of the
	// reverse proxies in front of the API: X-Forwarded-For is believed only
	// from a peer in them.
	TrustedProxies []string `yaml:"trustedProxies"`
	// MaxBodyBytes bounds a request body (0: the API's default, 1 MiB).
	MaxBodyBytes int64 `yaml:"maxBodyBytes"`
	// MaxBatch bounds the events of one ingest request (0: 1000).
	MaxBatch int `yaml:"maxBatch"`
	// RateLimit limits each client's requests; zero means no limit.
	RateLimit RateLimit `yaml:"rateLimit"`
	// ClientIP says how an event's clientIp is pseudonymised at ingest.
	ClientIP ClientIP `yaml:"clientIp"`
	// Admin is the admin API's own listener.
	Admin Admin `yaml:"admin"`
}

// ServerTLS names a PEM certificate (chain) and its private key. Both or
// neither: half a TLS configuration is an error, not plain HTTP.
type ServerTLS struct {
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
}

// Enabled reports whether TLS is configured.
func (t ServerTLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// HTTPClient is one API client's network policy.
type HTTPClient struct {
	// Allow, if not empty, lists the networks (CIDR, or one address) the
	// client's requests may come from; any other address gets a 403.
	Allow []string `yaml:"allow"`
}

// RateLimit is a token bucket per client: PerSecond requests a second on
// average, bursts of up to Burst (0: PerSecond rounded up, at least 1).
type RateLimit struct {
	PerSecond float64 `yaml:"perSecond"`
	Burst     int     `yaml:"burst"`
}

// ClientIPMode says what happens to an event's clientIp before the event
// leaves the API. runner/api uses these definitions too, so that the file
// and the API accept the same modes.
type ClientIPMode string

// Client IP modes.
const (
	// ClientIPHash replaces clientIp with the hex HMAC-SHA-256 of the
	// address under a key: the same address gives the same pseudonym for
	// one key (sessions and abuse can still be told apart), and without the
	// key the pseudonym cannot be tied back to the address.
	ClientIPHash ClientIPMode = "hash"
	// ClientIPDrop removes clientIp.
	ClientIPDrop ClientIPMode = "drop"
)

// ClientIP is the pseudonymisation of the clientIp field before events
// reach Kafka.
type ClientIP struct {
	// Mode is "hash" (default) or "drop".
	Mode ClientIPMode `yaml:"mode"`
	// KeyEnv names the environment variable holding the HMAC key (at least
	// 16 bytes). Empty means a random key per process: pseudonyms then
	// change at every restart.
	KeyEnv string `yaml:"keyEnv"`
}

// Admin is the admin API's listener.
type Admin struct {
	// Listen is host:port (default 127.0.0.1:8081), or "off". A
	// non-loopback address is refused unless http.tls is set.
	Listen string `yaml:"listen"`
	// Token is the admin bearer token: the token, "env:NAME" or
	// "sha256:<64 hex>". The runner also reads AETHER_ADMIN_TOKEN and
	// --admin-token.
	Token string `yaml:"token"`
}

// AdminOff disables the admin listener.
const AdminOff = "off"

// Enabled reports whether the admin listener is to be started.
func (a Admin) Enabled() bool { return a.Listen != AdminOff }

// Defaults of the HTTP section.
const (
	DefaultListen      = "127.0.0.1:8080"
	DefaultAdminListen = "127.0.0.1:8081"
)

func (h *HTTP) defaults() {
	if h.Listen == "" {
		h.Listen = DefaultListen
	}
	if h.Admin.Listen == "" {
		h.Admin.Listen = DefaultAdminListen
	}
	if h.ClientIP.Mode == "" {
		h.ClientIP.Mode = ClientIPHash
	}
}

// hashedPrefix marks a key or token given as its SHA-256.
const hashedPrefix = "sha256:"

func (h *HTTP) validate(bad func(field, format string, args ...any)) {
	if _, _, err := net.SplitHostPort(h.Listen); err != nil {
		bad("http.listen", "%q is not host:port", h.Listen)
	}
	if h.TLS.Enabled() && (h.TLS.CertFile == "" || h.TLS.KeyFile == "") {
		bad("http.tls", "certFile and keyFile go together: give both or neither")
	}
	for name, key := range h.APIKeys {
		if name == "" {
			bad("http.apiKeys", "a client name is empty")
		}
		if key == "" {
			bad("http.apiKeys."+name, "the key is empty")
		}
		if hx, ok := strings.CutPrefix(key, hashedPrefix); ok && !isSHA256Hex(hx) {
			bad("http.apiKeys."+name, "a hashed key is sha256: and 64 hex digits")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(h.Clients)) {
		if _, ok := h.APIKeys[name]; !ok {
			bad("http.clients."+name, "no such client in http.apiKeys")
		}
		for i, s := range h.Clients[name].Allow {
			if _, err := ParsePrefix(s); err != nil {
				bad(fmt.Sprintf("http.clients.%s.allow[%d]", name, i), "%q is not a CIDR or an IP address", s)
			}
		}
	}
	for i, s := range h.TrustedProxies {
		if _, err := ParsePrefix(s); err != nil {
			bad(fmt.Sprintf("http.trustedProxies[%d]", i), "%q is not a CIDR or an IP address", s)
		}
	}
	if h.MaxBodyBytes < 0 {
		bad("http.maxBodyBytes", "must not be negative")
	}
	if h.MaxBatch < 0 {
		bad("http.maxBatch", "must not be negative")
	}
	if h.RateLimit.PerSecond < 0 || math.IsNaN(h.RateLimit.PerSecond) || math.IsInf(h.RateLimit.PerSecond, 0) {
		bad("http.rateLimit.perSecond", "must be a finite number, 0 or more")
	}
	if h.RateLimit.Burst < 0 {
		bad("http.rateLimit.burst", "must not be negative")
	}
	if h.RateLimit.Burst > 0 && h.RateLimit.PerSecond == 0 {
		bad("http.rateLimit.burst", "is set but http.rateLimit.perSecond is not")
	}
	switch h.ClientIP.Mode {
	case ClientIPHash:
	case ClientIPDrop:
		if h.ClientIP.KeyEnv != "" {
			bad("http.clientIp.keyEnv", "is set but mode drop needs no key")
		}
	default:
		bad("http.clientIp.mode", "%q is not hash or drop", h.ClientIP.Mode)
	}
	if h.Admin.Enabled() {
		if reason := adminAddrProblem(h.Admin.Listen, h.TLS.Enabled()); reason != "" {
			bad("http.admin.listen", "%s", reason)
		}
	}
	if hx, ok := strings.CutPrefix(h.Admin.Token, hashedPrefix); ok && !isSHA256Hex(hx) {
		bad("http.admin.token", "a hashed token is sha256: and 64 hex digits")
	}
}

// adminAddrProblem says why addr may not serve the admin API, or "". The
// admin API is bound to loopback unless it is encrypted; a host name other
// than localhost cannot be judged here, so it needs TLS too (the listener
// checks the address it bound as well).
func adminAddrProblem(addr string, tls bool) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not host:port (or %q)", addr, AdminOff)
	}
	if tls || host == "localhost" {
		return ""
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return ""
	}
	return fmt.Sprintf("%q is not a loopback address: the admin API leaves loopback only over TLS (set http.tls)", addr)
}

// ParsePrefix parses a CIDR, or one address as a single-address prefix.
// IPv4-mapped IPv6 forms are unmapped so that they match IPv4 peers.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		return NormalizePrefix(p), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// NormalizePrefix returns p masked, an IPv4-mapped IPv6 prefix as the IPv4
// one, so that it matches the unmapped addresses the API compares with it.
func NormalizePrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

// ParsePrefixes parses each of ss with ParsePrefix; field names the list in
// errors.
func ParsePrefixes(field string, ss []string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for i, s := range ss {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, &FieldError{Field: fmt.Sprintf("%s[%d]", field, i), Reason: fmt.Sprintf("%q is not a CIDR or an IP address", s)}
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// ResolveKeys returns the API keys by client, reading "env:NAME" values
// from the environment. A key stored hashed cannot be returned: use
// ResolveKeyDigests.
func (h HTTP) ResolveKeys() (map[string]string, error) {
	keys := map[string]string{}
	for name, v := range h.APIKeys {
		if strings.HasPrefix(v, hashedPrefix) {
			return nil, &FieldError{Field: "http.apiKeys." + name, Reason: "is stored hashed: only its digest is known (see ResolveKeyDigests)"}
		}
		v, err := resolveSecret("http.apiKeys."+name, v)
		if err != nil {
			return nil, err
		}
		keys[name] = v
	}
	return keys, nil
}

// ResolveKeyDigests returns the SHA-256 of each client's API key: keys
// given plain or by "env:NAME" are hashed, "sha256:<hex>" values decoded.
// The API server keeps nothing else.
func (h HTTP) ResolveKeyDigests() (map[string][sha256.Size]byte, error) {
	digests := map[string][sha256.Size]byte{}
	for name, v := range h.APIKeys {
		d, err := resolveDigest("http.apiKeys."+name, v)
		if err != nil {
			return nil, err
		}
		digests[name] = d
	}
	return digests, nil
}

// EnvAdminToken is the environment variable the admin token is read from
// when neither --admin-token nor http.admin.token gives one.
const EnvAdminToken = "AETHER_ADMIN_TOKEN"

// ResolveTokenDigest returns the SHA-256 of the admin token: Token (plain,
// "env:NAME" or "sha256:<hex>"), else AETHER_ADMIN_TOKEN. Without one it
// returns an error saying how to set it.
func (a Admin) ResolveTokenDigest() ([sha256.Size]byte, error) {
	v := a.Token
	if v == "" {
		v = os.Getenv(EnvAdminToken)
	}
	if v == "" {
		return [sha256.Size]byte{}, &FieldError{Field: "http.admin.token", Reason: fmt.Sprintf(
			"the admin API on %s needs a token: pass --admin-token, set %s or http.admin.token (env:NAME or sha256:<hex>), or disable it with --admin %s",
			a.Listen, EnvAdminToken, AdminOff)}
	}
	return resolveDigest("http.admin.token", v)
}

// MinClientIPKeyBytes is the shortest clientIp HMAC key accepted, here and
// by runner/api.
const MinClientIPKeyBytes = 16

// ResolveKey returns the clientIp HMAC key from KeyEnv, or nil when no
// KeyEnv is set (the API then draws a random key per process).
func (c ClientIP) ResolveKey() ([]byte, error) {
	return envKey("http.clientIp.keyEnv", c.KeyEnv, MinClientIPKeyBytes)
}

// envKey reads an HMAC key of at least minBytes from the environment
// variable env, named by field; nil when env is empty.
func envKey(field, env string, minBytes int) ([]byte, error) {
	if env == "" {
		return nil, nil
	}
	v := os.Getenv(env)
	if len(v) < minBytes {
		return nil, &FieldError{Field: field, Reason: fmt.Sprintf(
			"environment variable %s must hold a key of at least %d bytes", env, minBytes)}
	}
	return []byte(v), nil
}

// resolveSecret reads an "env:NAME" value; other values are returned as is.
func resolveSecret(field, v string) (string, error) {
	env, ok := strings.CutPrefix(v, "env:")
	if !ok {
		return v, nil
	}
	v = os.Getenv(env)
	if v == "" {
		return "", &FieldError{Field: field, Reason: fmt.Sprintf("environment variable %s is empty", env)}
	}
	return v, nil
}

// resolveDigest returns the SHA-256 of a secret given plain, as "env:NAME"
// or as "sha256:<hex>".
func resolveDigest(field, v string) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	if hx, ok := strings.CutPrefix(v, hashedPrefix); ok {
		if !isSHA256Hex(hx) {
			return d, &FieldError{Field: field, Reason: "a hashed value is sha256: and 64 hex digits"}
		}
		_, _ = hex.Decode(d[:], []byte(hx))
		return d, nil
	}
	v, err := resolveSecret(field, v)
	if err != nil {
		return d, err
	}
	return sha256.Sum256([]byte(v)), nil
}

// HashKey returns the "sha256:<hex>" form of a key, for http.apiKeys and
// http.admin.token.
func HashKey(key string) string {
	d := sha256.Sum256([]byte(key))
	return hashedPrefix + hex.EncodeToString(d[:])
}

func isSHA256Hex(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}
