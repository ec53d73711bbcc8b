package history

import (
	"cmp"
	"iter"
	"slices"
	"time"

	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/model"
)

// SessionGap is the inactivity gap at which a Collector splits a history
// of the format: 0 (no split) for FormatSessions, whose sessions are given,
// and model.DefaultSessionGap, the gap model.Train splits at, for the
// formats that hold users' histories.
func SessionGap(f Format) time.Duration {
	if f == FormatSessions {
		return 0
	}
	return model.DefaultSessionGap
}

// Sessions is a history grouped into sessions, with interned item ids.
type Sessions struct {
	// Items are the distinct item (product) ids, in order of first
	// appearance; Session.Items index it.
	Items []string
	// List holds the sessions in the order they start in the input: by the
	// read position of their first event.
	List []Session
	// Events counts the events in sessions; Duplicates the events left out
	// as repeats of an EventID of the same user (client retries, which
	// model.Train leaves out too).
	Events, Duplicates uint64
}

// Session is one session's events in time order (equal times keep the
// read order). Event types are not kept: a view, cart or purchase is an
// interaction with the item like a click.
type Session struct {
	// User is the session's user: "s<SessionId>" for FormatSessions (one
	// session per user), the userId otherwise (a user may have several).
	User string
	// Items are the events' items (indices into Sessions.Items).
	Items []int32
	// Times are the event times, Unix nanoseconds.
	Times []int64
}

// Points counts the prediction points of the sessions: every position
// p >= 1 of a session.
func (s *Sessions) Points() int {
	n := 0
	for _, ss := range s.List {
		n += max(len(ss.Items)-1, 0)
	}
	return n
}

type collected struct {
	at   int64
	seq  int64 // read position
	item int32
}

// Collector groups events into sessions as they stream past, so that one
// pass over a file can feed model.Train and build the sessions. Each
// user's events are sorted by time and split where two consecutive events
// are more than the gap apart (no split for a gap <= 0). It holds about
// 24 bytes per event and the distinct ids.
type Collector struct {
	gap   int64
	users map[string]int
	names []string
	hist  [][]collected
	items map[string]int32
	ids   []string
	seen  map[[2]string]struct{}
	seq   int64
	dups  uint64
}

// NewCollector returns a Collector that splits users' histories at gap.
func NewCollector(gap time.Duration) *Collector {
	return &Collector{
		gap: gap.Nanoseconds(), users: map[string]int{}, items: map[string]int32{},
		seen: map[[2]string]struct{}{},
	}
}

// Add adds one event. Events without user, product or time are ignored,
// and so are repeats of an EventID already added for the same user.
func (c *Collector) Add(e event.Event) {
	if e.UserID == "" || e.ProductID == "" || e.Timestamp.IsZero() {
		return
	}
	if e.EventID != "" {
		k := [2]string{e.UserID, e.EventID}
		if _, dup := c.seen[k]; dup {
			c.dups++
			return
		}
		c.seen[k] = struct{}{}
	}
	it, ok := c.items[e.ProductID]
	if !ok {
		it = int32(len(c.ids))
		c.items[e.ProductID] = it
		c.ids = append(c.ids, e.ProductID)
	}
	u, ok := c.users[e.UserID]
	if !ok {
		u = len(c.hist)
		c.users[e.UserID] = u
		c.names = append(c.names, e.UserID)
		c.hist = append(c.hist, nil)
	}
	c.hist[u] = append(c.hist[u], collected{at: e.Timestamp.UnixNano(), seq: c.seq, item: it})
	c.seq++
}

// Tee yields the events of seq and adds each to the Collector on the way.
func (c *Collector) Tee(seq iter.Seq[event.Event]) iter.Seq[event.Event] {
	return func(yield func(event.Event) bool) {
		for e := range seq {
			c.Add(e)
			if !yield(e) {
				return
			}
		}
	}
}

// Sessions returns the sessions of the events added so far.
func (c *Collector) Sessions() *Sessions {
	out := &Sessions{Items: slices.Clip(c.ids), Duplicates: c.dups}
	var first []int64 // read position of each session's first event
	for u, h := range c.hist {
		slices.SortStableFunc(h, func(a, b collected) int { return cmp.Compare(a.at, b.at) })
		start := 0
		for i := 1; i <= len(h); i++ {
			if i < len(h) && (c.gap <= 0 || h[i].at-h[i-1].at <= c.gap) {
				continue
			}
			s := Session{User: c.names[u], Items: make([]int32, i-start), Times: make([]int64, i-start)}
			pos := h[start].seq
			for k, e := range h[start:i] {
				s.Items[k], s.Times[k] = e.item, e.at
				pos = min(pos, e.seq)
			}
			out.List = append(out.List, s)
			first = append(first, pos)
			out.Events += uint64(i - start)
			start = i
		}
	}
	order := make([]int, len(out.List))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(first[a], first[b]) })
	sorted := make([]Session, len(order))
	for i, o := range order {
		sorted[i] = out.List[o]
	}
	out.List = sorted
	return out
}
