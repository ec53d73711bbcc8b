// Command trending counts events per product in tumbling event-time
// windows and emits each window's count when the window closes. It shows a
// topology other than the reference pipeline: a stateless processor that
// re-keys the clickstream by product, and a stateful processor running a
// custom operator (windowCount, below) written against the public operator
// contract, with event-time timers.
//
//	go run ./examples/trending          # run and print the top products
//	go run ./examples/trending -check   # also verify every count; exit 1 on a mismatch
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/clickstream"
	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/operators"
	"github.com/aetherai/aether/processors"
	"github.com/aetherai/aether/topology"
)

// Trend is the count of one product in one window. A window is emitted
// when it closes and again (with a higher Revision) for each late event
// that arrives while the window is still kept; the last revision is final.
type Trend struct {
	ProductID   string    `json:"productId"`
	WindowStart time.Time `json:"windowStart"`
	Count       int       `json:"count"`
	Purchases   int       `json:"purchases"`
	Revision    int       `json:"revision"`
}

// window is the per-product state: the counts of open windows and of
// closed windows still kept for late events, by window start (unix ms).
type window struct {
	Open   map[int64]*counts `json:"open,omitempty"`
	Closed map[int64]*counts `json:"closed,omitempty"`
	// Dropped counts events older than every kept window.
	Dropped int `json:"dropped"`
}

type counts struct {
	Count     int `json:"count"`
	Purchases int `json:"purchases"`
	Revision  int `json:"revision"`
}

// windowCount is a custom operator: tumbling event-time windows of size per
// key. A window closes by timer once the watermark passes its end plus
// grace, and is emitted. Records may reach it late (a re-keyed stream
// interleaves the partitions of the stream it came from, which progress at
// their own pace), so a closed window is kept until the watermark passes
// its end plus keep: a late event updates it and re-emits it. Events older
// than that are dropped and counted.
type windowCount struct {
	size, grace, keep time.Duration
}

func (w windowCount) Name() string { return "window-count" }

func (w windowCount) Process(ctx operators.Context[window], e event.Event, emit func(Trend) error) error {
	s := ctx.State()
	start := e.Timestamp.Truncate(w.size).UnixMilli()
	if s.Open == nil {
		s.Open = map[int64]*counts{}
	}
	if s.Closed == nil {
		s.Closed = map[int64]*counts{}
	}
	c, late := s.Closed[start]
	switch {
	case late:
	case !time.UnixMilli(start).Add(w.size + w.keep).After(ctx.Watermark()):
		s.Dropped++
		return nil
	default:
		if c = s.Open[start]; c == nil {
			c = &counts{}
			s.Open[start] = c
		}
	}
	c.Count++
	if e.EventType == event.Purchase {
		c.Purchases++
	}
	w.arm(ctx)
	if late {
		c.Revision++
		return emit(w.trend(ctx.Key(), start, c))
	}
	return nil
}

func (w windowCount) OnTimer(ctx operators.Context[window], emit func(Trend) error) error {
	s := ctx.State()
	wm := ctx.Watermark()
	var due []int64
	for start := range s.Open {
		if !time.UnixMilli(start).Add(w.size + w.grace).After(wm) {
			due = append(due, start)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i] < due[j] })
	for _, start := range due {
		c := s.Open[start]
		delete(s.Open, start)
		if s.Closed == nil {
			s.Closed = map[int64]*counts{}
		}
		s.Closed[start] = c
		if err := emit(w.trend(ctx.Key(), start, c)); err != nil {
			return err
		}
	}
	for start := range s.Closed {
		if !time.UnixMilli(start).Add(w.size + w.keep).After(wm) {
			delete(s.Closed, start)
		}
	}
	w.arm(ctx)
	return nil
}

func (w windowCount) trend(key string, start int64, c *counts) Trend {
	return Trend{ProductID: key, WindowStart: time.UnixMilli(start).UTC(), Count: c.Count, Purchases: c.Purchases, Revision: c.Revision}
}

// arm sets the timer for the next window to close or forget.
func (w windowCount) arm(ctx operators.Context[window]) {
	var next time.Time
	consider := func(at time.Time) {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	for start := range ctx.State().Open {
		consider(time.UnixMilli(start).Add(w.size + w.grace))
	}
	for start := range ctx.State().Closed {
		consider(time.UnixMilli(start).Add(w.size + w.keep))
	}
	if next.IsZero() {
		ctx.ClearTimer()
		return
	}
	ctx.SetTimer(next)
}

func main() {
	check := flag.Bool("check", false, "verify every emitted count against the generated events")
	events := flag.Int("events", 20000, "events to generate")
	flag.Parse()
	if err := run(*events, *check); err != nil {
		fmt.Fprintln(os.Stderr, "trending:", err)
		os.Exit(1)
	}
}

const (
	windowSize = 10 * time.Minute
	grace      = 2 * time.Minute
	keep       = 24 * time.Hour
)

func run(n int, check bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b, err := broker.Start()
	if err != nil {
		return err
	}
	defer b.Close()

	t := topology.New("trending")
	raw := topology.NewStream("user_events_raw", codec.JSON[event.Event](), topology.Retention(7*24*time.Hour), topology.Personal("clientIp"))
	byProduct := topology.NewStream("product_events", codec.JSON[event.Event](), topology.Retention(24*time.Hour), topology.Personal("clientIp")).
		KeyBy(func(e event.Event) string { return e.ProductID }).
		EventTime(func(e event.Event) time.Time { return e.Timestamp })
	trends := topology.NewStream("trending_products", codec.JSON[Trend](), topology.Retention(7*24*time.Hour))
	t.Source(raw)
	topology.AddProcessor(t, "product-keyer", raw, nil,
		operators.Func("rekey", func(_ operators.Context[struct{}], e event.Event, emit func(event.Event) error) error { return emit(e) })).
		Emit(byProduct)
	topology.AddProcessor(t, "trender", byProduct, codec.JSON[window](), operators.Operator[window, event.Event, Trend](windowCount{size: windowSize, grace: grace, keep: keep})).
		Emit(trends)
	desc, _ := t.Describe(topology.Text)
	fmt.Print(desc)

	rt, err := processors.New(ctx, t, processors.Brokers(b.Addrs()...), processors.TimerInterval(100*time.Millisecond), processors.IdleAdvance(false))
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

	gen, err := clickstream.New(clickstream.Config{Users: 500, Products: 300, Seed: 7})
	if err != nil {
		return err
	}
	em, err := processors.NewEmitter(b.Addrs(), raw)
	if err != nil {
		return err
	}
	expected := map[string]map[int64]int{}
	var last time.Time
	for range n {
		r := gen.Next()
		if err := em.Emit(r.Key, r.Event); err != nil {
			return err
		}
		e := r.Event
		w := e.Timestamp.Truncate(windowSize).UnixMilli()
		if expected[e.ProductID] == nil {
			expected[e.ProductID] = map[int64]int{}
		}
		expected[e.ProductID][w]++
		last = e.Timestamp
	}
	if err := em.Finish(); err != nil {
		return err
	}
	fmt.Printf("sent %d events from %s to %s\n", n, gen.Config().Start.Format(time.RFC3339), last.Format(time.RFC3339))

	// Windows that ended well before the last event have closed on every
	// partition. Poll the output until every such window's last revision
	// has the exact count, or time runs out.
	horizon := last.Add(-windowSize - grace - 5*time.Minute).UnixMilli()
	var got map[string]map[int64]Trend
	var problems []error
	checked := 0
	deadline := time.Now().Add(time.Minute)
	for {
		if got, err = readTrends(ctx, b.Addrs(), trends); err != nil {
			return err
		}
		problems, checked = compare(expected, got, horizon)
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	err, stop = stop(), nil
	if err != nil {
		return err
	}
	printTop(got)
	if !check {
		return nil
	}
	if len(problems) > 0 {
		return errors.Join(append([]error{fmt.Errorf("check failed: %d of %d windows wrong", len(problems), checked)}, problems[:min(10, len(problems))]...)...)
	}
	fmt.Printf("check ok: %d closed windows, every count exact\n", checked)
	return nil
}

// readTrends returns the last revision of every emitted window.
func readTrends(ctx context.Context, addrs []string, trends *topology.Stream[Trend]) (map[string]map[int64]Trend, error) {
	msgs, err := broker.Consume(ctx, addrs, broker.SaramaConfig("trending-check"), trends.Name())
	if err != nil {
		return nil, err
	}
	got := map[string]map[int64]Trend{}
	for _, m := range msgs {
		tr, err := trends.Codec().Decode(m.Value)
		if err != nil {
			return nil, fmt.Errorf("decode trend: %w", err)
		}
		if got[tr.ProductID] == nil {
			got[tr.ProductID] = map[int64]Trend{}
		}
		if prev, ok := got[tr.ProductID][tr.WindowStart.UnixMilli()]; !ok || tr.Revision > prev.Revision {
			got[tr.ProductID][tr.WindowStart.UnixMilli()] = tr
		}
	}
	return got, nil
}

func compare(expected map[string]map[int64]int, got map[string]map[int64]Trend, horizon int64) (problems []error, checked int) {
	for p, ws := range expected {
		for w, c := range ws {
			if w+windowSize.Milliseconds() > horizon {
				continue
			}
			checked++
			tr, ok := got[p][w]
			switch {
			case !ok:
				problems = append(problems, fmt.Errorf("%s window %s: missing (want %d)", p, time.UnixMilli(w).UTC().Format(time.RFC3339), c))
			case tr.Count != c:
				problems = append(problems, fmt.Errorf("%s window %s: count %d, want %d", p, time.UnixMilli(w).UTC().Format(time.RFC3339), tr.Count, c))
			}
		}
	}
	return problems, checked
}

func printTop(got map[string]map[int64]Trend) {
	var all []Trend
	for _, ws := range got {
		for _, tr := range ws {
			all = append(all, tr)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Count != all[j].Count {
			return all[i].Count > all[j].Count
		}
		return all[i].ProductID < all[j].ProductID
	})
	fmt.Printf("%d windows emitted; busiest product windows:\n", len(all))
	for _, tr := range all[:min(5, len(all))] {
		fmt.Printf("  %-10s %s  %4d events, %d purchases\n", tr.ProductID, tr.WindowStart.Format("2006-01-02 15:04"), tr.Count, tr.Purchases)
	}
}
