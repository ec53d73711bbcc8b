// Package audit is the audit trail: one event model for every path that must
// be audited, the Sink interface every trail store implements, a
// hash-chained JSON-lines file sink (the embedded default), a memory sink for
// tests, and Verify and Redact for the file trail.
//
// The file trail is one JSON Record per line: {seq, prevHash, hash, event}.
// Seq starts at 1 and grows by one; the first prevHash is GenesisHash, every
// other is the previous record's hash; hash = ChainHash(seq, prevHash,
// digest), where digest is the SHA-256 of the event bytes as written or, for
// a redacted event, the eventDigest it keeps. The chain covers digests, not
// event bytes, so Redact can strip a record's personal data and Verify still
// passes; the price is that a redacted record proves only that an event
// with that digest was there.
//
// Events carry no secrets: validation refuses attribute keys that name one
// (see Event.Validate). Personal data goes only in Subject, a pseudonymous
// user reference, so that a deletion request can find and redact it.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"
)

// Kind says which path emitted an event.
type Kind string

// The kinds of audit events.
const (
	KindAPIRequest   Kind = "api_request"
	KindKafkaMessage Kind = "kafka_message"
	KindJobEvent     Kind = "job_event"
	KindInference    Kind = "inference"
	KindAdminAction  Kind = "admin_action"
	KindAccessDenied Kind = "access_denied"
	KindModelChange  Kind = "model_change"
)

// Kinds lists every known kind.
func Kinds() []Kind {
	return []Kind{KindAPIRequest, KindKafkaMessage, KindJobEvent, KindInference, KindAdminAction, KindAccessDenied, KindModelChange}
}

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindAPIRequest, KindKafkaMessage, KindJobEvent, KindInference, KindAdminAction, KindAccessDenied, KindModelChange:
		return true
	}
	return false
}

// Event is one audit record's content.
//
// Redacted and EventDigest are set only by Redact: a redacted event keeps
// ID, Time and Kind, drops every other field and records the SHA-256 of the
// original event's canonical JSON, which the hash chain covers. Sinks refuse
// events that claim to be redacted.
type Event struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"` // UTC, no monotonic reading
	Kind Kind      `json:"kind"`
	// Actor is who acted: an API key id, a processor principal, an admin.
	Actor    string `json:"actor,omitempty"`
	Resource string `json:"resource,omitempty"`
	Action   string `json:"action,omitempty"`
	Outcome  string `json:"outcome,omitempty"`
	// Subject is the pseudonymous reference of the user the event is about,
	// where there is one: the only field meant for personal data.
	Subject string `json:"subject,omitempty"`
	// CorrelationID links an input record (topic, partition, offset) to
	// everything that came from it.
	CorrelationID string            `json:"correlationId,omitempty"`
	Attributes    map[string]string `json:"attributes,omitempty"`

	Redacted    bool   `json:"redacted,omitempty"`
	EventDigest string `json:"eventDigest,omitempty"`
}

// ErrInvalidEvent is wrapped by every validation error.
var ErrInvalidEvent = errors.New("invalid audit event")

// ErrClosed is returned by Write on a closed sink.
var ErrClosed = errors.New("audit sink closed")

// Sink stores audit events. Write stores all events or returns an error;
// events of one Write keep their order and are not interleaved with another
// Write's. Implementations are safe for concurrent use.
type Sink interface {
	Write(ctx context.Context, events ...Event) error
	Close() error
}

// New completes e and validates it: an empty ID becomes a random one, a zero
// Time becomes now; Time is converted to UTC without a monotonic reading and
// empty Attributes become nil.
func New(e Event) (Event, error) {
	if e.ID == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		e.ID = hex.EncodeToString(b[:])
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e = normalize(e)
	return e, e.Validate()
}

// normalize returns a copy of e that round-trips through JSON exactly.
func normalize(e Event) Event {
	e.Time = e.Time.UTC().Round(0)
	if len(e.Attributes) == 0 {
		e.Attributes = nil
	} else {
		e.Attributes = maps.Clone(e.Attributes)
	}
	return e
}

// secretKeys are attribute keys, lower-cased and without '_', '-' and '.',
// that name a secret exactly; secretSuffixes name one at the key's end
// (dbPassword, authToken, clientSecret). "tokens", "tokenCount" and
// "apiKeyId" are allowed.
var (
	secretKeys     = []string{"apikey", "xapikey", "authorization", "proxyauthorization", "passwd", "credential", "credentials", "privatekey", "cookie", "setcookie"}
	secretSuffixes = []string{"password", "token", "secret"}
	// keySeparators strips what secretKeys and secretSuffixes leave out.
	keySeparators = strings.NewReplacer("_", "", "-", "", ".", "", " ", "")
)

func secretLooking(key string) bool {
	k := strings.ToLower(key)
	k = keySeparators.Replace(k)
	for _, s := range secretKeys {
		if k == s {
			return true
		}
	}
	for _, s := range secretSuffixes {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	return false
}

// Validate checks that e can be written: ID, a UTC Time, a known Kind, Actor,
// Action and Outcome are set; no attribute key looks like a secret
// (password, token, secret, authorization, api_key and the like, in any
// case) and no value is an HTTP credential ("Bearer ...", "Basic ..."); the
// redaction fields are unset.
func (e Event) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidEvent, e.ID, fmt.Sprintf(format, args...))
	}
	switch {
	case e.ID == "":
		return bad("id is empty")
	case e.Time.IsZero():
		return bad("time is zero")
	case e.Time.Location() != time.UTC:
		return bad("time %s is not UTC", e.Time)
	case !e.Kind.Valid():
		return bad("unknown kind %q", e.Kind)
	case e.Actor == "":
		return bad("actor is empty")
	case e.Action == "":
		return bad("action is empty")
	case e.Outcome == "":
		return bad("outcome is empty")
	case e.Redacted || e.EventDigest != "":
		return bad("only Redact may write redacted events")
	}
	for k, v := range e.Attributes {
		if secretLooking(k) {
			return bad("attribute %q looks like a secret; audit events never carry secrets", k)
		}
		lv := strings.ToLower(v)
		if strings.HasPrefix(lv, "bearer ") || strings.HasPrefix(lv, "basic ") {
			return bad("attribute %q holds an HTTP credential; audit events never carry secrets", k)
		}
	}
	return nil
}

// redact returns the redacted form of the event whose canonical JSON has
// the given digest.
func (e Event) redact(digest string) Event {
	return Event{ID: e.ID, Time: e.Time, Kind: e.Kind, Redacted: true, EventDigest: digest}
}
