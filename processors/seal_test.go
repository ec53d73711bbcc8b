package processors_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/internal/engine"
	"github.com/aetherai/aether/internal/redistest"
	"github.com/aetherai/aether/keyring"
	"github.com/aetherai/aether/operators"
	"github.com/aetherai/aether/processors"
	"github.com/aetherai/aether/topology"
)

// TestSealedStreams runs a stateful processor between two sealed streams
// with a real keyring: every value in Kafka is sealed per key, the
// processor computes on the opened values and keeps its table's state
// sealed, an unsealed record and one
// sealed with a destroyed key are dead-lettered (stage "open") with their
// bytes as they were, and destroying a key makes all of that key's
// records unreadable while the others' still open.
func TestSealedStreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := newSealedSums(t, 2)
	b, kr, top, in := env.b, env.kr, env.top, env.in
	reg := prometheus.NewRegistry()
	_, stop := startRuntime(t, ctx, b, top, processors.Seal(kr), processors.Registry(reg))
	defer stop()

	em, err := processors.NewEmitter(b.Addrs(), in, processors.ClientSeal(kr))
	require.NoError(t, err)
	now := time.Now().UTC()
	require.NoError(t, em.Emit("alice", ev{ID: "a1", N: 3, Time: now}))
	require.NoError(t, em.Emit("alice", ev{ID: "a2", N: 4, Time: now}))
	require.NoError(t, em.Emit("bob", ev{ID: "b1", N: 5, Time: now}))
	plain := []byte(`{"id":"c1","n":1,"time":"` + now.Format(time.RFC3339) + `"}`)
	require.NoError(t, em.EmitRaw("carol", plain)) // a producer that does not seal
	require.NoError(t, em.Finish())

	// alice: 3, 7, then her timer's close; bob: 5, then his close.
	totals := consume(t, b, "totals", 5)
	last := map[string]total{}
	for _, m := range totals {
		require.True(t, keyring.IsSealed(m.Value), "a sealed stream's value is sealed")
		require.False(t, bytes.Contains(m.Value, []byte(`"sum"`)))
		v, err := kr.Open(ctx, string(m.Key), m.Value)
		require.NoError(t, err)
		var tot total
		require.NoError(t, json.Unmarshal(v, &tot))
		last[string(m.Key)] = tot
	}
	require.Equal(t, map[string]total{"alice": {Sum: 7, Events: 2, Closed: 1}, "bob": {Sum: 5, Events: 1, Closed: 1}}, last)

	// The table's state is sealed too; its bookkeeping stays clear.
	for _, m := range consumeAll(t, b, "summer-table") {
		require.NotContains(t, string(m.Value), `"sum"`, "a table value in clear")
		off, err := engine.StateOffset(m.Value)
		require.NoError(t, err)
		require.True(t, keyring.IsSealed(m.Value[off:]))
	}

	dlq := consume(t, b, "amounts.dlq", 1)
	require.Equal(t, "carol", string(dlq[0].Key))
	require.Equal(t, plain, dlq[0].Value, "dead letters keep the bytes as they were")
	require.Contains(t, headers(dlq[0])[processors.HeaderReason], "open: keyring: value is not sealed")
	require.Equal(t, "open", headers(dlq[0])[processors.HeaderStage])

	// Destroying alice's key makes every record of hers unreadable, in
	// the input, the output and the dead letters; bob's still open.
	existed, err := kr.Destroy(ctx, "alice")
	require.NoError(t, err)
	require.True(t, existed)
	inputs := consume(t, b, "amounts", 4)
	for _, m := range append(inputs, totals...) {
		_, err := kr.Open(ctx, string(m.Key), m.Value)
		switch string(m.Key) {
		case "alice":
			require.ErrorIs(t, err, keyring.ErrDestroyed)
		case "bob":
			require.NoError(t, err)
		}
	}

	// A record of alice's replayed after the deletion cannot be opened:
	// it is dead-lettered, not applied, and counted.
	var old []byte
	for _, m := range inputs {
		if string(m.Key) == "alice" {
			old = m.Value
		}
	}
	em, err = processors.NewEmitter(b.Addrs(), in)
	require.NoError(t, err)
	require.NoError(t, em.EmitRaw("alice", old))
	require.NoError(t, em.Finish())
	replayed := 0
	for _, m := range consume(t, b, "amounts.dlq", 2) {
		if string(m.Key) == "alice" {
			replayed++
			require.Equal(t, old, m.Value)
			require.True(t, strings.HasPrefix(headers(m)[processors.HeaderReason], "open: keyring: the subject's data key is destroyed"), headers(m)[processors.HeaderReason])
		}
	}
	require.Equal(t, 1, replayed)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP aether_seal_errors_total Records of sealed streams or tables that could not be opened or sealed, after retries, by processor and op (open, seal; shredded: sealed with a key that is gone, after a deletion).
# TYPE aether_seal_errors_total counter
aether_seal_errors_total{op="open",processor="summer"} 1
aether_seal_errors_total{op="shredded",processor="summer"} 1
`), "aether_seal_errors_total"))
	require.Len(t, consume(t, b, "totals", 5), 5, "nothing of the dead-lettered records was applied")

	// A new event of alice's (a new key): her old state, sealed with the
	// key that is gone, is as good as deleted, and she starts afresh (as
	// after a data key expired while she was away).
	em, err = processors.NewEmitter(b.Addrs(), in, processors.ClientSeal(kr))
	require.NoError(t, err)
	require.NoError(t, em.Emit("alice", ev{ID: "a3", N: 10, Time: time.Now().UTC()}))
	require.NoError(t, em.Finish())
	totals = consume(t, b, "totals", 6)
	var latest total
	for _, m := range totals {
		if v, err := kr.Open(ctx, string(m.Key), m.Value); err == nil && string(m.Key) == "alice" {
			require.NoError(t, json.Unmarshal(v, &latest))
		}
	}
	require.Equal(t, total{Sum: 10, Events: 1}, latest)
}

// A timer of a key whose data key is destroyed (a deletion whose control
// record has not arrived yet) fires nothing and writes nothing: above all
// it does not seal state again under a new key.
func TestSealedTimerOfADestroyedKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := newSealedSums(t, 1)
	b, kr, top, in, rdb, prefix := env.b, env.kr, env.top, env.in, env.rdb, env.prefix
	reg := prometheus.NewRegistry()
	_, stop := startRuntime(t, ctx, b, top, processors.Seal(kr), processors.Registry(reg))
	defer stop()

	em, err := processors.NewEmitter(b.Addrs(), in, processors.ClientSeal(kr))
	require.NoError(t, err)
	require.NoError(t, em.Emit("dave", ev{ID: "d1", N: 1, Time: time.Now().UTC()}))
	require.NoError(t, em.Finish())
	consume(t, b, "totals", 1) // applied; the session timer is 2 s of event time away
	existed, err := kr.Destroy(ctx, "dave")
	require.NoError(t, err)
	require.True(t, existed)

	require.Eventually(t, func() bool {
		return counterValue(t, reg, "aether_timers_fired_total", "shredded") == 1
	}, 20*time.Second, 50*time.Millisecond, "the timer fired and found the key gone")
	require.Len(t, consumeAll(t, b, "totals"), 1, "nothing emitted")
	n, err := rdb.Exists(ctx, prefix+"dave").Result()
	require.NoError(t, err)
	require.Zero(t, n, "no new data key was made for dave")
}

// A table whose state was written in clear, before sealing was turned on,
// stays usable: the next record of the key is applied on that state, and
// the state it writes is sealed. (A value in clear on the sealed input is
// still dead-lettered: see TestSealedStreams.)
func TestSealedTableStateWrittenInClear(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := newSealedSums(t, 1)
	b, kr, top, in := env.b, env.kr, env.top, env.in
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // timers 2 s of event time away never fire

	_, stop := startRuntime(t, ctx, b, top, processors.IdleAdvance(false)) // no sealer: all in clear
	em, err := processors.NewEmitter(b.Addrs(), in)
	require.NoError(t, err)
	require.NoError(t, em.Emit("frank", ev{ID: "f1", N: 2, Time: t0}))
	require.NoError(t, em.Finish())
	consume(t, b, "totals", 1)
	stop()
	clear := consumeAll(t, b, "summer-table")
	require.Len(t, clear, 1)
	require.Contains(t, string(clear[0].Value), `"sum":2`, "the state in clear")

	reg := prometheus.NewRegistry()
	_, stop = startRuntime(t, ctx, b, top, processors.Seal(kr), processors.Registry(reg), processors.IdleAdvance(false))
	defer stop()
	em, err = processors.NewEmitter(b.Addrs(), in, processors.ClientSeal(kr))
	require.NoError(t, err)
	require.NoError(t, em.Emit("frank", ev{ID: "f2", N: 3, Time: t0.Add(time.Second)}))
	require.NoError(t, em.Finish())

	totals := consume(t, b, "totals", 2)
	v, err := kr.Open(ctx, "frank", totals[1].Value)
	require.NoError(t, err)
	var tot total
	require.NoError(t, json.Unmarshal(v, &tot))
	require.Equal(t, total{Sum: 5, Events: 2}, tot, "applied on the state in clear")
	table := consumeAll(t, b, "summer-table")
	require.Len(t, table, 2)
	off, err := engine.StateOffset(table[1].Value)
	require.NoError(t, err)
	require.True(t, keyring.IsSealed(table[1].Value[off:]), "the state is sealed on its next write")
	require.Empty(t, consumeAll(t, b, "amounts.dlq"))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(""), "aether_seal_errors_total"), "no open failed")
}

// A lookup of a sealed table opens the state with the runtime's retries,
// and a failure is counted like any other open. The table is sealed by an
// input its owner consumes after the lookup was declared.
func TestSealedLookups(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := newSealedSums(t, 1) // its broker and keyring; the topology is this one:
	b, kr := env.b, env.kr
	top := topology.New("sealed-lookups")
	plain := topology.NewStream("deposits", codec.JSON[ev]())
	sealed := topology.NewStream("amounts", codec.JSON[ev](), topology.Sealed())
	requests := topology.NewStream("requests", codec.JSON[ev]())
	answers := topology.NewStream("answers", codec.JSON[enriched]())
	top.Source(plain)
	top.Source(sealed)
	top.Source(requests)
	summer := topology.AddProcessor(top, "summer", plain, codec.JSON[total](), operators.Operator[total, ev, total](sumOp{})).
		Emit(topology.NewStream("totals", codec.JSON[total](), topology.Sealed()))
	table := summer.Table()
	addEnricher(top, requests, table, answers)
	summer.Consume(sealed) // after the lookup: the table is sealed all the same

	_, stopSummer := startRuntime(t, ctx, b, top, processors.Seal(kr), processors.Only("summer"))
	defer stopSummer()
	em, err := processors.NewEmitter(b.Addrs(), sealed, processors.ClientSeal(kr))
	require.NoError(t, err)
	require.NoError(t, em.Emit("gina", ev{ID: "g1", N: 4, Time: time.Now().UTC()}))
	require.NoError(t, em.Finish())
	consume(t, b, "totals", 1)
	for _, m := range consumeAll(t, b, "summer-table") {
		off, err := engine.StateOffset(m.Value)
		require.NoError(t, err)
		require.True(t, keyring.IsSealed(m.Value[off:]), "the table's state is sealed")
	}

	ask := func(n int) {
		t.Helper()
		rq, err := processors.NewEmitter(b.Addrs(), requests)
		require.NoError(t, err)
		require.NoError(t, rq.Emit("gina", ev{N: n}))
		require.NoError(t, rq.Finish())
	}
	_, stop := startRuntime(t, ctx, b, top, processors.Seal(kr), processors.Only("enricher"))
	ask(1)
	got, err := answers.Codec().Decode(consume(t, b, "answers", 1)[0].Value)
	require.NoError(t, err)
	require.Equal(t, enriched{N: 1, Total: 4}, got, "the lookup opened the state")
	stop()

	// With the key store out of reach, the lookup fails after the
	// retries, counted in aether_seal_errors_total.
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer down.Close()
	reader, err := keyring.New(keyring.Options{Redis: down, MasterKey: env.master, Prefix: env.prefix, TTL: time.Hour})
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	_, stop = startRuntime(t, ctx, b, top, processors.Seal(reader), processors.Only("enricher"), processors.Registry(reg))
	defer stop()
	ask(2)
	dlq := consume(t, b, "requests.dlq", 1)
	require.Contains(t, headers(dlq[0])[processors.HeaderReason], "keyring: read key: ")
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP aether_seal_errors_total Records of sealed streams or tables that could not be opened or sealed, after retries, by processor and op (open, seal; shredded: sealed with a key that is gone, after a deletion).
# TYPE aether_seal_errors_total counter
aether_seal_errors_total{op="open",processor="enricher"} 1
`), "aether_seal_errors_total"))
}

// counterValue is the value of the counter name whose outcome label is
// outcome, from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if mf.GetName() == name && l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// With the key store out of reach, records of a sealed stream are tried
// again (the sink retries), then dead-lettered with their bytes as they were,
// counted, and nothing is applied; the processor keeps running.
func TestSealedStreamsWithoutTheKeyStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := newSealedSums(t, 1)
	b, writer, top, in := env.b, env.kr, env.top, env.in
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer down.Close()
	reader, err := keyring.New(keyring.Options{Redis: down, MasterKey: env.master, Prefix: env.prefix, TTL: time.Hour})
	require.NoError(t, err)

	reg := prometheus.NewRegistry()
	_, stop := startRuntime(t, ctx, b, top, processors.Seal(reader), processors.Registry(reg))
	defer stop()

	em, err := processors.NewEmitter(b.Addrs(), in, processors.ClientSeal(writer))
	require.NoError(t, err)
	for i := range 3 {
		require.NoError(t, em.Emit("erin", ev{ID: fmt.Sprint("e", i), N: 1, Time: time.Now().UTC()}))
	}
	require.NoError(t, em.Finish())
	inputs := consume(t, b, "amounts", 3)
	dlq := consume(t, b, "amounts.dlq", 3)
	for i, m := range dlq {
		require.Equal(t, inputs[i].Value, m.Value, "the bytes as they were")
		require.Equal(t, "open", headers(m)[processors.HeaderStage])
		require.Contains(t, headers(m)[processors.HeaderReason], "open: keyring: read key: ")
	}
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP aether_seal_errors_total Records of sealed streams or tables that could not be opened or sealed, after retries, by processor and op (open, seal; shredded: sealed with a key that is gone, after a deletion).
# TYPE aether_seal_errors_total counter
aether_seal_errors_total{op="open",processor="summer"} 3
`), "aether_seal_errors_total"))
	require.Empty(t, consumeAll(t, b, "totals"), "nothing applied")
}

// sealedSums is the sum topology with its input and output sealed, on a
// fresh broker with the given partitions, and a keyring on the real Redis
// (keys under a prefix of the test's own, removed at the end).
type sealedSums struct {
	top *topology.Topology
	in  *topology.Stream[ev]
	b   *broker.Broker
	rdb *redis.Client
	kr  *keyring.Keyring
	// prefix and master are the keyring's, for a second keyring.
	prefix string
	master []byte
}

func newSealedSums(t *testing.T, partitions int) *sealedSums {
	t.Helper()
	s := &sealedSums{rdb: redistest.Real(t), prefix: redistest.UniquePrefix(t), master: bytes.Repeat([]byte{7}, 32)}
	redistest.CleanupPrefix(t, s.rdb, s.prefix)
	var err error
	s.kr, err = keyring.New(keyring.Options{Redis: s.rdb, MasterKey: s.master, Prefix: s.prefix, TTL: time.Hour})
	require.NoError(t, err)
	s.b = startBroker(t, partitions)
	s.top = topology.New("sealed-sums")
	s.in = topology.NewStream("amounts", codec.JSON[ev](), topology.Sealed()).
		EventTime(func(e ev) time.Time { return e.Time }).
		EventID(func(e ev) string { return e.ID })
	s.top.Source(s.in)
	topology.AddProcessor(s.top, "summer", s.in, codec.JSON[total](), operators.Operator[total, ev, total](sumOp{})).
		Emit(topology.NewStream("totals", codec.JSON[total](), topology.Sealed()))
	return s
}
