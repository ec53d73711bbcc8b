// Package event defines the clickstream event of the reference pipeline, as
// it travels on user_events_raw (JSON, keyed by userId).
package event

import (
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Type is what the user did.
type Type string

// The event types the pipeline knows. Ingest rejects any other.
const (
	View      Type = "view"
	Click     Type = "click"
	AddToCart Type = "add_to_cart"
	Purchase  Type = "purchase"
)

// Types lists the known event types in their stable order; features index
// per-type counters by this order.
var Types = [...]Type{View, Click, AddToCart, Purchase}

// Index returns t's position in Types, or -1 if t is unknown.
func (t Type) Index() int {
	for i, k := range Types {
		if k == t {
			return i
		}
	}
	return -1
}

// Event is one user interaction.
type Event struct {
	UserID    string    `json:"userId"`
	ProductID string    `json:"productId"`
	EventType Type      `json:"eventType"`
	Timestamp time.Time `json:"timestamp"`
	// ClientIP is personal data: declared as such on every stream carrying it.
	ClientIP string `json:"clientIp,omitempty"`
	// EventID, when set, makes client retries idempotent: the processor applies
	// an event with an ID it has already applied for this user only once.
	EventID string `json:"eventId,omitempty"`
}

// Limits on what an event may carry; anything beyond is rejected.
const (
	// MaxIDLen bounds userId, productId and eventId, in bytes.
	MaxIDLen = 128
	// MaxFutureSkew is how far in the future of the receiver's clock an
	// event time may be: one far-future event would otherwise move its
	// partition's event-time clock and close every session on it.
	MaxFutureSkew = time.Hour
)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid event")

// Validate reports the first problem with e, naming the field, judging
// the timestamp against the current time.
func (e *Event) Validate() error { return e.ValidateAt(time.Now()) }

// ValidateAt is Validate with the receiver's clock reading now.
func (e *Event) ValidateAt(now time.Time) error {
	if err := CheckID("userId", e.UserID, true); err != nil {
		return err
	}
	if err := CheckID("productId", e.ProductID, true); err != nil {
		return err
	}
	switch {
	case e.EventType.Index() < 0:
		return fmt.Errorf("%w: eventType %q is not one of view, click, add_to_cart, purchase", ErrInvalid, truncate(string(e.EventType)))
	case e.Timestamp.IsZero():
		return fmt.Errorf("%w: timestamp is required (RFC 3339)", ErrInvalid)
	case e.Timestamp.After(now.Add(MaxFutureSkew)):
		return fmt.Errorf("%w: timestamp %s is more than %s in the future", ErrInvalid, e.Timestamp.UTC().Format(time.RFC3339), MaxFutureSkew)
	}
	return CheckID("eventId", e.EventID, false)
}

// CheckID checks an id named field by the rule of every id (userId in a
// path or a deletion request too): at most MaxIDLen bytes of UTF-8 without
// control characters, and not empty when required. Its error wraps
// ErrInvalid and names the field: "invalid event: userId is required".
func CheckID(field, id string, required bool) error {
	switch {
	case id == "" && required:
		return fmt.Errorf("%w: %s is required", ErrInvalid, field)
	case len(id) > MaxIDLen:
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalid, field, MaxIDLen)
	case !Printable(id):
		return fmt.Errorf("%w: %s contains control characters or invalid UTF-8", ErrInvalid, field)
	}
	return nil
}

// Printable reports whether s is valid UTF-8 without control characters,
// the rule for every id: ids appear in keys, logs and URLs.
func Printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}
