package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

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
}

func newKeyring(m map[string]string) (keyring, error) {
	kr := keyring{compare: subtle.ConstantTimeCompare}
	if len(m) == 0 {
		return kr, errors.New("APIKeys: at least one API key is required")
	}
	for key, client := range m {
		if client == "" {
			return kr, errors.New("APIKeys: a key has an empty client name")
		}
		if key == "" || strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r > '~' }) {
			// The key itself is never printed.
			return kr, fmt.Errorf("APIKeys: the key of client %q is empty or holds characters other than printable ASCII", client)
		}
		kr.keys = append(kr.keys, apiKey{digest: sha256.Sum256([]byte(key)), client: client})
	}
	return kr, nil
}

// client returns the client holding key. It compares the key's digest with
// every key's in constant time, without stopping at a match.
func (kr *keyring) client(key string) (string, bool) {
	d := sha256.Sum256([]byte(key))
	match := -1
	for i := range kr.keys {
		if kr.compare(d[:], kr.keys[i].digest[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return "", false
	}
	return kr.keys[match].client, true
}

// requireKey admits requests carrying a known key as
// "Authorization: Bearer KEY" and records the client's name for the log;
// others get a 401 with a WWW-Authenticate challenge (RFC 6750).
func (s *Server) requireKey(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scheme, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		key = strings.TrimSpace(key)
		if !strings.EqualFold(scheme, "Bearer") || key == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="aether"`)
			s.reject(w, r, http.StatusUnauthorized, reasonMissingKey, "API key required: send the header Authorization: Bearer <key>")
			return
		}
		client, ok := s.keys.client(key)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="aether", error="invalid_token"`)
			s.reject(w, r, http.StatusUnauthorized, reasonInvalidKey, "invalid API key")
			return
		}
		infoFrom(r.Context()).client = client
		next(w, r)
	}
}
