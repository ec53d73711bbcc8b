// Package features turns a user's sessions and lifetime activity into the
// feature record of the reference pipeline. Its State is the sessionizer
// processor's table value (the online feature store); its Record is what
// the store serves and what goes to user_features_processed.
//
// It runs after the sessionizer in one chain:
//
//	operators.Chain(sessionize.New[features.State](), features.New())
//
// # Semantics
//
// The operator applies every sessionize.Update to the user's State, so the
// table is always current:
//
//   - Started: the session counters start again; the gap before the session
//     (recency) is the time since the previous session's end.
//   - Continued, Reordered: the event counts toward the session and the
//     lifetime totals.
//   - Previous, Late: the event counts toward the lifetime totals only: a
//     closed session's statistics are final once its Closed update is
//     applied. A Previous event that moves the previous session's end
//     later does shorten the gap before the open session.
//   - Closed: the session's duration enters the session statistics.
//
// Every event (late ones included) increments EventsTotal, moves
// FirstSeen/LastSeen and enters the recent-items ring, which keeps the
// newest items by event time (an event older than all items of a full ring
// is not kept).
//
// What the operator emits is coalesced by a policy, because each output
// record costs about as much as the state update itself:
//
//   - EmitInterval(d), the default with d = 5 minutes of event time: a
//     record when a session starts or closes, and otherwise at most one per
//     d per user: a change less than d after the last record is held
//     (pending) and flushed by a timer at last record + d, with reason
//     "interval".
//   - EmitOnSessionChange: a record when a session starts or closes only.
//
// Under both, an event that ends a session by the gap and starts the next
// one yields one record (reason "session_started"), which carries the ended
// session's final statistics too; a session the timer closes gets its own
// "session_closed" record, its final features, without a next event.
//   - EmitEvery: one record per update (reason "every_event" except for
//     session starts and closes).
//
// The clock of the coalescing is event time: the record's event time when
// an update arrives, the timer's deadline when the timer fires.
package features

import (
	"fmt"
	"time"

	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/operators"
	"github.com/aetherai/aether/operators/sessionize"
)

// Defaults of the options.
const (
	DefaultInterval    = 5 * time.Minute
	DefaultRecentItems = 20
	// MaxRecentItems bounds RecentItems, and the ring the codecs accept.
	MaxRecentItems = 1000
)

// NumTypes is the number of event types; counters are indexed by
// event.Type.Index().
const NumTypes = len(event.Types)

// Item is one entry of the recent-items ring.
type Item struct {
	ProductID string
	// Type is the event type's index in event.Types.
	Type uint8
	// At is the event time in Unix milliseconds.
	At int64
}

// State is a user's feature state: the table value of the sessionizer
// processor. Times are Unix milliseconds of event time. The zero State is a
// user never seen.
type State struct {
	// Session is the sessionizer's state (see SessionState).
	Session sessionize.State
	// Recent holds the most recent items by event time, oldest first,
	// at most RecentItems of them.
	Recent []Item
	// SessionCounts counts the current session's events per type,
	// LifetimeCounts all events per type (late ones included).
	SessionCounts, LifetimeCounts [NumTypes]uint64
	// EventsTotal counts every event applied to this user, late ones
	// included: for reconciliation with the input.
	EventsTotal uint64
	// ClosedSessions counts the sessions that ended; TotalSessionMs and
	// LastSessionMs are the summed and the last one's durations.
	ClosedSessions uint64
	TotalSessionMs int64
	LastSessionMs  int64
	// FirstSeen and LastSeen are the earliest and latest event times.
	// (Late events are counted in Session.Late.)
	FirstSeen, LastSeen int64
	// GapBeforeMs is the time between the end of the previous session and
	// the start of the current one; 0 for the first session.
	GapBeforeMs int64
	// LastEmit is the event time of the last emitted record, valid when
	// Emitted; Pending says a change has not been emitted yet (a timer
	// is set to flush it).
	LastEmit int64
	Emitted  bool
	Pending  bool
}

// SessionState returns the embedded session state, for sessionize.New.
func (s *State) SessionState() *sessionize.State { return &s.Session }

// Reason says why a record was emitted.
type Reason string

// The reasons of Record.Reason.
const (
	ReasonSessionStarted Reason = "session_started"
	ReasonSessionClosed  Reason = "session_closed"
	ReasonInterval       Reason = "interval"
	ReasonEveryEvent     Reason = "every_event"
)

type emitMode uint8

const (
	emitInterval emitMode = iota
	emitSessionChange
	emitEvery
)

type config struct {
	mode     emitMode
	interval int64 // milliseconds
	recent   int
}

// Option configures New.
type Option func(*config)

// EmitEvery emits one record per update.
func EmitEvery() Option { return func(c *config) { c.mode = emitEvery } }

// EmitOnSessionChange emits a record when a session starts and when it
// closes, and never in between.
func EmitOnSessionChange() Option { return func(c *config) { c.mode = emitSessionChange } }

// EmitInterval emits a record when a session starts or closes and
// otherwise at most once per d of event time per user (the default, with
// d = 5 minutes); d is truncated to whole milliseconds and values under
// 1ms keep the default.
func EmitInterval(d time.Duration) Option {
	return func(c *config) {
		c.mode = emitInterval
		if ms := d.Milliseconds(); ms > 0 {
			c.interval = ms
		}
	}
}

// RecentItems sets the size of the recent-items ring (default 20); 0 keeps
// none, negative values keep the default, values above MaxRecentItems are
// capped.
func RecentItems(n int) Option {
	return func(c *config) {
		if n >= 0 {
			c.recent = min(n, MaxRecentItems)
		}
	}
}

// New returns the feature operator. Its Name is "features" and it
// implements operators.Timed (for EmitInterval). Invalid option values
// keep their defaults, so New cannot fail.
func New(opts ...Option) operators.Operator[State, sessionize.Update, Record] {
	c := config{interval: DefaultInterval.Milliseconds(), recent: DefaultRecentItems}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return &extractor{c}
}

type extractor struct{ config }

func (*extractor) Name() string { return "features" }

func (op *extractor) Process(ctx operators.Context[State], u sessionize.Update, emit func(Record) error) error {
	s := ctx.State()
	at := ctx.EventTime()
	if at.IsZero() {
		at = u.Event.Timestamp
	}
	now := at.UnixMilli()
	if err := op.apply(s, u, now); err != nil {
		return err
	}
	var reason Reason
	switch {
	case u.Kind == sessionize.Started:
		reason = ReasonSessionStarted
	case u.Kind == sessionize.Closed && u.Split && op.mode != emitEvery:
		// The same event starts the next session: its record, which also
		// carries this session's final statistics, is the one emitted.
		return nil
	case u.Kind == sessionize.Closed:
		reason = ReasonSessionClosed
	case op.mode == emitEvery:
		reason = ReasonEveryEvent
	case op.mode == emitInterval && (!s.Emitted || now-s.LastEmit >= op.interval):
		reason = ReasonInterval
	case op.mode == emitInterval:
		if !s.Pending {
			s.Pending = true
			ctx.SetTimer(millis(s.LastEmit + op.interval))
		}
		return nil
	default:
		return nil
	}
	if s.Pending {
		s.Pending = false
		ctx.ClearTimer()
	}
	return op.emit(ctx, s, reason, now, emit)
}

// OnTimer flushes a pending change. A timer that fires before the interval
// is over (the interval was changed) re-arms itself.
func (op *extractor) OnTimer(ctx operators.Context[State], emit func(Record) error) error {
	s := ctx.State()
	if !s.Pending {
		return nil
	}
	now := ctx.EventTime().UnixMilli()
	if s.Emitted && now-s.LastEmit < op.interval {
		ctx.SetTimer(millis(s.LastEmit + op.interval))
		return nil
	}
	s.Pending = false
	return op.emit(ctx, s, ReasonInterval, now, emit)
}

func (op *extractor) emit(ctx operators.Context[State], s *State, reason Reason, now int64, emit func(Record) error) error {
	if !s.Emitted || now > s.LastEmit {
		s.LastEmit = now
	}
	s.Emitted = true
	r := s.Record(ctx.Key())
	r.Reason = reason
	return emit(r)
}

// apply updates s with u; at is the event time in Unix milliseconds. It
// checks u before changing anything.
func (op *extractor) apply(s *State, u sessionize.Update, at int64) error {
	if u.Kind == sessionize.Closed {
		d := u.Session.Duration().Milliseconds()
		s.ClosedSessions++
		s.TotalSessionMs += d
		s.LastSessionMs = d
		return nil
	}
	idx := u.Event.EventType.Index()
	if idx < 0 {
		return fmt.Errorf("features: %w: eventType %q is not one of view, click, add_to_cart, purchase", event.ErrInvalid, u.Event.EventType)
	}
	switch u.Kind {
	case sessionize.Started:
		s.SessionCounts = [NumTypes]uint64{}
		s.SessionCounts[idx]++
	case sessionize.Continued, sessionize.Reordered:
		s.SessionCounts[idx]++
	case sessionize.Previous, sessionize.Late:
	default:
		return fmt.Errorf("features: unknown update kind %s", u.Kind)
	}
	if ss := &s.Session; ss.Open && ss.Seq > 1 {
		s.GapBeforeMs = ss.Start - ss.PrevEnd
	} else if ss.Open {
		s.GapBeforeMs = 0
	}
	s.LifetimeCounts[idx]++
	if s.EventsTotal == 0 || at < s.FirstSeen {
		s.FirstSeen = at
	}
	if s.EventsTotal == 0 || at > s.LastSeen {
		s.LastSeen = at
	}
	s.EventsTotal++
	s.addRecent(Item{ProductID: u.Event.ProductID, Type: uint8(idx), At: at}, op.recent)
	return nil
}

// addRecent inserts it in event-time order (after items of equal time) and
// keeps the newest n items.
func (s *State) addRecent(it Item, n int) {
	r := s.Recent
	if len(r) > n {
		r = r[len(r)-n:]
	}
	if n == 0 {
		s.Recent = nil
		return
	}
	i := len(r)
	for i > 0 && r[i-1].At > it.At {
		i--
	}
	if len(r) == n {
		if i > 0 {
			copy(r[:i-1], r[1:i])
			r[i-1] = it
		}
	} else {
		r = append(r, Item{})
		copy(r[i+1:], r[i:])
		r[i] = it
	}
	s.Recent = r
}

func millis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
