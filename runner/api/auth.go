package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Client is one API client as the server knows it: the SHA-256 of its key
// (the key itself is not needed, so a configuration may hold only the
// digest) and the networks it may call from.
type Client struct {
	// KeySHA256 is the SHA-256 of the client's API key.
	KeySHA256 [sha256.Size]byte
	// Allow, if not empty, lists the networks the client's requests may
	// come from (see clientAddr); a request from elsewhere gets a 403.
	// Empty means any address.
	Allow []netip.Prefix
}

// KeyDigest returns the SHA-256 of an API key, the form Client holds.
func KeyDigest(key string) [sha256.Size]byte { return sha256.Sum256([]byte(key)) }

// keyring holds the API keys as SHA-256 digests, so that comparing a
// presented key takes the same time whatever its length and content.
type keyring struct {
	keys []apiKey
	// compare is subtle.ConstantTimeCompare (a field so that a test can
	// count the comparisons).
	compare func(x, y []byte) int
}

type apiKey struct {
	digest [sha256.Size]byte
	client string
	allow  []netip.Prefix
}

// newKeyring merges the plain keys (key -> client) and the clients given by
// digest. Each client has exactly one key and each key one client: a key
// shared by two clients would make the audit actor a guess.
func newKeyring(plain map[string]string, clients map[string]Client) (keyring, error) {
	kr := keyring{compare: subtle.ConstantTimeCompare}
	if len(plain) == 0 && len(clients) == 0 {
		return kr, errors.New("APIKeys: at least one API key is required")
	}
	byClient := map[string]int{}
	add := func(client string, c Client) error {
		allow := normalizePrefixes(c.Allow)
		if i, ok := byClient[client]; ok {
			if kr.keys[i].digest != c.KeySHA256 {
				return fmt.Errorf("APIKeys: client %q has more than one key; give each client exactly one", client)
			}
			kr.keys[i].allow = append(kr.keys[i].allow, allow...)
			return nil
		}
		for _, k := range kr.keys {
			if k.digest == c.KeySHA256 {
				return fmt.Errorf("APIKeys: clients %q and %q have the same key", k.client, client)
			}
		}
		byClient[client] = len(kr.keys)
		kr.keys = append(kr.keys, apiKey{digest: c.KeySHA256, client: client, allow: allow})
		return nil
	}
	for _, key := range slices.Sorted(maps.Keys(plain)) {
		client := plain[key]
		if client == "" {
			return kr, errors.New("APIKeys: a key has an empty client name")
		}
		if key == "" || strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r > '~' }) {
			// The key itself is never printed.
			return kr, fmt.Errorf("APIKeys: the key of client %q is empty or holds characters other than printable ASCII", client)
		}
		if err := add(client, Client{KeySHA256: KeyDigest(key)}); err != nil {
			return kr, err
		}
	}
	for _, client := range slices.Sorted(maps.Keys(clients)) {
		if client == "" {
			return kr, errors.New("Clients: a client name is empty")
		}
		c := clients[client]
		if c.KeySHA256 == ([sha256.Size]byte{}) {
			return kr, fmt.Errorf("Clients: client %q has no key digest", client)
		}
		for _, p := range c.Allow {
			if !p.IsValid() {
				return kr, fmt.Errorf("Clients: client %q has an invalid allowed network", client)
			}
		}
		if err := add(client, c); err != nil {
			return kr, err
		}
	}
	return kr, nil
}

// lookup returns the key presented, by its digest. It compares the digest
// with every key's in constant time, without stopping at a match.
func (kr *keyring) lookup(key string) (*apiKey, bool) {
	d := sha256.Sum256([]byte(key))
	match := -1
	for i := range kr.keys {
		if kr.compare(d[:], kr.keys[i].digest[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return nil, false
	}
	return &kr.keys[match], true
}

// client returns the name of the client holding key.
func (kr *keyring) client(key string) (string, bool) {
	k, ok := kr.lookup(key)
	if !ok {
		return "", false
	}
	return k.client, true
}

// clients returns the client names, sorted.
func (kr *keyring) clients() []string {
	names := make([]string, len(kr.keys))
	for i, k := range kr.keys {
		names[i] = k.client
	}
	slices.Sort(names)
	return names
}

// allows reports whether the key's client may call from ip.
func (k *apiKey) allows(ip netip.Addr) bool {
	if len(k.allow) == 0 {
		return true
	}
	return ip.IsValid() && containsAddr(k.allow, ip)
}

// requireKey admits requests carrying a known key as
// "Authorization: Bearer KEY" and records the client's name for the log;
// others get a 401 with a WWW-Authenticate challenge (RFC 6750). A known
// key then passes the client's network allowlist (else 403) and its rate
// limit (else 429), in that order, so that requests from a refused address
// spend none of the client's budget.
func (s *Server) requireKey(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scheme, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		key = strings.TrimSpace(key)
		if !strings.EqualFold(scheme, "Bearer") || key == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="aether"`)
			s.reject(w, r, http.StatusUnauthorized, reasonMissingKey, "API key required: send the header Authorization: Bearer <key>")
			return
		}
		k, ok := s.keys.lookup(key)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="aether", error="invalid_token"`)
			s.reject(w, r, http.StatusUnauthorized, reasonInvalidKey, "invalid API key")
			return
		}
		ri := infoFrom(r.Context())
		ri.client = k.client
		if !k.allows(ri.ip) {
			s.reject(w, r, http.StatusForbidden, reasonIPNotAllowed, "requests with this API key are not allowed from this address")
			return
		}
		if wait, ok := s.admit(k.client); !ok {
			s.metrics.rateLimited.WithLabelValues(k.client).Inc()
			secs := strconv.Itoa(retryAfterSeconds(wait))
			w.Header().Set("Retry-After", secs)
			s.reject(w, r, http.StatusTooManyRequests, reasonRateLimited, "rate limit exceeded for this API key: retry after "+secs+" s")
			return
		}
		next(w, r)
	}
}
