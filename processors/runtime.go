// Package processors compiles a topology into Goka processors and runs
// them. Every processor's operator chain runs inside one middleware,
// written once here and in internal/engine, that gives:
//
//   - dead letters: a record that fails to decode, fails validation, or is
//     rejected by an operator goes to "<input>.dlq" with its original bytes
//     as the value and the reason, processor, operator and source topic,
//     partition and offset as headers; processing goes on;
//   - effectively-once state: each key's table value carries the last
//     applied offset of every input topic, written in the same table record
//     as the state, so a record redelivered after a crash or rebalance is
//     recognised and skipped; event IDs seen recently for the key are
//     skipped too;
//   - durable event-time timers, stored with the state and delivered
//     through the processor's loopback topic;
//   - Prometheus metrics per processor, topic and operator;
//   - forget control records: a key's state, timers and sink data deleted
//     inside the processor and the record forwarded downstream (forget.go);
//   - with Audit, an audit trail: attestations of the input records
//     handled per partition (offsets, counts, outcomes, a digest), the
//     processor's job events, and the input record's correlation id on
//     every emitted record (audit.go).
//
// Goka only ever sees raw bytes: decoding happens inside the middleware so
// that a bad record is a dead letter, not a processor crash.
package processors

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/internal/engine"
	"github.com/aetherai/aether/topology"
)

// Dead-letter record headers.
const (
	HeaderReason    = "aether-reason"
	HeaderStage     = "aether-stage"
	HeaderProcessor = "aether-processor"
	HeaderOperator  = "aether-operator"
	HeaderTopic     = "aether-source-topic"
	HeaderPartition = "aether-source-partition"
	HeaderOffset    = "aether-source-offset"
	// HeaderCorrelationID carries the input record's correlation id,
	// "<topic>/<partition>/<offset>", on dead letters and, with Audit, on
	// every emitted record.
	HeaderCorrelationID = "aether-correlation-id"
)

var rawCodec = codec.Goka(codec.Bytes())

// Runtime runs the processors of one topology.
type Runtime struct {
	cfg     config
	topo    *topology.Topology
	procs   []*proc
	metrics *metrics
	trail   *trail // nil without Audit
}

// New validates the topology, creates its streams with their declared
// retention (unless CreateTopics(false)), and builds one Goka processor per
// topology processor. Call Run to start them.
func New(ctx context.Context, t *topology.Topology, opts ...Option) (*Runtime, error) {
	cfg := defaults()
	for _, o := range opts {
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	if len(cfg.brokers) == 0 {
		return nil, errors.New("processors: no brokers given (use processors.Brokers)")
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if cfg.registerer == nil {
		reg := prometheus.NewRegistry()
		cfg.registerer, cfg.gatherer = reg, reg
	}
	m, err := newMetrics(cfg.registerer)
	if err != nil {
		return nil, fmt.Errorf("processors: metrics: %w", err)
	}
	r := &Runtime{cfg: cfg, topo: t, metrics: m}
	if cfg.audit != nil {
		if r.trail, err = newTrail(cfg.audit, cfg.registerer, cfg.logger); err != nil {
			return nil, fmt.Errorf("processors: audit metrics: %w", err)
		}
	}
	if cfg.sealer == nil {
		for _, s := range t.Streams() {
			if s.Sealed {
				cfg.logger.Warn("stream declared sealed but no sealer is configured: its values are written in clear", "stream", s.Name)
			}
		}
	}
	if cfg.createTopics {
		if err := r.createTopics(ctx); err != nil {
			return nil, err
		}
	}
	for _, spec := range t.Processors() {
		if cfg.only != nil && !cfg.only[spec.Name] {
			continue
		}
		p, err := r.newProc(spec)
		if err != nil {
			return nil, fmt.Errorf("processor %q: %w", spec.Name, err)
		}
		r.procs = append(r.procs, p)
	}
	if cfg.only != nil && len(r.procs) != len(cfg.only) {
		return nil, fmt.Errorf("processors: Only names a processor the topology %q does not have", t.Name())
	}
	return r, nil
}

// Gatherer returns the registry holding the runtime's metrics.
func (r *Runtime) Gatherer() prometheus.Gatherer { return r.cfg.gatherer }

func (r *Runtime) createTopics(ctx context.Context) error {
	cfg := r.cfg.sarama("", r.clientID("admin"))
	for _, s := range r.topo.Streams() {
		parts := s.Partitions
		if parts == 0 {
			parts = r.cfg.partitions
		}
		spec := broker.TopicSpec{Name: s.Name, Partitions: parts, Retention: s.Retention}
		if err := broker.EnsureTopic(ctx, r.cfg.brokers, cfg, spec); err != nil {
			return fmt.Errorf("processors: create stream %q: %w", s.Name, err)
		}
	}
	return nil
}

func (r *Runtime) clientID(role string) string {
	return clientID(r.topo.Name(), role, r.cfg.instance)
}

// clientID is the Kafka client ID of role (a processor's name, or
// "admin") in topology topo, for instance (may be empty).
func clientID(topo, role, instance string) string {
	id := "aether-" + topo + "-" + role
	if instance != "" {
		id += "-" + instance
	}
	return id
}

// Run runs every processor until ctx is cancelled or one fails, and
// returns the first error.
func (r *Runtime) Run(ctx context.Context) error {
	if r.trail != nil {
		if err := r.trail.begin(); err != nil {
			return err
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	if r.trail != nil {
		g.Go(func() error { return r.trail.watch(ctx, r.procs) })
	}
	for _, p := range r.procs {
		g.Go(func() error {
			if err := p.run(ctx); err != nil {
				return fmt.Errorf("processor %q: %w", p.spec.Name, err)
			}
			return nil
		})
		if p.node.Stateful() {
			g.Go(func() error { return p.sweep(ctx) })
		}
	}
	err := g.Wait()
	for _, p := range r.procs {
		if p.loop != nil {
			if ferr := p.loop.Finish(); ferr != nil && err == nil {
				err = ferr
			}
		}
	}
	if r.trail != nil {
		if terr := r.trail.close(); terr != nil && err == nil {
			err = terr
		}
	}
	return err
}

// WaitReady blocks until every processor has recovered its table and
// started processing.
func (r *Runtime) WaitReady(ctx context.Context) error {
	for _, p := range r.procs {
		if err := p.gp.WaitForReadyContext(ctx); err != nil {
			return fmt.Errorf("processor %q: %w", p.spec.Name, err)
		}
	}
	return ctx.Err()
}

// Get reads the current table value of key from a running processor's
// local state, as raw envelope bytes; nil if the key has none.
func (r *Runtime) Get(processor, key string) ([]byte, error) {
	for _, p := range r.procs {
		if p.spec.Name == processor {
			v, err := p.gp.Get(key)
			if err != nil || v == nil {
				return nil, err
			}
			return v.([]byte), nil
		}
	}
	return nil, fmt.Errorf("processor %q is not run by this runtime", processor)
}

// proc is one running processor.
type proc struct {
	r        *Runtime
	spec     *topology.ProcessorSpec
	node     engine.Node
	gp       *goka.Processor
	loop     *goka.Emitter
	pm       *procMetrics
	log      *slog.Logger
	parts    partitions
	assigned atomic.Pointer[[]int32]
	aud      *procAudit // nil without Audit
	// sealer opens sealedIn topics and seals emits to sealedOut ones, and
	// the table's state when sealedTable; nil without Seal, and then
	// nothing is sealed.
	sealer              Sealer
	sealedIn, sealedOut map[string]bool
	sealedTable         bool
}

func (r *Runtime) newProc(spec *topology.ProcessorSpec) (*proc, error) {
	p := &proc{r: r, spec: spec, node: spec.NewNode(),
		log: r.cfg.logger.With("processor", spec.Name), sealer: r.cfg.sealer}
	if p.sealer != nil {
		p.sealedIn, p.sealedOut = sealedTopics(spec.Inputs), sealedTopics(spec.Outputs)
		p.sealedTable = spec.Table != nil && spec.Table.Sealed
	}
	if r.trail != nil {
		p.aud = newProcAudit(r.trail, p)
	}
	var topics []string
	var edges []goka.Edge
	for _, in := range spec.Inputs {
		topics = append(topics, in.Name)
		edges = append(edges, goka.Input(goka.Stream(in.Name), rawCodec, p.handle))
		edges = append(edges, goka.Output(goka.Stream(spec.DeadLetterStream(in).Name), rawCodec))
	}
	for _, out := range spec.Outputs {
		edges = append(edges, goka.Output(goka.Stream(out.Name), rawCodec))
	}
	for _, l := range spec.Lookups {
		edges = append(edges, goka.Lookup(goka.Table(l.Name), rawCodec))
	}
	if p.node.Stateful() {
		edges = append(edges, goka.Persist(rawCodec), goka.Loop(rawCodec, p.fire))
	}
	p.pm = r.metrics.forProcessor(spec.Name, topics, p.node.Operators())

	group := goka.Group(spec.Name)
	cid := r.clientID(spec.Name)
	// Goka's builders write ClientID (and the partitioner) into the config
	// they are given on every build: each gets its own.
	scfg := func() *sarama.Config { return r.cfg.sarama(spec.Name, cid) }
	opts := []goka.ProcessorOption{
		goka.WithClientID(cid),
		goka.WithLogger(gokaLogger{p.log}),
		goka.WithConsumerGroupBuilder(p.consumerGroupBuilder(goka.ConsumerGroupBuilderWithConfig(scfg()))),
		goka.WithConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(scfg())),
		goka.WithProducerBuilder(goka.ProducerBuilderWithConfig(scfg())),
		goka.WithTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(scfg(), broker.GokaTopicManagerConfig())),
		goka.WithStorageBuilder(p.storageBuilder()),
		goka.WithRebalanceCallback(p.rebalanced),
	}
	gp, err := goka.NewProcessor(r.cfg.brokers, goka.DefineGroup(group, edges...), opts...)
	if err != nil {
		return nil, err
	}
	p.gp = gp
	if p.node.Stateful() {
		loop, err := goka.NewEmitter(r.cfg.brokers, goka.Stream(spec.LoopTopic()), rawCodec,
			goka.WithEmitterClientID(cid+"-timers"),
			goka.WithEmitterProducerBuilder(goka.ProducerBuilderWithConfig(scfg())),
			goka.WithEmitterTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(scfg(), broker.GokaTopicManagerConfig())),
			goka.WithEmitterLogger(gokaLogger{p.log}))
		if err != nil {
			return nil, fmt.Errorf("timer emitter: %w", err)
		}
		p.loop = loop
	}
	return p, nil
}

func (p *proc) storageBuilder() storage.Builder {
	base := storage.MemoryBuilder()
	if dir := p.r.cfg.storageDir; dir != "" {
		base = storage.DefaultBuilder(dir)
	}
	if !p.node.Stateful() {
		return base
	}
	table := p.spec.Table.Name
	return func(topic string, part int32) (storage.Storage, error) {
		st, err := base(topic, part)
		if err != nil || topic != table {
			return st, err
		}
		p.parts.get(part).table.Store(&storageRef{st})
		return &recoveringStorage{Storage: st, onRecovered: func(s storage.Storage) {
			if err := loadTimers(s, p.parts.get(part)); err != nil {
				p.log.Error("loading timers after recovery", "partition", part, "err", err)
			}
			p.aud.recovered(part)
		}}, nil
	}
}

func (p *proc) rebalanced(a goka.Assignment) {
	keep := map[int32]bool{}
	for part := range a {
		keep[part] = true
	}
	p.parts.keep(keep)
	parts := make([]int32, 0, len(a))
	for part := range a {
		parts = append(parts, part)
	}
	slices.Sort(parts)
	p.assigned.Store(&parts)
	p.log.Info("partitions assigned", "partitions", parts)
}

// handle is the Goka callback of every input edge.
func (p *proc) handle(ctx goka.Context, msg any) {
	value, _ := msg.([]byte)
	if len(value) == 0 && p.forget(ctx) { // a forget control record (forget.go); events are never empty
		return
	}
	part := ctx.Partition()
	pt := p.parts.get(part)
	now := time.Now()
	rec := engine.Record{
		Topic:     string(ctx.Topic()),
		Partition: part,
		Offset:    ctx.Offset(),
		Key:       ctx.Key(),
		Value:     value,
		Timestamp: ctx.Timestamp(),
		Watermark: pt.eventTime(),
	}
	if len(p.spec.Lookups) > 0 {
		rec.Lookup = func(table, key string) ([]byte, error) {
			v := ctx.Lookup(goka.Table(table), key)
			b, _ := v.([]byte)
			if p.sealedLookup(table) {
				return p.openLookup(ctx.Context(), key, b)
			}
			return b, nil
		}
	}
	var table []byte
	if st := pt.table.Load(); st != nil {
		var err error
		if table, err = st.Get(rec.Key); err != nil {
			ctx.Fail(fmt.Errorf("read table: %w", err)) // storage failure: stop, do not skip
		}
	} else if p.node.Stateful() {
		table, _ = ctx.Value().([]byte)
	}
	// The engine sees the opened value; dead letters and attestations keep
	// the bytes as they are in Kafka.
	res := engine.Result{Outcome: engine.DeadLettered}
	if in, table, f := p.open(ctx.Context(), rec, table); f != nil {
		res.Failure = f
	} else {
		res = p.node.Handle(in, table, p.pm)
	}
	if res.Failure == nil || res.Table != nil {
		if f := p.seal(ctx.Context(), rec.Key, &res); f != nil {
			// Nothing of the record is applied: it is in the dead letters.
			res = engine.Result{Outcome: engine.DeadLettered, Failure: f, EventTime: res.EventTime}
		}
	}
	p.pm.record(rec.Topic, res.Outcome)
	if res.Failure != nil {
		p.deadLetter(ctx, &rec, res.Failure)
	}
	// A record that leaves the table as it was (replayed, or not opened or
	// sealed) leaves the key's timer as it was.
	if p.node.Stateful() && res.Outcome != engine.Replayed && res.Table != nil {
		pt.record(rec.Key, res.EventTime, res.NextTimer, now)
	} else {
		pt.observe(res.EventTime, now)
	}
	sinkFailed := p.apply(ctx, pt, res, &rec)
	p.aud.record(&rec, res.Outcome, res.Failure, sinkFailed, now)
}

// fire is the loopback callback: a tick for a key with a due timer.
func (p *proc) fire(ctx goka.Context, _ any) {
	part := ctx.Partition()
	pt := p.parts.get(part)
	wm := pt.watermark(time.Now(), p.r.cfg.idleAdvance)
	table, _ := ctx.Value().([]byte)
	if p.sealedTable {
		v, shredded, err := p.openTable(ctx.Context(), ctx.Key(), table)
		switch {
		case shredded:
			// The user is gone: no timer of theirs fires (it would seal
			// state again under a fresh key), and nothing is written.
			p.r.metrics.timers.WithLabelValues(p.spec.Name, "shredded").Inc()
			pt.setTimer(ctx.Key(), time.Time{})
			return
		case err != nil && p.sealer.Retryable(err):
			// The key store is out of reach: the timer stays due.
			p.timerRetry(ctx, pt, wm, "timer state could not be opened", err)
			return
		case err != nil:
			p.timerFailed(ctx, pt, &engine.Failure{Stage: "open", Err: fmt.Errorf("table value: %w", err)})
			return
		}
		table = v
	}
	res := p.node.Fire(ctx.Key(), table, wm, p.pm)
	if res.Failure != nil {
		p.timerFailed(ctx, pt, res.Failure)
		return
	}
	outcome := "fired"
	if res.Outcome == engine.Replayed {
		outcome = "not_due"
	}
	if f := p.seal(ctx.Context(), ctx.Key(), &res); f != nil {
		// Not applied: the timer stays due.
		p.timerRetry(ctx, pt, wm, "timer output could not be sealed", f)
		return
	}
	p.r.metrics.timers.WithLabelValues(p.spec.Name, outcome).Inc()
	p.apply(ctx, pt, res, nil)
}

// timerRetry leaves a key's timer due at wm after a failure that may pass
// (the key store out of reach): it fires again at the next sweep.
func (p *proc) timerRetry(ctx goka.Context, pt *partition, wm time.Time, msg string, err error) {
	p.r.metrics.timers.WithLabelValues(p.spec.Name, "failed").Inc()
	p.log.Error(msg+"; trying again at the next sweep", "partition", ctx.Partition(), "offset", ctx.Offset(), "err", err)
	pt.setTimer(ctx.Key(), wm)
}

// timerFailed drops the timers of a key whose timer failed for good, so
// they do not fire forever.
func (p *proc) timerFailed(ctx goka.Context, pt *partition, f *engine.Failure) {
	p.r.metrics.timers.WithLabelValues(p.spec.Name, "failed").Inc()
	p.log.Error("timer failed", "partition", ctx.Partition(), "offset", ctx.Offset(), "err", f)
	p.aud.timerFailed(ctx.Partition(), f)
	pt.setTimer(ctx.Key(), time.Time{})
}

// apply writes a record's or timer's result; it reports whether a sink
// write failed (and the record went to the dead-letter topic for it).
func (p *proc) apply(ctx goka.Context, pt *partition, res engine.Result, rec *engine.Record) (sinkFailed bool) {
	if res.Table != nil {
		ctx.SetValue(res.Table)
	}
	if rec == nil && res.Table != nil { // a timer: records update the index in handle
		pt.setTimer(ctx.Key(), res.NextTimer)
	}
	var opts []goka.ContextOption
	if rec != nil && p.aud != nil && len(res.Emits) > 0 {
		opts = []goka.ContextOption{goka.WithCtxEmitHeaders(goka.Headers{HeaderCorrelationID: []byte(correlationID(rec))})}
	}
	for _, e := range res.Emits {
		ctx.Emit(goka.Stream(e.Topic), e.Key, e.Value, opts...)
	}
	for i, s := range res.Sinks {
		if err := p.writeSink(ctx.Context(), s); err != nil {
			p.r.metrics.sinkErrors.WithLabelValues(p.spec.Name).Inc()
			switch {
			case rec == nil:
				p.log.Error("sink write failed for a timer", "key_hash", keyHash(ctx.Key()), "err", err)
			case !sinkFailed:
				// One dead letter per record, however many of its writes
				// fail, so dead letters and audited outcomes reconcile.
				sinkFailed = true
				p.deadLetter(ctx, rec, &engine.Failure{Stage: "sink", Operator: p.spec.Sinks[i%max(1, len(p.spec.Sinks))], Err: err})
			default:
				p.log.Warn("another sink write failed for a dead-lettered record", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", err)
			}
		}
	}
	return sinkFailed
}

// withRetries runs op until it succeeds, fails for good (retryable says
// no) or has failed 1 + the sink retries (3) times, waiting 50 ms, 100 ms,
// ... between attempts.
func (p *proc) withRetries(ctx context.Context, retryable func(error) bool, op func(context.Context) error) error {
	return retry(ctx, p.r.cfg.sinkRetries, retryable, op, sleep)
}

// retry runs op at most 1 + retries times, while it fails with errors
// retryable accepts, calling wait with 50 ms, 100 ms, ... between attempts
// and never after the last one. It stops early when wait fails (ctx ends).
func retry(ctx context.Context, retries int, retryable func(error) bool, op func(context.Context) error, wait func(context.Context, time.Duration) error) error {
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := op(ctx)
		if err == nil || !retryable(err) || attempt >= retries {
			return err
		}
		if werr := wait(ctx, backoff); werr != nil {
			return errors.Join(err, werr)
		}
		backoff *= 2
	}
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (p *proc) writeSink(ctx context.Context, write func(context.Context) error) error {
	return p.withRetries(ctx, func(error) bool { return true }, write)
}

func (p *proc) deadLetter(ctx goka.Context, rec *engine.Record, f *engine.Failure) {
	p.r.metrics.deadLetters.WithLabelValues(p.spec.Name, rec.Topic, f.Stage).Inc()
	headers := goka.Headers{
		HeaderReason:    []byte(f.Error()),
		HeaderStage:     []byte(f.Stage),
		HeaderProcessor: []byte(p.spec.Name),
		HeaderTopic:     []byte(rec.Topic),
		HeaderPartition: []byte(strconv.Itoa(int(rec.Partition))),
		HeaderOffset:    []byte(strconv.FormatInt(rec.Offset, 10)),

		HeaderCorrelationID: []byte(correlationID(rec)),
	}
	if f.Operator != "" {
		headers[HeaderOperator] = []byte(f.Operator)
	}
	ctx.Emit(goka.Stream(rec.Topic+".dlq"), rec.Key, rec.Value, goka.WithCtxEmitHeaders(headers))
	// The reason may quote the record; keep personal data out of logs.
	p.log.Warn("record dead-lettered", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "stage", f.Stage, "operator", f.Operator)
}

// sweep delivers due timers: every interval it finds keys whose earliest
// timer is due at their partition's watermark and sends each a tick through
// the loopback topic, so the timer runs in the key's own partition
// goroutine.
func (p *proc) sweep(ctx context.Context) error {
	t := time.NewTicker(p.r.cfg.timerInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now()
		p.parts.each(func(part int32, pt *partition) {
			wm := pt.watermark(now, p.r.cfg.idleAdvance)
			p.r.metrics.watermark.WithLabelValues(p.spec.Name, strconv.Itoa(int(part))).Set(float64(wm.UnixMilli()) / 1000)
			for _, key := range pt.due(wm) {
				if _, err := p.loop.Emit(key, []byte{}); err != nil {
					p.log.Error("timer tick", "err", err)
					pt.setTimer(key, wm) // retry next sweep
				}
			}
		})
	}
}

type gokaLogger struct{ l *slog.Logger }

func (g gokaLogger) Print(v ...any)                 { g.l.Debug(fmt.Sprint(v...)) }
func (g gokaLogger) Println(v ...any)               { g.l.Debug(fmt.Sprint(v...)) }
func (g gokaLogger) Printf(format string, v ...any) { g.l.Debug(fmt.Sprintf(format, v...)) }

// keyHash names a key in logs without the key itself (a user id).
func keyHash(key string) string {
	h := fnv.New32a()
	h.Write([]byte(key))
	return strconv.FormatUint(uint64(h.Sum32()), 16)
}

// Outcomes returns how many input records the named processor has handled
// in this runtime, by outcome: "applied", "replayed", "duplicate" and
// "dead_lettered".
func (r *Runtime) Outcomes(processor string) map[string]uint64 {
	out := map[string]uint64{}
	for _, p := range r.procs {
		if p.spec.Name != processor {
			continue
		}
		for _, cs := range p.pm.outcomes {
			for o, c := range cs {
				out[engine.Outcome(o).String()] += uint64(counterValue(c))
			}
		}
	}
	return out
}

// Assigned returns the partitions of the named processor's inputs that
// this runtime currently owns, in order.
func (r *Runtime) Assigned(processor string) []int32 {
	for _, p := range r.procs {
		if p.spec.Name == processor {
			if a := p.assigned.Load(); a != nil {
				return slices.Clone(*a)
			}
		}
	}
	return nil
}

// Start runs the processors in the background and returns once every one
// has recovered its table (or ctx ends). stop cancels them and returns
// Run's error; call it exactly once.
func (r *Runtime) Start(ctx context.Context) (stop func() error, err error) {
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	stop = func() error {
		cancel()
		return <-done
	}
	if err := r.WaitReady(ctx); err != nil {
		_ = stop()
		return nil, err
	}
	return stop, nil
}

// Ready reports, without waiting, whether every processor has recovered
// its tables and is processing.
func (r *Runtime) Ready() bool {
	for _, p := range r.procs {
		if !p.gp.Recovered() {
			return false
		}
	}
	return true
}
