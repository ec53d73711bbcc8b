// Package optest runs operators without a broker: a Harness holds per-key
// state, fires timers when its watermark passes them, and records what the
// chain emits. Use it in operator unit tests and benchmarks.
package optest

import (
	"fmt"
	"sort"
	"time"

	"github.com/aetherai/aether/operators"
)

// Harness drives one operator (or chain) over keyed inputs.
type Harness[S, In, Out any] struct {
	Op        operators.Operator[S, In, Out]
	States    map[string]*S
	Emitted   []Emitted[Out]
	watermark time.Time
	timers    map[timerKey]time.Time
	offset    int64
}

// Emitted is one value the chain passed on, with its key.
type Emitted[Out any] struct {
	Key   string
	Value Out
}

type timerKey struct{ key, op string }

// New returns a harness for op.
func New[S, In, Out any](op operators.Operator[S, In, Out]) *Harness[S, In, Out] {
	return &Harness[S, In, Out]{Op: op, States: map[string]*S{}, timers: map[timerKey]time.Time{}}
}

// Process runs the operator on one input with the given event time; the
// watermark moves up to it first, firing due timers. State changes of a
// failing record are discarded, as the runtime does.
func (h *Harness[S, In, Out]) Process(key string, at time.Time, in In) error {
	h.Advance(at)
	st := h.state(key)
	work := *st
	c := &ctx[S]{key: key, at: at, wm: h.watermark, state: &work, h: timerSink(h), src: operators.Source{Topic: "test", Offset: h.offset}}
	h.offset++
	var out []Emitted[Out]
	err := operators.Invoke[S, In, Out](c, h.Op, in, func(v Out) error {
		out = append(out, Emitted[Out]{key, v})
		return nil
	})
	if err != nil {
		return err
	}
	*st = work
	c.commitTimers()
	h.Emitted = append(h.Emitted, out...)
	return nil
}

// Advance moves the watermark to at (never backwards) and fires every timer
// due by then, in deadline order.
func (h *Harness[S, In, Out]) Advance(at time.Time) {
	if at.After(h.watermark) {
		h.watermark = at
	}
	for {
		due := h.dueTimers()
		if len(due) == 0 {
			return
		}
		for _, tk := range due {
			deadline := h.timers[tk]
			delete(h.timers, tk)
			st := h.state(tk.key)
			work := *st
			c := &ctx[S]{key: tk.key, at: deadline, wm: h.watermark, state: &work, h: timerSink(h)}
			var out []Emitted[Out]
			_, err := operators.FireTimer[S, In, Out](c, h.Op, tk.op, func(v Out) error {
				out = append(out, Emitted[Out]{tk.key, v})
				return nil
			})
			if err == nil {
				*st = work
				c.commitTimers()
				h.Emitted = append(h.Emitted, out...)
			}
		}
	}
}

// Timers returns the pending timer deadline of each operator for key.
func (h *Harness[S, In, Out]) Timers(key string) map[string]time.Time {
	m := map[string]time.Time{}
	for tk, at := range h.timers {
		if tk.key == key {
			m[tk.op] = at
		}
	}
	return m
}

// Reset forgets what was emitted so far.
func (h *Harness[S, In, Out]) Reset() { h.Emitted = nil }

func (h *Harness[S, In, Out]) state(key string) *S {
	st, ok := h.States[key]
	if !ok {
		st = new(S)
		h.States[key] = st
	}
	return st
}

func (h *Harness[S, In, Out]) dueTimers() []timerKey {
	var due []timerKey
	for tk, at := range h.timers {
		if !at.After(h.watermark) {
			due = append(due, tk)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		a, b := h.timers[due[i]], h.timers[due[j]]
		if !a.Equal(b) {
			return a.Before(b)
		}
		if due[i].key != due[j].key {
			return due[i].key < due[j].key
		}
		return due[i].op < due[j].op
	})
	return due
}

type timerStore interface {
	set(key, op string, at time.Time)
	clear(key, op string)
}

type sink[S, In, Out any] struct{ h *Harness[S, In, Out] }

func (s sink[S, In, Out]) set(key, op string, at time.Time) { s.h.timers[timerKey{key, op}] = at }
func (s sink[S, In, Out]) clear(key, op string)             { delete(s.h.timers, timerKey{key, op}) }

func timerSink[S, In, Out any](h *Harness[S, In, Out]) timerStore { return sink[S, In, Out]{h} }

type timerChange struct {
	op    string
	at    time.Time
	clear bool
}

type ctx[S any] struct {
	key     string
	at, wm  time.Time
	state   *S
	h       timerStore
	src     operators.Source
	current string
	stack   []string
	changes []timerChange
}

func (c *ctx[S]) Key() string              { return c.key }
func (c *ctx[S]) EventTime() time.Time     { return c.at }
func (c *ctx[S]) Watermark() time.Time     { return c.wm }
func (c *ctx[S]) Source() operators.Source { return c.src }
func (c *ctx[S]) State() *S                { return c.state }
func (c *ctx[S]) SetTimer(at time.Time) {
	c.changes = append(c.changes, timerChange{op: c.current, at: at})
}
func (c *ctx[S]) ClearTimer() { c.changes = append(c.changes, timerChange{op: c.current, clear: true}) }
func (c *ctx[S]) Lookup(table, key string) ([]byte, error) {
	return nil, fmt.Errorf("optest: no table %q to look up", table)
}
func (c *ctx[S]) Enter(name string) {
	c.stack = append(c.stack, c.current)
	c.current = name
}

func (c *ctx[S]) Leave(error) {
	c.current = c.stack[len(c.stack)-1]
	c.stack = c.stack[:len(c.stack)-1]
}

func (c *ctx[S]) commitTimers() {
	for _, ch := range c.changes {
		if ch.clear {
			c.h.clear(c.key, ch.op)
		} else {
			c.h.set(c.key, ch.op, ch.at)
		}
	}
}
