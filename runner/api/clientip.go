package api

import (
	"bytes"
	"fmt"
	"net/netip"

	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/runner/config"
)

// ClientIPMode says what happens to an event's clientIp before the event
// leaves the API; the modes are the runner file's (config.ClientIPMode), so
// that both accept the same ones.
type ClientIPMode = config.ClientIPMode

// Client IP modes (see config.ClientIPHash and config.ClientIPDrop).
const (
	ClientIPHash = config.ClientIPHash
	ClientIPDrop = config.ClientIPDrop
)

// ClientIPPolicy configures the pseudonymisation of clientIp.
type ClientIPPolicy struct {
	// Mode is ClientIPHash (the default) or ClientIPDrop.
	Mode ClientIPMode
	// Key is the HMAC key of ClientIPHash, at least
	// config.MinClientIPKeyBytes (16) bytes. Empty means a random
	// per-process key: pseudonyms then match only within one run.
	Key []byte
}

// ClientIPPseudonymizer applies a ClientIPPolicy to events. The API applies
// it to every ingested event; anything else that writes events to Kafka
// directly (a load generator, the demo's clickstream) should apply the same
// one. It is safe for concurrent use.
type ClientIPPseudonymizer struct {
	mode      ClientIPMode
	key       []byte
	randomKey bool
}

// NewClientIPPseudonymizer validates p.
func NewClientIPPseudonymizer(p ClientIPPolicy) (*ClientIPPseudonymizer, error) {
	c := &ClientIPPseudonymizer{mode: p.Mode, key: bytes.Clone(p.Key)}
	switch c.mode {
	case "":
		c.mode = ClientIPHash
	case ClientIPHash, ClientIPDrop:
	default:
		return nil, fmt.Errorf("ClientIP.Mode %q is not hash or drop", p.Mode)
	}
	switch {
	case c.mode == ClientIPDrop:
		c.key = nil
	case len(c.key) == 0:
		c.key = newAuditKey()
		c.randomKey = true
	case len(c.key) < config.MinClientIPKeyBytes:
		return nil, fmt.Errorf("ClientIP.Key must be at least %d bytes", config.MinClientIPKeyBytes)
	}
	return c, nil
}

// RandomKey reports whether the pseudonyms use a random per-process key.
func (c *ClientIPPseudonymizer) RandomKey() bool { return c.randomKey }

// Apply replaces or removes e.ClientIP. An event without a clientIp keeps
// none: the API does not add one (the request's address is the shop's
// server, not the shopper). It returns an error if ClientIP is not an IP
// address, so that a value that is not an address is never passed on under
// a pseudonym that looks like one.
func (c *ClientIPPseudonymizer) Apply(e *event.Event) error {
	if e.ClientIP == "" {
		return nil
	}
	a, err := netip.ParseAddr(e.ClientIP)
	if err != nil {
		return fmt.Errorf("%w: clientIp must be an IPv4 or IPv6 address", event.ErrInvalid)
	}
	if c.mode == ClientIPDrop {
		e.ClientIP = ""
		return nil
	}
	e.ClientIP = c.pseudonym(a)
	return nil
}

// pseudonym is the hex HMAC-SHA-256 of the address's canonical text
// (IPv4-mapped IPv6 unmapped, no zone), so that one address has one
// pseudonym however it was written.
func (c *ClientIPPseudonymizer) pseudonym(a netip.Addr) string {
	return hmacHex(c.key, a.Unmap().WithZone("").String())
}
