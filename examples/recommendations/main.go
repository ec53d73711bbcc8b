// Command recommendations runs the sessionizer part of the reference
// pipeline on embedded defaults: an in-process Kafka-protocol broker, the
// topology of package pipeline, and a synthetic clickstream with retries,
// out-of-order and malformed events. It waits until every event is
// accounted for, then prints what happened and one user's feature record.
//
//	go run ./examples/recommendations            # run the demo
//	go run ./examples/recommendations -check     # also reconcile; exit 1 on any mismatch
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/clickstream"
	"github.com/aetherai/aether/examples/recommendations/pipeline"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/processors"
	"github.com/aetherai/aether/topology"
)

func main() {
	events := flag.Int("events", 50000, "synthetic events to send")
	users := flag.Int("users", 2000, "distinct users in the clickstream")
	seed := flag.Uint64("seed", 1, "clickstream seed (same seed, same events)")
	check := flag.Bool("check", false, "reconcile every user's eventsTotal and the dead letters exactly; exit 1 on a mismatch")
	timeout := flag.Duration("timeout", 3*time.Minute, "give up after this long")
	flag.Parse()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, *timeout)
	defer cancelT()
	if err := run(ctx, *events, *users, *seed, *check); err != nil {
		fmt.Fprintln(os.Stderr, "recommendations:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, n, users int, seed uint64, check bool) error {
	b, err := broker.Start(broker.Partitions(8))
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Printf("embedded Kafka-protocol broker on %v\n", b.Addrs())

	p := pipeline.New(pipeline.Config{})
	desc, _ := p.Topology.Describe(topology.Text)
	fmt.Print(desc)

	rt, err := processors.New(ctx, p.Topology, processors.Brokers(b.Addrs()...))
	if err != nil {
		return err
	}
	stop, err := rt.Start(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if stop != nil {
			_ = stop()
		}
	}()
	view, err := processors.NewView(b.Addrs(), p.Sessionizer.Table())
	if err != nil {
		return err
	}
	vctx, stopView := context.WithCancel(ctx)
	defer stopView()
	go func() { _ = view.Run(vctx) }()

	gen, err := clickstream.New(clickstream.Config{Users: users, Seed: seed, OutOfOrder: 0.02, Duplicate: 0.02, Malformed: 0.005})
	if err != nil {
		return err
	}
	em, err := processors.NewEmitter(b.Addrs(), p.Raw)
	if err != nil {
		return err
	}
	start := time.Now()
	for range n {
		r := gen.Next()
		if err := em.EmitRaw(r.Key, r.Raw); err != nil {
			return err
		}
	}
	if err := em.Finish(); err != nil {
		return err
	}
	st := gen.Stats()
	fmt.Printf("sent %d events (%d valid, %d out of order, %d retries with a known eventId, %d malformed) in %s\n",
		n, st.Valid, st.OutOfOrder, st.Duplicate, st.Malformed, time.Since(start).Round(time.Millisecond))

	// Wait until every record has been handled, printing progress.
	var out map[string]uint64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		out = rt.Outcomes(pipeline.Sessionizer)
		handled := out["applied"] + out["duplicate"] + out["dead_lettered"]
		if handled >= uint64(n) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("only %d of %d events handled: %w", handled, n, ctx.Err())
		case <-tick.C:
			fmt.Printf("  handled %d of %d\n", handled, n)
		}
	}
	elapsed := time.Since(start)
	fmt.Printf("sessionizer: %d applied, %d duplicates skipped, %d dead-lettered to %s.dlq (%.0f events/s end to end)\n",
		out["applied"], out["duplicate"], out["dead_lettered"], pipeline.RawEvents, float64(n)/elapsed.Seconds())

	expected := gen.Expected()
	mismatches, err := reconcile(ctx, view, expected)
	if err != nil {
		return err
	}
	dlq, err := broker.Consume(ctx, b.Addrs(), broker.SaramaConfig("recommendations-check"), pipeline.RawEvents+".dlq")
	if err != nil {
		return err
	}
	fmt.Printf("reconciliation: %d users, %d with eventsTotal equal to the distinct valid events sent; %d dead letters for %d malformed events\n",
		len(expected), len(expected)-len(mismatches), len(dlq), st.Malformed)

	if rec, ok := sample(view, expected); ok {
		js, _ := json.MarshalIndent(rec, "", "  ")
		fmt.Printf("feature record of %s:\n%s\n", rec.UserID, js)
	}
	err, stop = stop(), nil
	if err != nil {
		return err
	}
	if check {
		if len(mismatches) > 0 || uint64(len(dlq)) != st.Malformed {
			return errors.Join(append([]error{errors.New("check failed")}, mismatches[:min(10, len(mismatches))]...)...)
		}
		fmt.Println("check ok: every event counted exactly once, every malformed event dead-lettered")
	}
	return nil
}

// reconcile waits until the view shows every user's expected eventsTotal,
// and returns the users that still differ when time runs out.
func reconcile(ctx context.Context, view *processors.View[features.State], expected map[string]uint64) ([]error, error) {
	deadline := time.Now().Add(30 * time.Second)
	for !view.Recovered() {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	for {
		var bad []error
		for user, want := range expected {
			s, _, err := view.Get(user)
			if err != nil {
				return nil, err
			}
			if s.EventsTotal != want {
				bad = append(bad, fmt.Errorf("user %s: eventsTotal %d, want %d", user, s.EventsTotal, want))
			}
		}
		if len(bad) == 0 || time.Now().After(deadline) {
			return bad, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// sample returns the feature record of the most active user.
func sample(view *processors.View[features.State], expected map[string]uint64) (features.Record, bool) {
	users := make([]string, 0, len(expected))
	for u := range expected {
		users = append(users, u)
	}
	sort.Slice(users, func(i, j int) bool {
		if expected[users[i]] != expected[users[j]] {
			return expected[users[i]] > expected[users[j]]
		}
		return users[i] < users[j]
	})
	if len(users) == 0 {
		return features.Record{}, false
	}
	s, ok, err := view.Get(users[0])
	if err != nil || !ok {
		return features.Record{}, false
	}
	return s.Record(users[0]), true
}
