package sessionize_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/operators/optest"
	"github.com/aetherai/aether/operators/sessionize"
)

// benchEvents is a stream over 1,000 users in event-time order: each user
// clicks every 90 seconds, and every 25th click comes after a 40-minute
// pause, so about 4% of events start a session.
func benchEvents(n int) ([]string, []event.Event) {
	const users = 1000
	keys := make([]string, users)
	for i := range keys {
		keys[i] = "user_" + strconv.Itoa(i)
	}
	evs := make([]event.Event, n)
	ts := t0
	for i := range evs {
		u := i % users
		if u == 0 {
			ts = ts.Add(90 * time.Second)
			if (i/users)%25 == 24 {
				ts = ts.Add(40 * time.Minute)
			}
		}
		evs[i] = event.Event{UserID: keys[u], ProductID: "prod_" + strconv.Itoa(i%5000), EventType: event.Click, Timestamp: ts.Add(time.Duration(u) * time.Millisecond)}
	}
	return keys, evs
}

// BenchmarkSessionize measures Process per event: "operator" calls it on a
// bare context (the operator's own cost), "harness" through optest.
func BenchmarkSessionize(b *testing.B) {
	keys, evs := benchEvents(1 << 16)
	b.Run("operator", func(b *testing.B) {
		op := sessionize.New[userState]()
		states := make([]userState, len(keys))
		c := &fakeCtx{}
		emitted := 0
		emit := func(sessionize.Update) error { emitted++; return nil }
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			e := &evs[i%len(evs)]
			if i%len(evs) == 0 {
				clear(states)
			}
			c.now, c.state = e.Timestamp, &states[i%len(keys)]
			if err := op.Process(c, *e, emit); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(emitted)/float64(b.N), "updates/op")
	})
	b.Run("harness", func(b *testing.B) {
		var h *optest.Harness[userState, event.Event, sessionize.Update]
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			e := &evs[i%len(evs)]
			if i%len(evs) == 0 {
				h = newHarness()
			}
			if err := h.Process(e.UserID, e.Timestamp, *e); err != nil {
				b.Fatal(err)
			}
			h.Emitted = h.Emitted[:0]
		}
	})
}

func BenchmarkStateBinary(b *testing.B) {
	s := sessionize.State{Start: t0.UnixMilli(), Last: t0.UnixMilli() + 90_000, Open: true, Seq: 7, Events: 12,
		PrevStart: t0.UnixMilli() - 7_200_000, PrevEnd: t0.UnixMilli() - 3_600_000, PrevEvents: 4}
	buf := s.Append(nil)
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		dst := make([]byte, 0, 64)
		for b.Loop() {
			dst = s.Append(dst[:0])
		}
		b.ReportMetric(float64(len(dst)), "bytes")
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		var got sessionize.State
		for b.Loop() {
			if _, err := got.Decode(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
