// Package sessionize groups each key's events into event-time sessions
// separated by an inactivity gap.
//
// # Semantics
//
// Times are event times in whole milliseconds: the record's event time
// (ctx.EventTime(), or the event's Timestamp when the input stream declares
// none). Each key has one [State], embedded in the processor's table value.
// For every event, with gap G and grace R (see [Gap], [Grace]) and the key's
// latest event time L (State.Last):
//
//   - No session was ever started, or none is open and t >= L: a new
//     session starts at t ([Started]). A closed session stays closed: an
//     event that arrives after the timer closed it starts a new session even
//     when it is within G of the old one's end.
//   - A session is open and t >= L: if t-L > G the open session ends
//     ([Closed], without event) and a new one starts at t ([Started]);
//     otherwise the event continues the session ([Continued]).
//   - t < L and L-t <= R (out of order, within grace): if a session is open
//     and t >= Start-G, the event joins it and may move its start earlier
//     ([Reordered]); otherwise it belongs to the previous, closed session
//     ([Previous]): it extends that session's summary (State.Prev*, the
//     update's Session) and counts toward the key's lifetime totals, never
//     toward the open session. When no earlier
//     session exists, such an event is [Reordered] into the open one.
//   - t < L and L-t > R (beyond grace): the late policy decides (see
//     [OnLate]): by default the event only counts toward lifetime totals
//     ([Late]) and State.Late; with [LateReject] Process returns a
//     [*LateError], which wraps [ErrLate], and the runtime dead-letters it.
//
// After each event that leaves a session open, Process sets the operator's
// timer to L+G+R. When the partition's watermark passes it, OnTimer closes
// the session ([Closed]) unless the session was extended since. Sessions
// once closed are never merged again, even if a reordered event later
// narrows the gap between two of them. Closing follows the partition's
// watermark, not the key's own events: a key whose events trail the
// partition's watermark by more than G+R has its session closed right
// after each event.
//
// The operator emits one [Update] per event, two ([Closed], then [Started])
// when an event ends a session by the gap, and one ([Closed]) per session
// the timer closes. It does not allocate on the hot path.
package sessionize

import (
	"errors"
	"fmt"
	"time"

	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/operators"
)

// Defaults of the options.
const (
	DefaultGap   = 30 * time.Minute
	DefaultGrace = 2 * time.Minute
)

// Kind says what an event did to the key's sessions.
type Kind uint8

// The kinds of [Update]. The zero Kind is invalid.
const (
	// Started: the event started a new session.
	Started Kind = iota + 1
	// Continued: the event came in order, within the gap of the open session.
	Continued
	// Reordered: the event came out of order, within grace, and joined the
	// open session (possibly moving its start earlier).
	Reordered
	// Previous: the event came out of order, within grace, and belongs to
	// the previous, closed session; it counts toward lifetime totals only.
	Previous
	// Late: the event came later than the grace allows and the policy is
	// LateLifetimeOnly; it counts toward lifetime totals only.
	Late
	// Closed: a session ended (the update carries no event).
	Closed
)

var kindNames = [...]string{"invalid", "started", "continued", "reordered", "previous", "late", "closed"}

// String returns the kind's lower-case name, e.g. "started".
func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Session summarises one session of a key.
type Session struct {
	// Seq numbers the key's sessions from 1, in the order they started.
	Seq uint32
	// Start is the time of the session's earliest event, End that of its
	// latest (UTC, millisecond precision).
	Start, End time.Time
	// Events counts the events placed in the session.
	Events uint32
}

// Duration is End - Start.
func (s Session) Duration() time.Duration { return s.End.Sub(s.Start) }

// Update is what the sessionizer emits for each event and closed session.
type Update struct {
	Kind Kind
	// Event is the input event; zero for Closed.
	Event event.Event
	// Session is the session the update affected, after the change: the
	// new or open session for Started, Continued and Reordered; the
	// previous session for Previous; the ended session for Closed; for
	// Late, the open session, or the last closed one when none is open
	// (neither changed).
	Session Session
	// Split is set on a Closed update when the event that ended the session
	// by the gap also starts the next one: a Started update for it follows
	// in the same call. It is false when the timer closed the session.
	Split bool
}

// LatePolicy decides what happens to an event later than the grace period.
type LatePolicy uint8

const (
	// LateLifetimeOnly (the default) emits a Late update: the event counts
	// toward lifetime totals but no session, and State.Late counts it.
	LateLifetimeOnly LatePolicy = iota
	// LateReject makes Process return a *LateError (wrapping ErrLate); the
	// runtime dead-letters the event and discards its state changes, so
	// State.Late does not count it.
	LateReject
)

// ErrLate is wrapped by the error Process returns for an event later than
// the grace period under LateReject.
var ErrLate = errors.New("event later than the grace period")

// LateError reports an event rejected by LateReject.
type LateError struct {
	// At is the event's time, Latest the key's latest event time.
	At, Latest time.Time
	// Lateness is Latest - At; Grace the configured grace period.
	Lateness, Grace time.Duration
}

func (e *LateError) Error() string {
	return fmt.Sprintf("sessionize: event at %s is %s late (key's latest event at %s), beyond the grace of %s",
		e.At.Format(time.RFC3339Nano), e.Lateness, e.Latest.Format(time.RFC3339Nano), e.Grace)
}

// Unwrap returns ErrLate.
func (e *LateError) Unwrap() error { return ErrLate }

// Option configures New.
type Option func(*config)

type config struct {
	gap, grace int64 // milliseconds
	late       LatePolicy
}

// Gap sets the inactivity gap that ends a session (default 30 minutes),
// truncated to whole milliseconds; values under 1ms keep the default.
func Gap(d time.Duration) Option {
	return func(c *config) {
		if ms := d.Milliseconds(); ms > 0 {
			c.gap = ms
		}
	}
}

// Grace sets how far behind the key's latest event time an out-of-order
// event may be and still be placed in its session (default 2 minutes),
// truncated to whole milliseconds. Zero places no out-of-order event;
// negative values keep the default.
func Grace(d time.Duration) Option {
	return func(c *config) {
		if d >= 0 {
			c.grace = d.Milliseconds()
		}
	}
}

// OnLate sets the policy for events beyond the grace period (default
// LateLifetimeOnly); unknown policies keep the default. (The option is not
// called Late because the Kind Late has that name.)
func OnLate(p LatePolicy) Option {
	return func(c *config) {
		if p <= LateReject {
			c.late = p
		}
	}
}

// New returns the sessionizing operator for a processor whose table value
// is S; *S must expose the key's session State through SessionState. Its
// Name is "sessionize" and it implements operators.Timed. Invalid option
// values keep their defaults (see each option), so New cannot fail.
//
//	op := sessionize.New[features.State](sessionize.Gap(30 * time.Minute))
func New[S any, P interface {
	*S
	SessionState() *State
}](opts ...Option) operators.Operator[S, event.Event, Update] {
	c := config{gap: DefaultGap.Milliseconds(), grace: DefaultGrace.Milliseconds()}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return &sessionizer[S, P]{c}
}

type sessionizer[S any, P interface {
	*S
	SessionState() *State
}] struct {
	config
}

func (*sessionizer[S, P]) Name() string { return "sessionize" }

func (op *sessionizer[S, P]) Process(ctx operators.Context[S], in event.Event, emit func(Update) error) error {
	st := P(ctx.State()).SessionState()
	at := ctx.EventTime()
	if at.IsZero() {
		at = in.Timestamp
	}
	t := at.UnixMilli()
	var err error
	switch {
	case !st.Open && (st.Seq == 0 || t >= st.Last):
		st.start(t)
		err = emit(Update{Kind: Started, Event: in, Session: st.Current()})
	case st.Open && t >= st.Last:
		if t-st.Last > op.gap {
			st.close()
			if err = emit(Update{Kind: Closed, Session: st.PreviousSession(), Split: true}); err != nil {
				return err
			}
			st.start(t)
			err = emit(Update{Kind: Started, Event: in, Session: st.Current()})
		} else {
			st.Last = t
			st.Events++
			err = emit(Update{Kind: Continued, Event: in, Session: st.Current()})
		}
	case st.Last-t > op.grace:
		if op.late == LateReject {
			return &LateError{At: millis(t), Latest: millis(st.Last),
				Lateness: time.Duration(st.Last-t) * time.Millisecond, Grace: time.Duration(op.grace) * time.Millisecond}
		}
		st.Late++
		s := st.Current()
		if !st.Open {
			s = st.PreviousSession()
		}
		err = emit(Update{Kind: Late, Event: in, Session: s})
	case st.Open && (t >= st.Start-op.gap || st.Seq <= 1):
		st.Events++
		st.Start = min(st.Start, t)
		err = emit(Update{Kind: Reordered, Event: in, Session: st.Current()})
	default:
		st.PrevEvents++
		st.PrevStart = min(st.PrevStart, t)
		st.PrevEnd = max(st.PrevEnd, t)
		err = emit(Update{Kind: Previous, Event: in, Session: st.PreviousSession()})
	}
	if err != nil {
		return err
	}
	if st.Open {
		ctx.SetTimer(millis(st.Last + op.gap + op.grace))
	}
	return nil
}

// OnTimer closes the open session if the timer's deadline is at least its
// latest event time plus gap and grace; a stale timer does nothing.
func (op *sessionizer[S, P]) OnTimer(ctx operators.Context[S], emit func(Update) error) error {
	st := P(ctx.State()).SessionState()
	if !st.Open || ctx.EventTime().UnixMilli() < st.Last+op.gap+op.grace {
		return nil
	}
	st.close()
	return emit(Update{Kind: Closed, Session: st.PreviousSession()})
}
