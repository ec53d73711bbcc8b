// Package operators holds the contract every Aether operator follows, and
// the helpers that compose operators into a chain. The built-in operators
// live in sub-packages, one each.
//
// # The contract
//
// An operator is a value implementing Operator[S, In, Out]. For each input
// value of the record being processed, the runtime calls Process once, on
// the goroutine that owns the record's partition; calls for one key never
// overlap, so an operator needs no locks for per-key state.
//
//   - State: ctx.State() returns a pointer to the key's table value S,
//     decoded once per record and shared by every operator of the chain.
//     Mutate it in place; the runtime writes it back once after the whole
//     chain succeeded. A key seen for the first time has the zero S.
//   - Emitting: call emit(v) for each value to pass to the next operator;
//     the last operator's values go to the processor's output streams and
//     sinks. Emitted values are buffered and only leave the processor when
//     the whole chain succeeded, so a failing record has no partial effect.
//   - Event time: ctx.EventTime() is the record's event time (declared on the
//     input stream); ctx.Watermark() is the partition's event-time clock.
//     Operators must not read the wall clock for their logic.
//   - Timers: ctx.SetTimer(at) asks for OnTimer (see Timed) once the
//     partition's watermark passes at. One timer per operator and key; a new
//     one replaces the old. Timers are stored in the table with the state,
//     so they survive restarts.
//   - Errors: return an error to reject the record. The runtime discards the
//     state changes and emissions of the whole chain for that record, writes
//     the original bytes and the reason to the input's dead-letter topic,
//     counts it, and goes on with the next record. Never panic for one record.
//   - Determinism: given the same state and input, an operator must make the
//     same changes; the runtime relies on it to make replays effectively-once.
package operators

import (
	"strconv"
	"time"
)

// Operator processes values of type In for one key at a time, reads and
// updates the key's state S, and passes values of type Out on.
type Operator[S, In, Out any] interface {
	// Name identifies the operator in metrics, dead-letter reasons and
	// timers; it must be unique within a processor's chain.
	Name() string
	Process(ctx Context[S], in In, emit func(Out) error) error
}

// Timed is implemented by operators that call SetTimer. OnTimer runs in the
// same per-key context as Process, with ctx.EventTime() set to the timer's
// deadline.
type Timed[S, Out any] interface {
	OnTimer(ctx Context[S], emit func(Out) error) error
}

// Source says where the record being processed came from.
type Source struct {
	Topic     string
	Partition int32
	Offset    int64
}

// CorrelationID is "<topic>/<partition>/<offset>": the id the audit trail
// and the aether-correlation-id header of emitted records give the record,
// so that anything an operator stores elsewhere (a cache entry, say) can be
// traced back to it. It is empty when a timer fires.
func (s Source) CorrelationID() string {
	if s.Topic == "" {
		return ""
	}
	return s.Topic + "/" + strconv.FormatInt(int64(s.Partition), 10) + "/" + strconv.FormatInt(s.Offset, 10)
}

// Context is what an operator sees of the record being processed.
type Context[S any] interface {
	// Key is the record's key (the userId in the reference pipeline).
	Key() string
	// EventTime is the record's event time, or the deadline of the timer
	// being fired.
	EventTime() time.Time
	// Watermark is the highest event time seen on the record's partition.
	Watermark() time.Time
	// Source is the record's topic, partition and offset; Topic is empty
	// when a timer fires.
	Source() Source
	// State is the key's table value, to read and mutate in place.
	State() *S
	// SetTimer schedules the calling operator's OnTimer for this key once
	// the watermark reaches at, replacing any earlier timer of the operator.
	SetTimer(at time.Time)
	// ClearTimer cancels the calling operator's timer for this key.
	ClearTimer()
	Lookuper
}

// Lookuper reads other processors' tables that the processor declared as
// lookups. Use topology.Table[V].Get for typed access.
type Lookuper interface {
	// Lookup returns the raw table value for key, or nil if there is none.
	Lookup(table, key string) ([]byte, error)
}

// Observer is implemented by the runtime's Context to learn which operator
// runs, for timers, metrics and error attribution. Chain calls it; operator
// authors do not need it.
type Observer interface {
	// Enter announces that the named operator starts.
	Enter(name string)
	// Leave announces that the operator entered last has finished with err.
	Leave(err error)
}
