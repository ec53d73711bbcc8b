package processors_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/operators"
	"github.com/aetherai/aether/processors"
	"github.com/aetherai/aether/topology"
)

// panicAmount makes auditedOp panic, with a value that quotes the record.
const panicAmount = 666666

// auditedOp sums N per key, rejects negative N and panics on panicAmount.
// It emits the record's correlation id, as an operator storing it next to
// its output would.
type auditedOp struct{}

func (auditedOp) Name() string { return "audited" }
func (auditedOp) Process(ctx operators.Context[total], in ev, emit func(traced) error) error {
	switch {
	case in.N == panicAmount:
		panic("secret-value-" + in.ID)
	case in.N < 0:
		return errors.New("negative amount")
	}
	s := ctx.State()
	s.Sum += in.N
	s.Events++
	return emit(traced{Sum: s.Sum, Correlation: ctx.Source().CorrelationID()})
}

type traced struct {
	Sum         int    `json:"sum"`
	Correlation string `json:"correlation"`
}

func auditTopology() (*topology.Topology, *topology.Stream[ev]) {
	t := topology.New("audited")
	in := topology.NewStream("amounts", codec.JSON[ev](), topology.Retention(24*time.Hour), topology.Partitions(4)).
		EventTime(func(e ev) time.Time { return e.Time }).
		EventID(func(e ev) string { return e.ID })
	out := topology.NewStream("traced", codec.JSON[traced](), topology.Partitions(4))
	t.Source(in)
	topology.AddProcessor(t, "summer", in, codec.JSON[total](), operators.Operator[total, ev, traced](auditedOp{})).Emit(out)
	return t, in
}

// sent is what the test sent, by kind.
type sent struct {
	total, malformed, rejected, panics, duplicates int
}

// sendAuditInput sends records from..from+n-1 over 40 keys: every hundredth record from
// the 7th is malformed, from the 13th rejected by the operator, from the
// 21st makes it panic, and from the 129th repeats the event ID of its key's
// previous record (a retry the runtime recognises as a duplicate).
func sendAuditInput(t *testing.T, b *broker.Broker, in *topology.Stream[ev], from, n int) sent {
	t.Helper()
	em, err := processors.NewEmitter(b.Addrs(), in)
	require.NoError(t, err)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var s sent
	for i := from; i < from+n; i++ {
		key := "user" + strconv.Itoa(i%40)
		e := ev{ID: "e" + strconv.Itoa(i), N: 1, Time: t0.Add(time.Duration(i) * time.Millisecond)}
		switch i % 100 {
		case 7:
			require.NoError(t, em.EmitRaw(key, []byte(`{"n": "seven"`)))
			s.malformed++
			s.total++
			continue
		case 13:
			e.N = -1
			s.rejected++
		case 21:
			e.N = panicAmount
			s.panics++
		case 29:
			if i >= 40 {
				e.ID = "e" + strconv.Itoa(i-40)
				s.duplicates++
			}
		}
		require.NoError(t, em.Emit(key, e))
		s.total++
	}
	require.NoError(t, em.Finish())
	return s
}

// headers is a record's headers by key.
func headers(m *sarama.ConsumerMessage) map[string]string {
	h := map[string]string{}
	for _, rh := range m.Headers {
		h[string(rh.Key)] = string(rh.Value)
	}
	return h
}

// requireCoveredOnce checks that the attestations in events cover every
// offset of the summer processor's input, and that the records attested
// twice (redelivered) are exactly those counted as replayed.
func requireCoveredOnce(t *testing.T, events []audit.Event, input []*sarama.ConsumerMessage, total int64) {
	t.Helper()
	cov := audit.Coverage(events)
	require.NoError(t, cov.Err())
	var records, overlapped, replayed int64
	for part, msgs := range byPartition(input) {
		pc, ok := cov.Partition("summer", "amounts", part)
		require.True(t, ok)
		require.True(t, pc.Covers(0, int64(len(msgs)-1)))
		require.Equal(t, int64(len(msgs)-1), pc.To)
		for _, o := range pc.Overlaps {
			overlapped += o.Last - o.First + 1
		}
		records += pc.Records
		replayed += pc.Outcomes["replayed"]
	}
	require.Equal(t, total+overlapped, records)
	require.Equal(t, overlapped, replayed, "every redelivered record is recognised as replayed")
}

// byPartition groups records by partition, in offset order.
func byPartition(msgs []*sarama.ConsumerMessage) map[int32][]*sarama.ConsumerMessage {
	out := map[int32][]*sarama.ConsumerMessage{}
	for _, m := range msgs {
		out[m.Partition] = append(out[m.Partition], m)
	}
	for _, ms := range out {
		sort.Slice(ms, func(i, j int) bool { return ms[i].Offset < ms[j].Offset })
	}
	return out
}

func waitHandled(t *testing.T, rt *processors.Runtime, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		var got uint64
		for _, c := range rt.Outcomes("summer") {
			got += c
		}
		return got == uint64(n)
	}, time.Minute, 50*time.Millisecond, "waiting for %d records handled", n)
}

func TestAuditAttestsEveryOffset(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := startBroker(t, 4)
	top, in := auditTopology()
	sink := audit.NewMemory()
	rt, stop := startRuntime(t, ctx, b, top, processors.Audit(sink, processors.AttestEvery(100)))

	const n = 2000
	s := sendAuditInput(t, b, in, 0, n)
	require.Equal(t, sent{total: 2000, malformed: 20, rejected: 20, panics: 20, duplicates: 19}, s)
	waitHandled(t, rt, n)
	dlq := consume(t, b, "amounts.dlq", s.malformed+s.rejected+s.panics)
	outputs := consume(t, b, "traced", n-s.malformed-s.rejected-s.panics-s.duplicates)
	stop()
	require.Equal(t, processors.AuditStats{Written: uint64(len(sink.Events()))}, rt.AuditStats())

	input := consume(t, b, "amounts", n)
	parts := byPartition(input)
	require.Len(t, parts, 4)
	events := sink.Events()

	// Every offset of every partition is attested once, with the outcomes
	// that happened.
	cov := audit.Coverage(events)
	require.NoError(t, cov.Err())
	require.Len(t, cov.Partitions, 4)
	var records int64
	outcomes := map[string]int64{}
	for part, msgs := range parts {
		pc, ok := cov.Partition("summer", "amounts", part)
		require.True(t, ok, "partition %d", part)
		end := msgs[len(msgs)-1].Offset
		require.Equal(t, int64(len(msgs)-1), end, "offsets of partition %d are dense", part)
		require.True(t, pc.Covers(0, end))
		require.Equal(t, int64(0), pc.From)
		require.Equal(t, end, pc.To)
		require.Empty(t, pc.Overlaps)
		require.Equal(t, int64(len(msgs)), pc.Records)
		require.GreaterOrEqual(t, pc.Attestations, (len(msgs)+99)/100, "AttestEvery(100)")
		records += pc.Records
		for o, c := range pc.Outcomes {
			outcomes[o] += c
		}
	}
	require.Equal(t, int64(n), records)
	require.Equal(t, map[string]int64{
		"applied":       int64(len(outputs)),
		"replayed":      0,
		"duplicate":     int64(s.duplicates),
		"dead_lettered": int64(len(dlq)),
		"sink_failed":   0,
		"forgotten":     0,
	}, outcomes)

	// Each attestation's digest is the one recomputed from the records
	// read back, and its fields are the documented ones.
	var attestations []audit.Event
	for _, e := range events {
		if e.Kind == audit.KindKafkaMessage {
			attestations = append(attestations, e)
		}
	}
	require.Equal(t, cov.Attestations, len(attestations))
	for _, e := range attestations {
		a, err := audit.ParseAttestation(e)
		require.NoError(t, err)
		require.Equal(t, "attest", e.Action)
		require.Equal(t, "processor:summer", e.Actor)
		require.Equal(t, fmt.Sprintf("amounts/%d", a.Partition), e.Resource)
		require.Equal(t, fmt.Sprintf("amounts/%d/%d-%d", a.Partition, a.FirstOffset, a.LastOffset), e.CorrelationID)
		require.Equal(t, "summer", a.Group)
		require.LessOrEqual(t, a.Count, int64(100))
		d := audit.NewRecordDigest()
		var count int64
		for _, m := range parts[a.Partition] {
			if m.Offset >= a.FirstOffset && m.Offset <= a.LastOffset {
				d.Add(m.Offset, string(m.Key), m.Value)
				count++
			}
		}
		require.Equal(t, count, a.Count)
		require.Equal(t, d.Sum(), a.Digest, "digest of %s", e.CorrelationID)
	}

	// Correlation: every output names the input record it came from, in
	// its header and as the operator saw it; so does every dead letter.
	inputAt := map[string]*sarama.ConsumerMessage{}
	for _, m := range input {
		inputAt[fmt.Sprintf("amounts/%d/%d", m.Partition, m.Offset)] = m
	}
	for _, m := range outputs {
		id := headers(m)[processors.HeaderCorrelationID]
		src, ok := inputAt[id]
		require.True(t, ok, "output correlation id %q", id)
		require.Equal(t, string(src.Key), string(m.Key))
		v, err := codec.JSON[traced]().Decode(m.Value)
		require.NoError(t, err)
		require.Equal(t, id, v.Correlation)
	}
	for _, m := range dlq {
		h := headers(m)
		require.Equal(t, "amounts/"+h[processors.HeaderPartition]+"/"+h[processors.HeaderOffset], h[processors.HeaderCorrelationID])
		require.Equal(t, inputAt[h[processors.HeaderCorrelationID]].Value, m.Value)
	}

	// Job events: start, the generation and its partitions, recovery,
	// readiness, a failure per panic (without the panic value), the
	// release of every partition after its last attestation, stop.
	var jobs []audit.Event
	lastAttest := map[string]int{}
	for i, e := range events {
		switch e.Kind {
		case audit.KindJobEvent:
			require.Equal(t, "processor:summer", e.Actor)
			require.Equal(t, "summer", e.Attributes["group"])
			jobs = append(jobs, e)
		case audit.KindKafkaMessage:
			lastAttest[e.Resource] = i
		}
		for k, v := range e.Attributes {
			require.NotContains(t, v, "secret-value", "attribute %s of %s", k, e.Action)
		}
	}
	var actions []string
	failures := map[string]bool{}
	for _, j := range jobs {
		if j.Action == processors.JobFailure {
			require.Equal(t, "error", j.Outcome)
			require.Equal(t, map[string]string{"group": "summer", "stage": "operator", "operator": "audited",
				"reason": "operator panicked; record dead-lettered", "correlationId": j.Attributes["correlationId"]}, j.Attributes)
			src := inputAt[j.Attributes["correlationId"]]
			require.NotNil(t, src)
			require.Contains(t, string(src.Value), `"n":666666`)
			failures[j.Attributes["correlationId"]] = true
			continue
		}
		actions = append(actions, j.Action+" "+j.Resource)
	}
	require.Len(t, failures, s.panics)
	require.Equal(t, []string{
		"start summer", "rebalance summer",
		"partition_assigned amounts/0", "partition_assigned amounts/1", "partition_assigned amounts/2", "partition_assigned amounts/3",
	}, actions[:6])
	require.ElementsMatch(t, []string{
		"table_recovered summer-table/0", "table_recovered summer-table/1", "table_recovered summer-table/2", "table_recovered summer-table/3",
	}, actions[6:10])
	require.Equal(t, []string{"ready summer",
		"partition_revoked amounts/0", "partition_revoked amounts/1", "partition_revoked amounts/2", "partition_revoked amounts/3",
		"stop summer"}, actions[10:])
	for i, e := range events {
		if e.Action == processors.JobPartitionRevoked {
			require.Greater(t, i, lastAttest[e.Resource], "%s released after its last attestation", e.Resource)
		}
	}
	require.Equal(t, "0,1,2,3", jobs[1].Attributes["partitions"])
	require.Equal(t, "attest", jobs[0].Attributes["mode"])
	require.Equal(t, "amounts", jobs[0].Attributes["inputs"])
}

// slowSink delays every write, so that the queue to it fills.
type slowSink struct {
	*audit.MemorySink
	delay  time.Duration
	mu     sync.Mutex
	writes int
}

func (s *slowSink) Write(ctx context.Context, events ...audit.Event) error {
	time.Sleep(s.delay)
	s.mu.Lock()
	s.writes++
	s.mu.Unlock()
	return s.MemorySink.Write(ctx, events...)
}

func TestAuditPerMessageBlocksRatherThanDrops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := startBroker(t, 4)
	top, in := auditTopology()
	sink := &slowSink{MemorySink: audit.NewMemory(), delay: 5 * time.Millisecond}
	rt, stop := startRuntime(t, ctx, b, top, processors.Audit(sink, processors.PerMessage(), processors.AuditQueue(8)))

	const n = 400
	s := sendAuditInput(t, b, in, 0, n)
	waitHandled(t, rt, n)
	stop()

	events := sink.Events()
	st := rt.AuditStats()
	require.Equal(t, uint64(len(events)), st.Written)
	require.Zero(t, st.Lost)
	require.Zero(t, st.Backlog)
	require.Positive(t, st.Blocked, "a queue of 8 before a sink taking 5 ms per write fills")
	require.Less(t, sink.writes, len(events), "events are written in batches")

	input := consume(t, b, "amounts", n)
	// The expected outcome of each record, from its bytes: a retry repeats
	// an event ID seen earlier in its partition.
	want := map[string]string{}
	seen := map[string]bool{}
	for _, ms := range byPartition(input) {
		for _, m := range ms {
			id := fmt.Sprintf("amounts/%d/%d", m.Partition, m.Offset)
			e, err := in.Codec().Decode(m.Value)
			switch {
			case err != nil, e.N < 0, e.N == panicAmount:
				want[id] = "dead_lettered"
			case seen[e.ID]:
				want[id] = "duplicate"
			default:
				want[id] = "applied"
				seen[e.ID] = true
			}
		}
	}
	got := map[string]string{}
	counts := map[string]int{}
	for _, e := range events {
		if e.Kind != audit.KindKafkaMessage {
			continue
		}
		require.Equal(t, "process", e.Action)
		require.NotContains(t, got, e.CorrelationID, "one event per record")
		require.Equal(t, e.CorrelationID, e.Resource+"/"+e.Attributes["offset"])
		got[e.CorrelationID] = e.Outcome
		counts[e.Outcome]++
	}
	require.Len(t, got, n)
	require.Equal(t, want, got)
	require.Equal(t, map[string]int{"applied": n - s.malformed - s.rejected - s.panics - s.duplicates,
		"dead_lettered": s.malformed + s.rejected + s.panics, "duplicate": s.duplicates}, counts)

	cov := audit.Coverage(events)
	require.NoError(t, cov.Err())
	require.Equal(t, n, cov.Attestations)
	var starts, stops int
	for _, e := range events {
		if e.Kind == audit.KindJobEvent {
			if e.Action == processors.JobStart {
				require.Equal(t, "per_message", e.Attributes["mode"])
				starts++
			}
			if e.Action == processors.JobStop {
				stops++
			}
		}
	}
	require.Equal(t, 1, starts)
	require.Equal(t, 1, stops)
	require.Equal(t, processors.JobStop, events[len(events)-1].Action)
}

func TestAuditSinkRefusingStopsTheRuntime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := startBroker(t, 4)
	top, _ := auditTopology()
	sink := audit.NewMemory()
	require.NoError(t, sink.Close())
	rt, err := processors.New(ctx, top, processors.Brokers(b.Addrs()...), processors.Audit(sink))
	require.NoError(t, err)
	err = rt.Run(ctx)
	require.ErrorIs(t, err, audit.ErrClosed)
	require.ErrorContains(t, err, "processors: audit sink: ")
	require.ErrorContains(t, rt.Run(ctx), "Run was already called")
	st := rt.AuditStats()
	require.Zero(t, st.Written)
	require.Positive(t, st.Lost)
}

func TestAuditOptionsValidate(t *testing.T) {
	top, _ := auditTopology()
	for _, tc := range []struct {
		opt  processors.Option
		want string
	}{
		{processors.Audit(nil), "audit: nil sink"},
		{processors.Audit(audit.NewMemory(), processors.AttestEvery(0)), "audit: attest every 0 records: must be at least 1"},
		{processors.Audit(audit.NewMemory(), processors.AttestInterval(0)), "audit: attest interval 0s: must be positive"},
		{processors.Audit(audit.NewMemory(), processors.AuditQueue(0)), "audit: queue of 0 events: must be at least 1"},
		{processors.Audit(audit.NewMemory(), processors.AuditDrain(-time.Second)), "audit: drain -1s: must be positive"},
	} {
		_, err := processors.New(context.Background(), top, processors.Brokers("127.0.0.1:1"), tc.opt)
		require.EqualError(t, err, tc.want)
	}
}

// A restarted processor goes on where the last one stopped: the trail of
// both covers every offset once (or twice where records were redelivered,
// then counted as replayed).
func TestAuditCoverageAcrossRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := startBroker(t, 4)
	top, in := auditTopology()
	sink := audit.NewMemory()

	rt, stop := startRuntime(t, ctx, b, top, processors.Audit(sink))
	first := sendAuditInput(t, b, in, 0, 1000)
	waitHandled(t, rt, 1000)
	stop()
	rt2, stop2 := startRuntime(t, ctx, b, top, processors.Audit(sink))
	second := sendAuditInput(t, b, in, 1000, 1000)
	require.Eventually(t, func() bool {
		o := rt2.Outcomes("summer")
		return o["applied"]+o["duplicate"]+o["dead_lettered"] == 1000
	}, time.Minute, 50*time.Millisecond)
	stop2()

	input := consume(t, b, "amounts", first.total+second.total)
	requireCoveredOnce(t, sink.Events(), input, 2000)
	var starts int
	for _, e := range sink.Events() {
		if e.Action == processors.JobStart {
			starts++
		}
	}
	require.Equal(t, 2, starts)
}

// An idle partition's open attestation is written after AttestInterval,
// without waiting for more records or a rebalance.
func TestAuditAttestsIdlePartitionsAfterTheInterval(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := startBroker(t, 4)
	top, in := auditTopology()
	sink := audit.NewMemory()
	rt, stop := startRuntime(t, ctx, b, top, processors.Audit(sink, processors.AttestEvery(1_000_000), processors.AttestInterval(200*time.Millisecond)))
	defer stop()
	s := sendAuditInput(t, b, in, 0, 100)
	waitHandled(t, rt, s.total)
	require.Eventually(t, func() bool {
		var n int64
		for _, p := range audit.Coverage(sink.Events()).Partitions {
			n += p.Records
		}
		return n == int64(s.total)
	}, 10*time.Second, 20*time.Millisecond, "every record attested while the processor runs")
	require.NoError(t, audit.Coverage(sink.Events()).Err())
}

// downSink fails every write, as an unreachable Elasticsearch would.
type downSink struct{}

func (downSink) Write(context.Context, ...audit.Event) error { return errors.New("audit store down") }
func (downSink) Close() error                                { return nil }

// While the sink is down the processor waits (nothing is dropped); once it
// is told to stop, it waits no longer than AuditDrain, then reports what
// was lost.
func TestAuditSinkDownBlocksButDoesNotHoldShutdown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := startBroker(t, 4)
	top, _ := auditTopology()
	rt, err := processors.New(ctx, top, processors.Brokers(b.Addrs()...),
		processors.Audit(downSink{}, processors.AuditQueue(2), processors.AuditDrain(300*time.Millisecond)))
	require.NoError(t, err)
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rt.Run(rctx) }()
	require.Eventually(t, func() bool { return rt.AuditStats().Blocked > 0 }, 20*time.Second, 10*time.Millisecond)
	require.False(t, rt.Ready(), "a processor whose audit events cannot be written does not start")
	require.Zero(t, rt.AuditStats().Lost, "nothing is dropped while running")
	rcancel()
	select {
	case err := <-done:
		require.ErrorContains(t, err, "audit store down")
		require.ErrorContains(t, err, "processors: audit sink: ")
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	st := rt.AuditStats()
	require.Positive(t, st.Lost)
	require.Positive(t, st.WriteErrors)
	require.Zero(t, st.Written)
	require.Zero(t, st.Backlog)
}

// A record whose sink write fails is dead-lettered once and attested as
// sink_failed, not applied.
func TestAuditCountsSinkFailures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := startBroker(t, 4)
	top, in, p := sumTopology()
	p.Sink(&memorySink{writes: map[string][]total{}, fail: "broken"})
	sink := audit.NewMemory()
	rt, stop := startRuntime(t, ctx, b, top, processors.Audit(sink))
	em, err := processors.NewEmitter(b.Addrs(), in)
	require.NoError(t, err)
	for i := 1; i <= 5; i++ {
		require.NoError(t, em.Emit("ok", ev{ID: strconv.Itoa(i), N: i, Time: time.Unix(int64(i), 0)}))
	}
	require.NoError(t, em.Emit("broken", ev{ID: "b", N: 1, Time: time.Unix(1, 0)}))
	require.NoError(t, em.Finish())
	waitHandled(t, rt, 6)
	dlq := consume(t, b, "amounts.dlq", 1)
	stop()

	h := headers(dlq[0])
	require.Equal(t, "sink", h[processors.HeaderStage])
	outcomes := map[string]int64{}
	for _, pc := range audit.Coverage(sink.Events()).Partitions {
		for o, n := range pc.Outcomes {
			outcomes[o] += n
		}
	}
	require.Equal(t, map[string]int64{"applied": 5, "replayed": 0, "duplicate": 0, "dead_lettered": 0, "sink_failed": 1, "forgotten": 0}, outcomes)
}

// Two instances in one group: when the second joins, the first releases
// its partitions (closing their attestations) and the group is rebalanced;
// the trail of both still attests every offset.
func TestAuditCoverageAcrossRebalance(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := startBroker(t, 4)
	top, in := auditTopology()
	sink := audit.NewMemory()

	rt1, stop1 := startRuntime(t, ctx, b, top, processors.Audit(sink), processors.Instance("one"))
	first := sendAuditInput(t, b, in, 0, 1000)
	waitHandled(t, rt1, 1000)
	rt2, stop2 := startRuntime(t, ctx, b, top, processors.Audit(sink), processors.Instance("two"))
	require.Eventually(t, func() bool { return len(rt1.Assigned("summer")) == 2 && len(rt2.Assigned("summer")) == 2 },
		time.Minute, 50*time.Millisecond, "the group rebalances over both instances")
	second := sendAuditInput(t, b, in, 1000, 1000)
	handled := func() uint64 {
		var n uint64
		for _, rt := range []*processors.Runtime{rt1, rt2} {
			o := rt.Outcomes("summer")
			n += o["applied"] + o["duplicate"] + o["dead_lettered"]
		}
		return n
	}
	require.Eventually(t, func() bool { return handled() == 2000 }, time.Minute, 50*time.Millisecond)
	stop2()
	stop1()

	events := sink.Events()
	input := consume(t, b, "amounts", first.total+second.total)
	requireCoveredOnce(t, events, input, 2000)

	// The first instance saw two generations: it released all four
	// partitions when the second ended, then got two of them.
	byMember := map[string][]string{}
	revoked := map[string]int{}
	for _, e := range events {
		switch e.Action {
		case processors.JobRebalance:
			byMember[e.Attributes["member"]] = append(byMember[e.Attributes["member"]], e.Attributes["partitions"])
		case processors.JobPartitionRevoked:
			revoked[e.Resource]++
		}
	}
	require.Len(t, byMember, 2, "two members: %v", byMember)
	var sizes []int
	for _, ps := range byMember {
		for _, p := range ps {
			sizes = append(sizes, len(strings.Split(p, ",")))
		}
	}
	sort.Ints(sizes)
	require.Equal(t, []int{2, 2, 4}, sizes)
	for part := range 4 {
		require.GreaterOrEqual(t, revoked[fmt.Sprintf("amounts/%d", part)], 2, "released at the rebalance and at the stop")
	}
}
