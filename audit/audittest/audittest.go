// Package audittest is the conformance suite every audit.Sink must pass.
package audittest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/audit"
)

// NewSink returns a fresh, empty sink and a function that reads back every
// event it stored, in order; read is called after Close.
type NewSink func(t *testing.T) (s audit.Sink, read func() []audit.Event)

// Event returns a valid event with every field set, distinguishable by i.
func Event(t testing.TB, i int) audit.Event {
	t.Helper()
	kinds := audit.Kinds()
	e, err := audit.New(audit.Event{
		ID:            fmt.Sprintf("evt-%06d", i),
		Time:          time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC).Add(time.Duration(i) * 1_000_123 * time.Nanosecond),
		Kind:          kinds[i%len(kinds)],
		Actor:         fmt.Sprintf("key-%d", i%7),
		Resource:      fmt.Sprintf("/v1/recommendations/%d", i),
		Action:        "read",
		Outcome:       "ok",
		Subject:       fmt.Sprintf("u-%x", i*31),
		CorrelationID: fmt.Sprintf("user_events_raw/%d/%d", i%8, i),
		Attributes:    map[string]string{"status": "200", "note": "<é & \"quoted\">\n", "i": fmt.Sprint(i)},
	})
	require.NoError(t, err)
	return e
}

// Conformance runs the sink contract against sinks made by newSink.
func Conformance(t *testing.T, newSink NewSink) {
	ctx := context.Background()

	t.Run("RoundTripInOrder", func(t *testing.T) {
		s, read := newSink(t)
		var want []audit.Event
		for b := range 10 {
			var batch []audit.Event
			for i := range b + 1 {
				batch = append(batch, Event(t, len(want)+i))
			}
			require.NoError(t, s.Write(ctx, batch...))
			want = append(want, batch...)
		}
		minimal, err := audit.New(audit.Event{Kind: audit.KindJobEvent, Actor: "processor:sessionizer", Action: "start", Outcome: "ok"})
		require.NoError(t, err)
		require.NoError(t, s.Write(ctx, minimal))
		want = append(want, minimal)
		require.NoError(t, s.Write(ctx)) // an empty write is fine
		require.NoError(t, s.Close())
		require.Equal(t, want, read())
	})

	t.Run("ConcurrentWritersLoseNothing", func(t *testing.T) {
		s, read := newSink(t)
		const writers, perWriter, batch = 8, 100, 4
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := 0; i < perWriter; i += batch {
					var evs []audit.Event
					for j := range batch {
						evs = append(evs, Event(t, w*perWriter+i+j))
					}
					if err := s.Write(ctx, evs...); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		require.NoError(t, s.Close())
		got := read()
		require.Len(t, got, writers*perWriter)
		seen := map[string]int{}
		last := make([]int, writers)
		for i := range last {
			last[i] = -1
		}
		for k, e := range got {
			seen[e.ID]++
			var n int
			_, err := fmt.Sscanf(e.ID, "evt-%d", &n)
			require.NoError(t, err)
			w := n / perWriter
			require.Greater(t, n, last[w], "writer %d's events out of order", w)
			last[w] = n
			if n%batch != 0 {
				require.Equal(t, fmt.Sprintf("evt-%06d", n-1), got[k-1].ID, "a Write's events interleaved")
			}
		}
		require.Len(t, seen, writers*perWriter)
	})

	t.Run("InvalidEventsWriteNothing", func(t *testing.T) {
		s, read := newSink(t)
		bad := Event(t, 1)
		bad.Attributes = map[string]string{"Authorization": "x"}
		err := s.Write(ctx, Event(t, 0), bad)
		require.ErrorIs(t, err, audit.ErrInvalidEvent)
		unknown := Event(t, 2)
		unknown.Kind = "login"
		require.ErrorIs(t, s.Write(ctx, unknown), audit.ErrInvalidEvent)
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		require.ErrorIs(t, s.Write(canceled, Event(t, 3)), context.Canceled)
		require.NoError(t, s.Write(ctx, Event(t, 4)))
		require.NoError(t, s.Close())
		require.Equal(t, []audit.Event{Event(t, 4)}, read())
	})

	t.Run("WriteAfterCloseFails", func(t *testing.T) {
		s, read := newSink(t)
		require.NoError(t, s.Write(ctx, Event(t, 0)))
		require.NoError(t, s.Close())
		require.ErrorIs(t, s.Write(ctx, Event(t, 1)), audit.ErrClosed)
		require.NoError(t, s.Close(), "closing twice")
		require.Equal(t, []audit.Event{Event(t, 0)}, read())
	})
}
