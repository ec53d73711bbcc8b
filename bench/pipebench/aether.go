package pipebench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/examples/recommendations/pipeline"
	"github.com/aetherai/aether/keyring"
	"github.com/aetherai/aether/processors"
)

// pollInterval is how often the aether variant's outcome counters are read.
const pollInterval = 5 * time.Millisecond

type aetherInstance struct {
	rt         *processors.Runtime
	group, out string
	n          int
	sink       *audit.FileSink // the AetherAudit variant's trail; nil otherwise
	// kr is the AetherSeal variant's keyring, its metrics in the runtime's
	// registry; nil otherwise.
	kr *keyring.Keyring
}

// newAether builds the aether variant (name Aether); AetherAudit, whose
// trail is a file in e.auditDir; or AetherSeal, which reads SealedRawTopic
// and runs with processors.Seal and a fresh keyring.
func newAether(ctx context.Context, e *env, round int, name string) (*aetherInstance, error) {
	audited, sealed := name == AetherAudit, name == AetherSeal
	a := &aetherInstance{
		group: fmt.Sprintf("bench-%s-r%d", name, round),
		out:   fmt.Sprintf("bench_features_%s_r%d", strings.ReplaceAll(name, "-", "_"), round),
		n:     e.cfg.Events,
	}
	input := RawTopic
	if sealed {
		input = SealedRawTopic
	}
	p := pipeline.New(pipeline.Config{Sessionizer: a.group, RawEvents: input, Features: a.out, Partitions: int32(e.cfg.Partitions)})
	t := p.Topology
	opts := []processors.Option{processors.Brokers(e.addrs...), processors.DefaultPartitions(int32(e.cfg.Partitions))}
	if dir := e.storageDir(a.group); dir != "" {
		opts = append(opts, processors.StorageDir(dir))
	}
	if audited {
		sink, err := audit.OpenFile(filepath.Join(e.auditDir, a.group+".jsonl"))
		if err != nil {
			return nil, err
		}
		a.sink = sink
		opts = append(opts, processors.Audit(sink))
	}
	if sealed {
		reg := prometheus.NewRegistry()
		kr, err := e.seal.keyring(reg)
		if err != nil {
			return nil, err
		}
		a.kr = kr
		opts = append(opts, processors.Seal(kr), processors.Registry(reg))
	}
	rt, err := processors.New(ctx, t, opts...)
	if err != nil {
		a.close()
		return nil, err
	}
	a.rt = rt
	return a, nil
}

// close closes the audit trail, if any; closing twice is a no-op.
func (a *aetherInstance) close() {
	if a.sink != nil {
		_ = a.sink.Close()
	}
}

// auditCheck is what the check of an audited run found.
type auditCheck struct {
	events, attestations int
	blocked              uint64
}

// checkAudit closes the trail of a stopped AetherAudit run, verifies its
// hash chain, and checks that its attestations cover every offset of the
// input, once.
func (a *aetherInstance) checkAudit(e *env) (auditCheck, error) {
	if a.sink == nil {
		return auditCheck{}, nil
	}
	path := a.sink.Path()
	if err := a.sink.Close(); err != nil {
		return auditCheck{}, err
	}
	st := a.rt.AuditStats()
	if st.Lost > 0 || st.Backlog > 0 {
		return auditCheck{}, fmt.Errorf("audit: %d events lost, %d left in the queue", st.Lost, st.Backlog)
	}
	rep, err := audit.VerifyFile(path)
	if err != nil {
		return auditCheck{}, fmt.Errorf("audit trail does not verify: %w", err)
	}
	cov, err := audit.CoverageFile(path)
	if err != nil {
		return auditCheck{}, err
	}
	if err := cov.Err(); err != nil {
		return auditCheck{}, err
	}
	var records int64
	for part := range int32(e.cfg.Partitions) {
		hwm, err := e.client.GetOffset(RawTopic, part, sarama.OffsetNewest)
		if err != nil {
			return auditCheck{}, fmt.Errorf("offset of %s/%d: %w", RawTopic, part, err)
		}
		pc, ok := cov.Partition(a.group, RawTopic, part)
		if hwm == 0 {
			continue
		}
		if !ok || !pc.Covers(0, hwm-1) || len(pc.Overlaps) > 0 {
			return auditCheck{}, fmt.Errorf("audit: %s/%d: offsets 0-%d not attested exactly once: %+v", RawTopic, part, hwm-1, pc)
		}
		records += pc.Records
	}
	if records != int64(a.n) {
		return auditCheck{}, fmt.Errorf("audit: %d records attested, want %d", records, a.n)
	}
	if err := os.Remove(path); err != nil {
		return auditCheck{}, err
	}
	return auditCheck{events: rep.Records, attestations: cov.Attestations, blocked: st.Blocked}, nil
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
	fired, err := counters(a.rt.Gatherer(), "aether_timers_fired_total", "outcome")
	if err != nil {
		return -1
	}
	return fired["fired"]
}

// counters gathers g and sums the counter name by the values of labels,
// joined by "/" in their order: counters(g, "aether_keyring_operations_total",
// "op", "outcome")["open/ok"]. A missing label counts as "".
func counters(g prometheus.Gatherer, name string, labels ...string) (map[string]int64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, err
	}
	sums := map[string]int64{}
	values := make([]string, len(labels))
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			clear(values)
			for _, l := range m.GetLabel() {
				if i := slices.Index(labels, l.GetName()); i >= 0 {
					values[i] = l.GetValue()
				}
			}
			sums[strings.Join(values, "/")] += int64(m.GetCounter().GetValue())
		}
	}
	return sums, nil
}

func (a *aetherInstance) output() string { return a.out }
func (a *aetherInstance) name() string   { return a.group }
func (a *aetherInstance) topics() []string {
	return []string{a.group + "-table", a.group + "-loop", a.out}
}
