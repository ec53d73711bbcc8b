package pipebench

import (
	"context"
	"fmt"
	"time"

	"github.com/aetherai/aether/examples/recommendations/pipeline"
	"github.com/aetherai/aether/processors"
)

// pollInterval is how often the aether variant's outcome counters are read.
const pollInterval = 5 * time.Millisecond

type aetherInstance struct {
	rt         *processors.Runtime
	group, out string
	n          int
}

func newAether(ctx context.Context, e *env, round int) (*aetherInstance, error) {
	a := &aetherInstance{
		group: fmt.Sprintf("bench-aether-r%d", round),
		out:   fmt.Sprintf("bench_features_aether_r%d", round),
		n:     e.cfg.Events,
	}
	p := pipeline.New(pipeline.Config{Sessionizer: a.group, RawEvents: RawTopic, Features: a.out, Partitions: int32(e.cfg.Partitions)})
	t := p.Topology
	opts := []processors.Option{processors.Brokers(e.addrs...), processors.DefaultPartitions(int32(e.cfg.Partitions))}
	if dir := e.storageDir(a.group); dir != "" {
		opts = append(opts, processors.StorageDir(dir))
	}
	rt, err := processors.New(ctx, t, opts...)
	if err != nil {
		return nil, err
	}
	a.rt = rt
	return a, nil
}

func (a *aetherInstance) run(ctx context.Context) error { return a.rt.Run(ctx) }

func (a *aetherInstance) handled() uint64 {
	var n uint64
	for _, c := range a.rt.Outcomes(a.group) {
		n += c
	}
	return n
}

// wait polls the runtime's outcome counters: the first poll that sees a
// handled record stands for the first record, the first that sees all of
// them for the last (both late by half a poll interval on average, so the
// difference is unbiased).
func (a *aetherInstance) wait(ctx context.Context, exited <-chan struct{}) (first, last time.Time, err error) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		n := a.handled()
		now := time.Now()
		if n > 0 && first.IsZero() {
			first = now
		}
		if n >= uint64(a.n) {
			return first, now, nil
		}
		select {
		case <-ctx.Done():
			return first, last, fmt.Errorf("%d of %d records handled: %w", n, a.n, ctx.Err())
		case <-exited:
			return first, last, fmt.Errorf("runtime stopped after %d of %d records", a.handled(), a.n)
		case <-tick.C:
		}
	}
}

// timerFires reads the runtime's aether_timers_fired_total{outcome="fired"}.
func (a *aetherInstance) timerFires() int64 {
	mfs, err := a.rt.Gatherer().Gather()
	if err != nil {
		return -1
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "aether_timers_fired_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == "fired" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return int64(n)
}

func (a *aetherInstance) output() string { return a.out }
func (a *aetherInstance) name() string   { return a.group }
func (a *aetherInstance) topics() []string {
	return []string{a.group + "-table", a.group + "-loop", a.out}
}
