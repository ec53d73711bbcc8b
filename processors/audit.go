package processors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/internal/engine"
	"github.com/aetherai/aether/operators"
)

// The audit trail of a processor (see Audit) has two kinds of events, all
// with actor "processor:<name>":
//
//   - kafka_message: by default one attestation per run of records of an
//     input partition (audit.Attestation), written every AttestEvery
//     records, every AttestInterval, and when the partition is released
//     (rebalance, stop); with PerMessage, one event per record instead.
//   - job_event: the processor's life, with these actions.
const (
	// JobStart: Run started the processor.
	JobStart = "start"
	// JobRebalance: the consumer group handed this instance a new
	// generation; attributes generation, member and partitions.
	JobRebalance = "rebalance"
	// JobPartitionAssigned: an input partition (resource "<topic>/<p>")
	// belongs to this instance for the generation.
	JobPartitionAssigned = "partition_assigned"
	// JobTableRecovered: a table partition (resource "<table>/<p>") was
	// recovered from its topic, before any record of it is processed.
	JobTableRecovered = "table_recovered"
	// JobReady: every assigned partition is recovered and processing.
	JobReady = "ready"
	// JobPartitionRevoked: the generation ended and the instance released
	// the input partition, after its last attestation was written.
	JobPartitionRevoked = "partition_revoked"
	// JobFailure: an operator panicked (stage, operator and the record's
	// correlation id; never the panic value, which may quote the record), a
	// timer failed, or the processor failed (its error).
	JobFailure = "failure"
	// JobStop: the processor stopped; outcome "error" with the error when
	// it failed.
	JobStop = "stop"
)

// Defaults of the audit options.
const (
	DefaultAttestRecords  = 10000
	DefaultAttestInterval = 5 * time.Second
	DefaultAuditQueue     = 8192
	DefaultAuditDrain     = 30 * time.Second
)

// auditBatch bounds the events of one sink Write.
const auditBatch = 1024

// OutcomeSinkFailed counts, in attestations and per-message events, records
// the chain applied but whose write to an external sink failed after
// retries, so that they went to the dead-letter topic at stage "sink".
// "applied" counts only records whose sink writes all succeeded; the
// outcomes of a record are exclusive and sum to the attested count.
const OutcomeSinkFailed = "sink_failed"

// The outcomes a record is attested with: the engine's, sink_failed, and
// forgotten for forget control records (forget.go).
const (
	auditApplied = iota
	auditReplayed
	auditDuplicate
	auditDeadLettered
	auditSinkFailed
	auditForgotten
	numAuditOutcomes
)

var outcomeNames = [numAuditOutcomes]string{
	auditApplied:      engine.Applied.String(),
	auditReplayed:     engine.Replayed.String(),
	auditDuplicate:    engine.Duplicate.String(),
	auditDeadLettered: engine.DeadLettered.String(),
	auditSinkFailed:   OutcomeSinkFailed,
	auditForgotten:    OutcomeForgotten,
}

// auditOutcome is the attested outcome of a record the engine handled.
func auditOutcome(o engine.Outcome, sinkFailed bool) int {
	switch {
	case o == engine.Applied && sinkFailed:
		return auditSinkFailed
	case o == engine.Replayed:
		return auditReplayed
	case o == engine.Duplicate:
		return auditDuplicate
	case o == engine.DeadLettered:
		return auditDeadLettered
	}
	return auditApplied
}

// AuditOption configures Audit.
type AuditOption interface{ applyAudit(*auditConfig) error }

type auditOpt func(*auditConfig) error

func (f auditOpt) applyAudit(c *auditConfig) error { return f(c) }

type auditConfig struct {
	sink       audit.Sink
	records    int64
	interval   time.Duration
	perMessage bool
	queue      int
	drain      time.Duration
}

// Audit writes every processor's audit trail to sink: attestations of the
// input records it handled (or one event per record, with PerMessage) and
// its job events, and it puts the input record's correlation id
// ("<topic>/<partition>/<offset>") on every record it emits, as the header
// aether-correlation-id.
//
// Events go through a bounded queue to one writer that batches them, so the
// record path does not wait for the sink. When the queue is full the record
// path blocks until there is room: nothing is dropped, and the wait is
// counted (aether_processor_audit_queue_full_total). A failing sink is retried with
// backoff for as long as the runtime runs; a sink that refuses for good
// (closed, or an invalid event) stops the runtime with its error. At the
// end of Run the writer drains the queue for up to AuditDrain. The caller
// owns sink and closes it after Run returned.
func Audit(sink audit.Sink, opts ...AuditOption) Option {
	return optionFunc(func(c *config) error {
		if sink == nil {
			return errors.New("audit: nil sink")
		}
		ac := &auditConfig{sink: sink, records: DefaultAttestRecords, interval: DefaultAttestInterval,
			queue: DefaultAuditQueue, drain: DefaultAuditDrain}
		for _, o := range opts {
			if err := o.applyAudit(ac); err != nil {
				return fmt.Errorf("audit: %w", err)
			}
		}
		c.audit = ac
		return nil
	})
}

// AttestEvery closes a partition's attestation after n records. Default
// 10,000.
func AttestEvery(n int) AuditOption {
	return auditOpt(func(c *auditConfig) error {
		if n < 1 {
			return fmt.Errorf("attest every %d records: must be at least 1", n)
		}
		c.records = int64(n)
		return nil
	})
}

// AttestInterval closes a partition's attestation once its first record is
// d old, even if the partition is idle. Default 5 s.
func AttestInterval(d time.Duration) AuditOption {
	return auditOpt(func(c *auditConfig) error {
		if d <= 0 {
			return fmt.Errorf("attest interval %s: must be positive", d)
		}
		c.interval = d
		return nil
	})
}

// PerMessage writes one kafka_message event per input record (action
// "process", correlation id "<topic>/<partition>/<offset>", the record's
// outcome) instead of attestations. Expensive: an event per record reaches
// the sink.
func PerMessage() AuditOption {
	return auditOpt(func(c *auditConfig) error { c.perMessage = true; return nil })
}

// AuditQueue sets how many events may wait for the sink before the record
// path blocks. Default 8,192.
func AuditQueue(events int) AuditOption {
	return auditOpt(func(c *auditConfig) error {
		if events < 1 {
			return fmt.Errorf("queue of %d events: must be at least 1", events)
		}
		c.queue = events
		return nil
	})
}

// AuditDrain bounds how long the end of Run waits for the sink to take the
// queued events; what it has not taken by then is counted as lost and Run
// returns an error. Default 30 s.
func AuditDrain(d time.Duration) AuditOption {
	return auditOpt(func(c *auditConfig) error {
		if d <= 0 {
			return fmt.Errorf("drain %s: must be positive", d)
		}
		c.drain = d
		return nil
	})
}

// AuditStats counts what the audit writer did.
type AuditStats struct {
	// Written events, acknowledged by the sink.
	Written uint64
	// Blocked: events whose enqueue had to wait for room in the queue.
	Blocked uint64
	// WriteErrors: failed sink writes (each retried, or given up at the end).
	WriteErrors uint64
	// Lost: events the sink never took (it refused them for good, or the
	// drain at the end of Run timed out).
	Lost uint64
	// Backlog: events in the queue now.
	Backlog int
}

// AuditStats returns the audit writer's counters; zero without Audit.
func (r *Runtime) AuditStats() AuditStats {
	t := r.trail
	if t == nil {
		return AuditStats{}
	}
	return AuditStats{Written: t.written.Load(), Blocked: t.blocked.Load(), WriteErrors: t.writeErrors.Load(),
		Lost: t.lost.Load(), Backlog: len(t.ch)}
}

// trail is the runtime's asynchronous, batching audit writer.
type trail struct {
	cfg *auditConfig
	log *slog.Logger
	ch  chan audit.Event

	state   atomic.Int32 // 0 new, 1 running, 2 closed
	closing atomic.Int64 // unix ns deadline of the drain; 0 while running
	done    chan struct{}
	failed  chan struct{} // closed when the sink refused for good
	failErr error         // set before failed is closed

	written, blocked, writeErrors, lost atomic.Uint64
	mWritten, mBlocked, mErrors, mLost  prometheus.Counter
}

func newTrail(cfg *auditConfig, reg prometheus.Registerer, log *slog.Logger) (*trail, error) {
	t := &trail{cfg: cfg, log: log, ch: make(chan audit.Event, cfg.queue),
		done: make(chan struct{}), failed: make(chan struct{})}
	t.mWritten = prometheus.NewCounter(prometheus.CounterOpts{Name: "aether_processor_audit_events_written_total",
		Help: "Audit events the processors' audit sink acknowledged."})
	t.mBlocked = prometheus.NewCounter(prometheus.CounterOpts{Name: "aether_processor_audit_queue_full_total",
		Help: "Audit events whose enqueue waited because the queue to the sink was full (the record path blocked)."})
	t.mErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "aether_processor_audit_write_errors_total",
		Help: "Failed writes to the audit sink (retried)."})
	t.mLost = prometheus.NewCounter(prometheus.CounterOpts{Name: "aether_processor_audit_events_lost_total",
		Help: "Audit events the sink never took (refused for good, or the drain at stop timed out)."})
	backlog := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "aether_processor_audit_queue_events",
		Help: "Audit events queued for the sink."}, func() float64 { return float64(len(t.ch)) })
	for _, c := range []prometheus.Collector{t.mWritten, t.mBlocked, t.mErrors, t.mLost, backlog} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// begin starts the writer; a runtime runs once.
func (t *trail) begin() error {
	if !t.state.CompareAndSwap(0, 1) {
		return errors.New("processors: Run was already called on this runtime")
	}
	go t.run()
	return nil
}

// emit completes e and queues it, blocking while the queue is full.
func (t *trail) emit(e audit.Event) {
	e, err := audit.New(e)
	if err != nil { // a bug in this package: say so loudly, do not block
		t.log.Error("invalid audit event", "err", err)
		t.lost.Add(1)
		t.mLost.Inc()
		return
	}
	select {
	case t.ch <- e:
	default:
		t.blocked.Add(1)
		t.mBlocked.Inc()
		t.ch <- e
	}
}

func (t *trail) run() {
	defer close(t.done)
	for e := range t.ch {
		// A fresh slice per write: a sink may keep what it was given.
		batch := make([]audit.Event, 1, min(auditBatch, 1+len(t.ch)))
		batch[0] = e
	drain:
		for len(batch) < auditBatch {
			select {
			case e, ok := <-t.ch:
				if !ok {
					break drain
				}
				batch = append(batch, e)
			default:
				break drain
			}
		}
		t.write(batch)
	}
}

// write stores batch, retrying with backoff; it gives up only on a sink
// that refuses for good, or when the drain deadline passed.
func (t *trail) write(batch []audit.Event) {
	backoff := 50 * time.Millisecond
	for {
		ctx, cancel := context.Background(), func() {}
		if d := t.closing.Load(); d != 0 {
			ctx, cancel = context.WithDeadline(ctx, time.Unix(0, d))
		}
		err := t.cfg.sink.Write(ctx, batch...)
		cancel()
		if err == nil {
			t.written.Add(uint64(len(batch)))
			t.mWritten.Add(float64(len(batch)))
			return
		}
		t.writeErrors.Add(1)
		t.mErrors.Inc()
		permanent := errors.Is(err, audit.ErrClosed) || errors.Is(err, audit.ErrInvalidEvent)
		d := t.closing.Load()
		if permanent || (d != 0 && time.Now().UnixNano() >= d) || t.isFailed() {
			t.lost.Add(uint64(len(batch)))
			t.mLost.Add(float64(len(batch)))
			t.fail(fmt.Errorf("processors: audit sink: %d event(s) not written: %w", len(batch), err))
			return
		}
		t.log.Warn("audit sink write failed, retrying", "events", len(batch), "backoff", backoff, "err", err)
		time.Sleep(backoff)
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (t *trail) isFailed() bool {
	select {
	case <-t.failed:
		return true
	default:
		return false
	}
}

// fail records the first error that lost events; only the writer calls it.
func (t *trail) fail(err error) {
	if t.isFailed() {
		return
	}
	t.failErr = err
	close(t.failed)
}

// close drains the queue within the configured time and stops the writer.
// Nothing may emit after it.
func (t *trail) close() error {
	if !t.state.CompareAndSwap(1, 2) {
		return nil
	}
	t.startDrain()
	close(t.ch)
	<-t.done
	if t.isFailed() {
		return t.failErr
	}
	return nil
}

// startDrain starts the countdown after which the writer gives up on a
// failing sink; the first call counts.
func (t *trail) startDrain() {
	t.closing.CompareAndSwap(0, time.Now().Add(t.cfg.drain).UnixNano())
}

// watch flushes attestations older than the interval on idle partitions,
// and fails when the sink refused for good (stopping the runtime: an
// unaudited pipeline must not go on). When the runtime stops it starts the
// drain countdown, so that record paths blocked on a full queue before a
// sink that is down do not hold the shutdown for longer than AuditDrain.
func (t *trail) watch(ctx context.Context, procs []*proc) error {
	tick := time.NewTicker(max(t.cfg.interval/5, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			t.startDrain()
			return nil
		case <-t.failed:
			return t.failErr
		case now := <-tick.C:
			for _, p := range procs {
				p.aud.flushOlder(now)
			}
		}
	}
}

// procAudit is one processor's side of the trail.
type procAudit struct {
	t            *trail
	group, actor string
	inputs       map[string]bool
	table        string
	loopTopic    string
	accs         sync.Map // tp -> *accumulator
}

type tp struct {
	topic string
	part  int32
}

// accumulator is the open attestation of one input partition. Its
// partition's goroutine adds records; the watcher and the rebalance hooks
// close it, hence the mutex (uncontended on the record path).
type accumulator struct {
	mu          sync.Mutex
	topic       string
	part        int32
	digest      *audit.RecordDigest
	first, last int64
	count       int64
	outcomes    [numAuditOutcomes]int64
	opened      time.Time
}

func newProcAudit(t *trail, p *proc) *procAudit {
	a := &procAudit{t: t, group: p.spec.Name, actor: "processor:" + p.spec.Name, inputs: map[string]bool{}, loopTopic: p.spec.LoopTopic()}
	for _, in := range p.spec.Inputs {
		a.inputs[in.Name] = true
	}
	if p.spec.Table != nil {
		a.table = p.spec.Table.Name
	}
	return a
}

func (a *procAudit) job(action, resource, outcome string, attrs map[string]string) {
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs[audit.AttrGroup] = a.group
	a.t.emit(audit.Event{Kind: audit.KindJobEvent, Actor: a.actor, Resource: resource, Action: action,
		Outcome: outcome, Attributes: attrs})
}

// record accounts for one handled input record. f is the record's failure,
// if any, and sinkFailed whether a sink write failed after the chain
// applied it.
func (a *procAudit) record(rec *engine.Record, o engine.Outcome, f *engine.Failure, sinkFailed bool, now time.Time) {
	if a == nil {
		return
	}
	if f != nil && errors.Is(f.Err, engine.ErrPanic) {
		a.job(JobFailure, rec.Topic+"/"+strconv.Itoa(int(rec.Partition)), "error", map[string]string{
			"stage": f.Stage, "operator": f.Operator, "reason": "operator panicked; record dead-lettered",
			"correlationId": correlationID(rec)})
	}
	a.attest(rec, auditOutcome(o, sinkFailed), now)
}

// forgotten accounts for a forget control record, which the runtime
// handles outside the engine (forget.go): without it the control record's
// offset would show as a gap in the partition's attestations. Call it
// after the record was handled.
func (a *procAudit) forgotten(ctx goka.Context, now time.Time) {
	if a == nil {
		return
	}
	// Control records have an empty value: the digest covers offset and key.
	rec := engine.Record{Topic: string(ctx.Topic()), Partition: ctx.Partition(), Offset: ctx.Offset(), Key: ctx.Key()}
	a.attest(&rec, auditForgotten, now)
}

// attest adds a handled record with outcome idx to its partition's open
// attestation, or writes its per-message event.
func (a *procAudit) attest(rec *engine.Record, idx int, now time.Time) {
	if a.t.cfg.perMessage {
		a.t.emit(audit.MessageEvent(a.actor, a.group, rec.Topic, rec.Partition, rec.Offset, outcomeNames[idx]))
		return
	}
	acc := a.acc(rec.Topic, rec.Partition)
	acc.mu.Lock()
	if acc.count > 0 && (rec.Offset <= acc.last || now.Sub(acc.opened) >= a.t.cfg.interval) {
		// A record behind the run (should not happen within a generation)
		// starts a new attestation, so each digest stays in offset order.
		a.closeLocked(acc)
	}
	if acc.count == 0 {
		acc.first, acc.opened = rec.Offset, now
	}
	acc.digest.Add(rec.Offset, rec.Key, rec.Value)
	acc.last = rec.Offset
	acc.count++
	acc.outcomes[idx]++
	if acc.count >= a.t.cfg.records {
		a.closeLocked(acc)
	}
	acc.mu.Unlock()
}

func (a *procAudit) acc(topic string, part int32) *accumulator {
	k := tp{topic, part}
	if v, ok := a.accs.Load(k); ok {
		return v.(*accumulator)
	}
	v, _ := a.accs.LoadOrStore(k, &accumulator{topic: topic, part: part, digest: audit.NewRecordDigest()})
	return v.(*accumulator)
}

// closeLocked writes acc's attestation and empties it; acc.mu is held, so
// attestations of one partition are queued in offset order.
func (a *procAudit) closeLocked(acc *accumulator) {
	if acc.count == 0 {
		return
	}
	outcomes := make(map[string]int64, len(outcomeNames))
	for i, n := range acc.outcomes {
		outcomes[outcomeNames[i]] = n
	}
	a.t.emit(audit.Attestation{Actor: a.actor, Group: a.group, Topic: acc.topic, Partition: acc.part,
		FirstOffset: acc.first, LastOffset: acc.last, Count: acc.count, Digest: acc.digest.Sum(),
		Outcomes: outcomes}.Event())
	acc.digest.Reset()
	acc.count, acc.outcomes = 0, [numAuditOutcomes]int64{}
}

// flush closes the open attestation of one partition.
func (a *procAudit) flush(topic string, part int32) {
	v, ok := a.accs.Load(tp{topic, part})
	if !ok {
		return
	}
	acc := v.(*accumulator)
	acc.mu.Lock()
	a.closeLocked(acc)
	acc.mu.Unlock()
}

// flushOlder closes attestations opened at least the interval before now.
func (a *procAudit) flushOlder(now time.Time) {
	if a == nil {
		return
	}
	a.accs.Range(func(_, v any) bool {
		acc := v.(*accumulator)
		acc.mu.Lock()
		if acc.count > 0 && now.Sub(acc.opened) >= a.t.cfg.interval {
			a.closeLocked(acc)
		}
		acc.mu.Unlock()
		return true
	})
}

func (a *procAudit) flushAll() {
	a.accs.Range(func(_, v any) bool {
		acc := v.(*accumulator)
		acc.mu.Lock()
		a.closeLocked(acc)
		acc.mu.Unlock()
		return true
	})
}

// recovered reports a table partition recovered from its topic.
func (a *procAudit) recovered(part int32) {
	if a == nil {
		return
	}
	a.job(JobTableRecovered, a.table+"/"+strconv.Itoa(int(part)), audit.OutcomeOK, nil)
}

// timerFailed reports a failing timer: stage and operator, not the error,
// which may quote state.
func (a *procAudit) timerFailed(part int32, f *engine.Failure) {
	if a == nil {
		return
	}
	reason := "timer failed"
	if errors.Is(f.Err, engine.ErrPanic) {
		reason = "timer panicked"
	}
	a.job(JobFailure, a.loopTopic+"/"+strconv.Itoa(int(part)), "error",
		map[string]string{"stage": f.Stage, "operator": f.Operator, "reason": reason + "; timer dropped"})
}

// run runs the Goka processor between its start and stop events.
func (p *proc) run(ctx context.Context) error {
	a := p.aud
	if a == nil {
		return p.gp.Run(ctx)
	}
	inputs := make([]string, 0, len(a.inputs))
	for in := range a.inputs {
		inputs = append(inputs, in)
	}
	slices.Sort(inputs)
	mode := "attest"
	if a.t.cfg.perMessage {
		mode = "per_message"
	}
	attrs := map[string]string{"inputs": strings.Join(inputs, ","), "mode": mode}
	if inst := p.r.cfg.instance; inst != "" {
		attrs["instance"] = inst
	}
	a.job(JobStart, a.group, audit.OutcomeOK, attrs)
	err := p.gp.Run(ctx)
	a.flushAll() // normally empty: the last generation's cleanup closed them
	if err != nil {
		// Goka's errors name topics, partitions and causes, not record
		// contents.
		a.job(JobFailure, a.group, "error", map[string]string{"stage": "processor", "reason": err.Error()})
		a.job(JobStop, a.group, "error", map[string]string{"reason": err.Error()})
	} else {
		a.job(JobStop, a.group, audit.OutcomeOK, nil)
	}
	return err
}

// correlationID names an input record in the trail and in the
// aether-correlation-id header.
func correlationID(rec *engine.Record) string {
	return operators.Source{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}.CorrelationID()
}

// consumerGroupBuilder wraps Goka's consumer group so that the audit trail
// sees each generation's start and end: Goka's own rebalance callback
// reports only the new assignment, not when partitions are released.
func (p *proc) consumerGroupBuilder(inner goka.ConsumerGroupBuilder) goka.ConsumerGroupBuilder {
	if p.aud == nil {
		return inner
	}
	return func(brokers []string, group, clientID string) (sarama.ConsumerGroup, error) {
		cg, err := inner(brokers, group, clientID)
		if err != nil {
			return nil, err
		}
		return auditedGroup{cg, p.aud}, nil
	}
}

type auditedGroup struct {
	sarama.ConsumerGroup
	a *procAudit
}

func (g auditedGroup) Consume(ctx context.Context, topics []string, h sarama.ConsumerGroupHandler) error {
	return g.ConsumerGroup.Consume(ctx, topics, auditedHandler{h, g.a})
}

type auditedHandler struct {
	sarama.ConsumerGroupHandler
	a *procAudit
}

// claims returns the session's input partitions by topic, sorted.
func (a *procAudit) claims(s sarama.ConsumerGroupSession) ([]string, map[string][]int32) {
	var topics []string
	parts := map[string][]int32{}
	for topic, ps := range s.Claims() {
		if !a.inputs[topic] {
			continue // the loopback topic of timers
		}
		topics = append(topics, topic)
		parts[topic] = slices.Sorted(slices.Values(ps))
	}
	slices.Sort(topics)
	return topics, parts
}

func partList(ps []int32) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ",")
}

// Setup reports the generation and its partitions before Goka recovers
// them, and readiness (or the failure) after.
func (h auditedHandler) Setup(s sarama.ConsumerGroupSession) error {
	a := h.a
	gen := strconv.Itoa(int(s.GenerationID()))
	topics, parts := a.claims(s)
	var assigned []int32
	for _, t := range topics {
		assigned = append(assigned, parts[t]...)
	}
	assigned = slices.Compact(slices.Sorted(slices.Values(assigned)))
	a.job(JobRebalance, a.group, audit.OutcomeOK, map[string]string{"generation": gen, "member": s.MemberID(), "partitions": partList(assigned)})
	for _, t := range topics {
		for _, part := range parts[t] {
			a.job(JobPartitionAssigned, t+"/"+strconv.Itoa(int(part)), audit.OutcomeOK, map[string]string{"generation": gen})
		}
	}
	if err := h.ConsumerGroupHandler.Setup(s); err != nil {
		a.job(JobFailure, a.group, "error", map[string]string{"stage": "setup", "generation": gen, "reason": err.Error()})
		return err
	}
	a.job(JobReady, a.group, audit.OutcomeOK, map[string]string{"generation": gen, "partitions": partList(assigned)})
	return nil
}

// Cleanup lets Goka stop the generation's partition processors (after
// which no record of them is handled), then closes their attestations and
// reports them released.
func (h auditedHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	a := h.a
	err := h.ConsumerGroupHandler.Cleanup(s)
	gen := strconv.Itoa(int(s.GenerationID()))
	topics, parts := a.claims(s)
	for _, t := range topics {
		for _, part := range parts[t] {
			a.flush(t, part)
			a.job(JobPartitionRevoked, t+"/"+strconv.Itoa(int(part)), audit.OutcomeOK, map[string]string{"generation": gen})
		}
	}
	if err != nil {
		a.job(JobFailure, a.group, "error", map[string]string{"stage": "cleanup", "generation": gen, "reason": err.Error()})
	}
	return err
}
