// Package clickstream generates synthetic clickstreams with realistic
// structure for the demo, tests and benchmarks, and reads the OTTO session
// sample (ReadOTTO).
//
// The generator models users who browse in sessions: within a session events
// are seconds apart, between sessions of one user there is always more than
// SessionTimeout (30 minutes), so a 30-minute session gap separates them.
// Items follow a Zipf popularity law, and each product has a small fixed
// list of successor products that a session's walk follows with probability
// Config.Transition, so next items are learnable. Carts and purchases favour
// items the user recently clicked (and purchases items recently carted).
// Faults can be injected: out-of-order event times, duplicates that repeat
// an earlier event with the same EventID, and malformed bytes.
//
// Output is a deterministic function of Config: no wall clock, no global
// random source.
package clickstream

import (
	"fmt"
	"math"
	"time"

	"github.com/aetherai/aether/event"
)

// SessionTimeout is the inactivity gap that separates sessions. Within a
// session consecutive events of a user are less than SessionTimeout apart;
// between sessions they are more than SessionTimeout apart. Both hold also
// after out-of-order injection once a user's events are sorted by time.
const SessionTimeout = 30 * time.Minute

// Defaults applied by New to zero Config fields.
const (
	DefaultUsers         = 1000
	DefaultProducts      = 5000
	DefaultZipfS         = 1.1
	DefaultMeanGap       = 20 * time.Second
	DefaultSessionGap    = 2 * time.Hour
	DefaultSessionLength = 8.0
	DefaultTransition    = 0.7
	DefaultOutOfOrderMax = 90 * time.Second
)

// Limits checked by New.
const (
	MaxUsers         = 1 << 22
	MaxProducts      = 1 << 22
	MaxOutOfOrderMax = 10 * time.Minute
	// NumSuccessors is the length of each product's successor list.
	NumSuccessors = 3
)

// NoTransition, as Config.Transition, disables learned transitions (a
// probability of 0; the zero value selects DefaultTransition).
const NoTransition = -1.0

// DefaultStart is the time of the first session when Config.Start is zero.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// DefaultMix is the event type mix when Config.Mix is all zero: view 30%,
// click 60%, add_to_cart 8%, purchase 2%, in the order of event.Types.
var DefaultMix = [len(event.Types)]float64{0.30, 0.60, 0.08, 0.02}

// Config describes a synthetic clickstream. The zero value of every field
// selects its documented default; Seed 0 is a seed like any other.
type Config struct {
	// Users is the number of distinct users, "user_0" ... Default 1000.
	Users int
	// Products is the number of distinct products, "prod_0" ...; prod_0 is
	// the most popular. Default 5000.
	Products int
	// Seed makes the output deterministic: equal configs give equal streams.
	Seed uint64
	// ZipfS is the item popularity exponent, > 1: product k is drawn with
	// probability proportional to (k+1)^-ZipfS. Default 1.1.
	ZipfS float64
	// Start is the earliest first-session start (truncated to milliseconds).
	// Default DefaultStart; the wall clock is never used.
	Start time.Time
	// MeanGap is the mean time between consecutive events of a session
	// (exponential, at least 1ms, capped so sessions stay separable).
	// Default 20s.
	MeanGap time.Duration
	// SessionGap is the mean time between the last event of one session and
	// the first of the user's next session. Gaps are always longer than
	// SessionTimeout+OutOfOrderMax. Default 2h.
	SessionGap time.Duration
	// SessionLength is the mean number of events in a session (geometric,
	// at least 1). Default 8.
	SessionLength float64
	// Transition is the probability that a session's next viewed or clicked
	// item is one of the current item's successors (see
	// Generator.Successors); otherwise it is a popularity draw outside that
	// list. Default 0.7; NoTransition for 0.
	Transition float64
	// Mix holds the relative weights of view, click, add_to_cart and
	// purchase (event.Types order); they need not sum to 1. Default
	// DefaultMix.
	Mix [len(event.Types)]float64

	// OutOfOrder is the fraction of records whose event time is shifted back
	// by 1ms..OutOfOrderMax while keeping their place in the stream.
	OutOfOrder float64
	// OutOfOrderMax bounds the out-of-order shift. Default 90s.
	OutOfOrderMax time.Duration
	// Duplicate is the fraction of records that repeat a recent earlier
	// event (one of the last 4), same EventID and bytes, as a client retry
	// would.
	Duplicate float64
	// Malformed is the fraction of records whose bytes are not a valid event
	// (truncated JSON, wrong types, missing fields, unknown event type, ...).
	Malformed float64
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.Users == 0 {
		c.Users = DefaultUsers
	}
	if c.Products == 0 {
		c.Products = DefaultProducts
	}
	if c.ZipfS == 0 {
		c.ZipfS = DefaultZipfS
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	c.Start = c.Start.Truncate(time.Millisecond).UTC()
	if c.MeanGap == 0 {
		c.MeanGap = DefaultMeanGap
	}
	if c.SessionGap == 0 {
		c.SessionGap = DefaultSessionGap
	}
	if c.SessionLength == 0 {
		c.SessionLength = DefaultSessionLength
	}
	switch c.Transition {
	case 0:
		c.Transition = DefaultTransition
	case NoTransition:
		c.Transition = 0
	}
	if c.Mix == [len(event.Types)]float64{} {
		c.Mix = DefaultMix
	}
	if c.OutOfOrderMax == 0 {
		c.OutOfOrderMax = DefaultOutOfOrderMax
	}
	return c
}

// maxInSessionGap caps gaps within a session so that, with any event shifted
// back by up to OutOfOrderMax, a user's time-sorted gaps within a session
// stay below SessionTimeout.
func (c Config) maxInSessionGap() time.Duration {
	return SessionTimeout - c.OutOfOrderMax - time.Second
}

// minSessionGap is the least gap between sessions of a user, so that
// out-of-order shifts cannot bring a time-sorted gap down to SessionTimeout.
func (c Config) minSessionGap() time.Duration {
	return SessionTimeout + c.OutOfOrderMax + time.Second
}

func fraction(name string, v float64) error {
	if math.IsNaN(v) || v < 0 || v > 1 {
		return fmt.Errorf("clickstream: %s must be a fraction in [0, 1], got %v", name, v)
	}
	return nil
}

// validate checks a config with defaults applied.
func (c Config) validate() error {
	switch {
	case c.Users < 1 || c.Users > MaxUsers:
		return fmt.Errorf("clickstream: Users must be between 1 and %d, got %d", MaxUsers, c.Users)
	case c.Products < 1 || c.Products > MaxProducts:
		return fmt.Errorf("clickstream: Products must be between 1 and %d, got %d", MaxProducts, c.Products)
	case math.IsNaN(c.ZipfS) || math.IsInf(c.ZipfS, 0) || c.ZipfS <= 1:
		return fmt.Errorf("clickstream: ZipfS must be a finite number > 1, got %v", c.ZipfS)
	case c.Start.Year() < 1970 || c.Start.Year() > 9999:
		return fmt.Errorf("clickstream: Start must be between years 1970 and 9999, got %v", c.Start)
	case c.OutOfOrderMax < time.Millisecond || c.OutOfOrderMax > MaxOutOfOrderMax:
		return fmt.Errorf("clickstream: OutOfOrderMax must be between 1ms and %v, got %v", MaxOutOfOrderMax, c.OutOfOrderMax)
	case c.MeanGap < time.Millisecond || c.MeanGap >= c.maxInSessionGap():
		return fmt.Errorf("clickstream: MeanGap must be at least 1ms and below %v (SessionTimeout - OutOfOrderMax - 1s), got %v",
			c.maxInSessionGap(), c.MeanGap)
	case c.SessionGap <= c.minSessionGap():
		return fmt.Errorf("clickstream: SessionGap must exceed %v (SessionTimeout + OutOfOrderMax + 1s), got %v",
			c.minSessionGap(), c.SessionGap)
	case math.IsNaN(c.SessionLength) || math.IsInf(c.SessionLength, 0) || c.SessionLength < 1:
		return fmt.Errorf("clickstream: SessionLength must be a finite mean >= 1, got %v", c.SessionLength)
	}
	if err := fraction("Transition", c.Transition); err != nil {
		return fmt.Errorf("%w (or NoTransition)", err)
	}
	sum := 0.0
	for i, w := range c.Mix {
		if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
			return fmt.Errorf("clickstream: Mix[%d] (%s) must be a finite weight >= 0, got %v", i, event.Types[i], w)
		}
		sum += w
	}
	if sum <= 0 {
		return fmt.Errorf("clickstream: Mix weights must not all be zero")
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"OutOfOrder", c.OutOfOrder}, {"Duplicate", c.Duplicate}, {"Malformed", c.Malformed}} {
		if err := fraction(f.name, f.v); err != nil {
			return err
		}
	}
	if s := c.OutOfOrder + c.Duplicate + c.Malformed; s > 1 {
		return fmt.Errorf("clickstream: OutOfOrder + Duplicate + Malformed must not exceed 1, got %v", s)
	}
	return nil
}
