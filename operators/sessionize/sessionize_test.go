package sessionize_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/operators"
	"github.com/aetherai/aether/operators/optest"
	"github.com/aetherai/aether/operators/sessionize"
)

// userState is a minimal table value embedding the session state.
type userState struct {
	S sessionize.State
}

func (u *userState) SessionState() *sessionize.State { return &u.S }

var t0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

type harness = optest.Harness[userState, event.Event, sessionize.Update]

func newHarness(opts ...sessionize.Option) *harness {
	return optest.New(sessionize.New[userState](opts...))
}

func click(user string, ts time.Time) event.Event {
	return event.Event{UserID: user, ProductID: "prod_1", EventType: event.Click, Timestamp: ts}
}

// feed processes one click of user u at t0+d and fails the test on error.
func feed(t testing.TB, h *harness, u string, d time.Duration) {
	t.Helper()
	require.NoError(t, h.Process(u, at(d), click(u, at(d))))
}

func kinds(h *harness) []sessionize.Kind {
	var ks []sessionize.Kind
	for _, e := range h.Emitted {
		ks = append(ks, e.Value.Kind)
	}
	return ks
}

const (
	started   = sessionize.Started
	continued = sessionize.Continued
	reordered = sessionize.Reordered
	previous  = sessionize.Previous
	late      = sessionize.Late
	closed    = sessionize.Closed
)

func TestName(t *testing.T) {
	assert.Equal(t, "sessionize", sessionize.New[userState]().Name())
	_, timed := sessionize.New[userState]().(operators.Timed[userState, sessionize.Update])
	assert.True(t, timed)
}

func TestKindString(t *testing.T) {
	want := map[sessionize.Kind]string{started: "started", continued: "continued", reordered: "reordered",
		previous: "previous", late: "late", closed: "closed", 0: "Kind(0)", 42: "Kind(42)"}
	for k, s := range want {
		assert.Equal(t, s, k.String())
	}
}

func TestSplitAtGap(t *testing.T) {
	h := newHarness() // gap 30m, grace 2m
	for _, d := range []time.Duration{0, 10 * time.Minute, 40 * time.Minute, 70*time.Minute + time.Millisecond, 71 * time.Minute} {
		feed(t, h, "u", d)
	}
	// 10m -> 40m is exactly the gap: continued; 40m -> 70m+1ms exceeds it.
	assert.Equal(t, []sessionize.Kind{started, continued, continued, closed, started, continued}, kinds(h))
	c := h.Emitted[3].Value
	assert.Equal(t, sessionize.Session{Seq: 1, Start: at(0), End: at(40 * time.Minute), Events: 3}, c.Session)
	assert.Equal(t, event.Event{}, c.Event)
	assert.Equal(t, 40*time.Minute, c.Session.Duration())
	assert.Equal(t, sessionize.Session{Seq: 2, Start: at(70*time.Minute + time.Millisecond), End: at(71 * time.Minute), Events: 2}, h.Emitted[5].Value.Session)
	st := h.States["u"].S
	assert.Equal(t, sessionize.State{Start: at(70*time.Minute + time.Millisecond).UnixMilli(), Last: at(71 * time.Minute).UnixMilli(),
		Open: true, Seq: 2, Events: 2, PrevStart: t0.UnixMilli(), PrevEnd: at(40 * time.Minute).UnixMilli(), PrevEvents: 3}, st)
	assert.Equal(t, map[string]time.Time{"sessionize": at(71*time.Minute + 32*time.Minute)}, h.Timers("u"))
}

func TestKeysAreIndependent(t *testing.T) {
	h := newHarness()
	feed(t, h, "a", 0)
	feed(t, h, "b", time.Minute)
	feed(t, h, "a", 2*time.Minute)
	assert.Equal(t, []sessionize.Kind{started, started, continued}, kinds(h))
	assert.Equal(t, uint32(2), h.States["a"].S.Events)
	assert.Equal(t, uint32(1), h.States["b"].S.Events)
}

func TestClosedByTimer(t *testing.T) {
	h := newHarness(sessionize.Gap(10*time.Minute), sessionize.Grace(time.Minute))
	feed(t, h, "u", 0)
	feed(t, h, "u", 5*time.Minute)
	deadline := at(16 * time.Minute) // last + gap + grace
	assert.Equal(t, deadline, h.Timers("u")["sessionize"])

	h.Advance(deadline.Add(-time.Millisecond))
	assert.Len(t, h.Emitted, 2)
	h.Advance(deadline)
	require.Len(t, h.Emitted, 3)
	assert.Equal(t, sessionize.Update{Kind: closed, Session: sessionize.Session{Seq: 1, Start: at(0), End: at(5 * time.Minute), Events: 2}}, h.Emitted[2].Value)
	assert.False(t, h.States["u"].S.Open)
	assert.Empty(t, h.Timers("u"))

	// The next event starts session 2 without a second Closed, even within
	// the gap of the old session's end: a closed session stays closed.
	feed(t, h, "u", 15*time.Minute)
	assert.Equal(t, []sessionize.Kind{started, continued, closed, started}, kinds(h))
	assert.Equal(t, uint32(2), h.Emitted[3].Value.Session.Seq)
}

func TestClosedByGapWithinGrace(t *testing.T) {
	// An event after last+gap but before last+gap+grace: the timer has not
	// fired, Process closes the session itself.
	h := newHarness(sessionize.Gap(10*time.Minute), sessionize.Grace(time.Minute))
	feed(t, h, "u", 0)
	feed(t, h, "u", 10*time.Minute+30*time.Second)
	assert.Equal(t, []sessionize.Kind{started, closed, started}, kinds(h))
}

// fakeCtx is a minimal operators.Context for calling an operator directly.
type fakeCtx struct {
	now   time.Time
	state *userState
	timer time.Time
}

func (c *fakeCtx) Key() string                           { return "u" }
func (c *fakeCtx) EventTime() time.Time                  { return c.now }
func (c *fakeCtx) Watermark() time.Time                  { return c.now }
func (c *fakeCtx) Source() operators.Source              { return operators.Source{} }
func (c *fakeCtx) State() *userState                     { return c.state }
func (c *fakeCtx) SetTimer(at time.Time)                 { c.timer = at }
func (c *fakeCtx) ClearTimer()                           { c.timer = time.Time{} }
func (c *fakeCtx) Lookup(string, string) ([]byte, error) { return nil, nil }

func TestStaleTimerDoesNothing(t *testing.T) {
	op := sessionize.New[userState](sessionize.Gap(10*time.Minute), sessionize.Grace(time.Minute))
	st := &userState{}
	c := &fakeCtx{now: at(0), state: st}
	var got []sessionize.Update
	emit := func(u sessionize.Update) error { got = append(got, u); return nil }
	require.NoError(t, op.Process(c, click("u", at(0)), emit))
	first := c.timer
	c.now = at(8 * time.Minute)
	require.NoError(t, op.Process(c, click("u", c.now), emit))

	timed := op.(operators.Timed[userState, sessionize.Update])
	c.now = first // the first timer fires late: session was extended
	require.NoError(t, timed.OnTimer(c, emit))
	assert.Len(t, got, 2)
	assert.True(t, st.S.Open)

	c.now = at(19 * time.Minute)
	require.NoError(t, timed.OnTimer(c, emit))
	require.Len(t, got, 3)
	assert.Equal(t, closed, got[2].Kind)
	require.NoError(t, timed.OnTimer(c, emit)) // already closed
	assert.Len(t, got, 3)
}

func TestReordered(t *testing.T) {
	h := newHarness() // grace 2m
	feed(t, h, "u", 10*time.Minute)
	feed(t, h, "u", 12*time.Minute)
	feed(t, h, "u", 11*time.Minute)                // 1m late, inside the session
	feed(t, h, "u", 10*time.Minute-30*time.Second) // 2m30s late: beyond grace
	feed(t, h, "u", 10*time.Minute)                // 2m late: exactly the grace
	h.Reset()
	feed(t, h, "u", 12*time.Minute+time.Second)
	feed(t, h, "u", 10*time.Minute+30*time.Second) // moves nothing
	feed(t, h, "u", 11*time.Minute)
	feed(t, h, "u", 15*time.Minute)
	feed(t, h, "u", 13*time.Minute)
	assert.Equal(t, []sessionize.Kind{continued, reordered, reordered, continued, reordered}, kinds(h))
	st := h.States["u"].S
	assert.Equal(t, uint32(9), st.Events)
	assert.Equal(t, uint64(1), st.Late)
	assert.Equal(t, at(10*time.Minute).UnixMilli(), st.Start)

	// A reordered event within grace moves the start earlier.
	h2 := newHarness()
	feed(t, h2, "v", 10*time.Minute)
	feed(t, h2, "v", 9*time.Minute)
	assert.Equal(t, []sessionize.Kind{started, reordered}, kinds(h2))
	assert.Equal(t, sessionize.Session{Seq: 1, Start: at(9 * time.Minute), End: at(10 * time.Minute), Events: 2}, h2.Emitted[1].Value.Session)
}

func TestPreviousAfterTimerClose(t *testing.T) {
	h := newHarness() // gap 30m, grace 2m
	feed(t, h, "u", 0)
	feed(t, h, "u", 10*time.Minute)
	feed(t, h, "other", 50*time.Minute) // watermark passes 42m: u's session closes
	require.Equal(t, []sessionize.Kind{started, continued, closed, started}, kinds(h))
	h.Reset()

	feed(t, h, "u", 9*time.Minute) // 1m behind u's latest event: previous session
	require.Len(t, h.Emitted, 1)
	u := h.Emitted[0].Value
	assert.Equal(t, previous, u.Kind)
	assert.Equal(t, sessionize.Session{Seq: 1, Start: at(0), End: at(10 * time.Minute), Events: 3}, u.Session)
	assert.Empty(t, h.Timers("u"), "no session open, no timer")

	feed(t, h, "u", 5*time.Minute) // 5m behind: late
	assert.Equal(t, []sessionize.Kind{previous, late}, kinds(h))
	assert.Equal(t, uint64(1), h.States["u"].S.Late)
	assert.Equal(t, uint32(1), h.States["u"].S.Seq)
}

func TestPreviousWhileOpen(t *testing.T) {
	// Only possible when grace exceeds the gap.
	h := newHarness(sessionize.Gap(10*time.Minute), sessionize.Grace(time.Hour))
	feed(t, h, "u", 0)
	feed(t, h, "u", 20*time.Minute)  // gap 20m > 10m: new session
	feed(t, h, "u", 5*time.Minute)   // before 20m-10m: previous session
	feed(t, h, "u", 12*time.Minute)  // within 10m of the start: reordered
	feed(t, h, "u", -50*time.Minute) // 70m behind: late
	assert.Equal(t, []sessionize.Kind{started, closed, started, previous, reordered, late}, kinds(h))
	assert.Equal(t, sessionize.Session{Seq: 1, Start: at(0), End: at(5 * time.Minute), Events: 2}, h.Emitted[3].Value.Session)
	assert.Equal(t, sessionize.Session{Seq: 2, Start: at(12 * time.Minute), End: at(20 * time.Minute), Events: 2}, h.Emitted[4].Value.Session)
	assert.Equal(t, sessionize.Session{Seq: 2, Start: at(12 * time.Minute), End: at(20 * time.Minute), Events: 2}, h.Emitted[5].Value.Session)

	// Without an earlier session such an event joins the open one.
	h2 := newHarness(sessionize.Gap(10*time.Minute), sessionize.Grace(time.Hour))
	feed(t, h2, "v", 30*time.Minute)
	feed(t, h2, "v", 0)
	assert.Equal(t, []sessionize.Kind{started, reordered}, kinds(h2))
	assert.Equal(t, at(0).UnixMilli(), h2.States["v"].S.Start)
}

func TestLateLifetimeOnly(t *testing.T) {
	h := newHarness(sessionize.OnLate(sessionize.LateLifetimeOnly))
	feed(t, h, "u", 0)
	feed(t, h, "u", 10*time.Minute)
	feed(t, h, "u", 5*time.Minute) // 5m late, grace 2m
	feed(t, h, "u", 7*time.Minute)
	assert.Equal(t, []sessionize.Kind{started, continued, late, late}, kinds(h))
	st := h.States["u"].S
	assert.Equal(t, uint64(2), st.Late)
	assert.Equal(t, uint32(2), st.Events)
	assert.Equal(t, sessionize.Session{Seq: 1, Start: at(0), End: at(10 * time.Minute), Events: 2}, h.Emitted[2].Value.Session)
	assert.Equal(t, "u", h.Emitted[2].Value.Event.UserID)
}

func TestLateReject(t *testing.T) {
	h := newHarness(sessionize.OnLate(sessionize.LateReject))
	feed(t, h, "u", 0)
	feed(t, h, "u", 10*time.Minute)
	before := *h.States["u"]
	err := h.Process("u", at(5*time.Minute), click("u", at(5*time.Minute)))
	require.Error(t, err)
	assert.ErrorIs(t, err, sessionize.ErrLate)
	var le *sessionize.LateError
	require.True(t, errors.As(err, &le))
	assert.Equal(t, sessionize.LateError{At: at(5 * time.Minute), Latest: at(10 * time.Minute), Lateness: 5 * time.Minute, Grace: 2 * time.Minute}, *le)
	assert.Contains(t, err.Error(), "5m0s late")
	assert.Contains(t, err.Error(), "grace of 2m0s")
	assert.Equal(t, before, *h.States["u"], "rejected event changes nothing")
	assert.Len(t, h.Emitted, 2)
	// Within grace is still placed.
	feed(t, h, "u", 9*time.Minute)
	assert.Equal(t, reordered, h.Emitted[2].Value.Kind)
}

func TestInvalidOptionsKeepDefaults(t *testing.T) {
	h := newHarness(sessionize.Gap(0), sessionize.Gap(-time.Second), sessionize.Gap(time.Microsecond),
		sessionize.Grace(-time.Second), sessionize.OnLate(sessionize.LatePolicy(9)), nil)
	feed(t, h, "u", 0)
	feed(t, h, "u", 30*time.Minute)                  // default gap 30m: continued
	feed(t, h, "u", 28*time.Minute)                  // default grace 2m: reordered
	feed(t, h, "u", 28*time.Minute-time.Millisecond) // beyond: late, not rejected
	assert.Equal(t, []sessionize.Kind{started, continued, reordered, late}, kinds(h))
	assert.Equal(t, at(62*time.Minute), h.Timers("u")["sessionize"])

	h0 := newHarness(sessionize.Grace(0))
	feed(t, h0, "u", time.Minute)
	feed(t, h0, "u", time.Minute) // equal time is in order
	feed(t, h0, "u", time.Minute-time.Millisecond)
	assert.Equal(t, []sessionize.Kind{started, continued, late}, kinds(h0))
}

func TestEmitErrorPropagates(t *testing.T) {
	op := sessionize.New[userState]()
	boom := errors.New("boom")
	c := &fakeCtx{now: at(0), state: &userState{}}
	err := op.Process(c, click("u", at(0)), func(sessionize.Update) error { return boom })
	assert.ErrorIs(t, err, boom)
	assert.True(t, c.timer.IsZero(), "no timer after a failed emit")
}

func TestEventTimeFallsBackToTimestamp(t *testing.T) {
	op := sessionize.New[userState]()
	c := &fakeCtx{state: &userState{}}
	var got sessionize.Update
	require.NoError(t, op.Process(c, click("u", at(time.Minute)), func(u sessionize.Update) error { got = u; return nil }))
	assert.Equal(t, at(time.Minute), got.Session.Start)
}

func TestStateBinary(t *testing.T) {
	states := []sessionize.State{
		{},
		{Start: t0.UnixMilli(), Last: t0.UnixMilli() + 90_000, Open: true, Seq: 7, Events: 12,
			PrevStart: t0.UnixMilli() - 7_200_000, PrevEnd: t0.UnixMilli() - 3_600_000, PrevEvents: 4, Late: 3},
		{Start: -5, Last: 1 << 62, Seq: 1<<32 - 1, Events: 1<<32 - 1, PrevStart: -1 << 63, PrevEnd: 1<<63 - 1, PrevEvents: 1, Late: 1<<64 - 1},
	}
	for _, s := range states {
		b := s.Append([]byte("x"))
		assert.Equal(t, byte('x'), b[0])
		var got sessionize.State
		rest, err := got.Decode(append(b[1:], "tail"...))
		require.NoError(t, err)
		assert.Equal(t, "tail", string(rest))
		assert.Equal(t, s, got)
		// Every strict prefix is rejected.
		for i := range len(b) - 1 {
			_, err := new(sessionize.State).Decode(b[1 : 1+i])
			assert.ErrorIs(t, err, sessionize.ErrMalformed, "prefix %d", i)
		}
	}
	assert.LessOrEqual(t, len(states[1].Append(nil)), 24)

	_, err := new(sessionize.State).Decode([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0})
	assert.ErrorIs(t, err, sessionize.ErrMalformed)
	assert.True(t, strings.Contains(err.Error(), "flags"))
	_, err = new(sessionize.State).Decode([]byte{0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0}) // Seq > MaxUint32
	assert.ErrorIs(t, err, sessionize.ErrMalformed)
	_, err = new(sessionize.State).Decode([]byte{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	assert.ErrorIs(t, err, sessionize.ErrMalformed)
}

func FuzzStateBinary(f *testing.F) {
	f.Add((&sessionize.State{Start: 1_700_000_000_000, Last: 1_700_000_100_000, Open: true, Seq: 3, Events: 9}).Append(nil))
	f.Add([]byte{})
	f.Add([]byte{1, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s sessionize.State
		rest, err := s.Decode(b)
		if err != nil {
			return
		}
		enc := s.Append(nil)
		var again sessionize.State
		rest2, err := again.Decode(enc)
		require.NoError(t, err)
		require.Empty(t, rest2)
		require.Equal(t, s, again)
		require.LessOrEqual(t, len(rest), len(b))
	})
}
