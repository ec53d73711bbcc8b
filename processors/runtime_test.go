package processors_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/broker/brokertest"
	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/operators"
	"github.com/aetherai/aether/processors"
	"github.com/aetherai/aether/topology"
)

type ev struct {
	ID   string    `json:"id"`
	N    int       `json:"n"`
	Time time.Time `json:"time"`
}

type total struct {
	Sum    int `json:"sum"`
	Events int `json:"events"`
	Closed int `json:"closed"`
}

// sumOp sums N per key, rejects negative N, and closes the key's "window"
// by timer 2 s of event time after its last event.
type sumOp struct{}

func (sumOp) Name() string { return "sum" }
func (sumOp) Process(ctx operators.Context[total], in ev, emit func(total) error) error {
	if in.N < 0 {
		return errors.New("negative amount")
	}
	s := ctx.State()
	s.Sum += in.N
	s.Events++
	ctx.SetTimer(ctx.EventTime().Add(2 * time.Second))
	return emit(*s)
}
func (sumOp) OnTimer(ctx operators.Context[total], emit func(total) error) error {
	ctx.State().Closed++
	return emit(*ctx.State())
}

func sumTopology() (*topology.Topology, *topology.Stream[ev], *topology.Processor[total, ev, total]) {
	t := topology.New("sums")
	in := topology.NewStream("amounts", codec.JSON[ev](), topology.Retention(24*time.Hour)).
		EventTime(func(e ev) time.Time { return e.Time }).
		EventID(func(e ev) string { return e.ID })
	out := topology.NewStream("totals", codec.JSON[total]())
	t.Source(in)
	p := topology.AddProcessor(t, "summer", in, codec.JSON[total](), operators.Operator[total, ev, total](sumOp{})).Emit(out)
	return t, in, p
}

// startBroker starts an in-process broker that auto-creates topics with
// the given partition count; it is closed when the test ends.
func startBroker(t *testing.T, partitions int) *broker.Broker {
	t.Helper()
	return brokertest.Start(t, broker.Partitions(partitions))
}

func startRuntime(t *testing.T, ctx context.Context, b *broker.Broker, top *topology.Topology, opts ...processors.Option) (*processors.Runtime, func()) {
	t.Helper()
	rt, err := processors.New(ctx, top, append([]processors.Option{processors.Brokers(b.Addrs()...), processors.TimerInterval(100 * time.Millisecond)}, opts...)...)
	require.NoError(t, err)
	stop, err := rt.Start(ctx)
	require.NoError(t, err)
	return rt, func() { require.NoError(t, stop()) }
}

func consume(t *testing.T, b *broker.Broker, topic string, want int) []*sarama.ConsumerMessage {
	t.Helper()
	var msgs []*sarama.ConsumerMessage
	require.Eventually(t, func() bool {
		var err error
		msgs, err = broker.Consume(context.Background(), b.Addrs(), broker.SaramaConfig("test"), topic)
		return err == nil && len(msgs) >= want
	}, 30*time.Second, 100*time.Millisecond, "waiting for %d records on %s", want, topic)
	require.Len(t, msgs, want)
	return msgs
}

func TestRuntimeDeadLettersRecoversAndFiresTimers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := startBroker(t, 4)
	top, in, p := sumTopology()

	rt, stop := startRuntime(t, ctx, b, top, processors.IdleAdvance(false))
	em, err := processors.NewEmitter(b.Addrs(), in)
	require.NoError(t, err)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const users, perUser = 10, 20
	for i := range perUser {
		for u := range users {
			key := "user" + strconv.Itoa(u)
			require.NoError(t, em.Emit(key, ev{ID: fmt.Sprintf("%s-%d", key, i), N: i, Time: t0.Add(time.Duration(i) * 100 * time.Millisecond)}))
		}
	}
	// A retry of an event already sent, malformed bytes, and a record the
	// operator rejects.
	require.NoError(t, em.Emit("user0", ev{ID: "user0-18", N: 18, Time: t0}))
	require.NoError(t, em.EmitRaw("user1", []byte(`{"n": "three"`)))
	require.NoError(t, em.Emit("user2", ev{ID: "neg", N: -5, Time: t0}))
	require.NoError(t, em.Finish())

	dlq := consume(t, b, "amounts.dlq", 2)
	reasons := map[string]string{}
	for _, m := range dlq {
		h := map[string]string{}
		for _, rh := range m.Headers {
			h[string(rh.Key)] = string(rh.Value)
		}
		require.Equal(t, "amounts", h[processors.HeaderTopic])
		require.Equal(t, "summer", h[processors.HeaderProcessor])
		require.NotEmpty(t, h[processors.HeaderOffset])
		require.NotEmpty(t, h[processors.HeaderPartition])
		reasons[string(m.Key)] = h[processors.HeaderReason]
	}
	require.Contains(t, reasons["user1"], "decode: ")
	require.Equal(t, "operator sum: negative amount", reasons["user2"])
	require.Equal(t, `{"n": "three"`, string(dlqValue(dlq, "user1")))

	want := total{Sum: perUser * (perUser - 1) / 2, Events: perUser}
	require.Eventually(t, func() bool {
		for u := range users {
			raw, err := rt.Get("summer", "user"+strconv.Itoa(u))
			if err != nil || raw == nil {
				return false
			}
			v, err := p.Table().Decode(raw)
			if err != nil || v.Sum != want.Sum || v.Events != want.Events {
				return false
			}
		}
		return true
	}, 30*time.Second, 100*time.Millisecond)

	// Timers: events of other keys far later in event time move every
	// partition's watermark past the users' timers, which close their
	// windows without another event of their own.
	em2, err := processors.NewEmitter(b.Addrs(), in)
	require.NoError(t, err)
	for i := range 40 {
		require.NoError(t, em2.Emit("clock"+strconv.Itoa(i), ev{ID: "clock", N: 0, Time: t0.Add(time.Hour)}))
	}
	require.NoError(t, em2.Finish())
	require.Eventually(t, func() bool {
		for u := range users {
			raw, _ := rt.Get("summer", "user"+strconv.Itoa(u))
			if v, _ := p.Table().Decode(raw); v.Closed != 1 || v.Events != perUser {
				return false
			}
		}
		return true
	}, 30*time.Second, 100*time.Millisecond, "every user's window closes by timer")
	// Each closed window was emitted: one total per applied event plus one per timer.
	consume(t, b, "totals", users*perUser+users+40)

	snapshot := map[string][]byte{}
	for u := range users {
		key := "user" + strconv.Itoa(u)
		raw, err := rt.Get("summer", key)
		require.NoError(t, err)
		snapshot[key] = raw
	}
	stop()

	// A fresh runtime with empty storage recovers identical state from the
	// table topic.
	rt2, stop2 := startRuntime(t, ctx, b, top, processors.IdleAdvance(false))
	defer stop2()
	for key, raw := range snapshot {
		got, err := rt2.Get("summer", key)
		require.NoError(t, err)
		require.Equal(t, raw, got, key)
	}
}

func dlqValue(msgs []*sarama.ConsumerMessage, key string) []byte {
	for _, m := range msgs {
		if string(m.Key) == key {
			return m.Value
		}
	}
	return nil
}

// enriched is what the lookup processor emits: an amount with the running
// total of its key, read from the summer's table.
type enriched struct {
	N     int `json:"n"`
	Total int `json:"total"`
}

func TestTopicsAndLookups(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := startBroker(t, 4)
	top, in, p := sumTopology()
	table := p.Table()
	requests := topology.NewStream("requests", codec.JSON[ev](), topology.Retention(time.Hour))
	answers := topology.NewStream("answers", codec.JSON[enriched]())
	top.Source(requests)
	addEnricher(top, requests, table, answers)

	_, stop := startRuntime(t, ctx, b, top)
	defer stop()
	cfg := broker.SaramaConfig("test")
	raw, err := broker.DescribeTopic(ctx, b.Addrs(), cfg, "amounts")
	require.NoError(t, err)
	require.Equal(t, broker.TopicSpec{Name: "amounts", Partitions: 8, Retention: 24 * time.Hour}, raw)
	dlq, err := broker.DescribeTopic(ctx, b.Addrs(), cfg, "amounts.dlq")
	require.NoError(t, err)
	require.Equal(t, 24*time.Hour, dlq.Retention, "a dead-letter topic keeps its input's retention")
	tbl, err := broker.DescribeTopic(ctx, b.Addrs(), cfg, "summer-table")
	require.NoError(t, err)
	require.True(t, tbl.Compacted, "the group table is compacted")

	em, err := processors.NewEmitter(b.Addrs(), in)
	require.NoError(t, err)
	for i := 1; i <= 4; i++ {
		require.NoError(t, em.Emit("k", ev{ID: strconv.Itoa(i), N: i, Time: time.Unix(int64(i), 0)}))
	}
	require.NoError(t, em.Finish())
	consume(t, b, "totals", 4)
	rq, err := processors.NewEmitter(b.Addrs(), requests)
	require.NoError(t, err)
	require.NoError(t, rq.EmitSync("k", ev{N: 7}))
	require.NoError(t, rq.Finish())
	msgs := consume(t, b, "answers", 1)
	got, err := answers.Codec().Decode(msgs[0].Value)
	require.NoError(t, err)
	require.Equal(t, enriched{N: 7, Total: 10}, got)
}

// memorySink records writes and fails for keys it is told to.
type memorySink struct {
	mu     sync.Mutex
	writes map[string][]total
	fail   string
}

func (m *memorySink) Name() string { return "memory" }
func (m *memorySink) Write(_ context.Context, key string, v total) error {
	if key == m.fail {
		return errors.New("store unavailable")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes[key] = append(m.writes[key], v)
	return nil
}

func (m *memorySink) count(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.writes[key])
}

func TestSinkWritesAndDeadLettersFailures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := startBroker(t, 4)
	top, in, p := sumTopology()
	sink := &memorySink{writes: map[string][]total{}, fail: "broken"}
	p.Sink(sink)
	_, stop := startRuntime(t, ctx, b, top)
	defer stop()

	em, err := processors.NewEmitter(b.Addrs(), in)
	require.NoError(t, err)
	for i := 1; i <= 5; i++ {
		require.NoError(t, em.Emit("ok", ev{ID: strconv.Itoa(i), N: i, Time: time.Unix(int64(i), 0)}))
	}
	require.NoError(t, em.Emit("broken", ev{ID: "b", N: 1, Time: time.Unix(1, 0)}))
	require.NoError(t, em.Finish())

	dlq := consume(t, b, "amounts.dlq", 1)
	h := map[string]string{}
	for _, rh := range dlq[0].Headers {
		h[string(rh.Key)] = string(rh.Value)
	}
	require.Equal(t, "sink", h[processors.HeaderStage])
	require.Equal(t, "sink memory: store unavailable", h[processors.HeaderReason])
	require.Eventually(t, func() bool { return sink.count("ok") == 5 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, 15, sink.writes["ok"][4].Sum)
}

func TestEmitAllWaitsForEveryAck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := startBroker(t, 4)
	_, in, _ := sumTopology()
	em, err := processors.NewEmitter(b.Addrs(), in)
	require.NoError(t, err)
	var recs []processors.Keyed[ev]
	for i := range 50 {
		recs = append(recs, processors.Keyed[ev]{Key: "k" + strconv.Itoa(i%7), Value: ev{ID: strconv.Itoa(i), N: i}})
	}
	require.NoError(t, em.EmitAll(ctx, recs))
	// Acknowledged means readable, at once.
	msgs, err := broker.Consume(ctx, b.Addrs(), broker.SaramaConfig("test"), "amounts")
	require.NoError(t, err)
	require.Len(t, msgs, 50)
	require.NoError(t, em.Finish())
}

// addEnricher adds the "enricher" processor: each request is answered with
// its N and the key's total, looked up in table.
func addEnricher(top *topology.Topology, requests *topology.Stream[ev], table *topology.Table[total], answers *topology.Stream[enriched]) {
	topology.AddProcessor(top, "enricher", requests, nil, operators.Func("enrich",
		func(ctx operators.Context[struct{}], e ev, emit func(enriched) error) error {
			tot, _, err := table.Get(ctx, ctx.Key())
			if err != nil {
				return err
			}
			return emit(enriched{N: e.N, Total: tot.Sum})
		})).Lookup(table).Emit(answers)
}
