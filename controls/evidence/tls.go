package evidence

import (
	"context"
	"fmt"
	"strings"
)

// Endpoint is one connection Aether makes or serves, as the configuration
// declares it: Kafka, Redis, Elasticsearch, the HTTP API, the admin API.
type Endpoint struct {
	// Name says which connection ("kafka", "redis", "http-api", ...).
	Name string
	// Addr is where it goes or listens; empty means the connection is not
	// in use (no Elasticsearch when the audit trail is a file, say) and it
	// is listed but not judged.
	Addr string
	// TLS reports whether the configuration turns TLS on for it.
	TLS bool
}

// TLSEverywhere is the control that every connection is encrypted in
// transit: it fails naming each endpoint in use without TLS. It judges the
// configuration (the runner connects as configured, and refuses a TLS
// handshake that fails), so it is only as live as the configuration the
// runner was started with.
func TLSEverywhere(endpoints []Endpoint) Check {
	eps := append([]Endpoint(nil), endpoints...)
	return Check{
		ID:       "encryption_in_transit",
		Title:    "Every connection is encrypted with TLS",
		Criteria: []string{"CC6.1", "CC6.7"},
		Run:      func(context.Context) Result { return tlsEverywhere(eps) },
	}
}

func tlsEverywhere(eps []Endpoint) Result {
	var on, off, unused, details []string
	for _, e := range eps {
		switch {
		case e.Addr == "":
			unused = append(unused, e.Name)
			details = append(details, e.Name+": not in use")
		case e.TLS:
			on = append(on, e.Name)
			details = append(details, fmt.Sprintf("%s %s: TLS on", e.Name, e.Addr))
		default:
			off = append(off, e.Name)
			details = append(details, fmt.Sprintf("%s %s: TLS OFF, plain text", e.Name, e.Addr))
		}
	}
	if len(on)+len(off) == 0 {
		return errResult("TLS on every connection", "no connection in use was given to check", details...)
	}
	declared := "TLS on: " + listOrNone(on) + "; TLS off: " + listOrNone(off)
	if len(unused) > 0 {
		declared += "; not in use: " + strings.Join(unused, ", ")
	}
	live := fmt.Sprintf("%d of %d connections in use encrypted", len(on), len(on)+len(off))
	if len(off) > 0 {
		return fail(declared, live, "data travels in plain text to or from "+strings.Join(off, ", "), details...)
	}
	return pass(declared, live, "every connection in use is configured with TLS", details...)
}

func listOrNone(ss []string) string {
	if len(ss) == 0 {
		return "none"
	}
	return strings.Join(ss, ", ")
}
