// Package engine runs a processor's typed operator chain on one record at a
// time: it decodes the input and the table envelope, fences replays, skips
// duplicate event IDs, runs the chain, and returns what to write, emit and
// dead-letter. It knows nothing about Kafka or Goka; package processors
// feeds it from Goka callbacks, and tests feed it directly.
package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/operators"
)

// Record is one input record.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       string
	Value     []byte
	// Timestamp is the Kafka record time, the event time of streams that
	// declare none.
	Timestamp time.Time
	// Watermark is the partition's event-time clock before this record.
	Watermark time.Time
	// Lookup reads declared lookup tables; nil if there are none.
	Lookup func(table, key string) ([]byte, error)
}

// Emit is one record to produce.
type Emit struct {
	Topic string
	Key   string
	Value []byte
}

// Outcome says what happened to a record.
type Outcome uint8

const (
	// Applied: the chain ran and its effects are in the result.
	Applied Outcome = iota
	// Replayed: the record's offset is at or below the key's fence: it was
	// applied before (a redelivery after a crash or rebalance), so nothing
	// changes.
	Replayed
	// Duplicate: a record with the same event ID was applied recently for
	// this key; only the fence moves.
	Duplicate
	// DeadLettered: the record could not be decoded, failed validation, or
	// an operator rejected it; only the fence moves.
	DeadLettered
)

func (o Outcome) String() string {
	return [...]string{"applied", "replayed", "duplicate", "dead_lettered"}[o]
}

// Failure says why a record was dead-lettered.
type Failure struct {
	// Stage is "decode", "validate", "operator" or "sink".
	Stage string
	// Operator names the failing operator, for Stage "operator".
	Operator string
	Err      error
}

func (f *Failure) Error() string {
	if f.Operator != "" {
		return fmt.Sprintf("%s %s: %v", f.Stage, f.Operator, f.Err)
	}
	return fmt.Sprintf("%s: %v", f.Stage, f.Err)
}

func (f *Failure) Unwrap() error { return f.Err }

// Result is what the runtime must do for one record or timer.
type Result struct {
	Outcome Outcome
	// Table is the new table value; nil means leave the table unchanged.
	Table []byte
	Emits []Emit
	// Sinks are writes to external sinks, run by the runtime after the
	// record's emits, in order.
	Sinks   []func(context.Context) error
	Failure *Failure
	// EventTime is the record's event time (zero for replays).
	EventTime time.Time
	// NextTimer is the key's earliest pending timer after this record; zero
	// if it has none.
	NextTimer time.Time
}

// Observer learns how long operators take and when they fail; the runtime
// uses it for metrics. It is called for every failure and for a sample of
// one in LatencySample records; d is zero for failures outside the sample.
type Observer interface {
	Operator(name string, d time.Duration, err error)
}

// Node is a processor's chain with its codecs, behind an untyped interface.
type Node interface {
	// Stateful reports whether the processor has a group table.
	Stateful() bool
	// Operators lists the chain's operators in order.
	Operators() []string
	// Handle processes one input record given the key's table value.
	Handle(rec Record, table []byte, obs Observer) Result
	// Fire runs every timer of key due at watermark, in deadline order.
	Fire(key string, table []byte, watermark time.Time, obs Observer) Result
}

// Input is a typed input stream.
type Input[In any] struct {
	Topic     string
	Codec     codec.Codec[In]
	EventTime func(In) time.Time
	EventID   func(In) string
	Validate  func(In) error
}

// Output is a typed output stream.
type Output[Out any] struct {
	Topic string
	Codec codec.Codec[Out]
	Key   func(Out) string
}

// Sink receives a processor's output values outside Kafka.
type Sink[Out any] interface {
	Name() string
	Write(ctx context.Context, key string, v Out) error
}

// Spec is everything a typed node needs.
type Spec[S, In, Out any] struct {
	Chain   operators.Operator[S, In, Out]
	Table   codec.Codec[S] // nil for a stateless processor
	Inputs  []Input[In]
	Outputs []Output[Out]
	Sinks   []Sink[Out]
	// IDWindow is how many recent event IDs per key are remembered for
	// de-duplication.
	IDWindow int
}

// DefaultIDWindow is the number of recent event IDs remembered per key: a
// retry is recognised while fewer than that many other events of the key
// were applied since the original. Each ID costs 4 bytes in every table
// write, which the pipeline benchmark shows (see bench/README.md).
const DefaultIDWindow = 8

// New returns the node for spec.
func New[S, In, Out any](spec Spec[S, In, Out]) Node {
	n := &node[S, In, Out]{spec: spec, inputs: map[string]input[In]{}}
	for i := range spec.Inputs {
		in := &spec.Inputs[i]
		n.inputs[in.Topic] = input[In]{in, topicHash(in.Topic)}
	}
	if n.spec.IDWindow == 0 {
		n.spec.IDWindow = DefaultIDWindow
	}
	n.names = operators.Names(spec.Chain)
	n.scratch.New = func() any {
		sc := &scratch[S, In, Out]{n: n}
		sc.emitFn = sc.emit
		return sc
	}
	return n
}

type node[S, In, Out any] struct {
	scratch sync.Pool // of *scratch[S, In, Out]
	spec    Spec[S, In, Out]
	inputs  map[string]input[In]
	names   []string
}

// input is an input stream with the hash its fences are stored under.
type input[In any] struct {
	*Input[In]
	hash uint32
}

func (n *node[S, In, Out]) Stateful() bool      { return n.spec.Table != nil }
func (n *node[S, In, Out]) Operators() []string { return n.names }

// scratch is the per-record working memory of Handle, recycled through a
// pool so that the steady state allocates only what leaves the call (the
// table value, emitted bytes) and what codecs and operators allocate.
type scratch[S, In, Out any] struct {
	n      *node[S, In, Out]
	env    envelope
	ctx    opContext[S]
	res    *Result
	result Result
	key    string
	emitFn func(Out) error // s.emit, bound once
	// records counts the records handled with this scratch, to sample
	// operator latency.
	records uint64
}

// LatencySample is the share of records (one in LatencySample) whose
// operator latency is measured: timing every record would cost more than
// some operators do. Timers are always measured.
const LatencySample = 8

func (s *scratch[S, In, Out]) emit(o Out) error { return s.n.emit(s.key, o, s.res) }

func (n *node[S, In, Out]) Handle(rec Record, table []byte, obs Observer) Result {
	in, ok := n.inputs[rec.Topic]
	if !ok {
		return Result{Outcome: DeadLettered, Failure: &Failure{Stage: "decode", Err: fmt.Errorf("topic %q is not an input of this processor", rec.Topic)}}
	}
	sc := n.scratch.Get().(*scratch[S, In, Out])
	defer n.scratch.Put(sc)
	env := &sc.env
	if n.Stateful() {
		if err := decodeEnvelope(table, env, n.names); err != nil {
			// A corrupt table value is not the record's fault, but dropping
			// the record would lose it: dead-letter it and leave the table
			// alone, so an operator can inspect both.
			return Result{Outcome: DeadLettered, Failure: &Failure{Stage: "state", Err: err}}
		}
		if last, ok := env.fenceOf(in.hash); ok && rec.Offset <= last {
			return Result{Outcome: Replayed}
		}
		env.setFence(in.hash, rec.Offset)
	}

	v, err := in.Codec.Decode(rec.Value)
	if err != nil {
		return n.fenced(env, Result{Outcome: DeadLettered, Failure: &Failure{Stage: "decode", Err: err}})
	}
	if in.Validate != nil {
		if err := in.Validate(v); err != nil {
			return n.fenced(env, Result{Outcome: DeadLettered, Failure: &Failure{Stage: "validate", Err: err}})
		}
	}
	at := rec.Timestamp
	if in.EventTime != nil {
		at = in.EventTime(v)
	}
	var idh uint32
	if in.EventID != nil && n.Stateful() {
		if id := in.EventID(v); id != "" {
			idh = idHash(id)
			if env.seen(idh) {
				return n.fenced(env, Result{Outcome: Duplicate, EventTime: at})
			}
		}
	}

	var state S
	if n.Stateful() && len(env.state) > 0 {
		if state, err = n.spec.Table.Decode(env.state); err != nil {
			return Result{Outcome: DeadLettered, Failure: &Failure{Stage: "state", Err: err}}
		}
	}
	wm := rec.Watermark
	if at.After(wm) {
		wm = at
	}
	env.wm = max(env.wm, wm.UnixMilli())
	c := &sc.ctx
	*c = opContext[S]{key: rec.Key, at: at, wm: wm, state: &state, obs: obs, env: env, lookup: rec.Lookup,
		src: operators.Source{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}}
	c.stack = c.frames[:0]
	c.changes = c.changeBuf[:0]
	sc.records++
	c.timed = sc.records%LatencySample == 0
	sc.result = Result{Outcome: Applied, EventTime: at}
	res := &sc.result
	sc.res, sc.key = res, rec.Key
	err = n.run(c, v, sc.emitFn)
	if err != nil {
		return n.fenced(env, Result{Outcome: DeadLettered, EventTime: at, Failure: c.failure(err)})
	}
	if idh != 0 {
		env.remember(idh, n.spec.IDWindow)
	}
	if n.Stateful() {
		c.applyTimers()
		if res.Table, err = n.encode(env, state, len(table)); err != nil {
			return n.fenced(env, Result{Outcome: DeadLettered, EventTime: at, Failure: &Failure{Stage: "state", Err: err}})
		}
		res.NextTimer = env.nextTimer()
	}
	return *res
}

// run runs the chain on one input, turning a panic into an error.
func (n *node[S, In, Out]) run(c *opContext[S], v In, emit func(Out) error) (err error) {
	defer recoverPanic(&err)
	return operators.Invoke(c, n.spec.Chain, v, emit)
}

// fire runs the timer of operator op, turning a panic into an error.
func (n *node[S, In, Out]) fire(c *opContext[S], op string, emit func(Out) error) (err error) {
	defer recoverPanic(&err)
	_, err = operators.FireTimer(c, n.spec.Chain, op, emit)
	return err
}

// encode writes the envelope with state as its tail, appending the state
// in place when the codec can.
func (n *node[S, In, Out]) encode(env *envelope, state S, hint int) ([]byte, error) {
	if a, ok := n.spec.Table.(codec.Appender[S]); ok {
		env.state = nil
		buf := env.appendTo(make([]byte, 0, hint+64))
		return a.Append(buf, state)
	}
	b, err := n.spec.Table.Encode(state)
	if err != nil {
		return nil, err
	}
	env.state = b
	return env.appendTo(make([]byte, 0, len(b)+64)), nil
}

// fenced completes a result that changes no state: only the envelope (the
// fence, and nothing else) is written.
func (n *node[S, In, Out]) fenced(env *envelope, res Result) Result {
	if n.Stateful() {
		res.Table = env.appendTo(make([]byte, 0, len(env.state)+64))
		res.NextTimer = env.nextTimer()
	}
	return res
}

func (n *node[S, In, Out]) Fire(key string, table []byte, watermark time.Time, obs Observer) Result {
	var env envelope
	if !n.Stateful() {
		return Result{Outcome: Replayed}
	}
	if err := decodeEnvelope(table, &env, n.names); err != nil {
		return Result{Outcome: DeadLettered, Failure: &Failure{Stage: "state", Err: err}}
	}
	due := env.due(watermark.UnixMilli())
	if len(due) == 0 {
		return Result{Outcome: Replayed, NextTimer: env.nextTimer()}
	}
	var state S
	var err error
	if len(env.state) > 0 {
		if state, err = n.spec.Table.Decode(env.state); err != nil {
			return Result{Outcome: DeadLettered, Failure: &Failure{Stage: "state", Err: err}}
		}
	}
	res := Result{Outcome: Applied, EventTime: watermark}
	env.wm = max(env.wm, watermark.UnixMilli())
	for _, t := range due {
		env.clearTimer(t.op)
		c := &opContext[S]{key: key, at: time.UnixMilli(t.deadline).UTC(), wm: watermark, state: &state, obs: obs, env: &env, timed: true}
		c.stack = c.frames[:0]
		if err := n.fire(c, t.op, func(o Out) error { return n.emit(key, o, &res) }); err != nil {
			// A failing timer has no input record to dead-letter: report it
			// and drop the timer, keeping the state as it was before it.
			return Result{Outcome: DeadLettered, Failure: c.failure(err)}
		}
		c.applyTimers()
	}
	if res.Table, err = n.encode(&env, state, len(table)); err != nil {
		return Result{Outcome: DeadLettered, Failure: &Failure{Stage: "state", Err: err}}
	}
	res.NextTimer = env.nextTimer()
	return res
}

// ErrPanic is wrapped by the failure of an operator that panicked: the
// record is dead-lettered like any rejected record, and the process lives.
var ErrPanic = errors.New("operator panicked")

// recoverPanic, deferred, turns an operator's panic into an error.
func recoverPanic(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %v", ErrPanic, r)
	}
}

func (n *node[S, In, Out]) emit(key string, o Out, res *Result) error {
	for _, out := range n.spec.Outputs {
		b, err := out.Codec.Encode(o)
		if err != nil {
			return fmt.Errorf("encode for %s: %w", out.Topic, err)
		}
		k := key
		if out.Key != nil {
			k = out.Key(o)
		}
		res.Emits = append(res.Emits, Emit{Topic: out.Topic, Key: k, Value: b})
	}
	for _, s := range n.spec.Sinks {
		res.Sinks = append(res.Sinks, func(ctx context.Context) error { return s.Write(ctx, key, o) })
	}
	return nil
}

func (e *envelope) nextTimer() time.Time {
	var min int64
	for _, t := range e.timers {
		if min == 0 || t.deadline < min {
			min = t.deadline
		}
	}
	if min == 0 {
		return time.Time{}
	}
	return time.UnixMilli(min).UTC()
}

func (e *envelope) due(wm int64) []timer {
	var due []timer
	for _, t := range e.timers {
		if t.deadline <= wm {
			due = append(due, t)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if due[i].deadline != due[j].deadline {
			return due[i].deadline < due[j].deadline
		}
		return due[i].op < due[j].op
	})
	return due
}

func (e *envelope) clearTimer(op string) {
	for i, t := range e.timers {
		if t.op == op {
			e.timers = append(e.timers[:i], e.timers[i+1:]...)
			return
		}
	}
}

func (e *envelope) setTimer(op string, deadline int64) {
	for i := range e.timers {
		if e.timers[i].op == op {
			e.timers[i].deadline = deadline
			return
		}
	}
	e.timers = append(e.timers, timer{op, deadline})
}

type timerChange struct {
	op       string
	deadline int64
	clear    bool
}

// opContext implements operators.Context for one record or timer.
type opContext[S any] struct {
	key       string
	at, wm    time.Time
	state     *S
	src       operators.Source
	obs       Observer
	env       *envelope
	lookup    func(table, key string) ([]byte, error)
	failed    string
	timed     bool // measure operator latency for this record
	stack     []frame
	frames    [4]frame
	changes   []timerChange
	changeBuf [2]timerChange
}

func (c *opContext[S]) Key() string              { return c.key }
func (c *opContext[S]) EventTime() time.Time     { return c.at }
func (c *opContext[S]) Watermark() time.Time     { return c.wm }
func (c *opContext[S]) Source() operators.Source { return c.src }
func (c *opContext[S]) State() *S                { return c.state }

func (c *opContext[S]) SetTimer(at time.Time) {
	c.changes = append(c.changes, timerChange{op: c.current(), deadline: at.UnixMilli()})
}

func (c *opContext[S]) ClearTimer() {
	c.changes = append(c.changes, timerChange{op: c.current(), clear: true})
}

func (c *opContext[S]) Lookup(table, key string) ([]byte, error) {
	if c.lookup == nil {
		return nil, fmt.Errorf("table %q is not a declared lookup of this processor", table)
	}
	return c.lookup(table, key)
}

type frame struct {
	name  string
	start time.Time
}

func (c *opContext[S]) Enter(name string) {
	f := frame{name: name}
	if c.timed {
		f.start = time.Now()
	}
	c.stack = append(c.stack, f)
}

// current is the operator running now (the innermost entered).
func (c *opContext[S]) current() string {
	if len(c.stack) == 0 {
		return ""
	}
	return c.stack[len(c.stack)-1].name
}

func (c *opContext[S]) Leave(err error) {
	f := c.stack[len(c.stack)-1]
	c.stack = c.stack[:len(c.stack)-1]
	if err != nil && c.failed == "" {
		c.failed = f.name
	}
	if c.obs != nil && (c.timed || err != nil) {
		var d time.Duration
		if c.timed {
			d = time.Since(f.start)
		}
		c.obs.Operator(f.name, d, err)
	}
}

func (c *opContext[S]) applyTimers() {
	for _, ch := range c.changes {
		if ch.clear {
			c.env.clearTimer(ch.op)
		} else {
			c.env.setTimer(ch.op, ch.deadline)
		}
	}
}

func (c *opContext[S]) failure(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	return &Failure{Stage: "operator", Operator: c.failed, Err: err}
}
