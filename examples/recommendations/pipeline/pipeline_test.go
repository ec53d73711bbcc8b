package pipeline_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/broker/brokertest"
	"github.com/aetherai/aether/clickstream"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/examples/recommendations/pipeline"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/processors"
)

// childEnv makes the test binary run the sessionizer as a separate process
// (see TestMain), so a test can SIGKILL it.
const childEnv = "AETHER_TEST_SESSIONIZER_BROKERS"

func TestMain(m *testing.M) {
	if addrs := os.Getenv(childEnv); addrs != "" {
		os.Exit(runChild(strings.Split(addrs, ",")))
	}
	os.Exit(m.Run())
}

// runChild runs the sessionizer until killed; it prints "ready" once its
// table is recovered.
func runChild(addrs []string) int {
	ctx := context.Background()
	p := pipeline.New(pipeline.Config{})
	rt, err := processors.New(ctx, p.Topology, processors.Brokers(addrs...), processors.Instance(fmt.Sprint(os.Getpid())))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	if err := rt.WaitReady(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	fmt.Println("ready")
	for {
		select {
		case err := <-done:
			if err != nil {
				fmt.Fprintln(os.Stderr, "child:", err)
				return 1
			}
			return 0
		case <-time.After(200 * time.Millisecond):
			o := rt.Outcomes(pipeline.Sessionizer)
			fmt.Printf("outcomes applied=%d replayed=%d duplicate=%d dead_lettered=%d\n", o["applied"], o["replayed"], o["duplicate"], o["dead_lettered"])
		}
	}
}

type child struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	// outcomes is the child's last reported count of records by outcome.
	outcomes string
}

func startChild(t *testing.T, addrs []string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(addrs, ","))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if line == "ready" {
				close(ready)
			}
			if strings.HasPrefix(line, "outcomes ") {
				c.mu.Lock()
				c.outcomes = line
				c.mu.Unlock()
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("sessionizer process did not become ready in 60s")
	}
	return c
}

func (c *child) lastOutcomes() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.outcomes
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(os.Kill)) // SIGKILL: no clean shutdown
	_ = c.cmd.Wait()
}

func startView(t *testing.T, ctx context.Context, addrs []string, p *pipeline.Pipeline) *processors.View[features.State] {
	t.Helper()
	view, err := processors.NewView(addrs, p.Sessionizer.Table())
	require.NoError(t, err)
	go func() { _ = view.Run(ctx) }()
	require.Eventually(t, view.Recovered, 30*time.Second, 10*time.Millisecond, "view of the feature store recovers")
	return view
}

// waitTotals waits until every user's eventsTotal in the feature store is
// exactly what was sent, and fails naming the users that differ.
func waitTotals(t *testing.T, view *processors.View[features.State], expected map[string]uint64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var bad []string
		for user, want := range expected {
			s, _, err := view.Get(user)
			require.NoError(t, err)
			if s.EventsTotal != want {
				bad = append(bad, fmt.Sprintf("%s: %d, want %d", user, s.EventsTotal, want))
			}
		}
		if len(bad) == 0 {
			return
		}
		if time.Now().After(deadline) {
			slices.Sort(bad)
			t.Fatalf("%d of %d users have the wrong eventsTotal, e.g. %v", len(bad), len(expected), bad[:min(5, len(bad))])
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestSIGKILLMidStreamKeepsEveryTotalExact(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := brokertest.Start(t, broker.Partitions(8))
	addrs := b.Addrs()
	p := pipeline.New(pipeline.Config{})

	first := startChild(t, addrs)
	view := startView(t, ctx, addrs, p)
	gen, err := clickstream.New(clickstream.Config{Users: 300, Seed: 42, Duplicate: 0.05, OutOfOrder: 0.02})
	require.NoError(t, err)
	em, err := processors.NewEmitter(addrs, p.Raw)
	require.NoError(t, err)

	const total = 40000
	sent := 0
	send := func(n int) {
		for range n {
			r := gen.Next()
			require.NoError(t, em.EmitRaw(r.Key, r.Raw))
			sent++
		}
	}
	// Kill the sessionizer while it is busy: after part of the first half
	// is applied and while more is arriving.
	send(total / 2)
	require.Eventually(t, func() bool {
		s, _, _ := view.Get("user_0")
		return s.EventsTotal > 0
	}, 30*time.Second, 10*time.Millisecond)
	first.kill(t)
	t.Logf("killed the first sessionizer (SIGKILL) after %d events were sent; its last report: %s", sent, first.lastOutcomes())
	send(total / 4)

	second := startChild(t, addrs)
	defer second.kill(t)
	send(total - sent)
	require.NoError(t, em.Finish())
	require.Equal(t, uint64(total), gen.Stats().Total())
	require.Greater(t, gen.Stats().Duplicate, uint64(1000), "the input holds retries with a known eventId")

	waitTotals(t, view, gen.Expected(), 90*time.Second)
	time.Sleep(300 * time.Millisecond)
	t.Logf("the restarted sessionizer reports: %s", second.lastOutcomes())
}

func TestTwoInstancesInOneGroupSplitPartitions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := brokertest.Start(t, broker.Partitions(8))
	addrs := b.Addrs()
	p := pipeline.New(pipeline.Config{})

	var rts []*processors.Runtime
	var dones []chan error
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	for _, id := range []string{"a", "b"} {
		rt, err := processors.New(ctx, p.Topology, processors.Brokers(addrs...), processors.Only(pipeline.Sessionizer), processors.Instance(id))
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- rt.Run(rctx) }()
		rts, dones = append(rts, rt), append(dones, done)
	}
	// Both members joined: the group's 8 partitions are split between them.
	require.Eventually(t, func() bool {
		a, b := rts[0].Assigned(pipeline.Sessionizer), rts[1].Assigned(pipeline.Sessionizer)
		return len(a) > 0 && len(b) > 0 && len(a)+len(b) == 8 && !slices.ContainsFunc(a, func(x int32) bool { return slices.Contains(b, x) })
	}, 60*time.Second, 100*time.Millisecond)
	for _, rt := range rts {
		require.NoError(t, rt.WaitReady(ctx))
	}

	gen, err := clickstream.New(clickstream.Config{Users: 400, Seed: 7, Duplicate: 0.03, Malformed: 0.01})
	require.NoError(t, err)
	em, err := processors.NewEmitter(addrs, p.Raw)
	require.NoError(t, err)
	const total = 20000
	for range total {
		r := gen.Next()
		require.NoError(t, em.EmitRaw(r.Key, r.Raw))
	}
	require.NoError(t, em.Finish())

	view := startView(t, ctx, addrs, p)
	waitTotals(t, view, gen.Expected(), 60*time.Second)

	var applied, dup, dead uint64
	for _, rt := range rts {
		o := rt.Outcomes(pipeline.Sessionizer)
		require.Positive(t, o["applied"], "each instance processed part of the stream")
		applied, dup, dead = applied+o["applied"], dup+o["duplicate"], dead+o["dead_lettered"]
	}
	st := gen.Stats()
	require.Equal(t, st.Valid+st.OutOfOrder, applied)
	require.Equal(t, st.Duplicate, dup)
	require.Equal(t, st.Malformed, dead)
	stop()
	for _, d := range dones {
		require.NoError(t, <-d)
	}
}

// TestSessionClosesByTimerWithoutANextEvent runs the sessionizer with a
// 2-second gap: a user sends three events and stops; with nothing else on
// the stream, the partition's clock moves on with the wall clock and the
// session's timer closes it, emitting the final record.
func TestSessionClosesByTimerWithoutANextEvent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := brokertest.Start(t, broker.Partitions(2))
	p := pipeline.New(pipeline.Config{Gap: 2 * time.Second, Grace: time.Second, Emit: features.EmitOnSessionChange()})
	rt, err := processors.New(ctx, p.Topology, processors.Brokers(b.Addrs()...), processors.TimerInterval(100*time.Millisecond))
	require.NoError(t, err)
	stop, err := rt.Start(ctx)
	require.NoError(t, err)

	em, err := processors.NewEmitter(b.Addrs(), p.Raw)
	require.NoError(t, err)
	now := time.Now().UTC().Truncate(time.Millisecond)
	for i, typ := range []event.Type{event.View, event.Click, event.AddToCart} {
		require.NoError(t, em.EmitSync("user_1", event.Event{UserID: "user_1", ProductID: fmt.Sprintf("prod_%d", i), EventType: typ,
			Timestamp: now.Add(time.Duration(i) * 500 * time.Millisecond), EventID: fmt.Sprintf("e%d", i)}))
	}
	require.NoError(t, em.Finish())

	var recs []features.Record
	require.Eventually(t, func() bool {
		msgs, err := broker.Consume(ctx, b.Addrs(), broker.SaramaConfig("test"), pipeline.Features)
		require.NoError(t, err)
		recs = recs[:0]
		for _, m := range msgs {
			r, err := p.Features.Codec().Decode(m.Value)
			require.NoError(t, err)
			recs = append(recs, r)
		}
		return len(recs) == 2
	}, 30*time.Second, 100*time.Millisecond, "a start and a close record")
	require.Equal(t, features.ReasonSessionStarted, recs[0].Reason)
	closed := recs[1]
	require.Equal(t, features.ReasonSessionClosed, closed.Reason)
	require.False(t, closed.Session.Open)
	require.Equal(t, uint64(3), closed.EventsTotal)
	require.Equal(t, uint32(3), closed.Session.Events)
	require.Equal(t, features.Counts{View: 1, Click: 1, AddToCart: 1}, closed.Session.Counts)
	require.Equal(t, 1.0, closed.LastSessionSeconds)
	require.Len(t, closed.RecentItems, 3)
	require.NoError(t, stop())
}
