package features_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/operators"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/operators/optest"
	"github.com/aetherai/aether/operators/sessionize"
)

var t0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

type harness = optest.Harness[features.State, event.Event, features.Record]

// pipeline is the reference chain: sessionize, then features.
func pipeline(sopts []sessionize.Option, fopts ...features.Option) operators.Operator[features.State, event.Event, features.Record] {
	return operators.Chain(sessionize.New[features.State](sopts...), features.New(fopts...))
}

func newHarness(sopts []sessionize.Option, fopts ...features.Option) *harness {
	return optest.New(pipeline(sopts, fopts...))
}

func ev(user, product string, typ event.Type, ts time.Time) event.Event {
	return event.Event{UserID: user, ProductID: product, EventType: typ, Timestamp: ts}
}

// send processes one event of user u at t0+d.
func send(t testing.TB, h *harness, u, product string, typ event.Type, d time.Duration) {
	t.Helper()
	require.NoError(t, h.Process(u, at(d), ev(u, product, typ, at(d))))
}

func reasons(h *harness) []features.Reason {
	var rs []features.Reason
	for _, e := range h.Emitted {
		rs = append(rs, e.Value.Reason)
	}
	return rs
}

const (
	rStarted = features.ReasonSessionStarted
	rClosed  = features.ReasonSessionClosed
	rInt     = features.ReasonInterval
	rEvery   = features.ReasonEveryEvent
)

// bareCtx is a minimal operators.Context for calling operators directly,
// without the harness's bookkeeping.
type bareCtx struct {
	key   string
	now   time.Time
	state *features.State
	timer time.Time
}

func (c *bareCtx) Key() string                           { return c.key }
func (c *bareCtx) EventTime() time.Time                  { return c.now }
func (c *bareCtx) Watermark() time.Time                  { return c.now }
func (c *bareCtx) Source() operators.Source              { return operators.Source{} }
func (c *bareCtx) State() *features.State                { return c.state }
func (c *bareCtx) SetTimer(at time.Time)                 { c.timer = at }
func (c *bareCtx) ClearTimer()                           { c.timer = time.Time{} }
func (c *bareCtx) Lookup(string, string) ([]byte, error) { return nil, nil }
