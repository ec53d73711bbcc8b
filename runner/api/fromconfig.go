package api

import (
	"crypto/tls"
	"fmt"

	"github.com/aetherai/aether/runner/config"
)

// ApplyHTTP sets the fields of c that the runner file's http section
// configures: the clients (key digests from http.apiKeys, which may be
// plain, env:NAME or sha256:<hex>, and allowlists from http.clients), the
// trusted proxies, the body and batch limits, the rate limit and the
// clientIp policy (its key read from http.clientIp.keyEnv). Clients
// already in c.APIKeys may appear in h only with the same key.
func (c *Config) ApplyHTTP(h config.HTTP) error {
	digests, err := h.ResolveKeyDigests()
	if err != nil {
		return err
	}
	clients := make(map[string]Client, len(digests))
	for name, d := range digests {
		allow, err := config.ParsePrefixes("http.clients."+name+".allow", h.Clients[name].Allow)
		if err != nil {
			return err
		}
		clients[name] = Client{KeySHA256: d, Allow: allow}
	}
	for name := range h.Clients {
		if _, ok := digests[name]; !ok {
			return &config.FieldError{Field: "http.clients." + name, Reason: "no such client in http.apiKeys"}
		}
	}
	proxies, err := config.ParsePrefixes("http.trustedProxies", h.TrustedProxies)
	if err != nil {
		return err
	}
	key, err := h.ClientIP.ResolveKey()
	if err != nil {
		return err
	}
	c.Clients = clients
	c.TrustedProxies = proxies
	c.MaxBodyBytes = h.MaxBodyBytes
	c.MaxBatch = h.MaxBatch
	c.RateLimit = RateLimit{PerSecond: h.RateLimit.PerSecond, Burst: h.RateLimit.Burst}
	c.ClientIP = ClientIPPolicy{Mode: h.ClientIP.Mode, Key: key}
	return nil
}

// ApplyHTTP sets the admin token digest from http.admin.token, else
// AETHER_ADMIN_TOKEN; without a token it returns an error saying how to
// set one.
func (c *AdminConfig) ApplyHTTP(h config.HTTP) error {
	d, err := h.Admin.ResolveTokenDigest()
	if err != nil {
		return err
	}
	c.TokenSHA256 = d
	return nil
}

// TLSFromConfig loads http.tls (nil when it is not set).
func TLSFromConfig(h config.HTTP) (*tls.Config, error) {
	t, err := LoadTLS(h.TLS.CertFile, h.TLS.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("http.tls: %w", err)
	}
	return t, nil
}
