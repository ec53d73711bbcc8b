package config_test

import (
	"crypto/sha256"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/runner/config"
)

func TestHTTPSection(t *testing.T) {
	c, err := config.Parse([]byte(minimal + `
http:
  listen: 0.0.0.0:8443
  tls: {certFile: /etc/aether/tls.crt, keyFile: /etc/aether/tls.key}
  apiKeys:
    shop-eu: sha256:` + sha64 + `
    shop-us: env:SHOP_US_KEY
  clients:
    shop-eu: {allow: [203.0.113.0/24, "2001:db8::/32", 198.51.100.7]}
  trustedProxies: [10.0.0.0/8]
  maxBodyBytes: 65536
  maxBatch: 100
  rateLimit: {perSecond: 50, burst: 100}
  clientIp: {mode: drop}
  admin: {listen: 0.0.0.0:8444, token: env:ADMIN}
`))
	require.NoError(t, err)
	h := c.HTTP
	require.True(t, h.TLS.Enabled())
	require.Equal(t, config.ServerTLS{CertFile: "/etc/aether/tls.crt", KeyFile: "/etc/aether/tls.key"}, h.TLS)
	require.Equal(t, []string{"203.0.113.0/24", "2001:db8::/32", "198.51.100.7"}, h.Clients["shop-eu"].Allow)
	require.Equal(t, config.RateLimit{PerSecond: 50, Burst: 100}, h.RateLimit)
	require.Equal(t, int64(65536), h.MaxBodyBytes)
	require.Equal(t, 100, h.MaxBatch)
	require.Equal(t, config.ClientIPDrop, h.ClientIP.Mode)
	require.Equal(t, "0.0.0.0:8444", h.Admin.Listen, "non-loopback admin is fine with TLS")
}

func TestHTTPDefaults(t *testing.T) {
	c, err := config.Parse([]byte(minimal))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:8080", c.HTTP.Listen)
	require.Equal(t, "127.0.0.1:8081", c.HTTP.Admin.Listen)
	require.True(t, c.HTTP.Admin.Enabled())
	require.Equal(t, config.ClientIPHash, c.HTTP.ClientIP.Mode)
	require.False(t, c.HTTP.TLS.Enabled())
	require.Zero(t, c.HTTP.RateLimit)
	c, err = config.Parse([]byte(minimal + "http:\n  admin: {listen: \"off\"}\n"))
	require.NoError(t, err)
	require.False(t, c.HTTP.Admin.Enabled())
}

func TestHTTPErrorsNameTheField(t *testing.T) {
	cases := map[string]string{
		"http:\n  tls: {certFile: c.pem}\n":                                         "http.tls: certFile and keyFile go together: give both or neither",
		"http:\n  tls: {keyFile: k.pem}\n":                                          "http.tls: certFile and keyFile go together",
		"http:\n  apiKeys: {shop: sha256:abc}\n":                                    "http.apiKeys.shop: a hashed key is sha256: and 64 hex digits",
		"http:\n  apiKeys: {shop: k}\n  clients: {shop-x: {allow: [10.0.0.0/8]}}\n": "http.clients.shop-x: no such client in http.apiKeys",
		"http:\n  apiKeys: {shop: k}\n  clients: {shop: {allow: [10.0.0.0/33]}}\n":  `http.clients.shop.allow[0]: "10.0.0.0/33" is not a CIDR or an IP address`,
		"http:\n  trustedProxies: [10.0.0.1, proxy.local]\n":                        `http.trustedProxies[1]: "proxy.local" is not a CIDR or an IP address`,
		"http:\n  maxBodyBytes: -1\n":                                               "http.maxBodyBytes: must not be negative",
		"http:\n  maxBatch: -1\n":                                                   "http.maxBatch: must not be negative",
		"http:\n  rateLimit: {perSecond: -1}\n":                                     "http.rateLimit.perSecond: must be a finite number, 0 or more",
		"http:\n  rateLimit: {burst: 5}\n":                                          "http.rateLimit.burst: is set but http.rateLimit.perSecond is not",
		"http:\n  rateLimit: {perSecond: 1, burst: -5}\n":                           "http.rateLimit.burst: must not be negative",
		"http:\n  clientIp: {mode: encrypt}\n":                                      `http.clientIp.mode: "encrypt" is not hash or drop`,
		"http:\n  clientIp: {mode: drop, keyEnv: K}\n":                              "http.clientIp.keyEnv: is set but mode drop needs no key",
		"http:\n  admin: {listen: 0.0.0.0:8081}\n":                                  `http.admin.listen: "0.0.0.0:8081" is not a loopback address: the admin API leaves loopback only over TLS (set http.tls)`,
		"http:\n  admin: {listen: \":8081\"}\n":                                     `http.admin.listen: ":8081" is not a loopback address`,
		"http:\n  admin: {listen: admin.internal:8081}\n":                           `http.admin.listen: "admin.internal:8081" is not a loopback address`,
		"http:\n  admin: {listen: 8081}\n":                                          `http.admin.listen: "8081" is not host:port (or "off")`,
		"http:\n  admin: {token: sha256:zz}\n":                                      "http.admin.token: a hashed token is sha256: and 64 hex digits",
		"http:\n  clients: {x: {deny: []}}\n":                                       "field deny not found",
	}
	for in, want := range cases {
		_, err := config.Parse([]byte(minimal + in))
		require.Error(t, err, in)
		require.Contains(t, err.Error(), want, in)
	}
	for _, ok := range []string{"127.0.0.1:8081", "[::1]:8081", "localhost:8081", "127.0.0.2:9000"} {
		_, err := config.Parse([]byte(minimal + "http:\n  admin: {listen: \"" + ok + "\"}\n"))
		require.NoError(t, err, ok)
	}
}

func TestKeyDigests(t *testing.T) {
	t.Setenv("SHOP_KEY", "s3cret")
	h := config.HTTP{APIKeys: map[string]string{"shop": "env:SHOP_KEY", "other": "plain", "hashed": config.HashKey("h1")}}
	d, err := h.ResolveKeyDigests()
	require.NoError(t, err)
	require.Equal(t, map[string][sha256.Size]byte{
		"shop": sha256.Sum256([]byte("s3cret")), "other": sha256.Sum256([]byte("plain")), "hashed": sha256.Sum256([]byte("h1")),
	}, d)
	require.Equal(t, "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", config.HashKey("test"))

	// A hashed key has no plain form.
	_, err = h.ResolveKeys()
	require.EqualError(t, err, "http.apiKeys.hashed: is stored hashed: only its digest is known (see ResolveKeyDigests)")
	_, err = config.HTTP{APIKeys: map[string]string{"x": "env:AETHER_UNSET_VAR"}}.ResolveKeyDigests()
	require.EqualError(t, err, "http.apiKeys.x: environment variable AETHER_UNSET_VAR is empty")
}

func TestAdminToken(t *testing.T) {
	t.Setenv(config.EnvAdminToken, "")
	_, err := config.Admin{Listen: "127.0.0.1:8081"}.ResolveTokenDigest()
	require.EqualError(t, err, "http.admin.token: the admin API on 127.0.0.1:8081 needs a token: pass --admin-token, set AETHER_ADMIN_TOKEN or http.admin.token (env:NAME or sha256:<hex>), or disable it with --admin off")
	t.Setenv(config.EnvAdminToken, "from-env")
	d, err := config.Admin{}.ResolveTokenDigest()
	require.NoError(t, err)
	require.Equal(t, sha256.Sum256([]byte("from-env")), d)
	d, err = config.Admin{Token: config.HashKey("from-file")}.ResolveTokenDigest()
	require.NoError(t, err)
	require.Equal(t, sha256.Sum256([]byte("from-file")), d, "the file wins over the environment")
}

func TestClientIPKey(t *testing.T) {
	k, err := config.ClientIP{Mode: config.ClientIPHash}.ResolveKey()
	require.NoError(t, err)
	require.Nil(t, k, "no keyEnv: the API draws a random key")
	t.Setenv("IPKEY", "0123456789abcdef")
	k, err = config.ClientIP{KeyEnv: "IPKEY"}.ResolveKey()
	require.NoError(t, err)
	require.Equal(t, []byte("0123456789abcdef"), k)
	t.Setenv("IPKEY", "short")
	_, err = config.ClientIP{KeyEnv: "IPKEY"}.ResolveKey()
	require.EqualError(t, err, "http.clientIp.keyEnv: environment variable IPKEY must hold a key of at least 16 bytes")
	require.False(t, strings.Contains(err.Error(), "short"))
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.2.3/8":          "10.0.0.0/8",
		"198.51.100.7":        "198.51.100.7/32",
		"2001:db8::1":         "2001:db8::1/128",
		"::ffff:10.0.0.0/104": "10.0.0.0/8",
		"::ffff:10.0.0.1":     "10.0.0.1/32",
	} {
		p, err := config.ParsePrefix(in)
		require.NoError(t, err, in)
		require.Equal(t, netip.MustParsePrefix(want), p, in)
	}
	for _, bad := range []string{"", "10.0.0.0/33", "host", "10.0.0.0/8/8"} {
		_, err := config.ParsePrefix(bad)
		require.Error(t, err, bad)
	}
}
