package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/operators"
)

type ev struct {
	ID   string    `json:"id"`
	N    int       `json:"n"`
	Time time.Time `json:"time"`
}

type counter struct {
	Sum    int   `json:"sum"`
	Events int   `json:"events"`
	Fired  []int `json:"fired"`
}

// countOp adds N to the sum, rejects N < 0, and sets a timer 10 s after
// each event.
type countOp struct{}

func (countOp) Name() string { return "count" }
func (countOp) Process(ctx operators.Context[counter], in ev, emit func(int) error) error {
	if in.N < 0 {
		return errors.New("negative")
	}
	s := ctx.State()
	s.Sum += in.N
	s.Events++
	ctx.SetTimer(ctx.EventTime().Add(10 * time.Second))
	return emit(s.Sum)
}
func (countOp) OnTimer(ctx operators.Context[counter], emit func(int) error) error {
	s := ctx.State()
	s.Fired = append(s.Fired, s.Sum)
	return emit(-s.Sum)
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newNode() Node {
	return New(Spec[counter, ev, int]{
		Chain: countOp{},
		Table: codec.JSON[counter](),
		Inputs: []Input[ev]{{Topic: "in", Codec: codec.JSON[ev](),
			EventTime: func(e ev) time.Time { return e.Time }, EventID: func(e ev) string { return e.ID }}},
		Outputs: []Output[int]{{Topic: "out", Codec: codec.JSON[int]()}},
	})
}

func rec(off int64, id string, n int, at time.Time) Record {
	b, _ := json.Marshal(ev{ID: id, N: n, Time: at})
	return Record{Topic: "in", Offset: off, Key: "k", Value: b}
}

func state(t *testing.T, table []byte) counter {
	t.Helper()
	b, err := StateBytes(table)
	require.NoError(t, err)
	var c counter
	require.NoError(t, json.Unmarshal(b, &c))
	return c
}

func TestHandleFencesReplaysAndDuplicates(t *testing.T) {
	n := newNode()
	var table []byte
	for i := range 5 {
		res := n.Handle(rec(int64(i), string(rune('a'+i)), 1, t0.Add(time.Duration(i)*time.Second)), table, nil)
		require.Equal(t, Applied, res.Outcome)
		require.Len(t, res.Emits, 1)
		table = res.Table
	}
	// Redelivery of offsets 2..4 after a crash: nothing changes.
	for i := 2; i < 5; i++ {
		res := n.Handle(rec(int64(i), string(rune('a'+i)), 1, t0), table, nil)
		require.Equal(t, Replayed, res.Outcome)
		require.Nil(t, res.Table)
		require.Empty(t, res.Emits)
	}
	// A retry of event "b" at a new offset: skipped, but the fence moves.
	res := n.Handle(rec(5, "b", 1, t0), table, nil)
	require.Equal(t, Duplicate, res.Outcome)
	require.Empty(t, res.Emits)
	table = res.Table
	require.Equal(t, Replayed, n.Handle(rec(5, "x", 1, t0), table, nil).Outcome)
	require.Equal(t, counter{Sum: 5, Events: 5}, state(t, table))
}

func TestHandleDeadLettersWithoutSideEffects(t *testing.T) {
	n := newNode()
	res := n.Handle(rec(0, "a", 3, t0), nil, nil)
	table := res.Table

	res = n.Handle(Record{Topic: "in", Offset: 1, Key: "k", Value: []byte(`{"n":`)}, table, nil)
	require.Equal(t, DeadLettered, res.Outcome)
	require.Equal(t, "decode", res.Failure.Stage)
	require.Empty(t, res.Emits)
	table = res.Table

	res = n.Handle(rec(2, "c", -1, t0), table, nil)
	require.Equal(t, DeadLettered, res.Outcome)
	require.Equal(t, "operator count: negative", res.Failure.Error())
	table = res.Table
	require.Equal(t, counter{Sum: 3, Events: 1}, state(t, table))
	// The failed records' offsets are fenced too.
	require.Equal(t, Replayed, n.Handle(rec(2, "z", 1, t0), table, nil).Outcome)
}

func TestTimersSurviveInTheTable(t *testing.T) {
	n := newNode()
	res := n.Handle(rec(0, "a", 2, t0), nil, nil)
	require.Equal(t, t0.Add(10*time.Second), res.NextTimer)
	next, wm, err := Timers(res.Table)
	require.NoError(t, err)
	require.Equal(t, t0.Add(10*time.Second), next)
	require.Equal(t, t0, wm)

	early := n.Fire("k", res.Table, t0.Add(9*time.Second), nil)
	require.Equal(t, Replayed, early.Outcome, "not due yet")

	fired := n.Fire("k", res.Table, t0.Add(10*time.Second), nil)
	require.Equal(t, Applied, fired.Outcome)
	require.Len(t, fired.Emits, 1)
	require.Equal(t, "-2", string(fired.Emits[0].Value))
	require.True(t, fired.NextTimer.IsZero())
	require.Equal(t, []int{2}, state(t, fired.Table).Fired)
}

func TestCorruptEnvelopeIsAnError(t *testing.T) {
	for _, b := range [][]byte{{9}, {1, 0x80}, {1, 0, 5}} {
		_, err := StateBytes(b)
		require.ErrorIs(t, err, ErrEnvelope)
	}
}

func FuzzEnvelope(f *testing.F) {
	e := envelope{names: []string{"x"}, wm: 5, fences: []fence{{1, 2}}, ids: []uint32{7}, timers: []timer{{"x", 9}}, state: []byte("s")}
	f.Add(e.appendTo(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		var e envelope
		if decodeEnvelope(b, &e, nil) == nil {
			var again envelope
			require.NoError(t, decodeEnvelope(e.appendTo(nil), &again, nil))
		}
	})
}

func TestPanickingOperatorIsDeadLettered(t *testing.T) {
	n := New(Spec[counter, ev, int]{
		Chain: operators.Func("boom", func(ctx operators.Context[counter], in ev, emit func(int) error) error {
			var m map[string]int
			m["x"] = in.N // nil map write
			return nil
		}),
		Table:  codec.JSON[counter](),
		Inputs: []Input[ev]{{Topic: "in", Codec: codec.JSON[ev]()}},
	})
	res := n.Handle(rec(0, "a", 1, t0), nil, nil)
	require.Equal(t, DeadLettered, res.Outcome)
	require.ErrorIs(t, res.Failure, ErrPanic)
	require.Equal(t, "operator boom: operator panicked: assignment to entry in nil map", res.Failure.Error())
}

func TestIDWindowBoundary(t *testing.T) {
	n := newNode()
	var table []byte
	for i := range DefaultIDWindow + 1 {
		res := n.Handle(rec(int64(i), fmt.Sprintf("id%d", i), 1, t0), table, nil)
		require.Equal(t, Applied, res.Outcome)
		table = res.Table
	}
	off := int64(DefaultIDWindow + 1)
	// id1 is the 16th most recent ID: still recognised. id0 fell out.
	require.Equal(t, Duplicate, n.Handle(rec(off, "id1", 1, t0), table, nil).Outcome)
	require.Equal(t, Applied, n.Handle(rec(off, "id0", 1, t0), table, nil).Outcome)
}
