package processors_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/operators"
	"github.com/aetherai/aether/processors"
	"github.com/aetherai/aether/topology"
)

// memSink keeps the last total per key and can forget a key.
type memSink struct {
	mu     sync.Mutex
	totals map[string]total
	forgot map[string]int
}

func (s *memSink) Name() string { return "mem" }
func (s *memSink) Write(_ context.Context, key string, v total) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.totals[key] = v
	return nil
}
func (s *memSink) Forget(_ context.Context, key string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.totals[key]
	delete(s.totals, key)
	s.forgot[key]++
	if ok {
		return 1, nil
	}
	return 0, nil
}
func (s *memSink) get(key string) (total, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.totals[key]
	return v, ok
}

var _ topology.Forgetter = (*memSink)(nil)

// TestForgetControlRecord sends a forget control record through a
// stateful processor and a downstream stateless one with a sink: the key's
// table value, timers and sink data are gone, the other key is intact,
// nothing is dead-lettered, the view no longer finds the key, and a new
// event starts a fresh state.
func TestForgetControlRecord(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := startBroker(t, 2)
	top, in, p := sumTopology()
	totals := topology.NewStream("totals", codec.JSON[total]())
	sink := &memSink{totals: map[string]total{}, forgot: map[string]int{}}
	topology.AddProcessor(top, "cache", totals, nil,
		operators.Func("pass", func(_ operators.Context[struct{}], v total, emit func(total) error) error { return emit(v) })).
		Sink(sink)

	rt, stop := startRuntime(t, ctx, b, top)
	defer stop()
	view, err := processors.NewView(b.Addrs(), p.Table())
	require.NoError(t, err)
	vctx, stopView := context.WithCancel(ctx)
	defer stopView()
	go func() { _ = view.Run(vctx) }()

	em, err := processors.NewEmitter(b.Addrs(), in)
	require.NoError(t, err)
	now := time.Now().UTC()
	for i, key := range []string{"alice", "bob", "alice"} {
		require.NoError(t, em.Emit(key, ev{ID: key + string(rune('0'+i)), N: 1, Time: now}))
	}
	require.NoError(t, em.Finish())
	require.Eventually(t, func() bool {
		a, okA := sink.get("alice")
		_, okB := sink.get("bob")
		has, _ := view.Has("alice")
		return okA && okB && a.Events == 2 && has
	}, 30*time.Second, 50*time.Millisecond)

	since := time.Now()
	require.NoError(t, processors.SendForget(ctx, b.Addrs(), "amounts", "alice"))
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	names, err := rt.WaitForgotten(wctx, "amounts", "alice", since)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"summer", "cache"}, names)

	v, err := rt.Get("summer", "alice")
	require.NoError(t, err)
	require.Nil(t, v, "the table value is gone from local state")
	_, ok := sink.get("alice")
	require.False(t, ok, "the downstream sink forgot the key")
	require.Equal(t, 1, sink.forgot["alice"])
	require.Eventually(t, func() bool { has, err := view.Has("alice"); return err == nil && !has }, 10*time.Second, 20*time.Millisecond,
		"the view sees the tombstone")
	bobV, err := rt.Get("summer", "bob")
	require.NoError(t, err)
	require.NotNil(t, bobV)
	require.EqualValues(t, 1, rt.Forgotten("summer"))
	require.EqualValues(t, 1, rt.Forgotten("cache"))

	// alice's timer (2 s of event time) is gone with her state: it does not
	// bring a value back when it would have fired.
	time.Sleep(3 * time.Second)
	v, err = rt.Get("summer", "alice")
	require.NoError(t, err)
	require.Nil(t, v)
	has, err := view.Has("alice")
	require.NoError(t, err)
	require.False(t, has)

	// Nothing was dead-lettered; a forwarded control record is on totals.
	msgs, err := broker.Consume(ctx, b.Addrs(), broker.SaramaConfig("test"), "amounts.dlq")
	if err == nil {
		require.Empty(t, msgs)
	}
	fwd := 0
	for _, m := range consumeAll(t, b, "totals") {
		if processors.IsForget(m) {
			require.Equal(t, "alice", string(m.Key))
			require.Empty(t, m.Value)
			fwd++
		}
	}
	require.Equal(t, 1, fwd)

	// A new event for alice starts afresh.
	em, err = processors.NewEmitter(b.Addrs(), in)
	require.NoError(t, err)
	require.NoError(t, em.Emit("alice", ev{ID: "alice-new", N: 5, Time: time.Now().UTC()}))
	require.NoError(t, em.Finish())
	require.Eventually(t, func() bool {
		a, ok := sink.get("alice")
		return ok && a.Events == 1 && a.Sum == 5
	}, 30*time.Second, 50*time.Millisecond)
}

func consumeAll(t *testing.T, b *broker.Broker, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	msgs, err := broker.Consume(context.Background(), b.Addrs(), broker.SaramaConfig("test"), topic)
	require.NoError(t, err)
	return msgs
}
