package features_test

import (
	"fmt"
	"time"

	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/operators"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/operators/optest"
	"github.com/aetherai/aether/operators/sessionize"
)

// The reference chain: sessionize a user's clicks with a 30-minute gap and
// emit a feature record when a session starts or closes.
func Example() {
	chain := operators.Chain(
		sessionize.New[features.State](sessionize.Gap(30*time.Minute)),
		features.New(features.EmitOnSessionChange()),
	)
	h := optest.New(chain)
	start := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, m := range []int{0, 3, 7, 50} { // minutes: the last click starts a new session
		at := start.Add(time.Duration(m) * time.Minute)
		if err := h.Process("user_1", at, event.Event{UserID: "user_1", ProductID: "prod_1", EventType: event.Click, Timestamp: at}); err != nil {
			panic(err)
		}
	}
	h.Advance(start.Add(2 * time.Hour)) // the watermark moves on: the timer closes session 2
	for _, e := range h.Emitted {
		r := e.Value
		fmt.Printf("%s: session %d, %d events, %.0fs, open=%v, total %d\n",
			r.Reason, r.Session.Seq, r.Session.Events, r.Session.DurationSeconds, r.Session.Open, r.EventsTotal)
	}
	// Output:
	// session_started: session 1, 1 events, 0s, open=true, total 1
	// session_closed: session 1, 3 events, 420s, open=false, total 3
	// session_started: session 2, 1 events, 0s, open=true, total 4
	// session_closed: session 2, 1 events, 0s, open=false, total 4
}
