package pipebench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/lovoo/goka"

	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/operators"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/operators/sessionize"
)

// The handwritten variant is the sessionizer as one would write it directly
// on Goka, calling the same sessionize and features operators from the
// callback through a minimal operators.Context, with the same input, table
// and output codecs and the same event-time timers. It leaves out what the
// Aether runtime adds: the table envelope with offset fences and recent
// event IDs (replay and duplicate protection), dead letters, panic
// recovery, per-operator timing and Prometheus metrics, and the
// runtime's watermark moving on with the wall clock while a partition is
// idle.
//
// Timers: each operator's deadline is kept in the table value next to the
// features state (hwValue). Per partition the callback tracks the
// watermark (the highest event time seen) and each key's earliest
// deadline, and at most once per timerInterval (the runtime's default
// sweep interval) loops a tick back to every key whose deadline the
// watermark passed; the loop callback fires that key's due timers in
// deadline order, as the runtime does.

// timerInterval is how often due timers are looked for (as
// processors.TimerInterval's default).
const timerInterval = time.Second

// Operator indexes of hwValue.Timers, in the runtime's tie-break order
// (operator name).
const (
	opFeatures = iota
	opSessionize
	numOps
)

// hwValue is the handwritten processor's table value.
type hwValue struct {
	State features.State
	// Timers are the operators' deadlines in Unix ms; 0 = none.
	Timers [numOps]int64
}

// hwCodec is the table codec: features.StateCodec's bytes, then the
// deadlines as varints, then one byte giving the deadlines' length.
type hwCodec struct{ state codec.Codec[features.State] }

func (c hwCodec) Encode(v any) ([]byte, error) {
	hv, ok := v.(*hwValue)
	if !ok {
		return nil, fmt.Errorf("handwritten table codec: cannot encode %T", v)
	}
	b, err := c.state.Encode(hv.State)
	if err != nil {
		return nil, err
	}
	n := len(b)
	for _, d := range hv.Timers {
		b = binary.AppendVarint(b, d)
	}
	return append(b, byte(len(b)-n)), nil
}

var errHWValue = errors.New("handwritten table codec: malformed value")

func (c hwCodec) Decode(b []byte) (any, error) {
	if len(b) == 0 {
		return nil, errHWValue
	}
	n := int(b[len(b)-1])
	if n+1 > len(b) {
		return nil, errHWValue
	}
	tr := b[len(b)-1-n : len(b)-1]
	v := &hwValue{}
	for i := range v.Timers {
		d, k := binary.Varint(tr)
		if k <= 0 {
			return nil, errHWValue
		}
		v.Timers[i] = d
		tr = tr[k:]
	}
	st, err := c.state.Decode(b[:len(b)-1-n])
	if err != nil {
		return nil, err
	}
	v.State = st
	return v, nil
}

// hwCtx is a minimal operators.Context for one operator.
type hwCtx struct {
	key    string
	at, wm time.Time
	src    operators.Source
	state  *features.State
	timer  *int64
}

var errNoLookup = errors.New("handwritten: no lookup tables")

func (c *hwCtx) Key() string                           { return c.key }
func (c *hwCtx) EventTime() time.Time                  { return c.at }
func (c *hwCtx) Watermark() time.Time                  { return c.wm }
func (c *hwCtx) Source() operators.Source              { return c.src }
func (c *hwCtx) State() *features.State                { return c.state }
func (c *hwCtx) SetTimer(at time.Time)                 { *c.timer = at.UnixMilli() }
func (c *hwCtx) ClearTimer()                           { *c.timer = 0 }
func (c *hwCtx) Lookup(string, string) ([]byte, error) { return nil, errNoLookup }

// hwPart is one partition's processing state; Goka calls a partition's
// callbacks (input and loop) from one goroutine.
type hwPart struct {
	h         *handwritten
	wm        int64            // highest event time seen, Unix ms
	timers    map[string]int64 // key -> earliest deadline
	lastSweep time.Time
	sc, fc    hwCtx // contexts of sessionize and features
	recs      []features.Record
	// The emit functions, bound once so the callback does not allocate
	// closures.
	toFeatures func(sessionize.Update) error
	collect    func(features.Record) error
}

type handwritten struct {
	sess     operators.Operator[features.State, event.Event, sessionize.Update]
	sessT    operators.Timed[features.State, sessionize.Update]
	feat     operators.Operator[features.State, sessionize.Update, features.Record]
	featT    operators.Timed[features.State, features.Record]
	group    string
	out      goka.Stream
	parts    []*hwPart
	cnt      *counter
	gp       *goka.Processor
	interval time.Duration
	fires    atomic.Int64
}

func newHandwritten(ctx context.Context, e *env, round int) (*handwritten, error) {
	h := &handwritten{
		sess:     sessionize.New[features.State](),
		feat:     features.New(),
		group:    fmt.Sprintf("bench-handwritten-r%d", round),
		out:      goka.Stream(fmt.Sprintf("bench_features_handwritten_r%d", round)),
		cnt:      newCounter(e.cfg.Events),
		interval: timerInterval,
	}
	var ok bool
	if h.sessT, ok = h.sess.(operators.Timed[features.State, sessionize.Update]); !ok {
		return nil, errors.New("sessionize operator has no OnTimer")
	}
	if h.featT, ok = h.feat.(operators.Timed[features.State, features.Record]); !ok {
		return nil, errors.New("features operator has no OnTimer")
	}
	h.parts = make([]*hwPart, e.cfg.Partitions)
	for i := range h.parts {
		p := &hwPart{h: h, timers: map[string]int64{}}
		p.collect = func(r features.Record) error { p.recs = append(p.recs, r); return nil }
		p.toFeatures = func(u sessionize.Update) error { return h.feat.Process(&p.fc, u, p.collect) }
		h.parts[i] = p
	}

	// Processors create no output topics (the Aether runtime creates its
	// streams in processors.New).
	if err := broker.EnsureTopic(ctx, e.addrs, broker.SaramaConfig("aether-bench-setup"),
		broker.TopicSpec{Name: string(h.out), Partitions: int32(e.cfg.Partitions)}); err != nil {
		return nil, err
	}
	g := goka.DefineGroup(goka.Group(h.group),
		goka.Input(goka.Stream(RawTopic), codec.Goka(codec.JSON[event.Event]()), h.process),
		goka.Persist(hwCodec{features.StateCodec()}),
		goka.Output(h.out, codec.Goka(features.RecordCodec())),
		goka.Loop(codec.Goka(codec.Bytes()), h.fire),
	)
	gp, err := goka.NewProcessor(e.addrs, g, e.gokaOptions(h.group)...)
	if err != nil {
		return nil, err
	}
	h.gp = gp
	return h, nil
}

func (h *handwritten) part(ctx goka.Context) (*hwPart, error) {
	i := int(ctx.Partition())
	if i < 0 || i >= len(h.parts) {
		return nil, fmt.Errorf("partition %d out of range", i)
	}
	return h.parts[i], nil
}

// process is the input callback: decode (done by the input codec),
// validate, sessionize -> features, write the state, emit the records.
func (h *handwritten) process(ctx goka.Context, msg any) {
	h.cnt.seen()
	defer h.cnt.handled()
	ev, ok := msg.(event.Event)
	if !ok || ev.Validate() != nil {
		return // the runtime would dead-letter it; the input has none
	}
	p, err := h.part(ctx)
	if err != nil {
		ctx.Fail(err)
	}
	v, _ := ctx.Value().(*hwValue)
	if v == nil {
		v = &hwValue{}
	}
	key := ctx.Key()
	at := ev.Timestamp
	wm := max(p.wm, at.UnixMilli())
	wmt := time.UnixMilli(wm).UTC()
	src := operators.Source{Topic: string(ctx.Topic()), Partition: ctx.Partition(), Offset: ctx.Offset()}
	p.sc = hwCtx{key: key, at: at, wm: wmt, src: src, state: &v.State, timer: &v.Timers[opSessionize]}
	p.fc = hwCtx{key: key, at: at, wm: wmt, src: src, state: &v.State, timer: &v.Timers[opFeatures]}
	p.recs = p.recs[:0]
	if err := h.sess.Process(&p.sc, ev, p.toFeatures); err != nil {
		return // the runtime would dead-letter it and keep the old state
	}
	ctx.SetValue(v)
	for _, r := range p.recs {
		ctx.Emit(h.out, key, r)
	}
	p.wm = wm
	p.index(key, v)
	p.sweep(ctx)
}

// fire is the loop callback: run the key's timers due at the partition's
// watermark, in deadline order.
func (h *handwritten) fire(ctx goka.Context, _ any) {
	p, err := h.part(ctx)
	if err != nil {
		ctx.Fail(err)
	}
	v, _ := ctx.Value().(*hwValue)
	if v == nil {
		return
	}
	key := ctx.Key()
	var due [numOps]int
	n := 0
	for i, d := range v.Timers {
		if d != 0 && d <= p.wm {
			due[n] = i
			n++
		}
	}
	if n == 0 {
		p.index(key, v)
		return
	}
	if n == 2 && v.Timers[due[1]] < v.Timers[due[0]] {
		due[0], due[1] = due[1], due[0]
	}
	h.fires.Add(1)
	wmt := time.UnixMilli(p.wm).UTC()
	p.recs = p.recs[:0]
	for _, i := range due[:n] {
		at := time.UnixMilli(v.Timers[i]).UTC()
		v.Timers[i] = 0
		p.sc = hwCtx{key: key, at: at, wm: wmt, state: &v.State, timer: &v.Timers[opSessionize]}
		p.fc = hwCtx{key: key, at: at, wm: wmt, state: &v.State, timer: &v.Timers[opFeatures]}
		var err error
		switch i {
		case opSessionize:
			err = h.sessT.OnTimer(&p.sc, p.toFeatures)
		case opFeatures:
			err = h.featT.OnTimer(&p.fc, p.collect)
		}
		if err != nil {
			// Drop the timers, keep the state as it was (as the runtime).
			p.index(key, &hwValue{})
			return
		}
	}
	ctx.SetValue(v)
	for _, r := range p.recs {
		ctx.Emit(h.out, key, r)
	}
	p.index(key, v)
}

// index records key's earliest deadline.
func (p *hwPart) index(key string, v *hwValue) {
	var next int64
	for _, d := range v.Timers {
		if d != 0 && (next == 0 || d < next) {
			next = d
		}
	}
	if next == 0 {
		delete(p.timers, key)
		return
	}
	p.timers[key] = next
}

// sweep loops a tick back to every key with a due timer, at most once per
// interval (checked when a record arrives, so a quiet partition sweeps
// late; the benchmark's partitions are never quiet while it measures).
func (p *hwPart) sweep(ctx goka.Context) {
	now := time.Now()
	if now.Sub(p.lastSweep) < p.h.interval {
		return
	}
	p.lastSweep = now
	for k, d := range p.timers {
		if d <= p.wm {
			delete(p.timers, k)
			ctx.Loopback(k, []byte{})
		}
	}
}

func (h *handwritten) run(ctx context.Context) error {
	// Sweep on the runtime's schedule: every interval from the start (its
	// sweep goroutine starts with Run), not from the first record.
	now := time.Now()
	for _, p := range h.parts {
		p.lastSweep = now
	}
	return h.gp.Run(ctx)
}
func (h *handwritten) wait(ctx context.Context, exited <-chan struct{}) (time.Time, time.Time, error) {
	return h.cnt.wait(ctx, exited)
}
func (h *handwritten) timerFires() int64 { return h.fires.Load() }
func (h *handwritten) output() string    { return string(h.out) }
func (h *handwritten) name() string      { return h.group }
func (h *handwritten) topics() []string {
	return []string{h.group + "-table", h.group + "-loop", string(h.out)}
}
