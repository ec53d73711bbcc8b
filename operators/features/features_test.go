package features_test

import (
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/operators"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/operators/sessionize"
)

func TestName(t *testing.T) {
	op := features.New()
	assert.Equal(t, "features", op.Name())
	_, timed := op.(operators.Timed[features.State, features.Record])
	assert.True(t, timed)
	assert.NoError(t, operators.CheckNames(pipeline(nil)))
	assert.Equal(t, []string{"sessionize", "features"}, operators.Names(pipeline(nil)))
}

func TestSessionsSplitAtGap(t *testing.T) {
	h := newHarness(nil, features.EmitOnSessionChange())
	send(t, h, "u", "p1", event.View, 0)
	send(t, h, "u", "p2", event.Click, 5*time.Minute)
	send(t, h, "u", "p3", event.AddToCart, 40*time.Minute)
	require.Equal(t, []features.Reason{rStarted, rClosed, rStarted}, reasons(h))

	items := []features.RecentItem{{"p1", event.View, at(0)}, {"p2", event.Click, at(5 * time.Minute)}}
	assert.Equal(t, features.Record{
		UserID: "u", EventsTotal: 2,
		Session: features.SessionFeatures{Seq: 1, Start: at(0), LastEventAt: at(5 * time.Minute), DurationSeconds: 300,
			Events: 2, Open: false, Counts: features.Counts{View: 1, Click: 1}},
		RecentItems: items, LifetimeCounts: features.Counts{View: 1, Click: 1}, Sessions: 1,
		AvgSessionSeconds: 300, LastSessionSeconds: 300, FirstSeen: at(0), LastSeen: at(5 * time.Minute),
		Reason: rClosed,
	}, h.Emitted[1].Value)
	assert.Equal(t, features.Record{
		UserID: "u", EventsTotal: 3,
		Session: features.SessionFeatures{Seq: 2, Start: at(40 * time.Minute), LastEventAt: at(40 * time.Minute),
			Events: 1, Open: true, Counts: features.Counts{AddToCart: 1}},
		RecentItems:    append(items, features.RecentItem{"p3", event.AddToCart, at(40 * time.Minute)}),
		LifetimeCounts: features.Counts{View: 1, Click: 1, AddToCart: 1}, Sessions: 2,
		AvgSessionSeconds: 300, LastSessionSeconds: 300, FirstSeen: at(0), LastSeen: at(40 * time.Minute),
		GapBeforeSessionSeconds: 35 * 60, Reason: rStarted,
	}, h.Emitted[2].Value)
	assert.Equal(t, h.States["u"].Record("u"), withReason(h.Emitted[2].Value, ""), "the table is current")
}

func withReason(r features.Record, reason features.Reason) features.Record {
	r.Reason = reason
	return r
}

func TestSessionClosedByTimer(t *testing.T) {
	h := newHarness(nil) // gap 30m, grace 2m, EmitInterval(5m)
	send(t, h, "u", "p1", event.Click, 0)
	send(t, h, "u", "p2", event.Click, time.Minute)
	assert.Equal(t, []features.Reason{rStarted}, reasons(h))
	assert.Equal(t, map[string]time.Time{"sessionize": at(33 * time.Minute), "features": at(5 * time.Minute)}, h.Timers("u"))

	h.Advance(at(33*time.Minute - time.Millisecond)) // flushes the pending change only
	require.Equal(t, []features.Reason{rStarted, rInt}, reasons(h))
	assert.Equal(t, uint64(2), h.Emitted[1].Value.EventsTotal)
	assert.True(t, h.Emitted[1].Value.Session.Open)

	h.Advance(at(33 * time.Minute)) // no further event: the timer closes the session
	require.Equal(t, []features.Reason{rStarted, rInt, rClosed}, reasons(h))
	final := h.Emitted[2].Value
	assert.False(t, final.Session.Open)
	assert.Equal(t, 60.0, final.Session.DurationSeconds)
	assert.Equal(t, uint64(2), final.EventsTotal)
	assert.Equal(t, 60.0, final.AvgSessionSeconds)
	assert.Equal(t, 60.0, final.LastSessionSeconds)
	assert.Equal(t, uint32(1), final.Sessions)
	assert.Empty(t, h.Timers("u"))
	assert.False(t, h.States["u"].Pending)
}

func TestSessionStartClearsPendingTimer(t *testing.T) {
	h := newHarness(nil, features.EmitInterval(time.Hour))
	send(t, h, "u", "p", event.Click, 0)
	send(t, h, "u", "p", event.Click, time.Minute) // pending, flush at 1h
	assert.Equal(t, at(time.Hour), h.Timers("u")["features"])
	send(t, h, "u", "p", event.Click, 32*time.Minute) // gap exceeded before the sessionize timer
	// The event that ends the first session starts the second: one record
	// (not a close and a start) carries both, with the pending change.
	assert.Equal(t, []features.Reason{rStarted, rStarted}, reasons(h))
	assert.Equal(t, map[string]time.Time{"sessionize": at(64 * time.Minute)}, h.Timers("u"))
	second := h.Emitted[1].Value
	assert.Equal(t, uint64(3), second.EventsTotal)
	assert.Equal(t, 60.0, second.LastSessionSeconds, "the first session's final duration")
	assert.Equal(t, uint32(2), second.Sessions)
}

func TestReordered(t *testing.T) {
	h := newHarness([]sessionize.Option{sessionize.Grace(3 * time.Minute)}, features.EmitEvery())
	send(t, h, "u", "p1", event.Click, 10*time.Minute)
	send(t, h, "u", "p2", event.Click, 12*time.Minute)
	send(t, h, "u", "p3", event.View, 11*time.Minute)             // 1m late: same session
	send(t, h, "u", "p4", event.View, 10*time.Minute-time.Second) // 2m1s late: moves the start
	r := h.States["u"].Record("u")
	assert.Equal(t, features.SessionFeatures{Seq: 1, Start: at(10*time.Minute - time.Second), LastEventAt: at(12 * time.Minute),
		DurationSeconds: 121, Events: 4, Open: true, Counts: features.Counts{View: 2, Click: 2}}, r.Session)
	assert.Equal(t, []string{"p4", "p1", "p3", "p2"}, productIDs(r.RecentItems))
	assert.Equal(t, uint64(4), r.EventsTotal)
	assert.Equal(t, at(10*time.Minute-time.Second), r.FirstSeen)
	assert.Equal(t, at(12*time.Minute), r.LastSeen)
	assert.Equal(t, []features.Reason{rStarted, rEvery, rEvery, rEvery}, reasons(h))
}

func productIDs(items []features.RecentItem) []string {
	var ids []string
	for _, it := range items {
		ids = append(ids, it.ProductID)
	}
	return ids
}

func TestPreviousSession(t *testing.T) {
	t.Run("after the timer closed it", func(t *testing.T) {
		h := newHarness(nil, features.EmitEvery())
		send(t, h, "u", "p1", event.Click, 0)
		send(t, h, "u", "p2", event.Click, 10*time.Minute)
		send(t, h, "other", "p", event.Click, 50*time.Minute) // closes u's session at 42m
		require.Equal(t, []features.Reason{rStarted, rEvery, rClosed, rStarted}, reasons(h))
		send(t, h, "u", "p3", event.View, 9*time.Minute) // 1m behind u's latest: previous session
		r := h.Emitted[4].Value
		assert.Equal(t, rEvery, r.Reason)
		assert.Equal(t, uint64(3), r.EventsTotal)
		assert.Equal(t, features.Counts{View: 1, Click: 2}, r.LifetimeCounts)
		assert.Equal(t, features.SessionFeatures{Seq: 1, Start: at(0), LastEventAt: at(10 * time.Minute), DurationSeconds: 600,
			Events: 2, Open: false, Counts: features.Counts{Click: 2}}, r.Session)
		assert.Equal(t, 600.0, r.LastSessionSeconds)
		assert.Equal(t, []string{"p1", "p3", "p2"}, productIDs(r.RecentItems))
	})
	t.Run("while the next is open", func(t *testing.T) {
		h := newHarness([]sessionize.Option{sessionize.Gap(10 * time.Minute), sessionize.Grace(time.Hour)}, features.EmitEvery())
		send(t, h, "u", "p1", event.Click, 0)
		send(t, h, "u", "p2", event.Click, 20*time.Minute)
		send(t, h, "u", "p3", event.View, 5*time.Minute) // before 20m-10m: previous session
		require.Equal(t, []features.Reason{rStarted, rClosed, rStarted, rEvery}, reasons(h))
		r := h.Emitted[3].Value
		assert.Equal(t, features.Counts{Click: 1}, r.Session.Counts)
		assert.Equal(t, uint32(1), r.Session.Events)
		assert.Equal(t, features.Counts{View: 1, Click: 2}, r.LifetimeCounts)
		assert.Equal(t, uint64(3), r.EventsTotal)
		assert.Equal(t, 0.0, r.LastSessionSeconds, "closed session statistics are final")
		assert.Equal(t, 0.0, r.AvgSessionSeconds)
		assert.Equal(t, 900.0, r.GapBeforeSessionSeconds, "from 5m, the previous activity, to 20m")
		assert.Equal(t, 1200.0, h.Emitted[2].Value.GapBeforeSessionSeconds, "before the previous event: 0 to 20m")
	})
}

func TestLateEvents(t *testing.T) {
	t.Run("lifetime only", func(t *testing.T) {
		h := newHarness([]sessionize.Option{sessionize.OnLate(sessionize.LateLifetimeOnly)}, features.EmitEvery())
		send(t, h, "u", "p1", event.Click, 0)
		send(t, h, "u", "p2", event.Click, 10*time.Minute)
		send(t, h, "u", "p3", event.View, 5*time.Minute) // 5m late, grace 2m
		require.Len(t, h.Emitted, 3)
		r := h.Emitted[2].Value
		assert.Equal(t, rEvery, r.Reason)
		assert.Equal(t, uint64(1), r.LateEvents)
		assert.Equal(t, uint64(3), r.EventsTotal)
		assert.Equal(t, uint32(2), r.Session.Events)
		assert.Equal(t, features.Counts{Click: 2}, r.Session.Counts)
		assert.Equal(t, features.Counts{View: 1, Click: 2}, r.LifetimeCounts)
		assert.Equal(t, []string{"p1", "p3", "p2"}, productIDs(r.RecentItems))
	})
	t.Run("reject", func(t *testing.T) {
		h := newHarness([]sessionize.Option{sessionize.OnLate(sessionize.LateReject)}, features.EmitEvery())
		send(t, h, "u", "p1", event.Click, 0)
		send(t, h, "u", "p2", event.Click, 10*time.Minute)
		err := h.Process("u", at(5*time.Minute), ev("u", "p3", event.View, at(5*time.Minute)))
		require.ErrorIs(t, err, sessionize.ErrLate)
		assert.Contains(t, err.Error(), "5m0s late")
		assert.Len(t, h.Emitted, 2)
		st := h.States["u"]
		assert.Equal(t, uint64(2), st.EventsTotal)
		assert.Equal(t, uint64(0), st.Session.Late)
		assert.Len(t, st.Recent, 2)
	})
}

func TestEmitPolicies(t *testing.T) {
	// A burst of 100 clicks, one a second, then nothing.
	cases := []struct {
		name        string
		opt         features.Option
		during, all []features.Reason
		totals      []uint64 // EventsTotal of the interval records
	}{
		{name: "every", opt: features.EmitEvery(),
			during: append([]features.Reason{rStarted}, repeat(rEvery, 99)...),
			all:    append(append([]features.Reason{rStarted}, repeat(rEvery, 99)...), rClosed)},
		{name: "session change", opt: features.EmitOnSessionChange(),
			during: []features.Reason{rStarted}, all: []features.Reason{rStarted, rClosed}},
		{name: "interval default", opt: nil,
			during: []features.Reason{rStarted}, all: []features.Reason{rStarted, rInt, rClosed}, totals: []uint64{100}},
		{name: "interval 30s", opt: features.EmitInterval(30 * time.Second),
			during: []features.Reason{rStarted, rInt, rInt, rInt},
			all:    []features.Reason{rStarted, rInt, rInt, rInt, rInt, rClosed}, totals: []uint64{30, 60, 90, 100}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(nil, c.opt)
			for i := range 100 {
				send(t, h, "u", "p"+strconv.Itoa(i), event.Click, time.Duration(i)*time.Second)
			}
			assert.Equal(t, c.during, reasons(h))
			h.Advance(at(24 * time.Hour))
			assert.Equal(t, c.all, reasons(h))
			var totals []uint64
			for _, e := range h.Emitted {
				if e.Value.Reason == rInt {
					totals = append(totals, e.Value.EventsTotal)
				}
			}
			assert.Equal(t, c.totals, totals)
			last := h.Emitted[len(h.Emitted)-1].Value
			assert.Equal(t, uint64(100), last.EventsTotal)
			assert.Equal(t, uint64(100), last.Session.Counts.Click)
			assert.Len(t, last.RecentItems, 20)
			assert.Equal(t, "p80", last.RecentItems[0].ProductID)
			assert.Equal(t, "p99", last.RecentItems[19].ProductID)
		})
	}
}

func repeat(r features.Reason, n int) []features.Reason {
	rs := make([]features.Reason, n)
	for i := range rs {
		rs[i] = r
	}
	return rs
}

func TestRecentItemsRing(t *testing.T) {
	h := newHarness(nil, features.RecentItems(3), features.EmitEvery())
	for i, d := range []time.Duration{1, 2, 3, 4} {
		send(t, h, "u", "a"+strconv.Itoa(i+1), event.Click, d*time.Second)
	}
	assert.Equal(t, []string{"a2", "a3", "a4"}, productIDs(h.States["u"].Record("u").RecentItems))
	send(t, h, "u", "a5", event.View, 3500*time.Millisecond) // out of order: inserted by time
	assert.Equal(t, []string{"a3", "a5", "a4"}, productIDs(h.States["u"].Record("u").RecentItems))
	send(t, h, "u", "a6", event.View, time.Second) // older than every kept item: not kept
	assert.Equal(t, []string{"a3", "a5", "a4"}, productIDs(h.States["u"].Record("u").RecentItems))
	send(t, h, "u", "a7", event.Purchase, 3*time.Second) // equal times keep arrival order
	rec := h.States["u"].Record("u")
	assert.Equal(t, []string{"a7", "a5", "a4"}, productIDs(rec.RecentItems))
	assert.Equal(t, event.Purchase, rec.RecentItems[0].EventType)
	assert.Equal(t, uint64(7), rec.EventsTotal)

	h0 := newHarness(nil, features.RecentItems(0))
	send(t, h0, "u", "a", event.Click, 0)
	assert.Empty(t, h0.States["u"].Recent)
	assert.NotNil(t, h0.Emitted[0].Value.RecentItems)

	// A ring larger than the option (the option was lowered) shrinks.
	hs := newHarness(nil, features.RecentItems(2))
	hs.States["u"] = &features.State{Recent: []features.Item{{"x", 1, 1}, {"y", 1, 2}, {"z", 1, 3}}}
	send(t, hs, "u", "a", event.Click, 0)
	assert.Len(t, hs.States["u"].Recent, 2)
}

func TestInvalidInput(t *testing.T) {
	h := newHarness(nil)
	send(t, h, "u", "p", event.Click, 0)
	before := *h.States["u"]
	err := h.Process("u", at(time.Second), ev("u", "p", "hover", at(time.Second)))
	require.ErrorIs(t, err, event.ErrInvalid)
	assert.Equal(t, before, *h.States["u"])

	op := features.New()
	c := &bareCtx{key: "u", now: at(0), state: &features.State{}}
	err = op.Process(c, sessionize.Update{Kind: 0, Event: ev("u", "p", event.Click, at(0))}, func(features.Record) error { return nil })
	assert.ErrorContains(t, err, "unknown update kind")
	boom := errors.New("boom")
	err = op.Process(c, sessionize.Update{Kind: sessionize.Started, Event: ev("u", "p", event.Click, at(0))}, func(features.Record) error { return boom })
	assert.ErrorIs(t, err, boom)
}

func TestInvalidOptionsKeepDefaults(t *testing.T) {
	h := newHarness(nil, features.EmitInterval(0), features.RecentItems(-1), nil)
	for i := range 25 {
		send(t, h, "u", "p"+strconv.Itoa(i), event.Click, time.Duration(i)*time.Second)
	}
	assert.Len(t, h.States["u"].Recent, features.DefaultRecentItems)
	assert.Equal(t, at(features.DefaultInterval), h.Timers("u")["features"])
}

func TestStaleFeaturesTimer(t *testing.T) {
	op := features.New(features.EmitInterval(time.Minute)).(operators.Timed[features.State, features.Record])
	st := &features.State{Emitted: true, Pending: true, LastEmit: at(0).UnixMilli()}
	c := &bareCtx{key: "u", now: at(30 * time.Second), state: st}
	var got []features.Record
	emit := func(r features.Record) error { got = append(got, r); return nil }
	require.NoError(t, op.OnTimer(c, emit))
	assert.Empty(t, got)
	assert.Equal(t, at(time.Minute), c.timer, "re-armed")
	c.now = at(time.Minute)
	require.NoError(t, op.OnTimer(c, emit))
	require.Len(t, got, 1)
	assert.Equal(t, rInt, got[0].Reason)
	require.NoError(t, op.OnTimer(c, emit))
	assert.Len(t, got, 1, "nothing pending")
}

func TestRecordJSON(t *testing.T) {
	h := newHarness(nil)
	send(t, h, "u", "p", event.AddToCart, 0)
	b, err := json.Marshal(h.Emitted[0].Value)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Equal(t, []string{"avgSessionSeconds", "eventsTotal", "firstSeen", "gapBeforeSessionSeconds", "lastSeen",
		"lastSessionSeconds", "lateEvents", "lifetimeCounts", "reason", "recentItems", "session", "sessions", "userId"}, keys(m))
	sess := m["session"].(map[string]any)
	assert.Equal(t, []string{"counts", "durationSeconds", "events", "lastEventAt", "open", "seq", "start"}, keys(sess))
	assert.Equal(t, map[string]any{"view": 0.0, "click": 0.0, "addToCart": 1.0, "purchase": 0.0}, sess["counts"])
	item := m["recentItems"].([]any)[0].(map[string]any)
	assert.Equal(t, map[string]any{"productId": "p", "eventType": "add_to_cart", "at": "2024-03-01T12:00:00Z"}, item)
	assert.Equal(t, "session_started", m["reason"])
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
