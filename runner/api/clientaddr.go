package api

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/aetherai/aether/runner/config"
)

// clientAddr returns the address a request comes from, for the allowlist
// and the audit trail: the TCP peer, unless the peer is a trusted proxy.
// Then X-Forwarded-For (every such header, in order) is read from the right,
// each proxy appending the address it received from, and the first address
// that is not itself a trusted proxy is the client; if every address is a
// trusted proxy, the left-most one. Addresses left of the client are the
// client's own claim and are never believed, so a client cannot spoof its
// way into an allowlist; from an untrusted peer the header is ignored
// altogether. An unparseable entry where the client should be gives the
// zero Addr: an unknown address, which no allowlist admits. The Forwarded
// header (RFC 7239) is not read.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseHostAddr(r.RemoteAddr)
	if !peer.IsValid() || len(trusted) == 0 || !containsAddr(trusted, peer) {
		return peer
	}
	hops := forwardedFor(r.Header)
	if len(hops) == 0 {
		return peer
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseHostAddr(hops[i])
		if !a.IsValid() {
			return netip.Addr{}
		}
		client = a
		if !containsAddr(trusted, a) {
			return a
		}
	}
	return client
}

// forwardedFor returns the entries of every X-Forwarded-For header, in
// order.
func forwardedFor(h http.Header) []string {
	var hops []string
	for _, v := range h.Values("X-Forwarded-For") {
		for hop := range strings.SplitSeq(v, ",") {
			hops = append(hops, strings.TrimSpace(hop))
		}
	}
	return hops
}

// parseHostAddr parses "ip", "ip:port" or "[ipv6]:port", without zone and
// with IPv4-mapped IPv6 unmapped; anything else is the zero Addr.
func parseHostAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone("")
}

// containsAddr reports whether one of ps contains a.
func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// normalizePrefixes returns ps as config.NormalizePrefix does each, so
// that they match the unmapped addresses parseHostAddr returns.
func normalizePrefixes(ps []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		out = append(out, config.NormalizePrefix(p))
	}
	return out
}
