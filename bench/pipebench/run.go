package pipebench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"

	"github.com/aetherai/aether/bench/internal/report"
	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/clickstream"
	"github.com/aetherai/aether/codec"
)

// RawTopic is the input topic every variant consumes.
const RawTopic = "bench_events_raw"

// Result is what Run measured. The first six fields are the benchmark's
// contract (the JSON line the CLI prints last); the rest is detail.
type Result struct {
	Events int `json:"events"`
	// Median rates over the rounds, in input events per second.
	Aether      float64 `json:"aether_events_per_sec"`
	Handwritten float64 `json:"handwritten_events_per_sec"`
	Bare        float64 `json:"bare_events_per_sec"`
	// OverheadRatio is Aether / Handwritten: the share of a hand-written
	// Goka processor's throughput the runtime keeps (1 = no overhead).
	OverheadRatio float64 `json:"overhead_ratio"`
	// EfficiencyRatio is Aether / Bare: the share of the decode-and-count
	// ceiling the whole sessionizer keeps.
	EfficiencyRatio float64 `json:"efficiency_ratio"`
	// With Config.Audit: the median rate of AetherAudit, and AuditRatio,
	// AetherAudit / Aether, the share of the unaudited rate the runtime
	// keeps with attestations to a file trail (median of per-round ratios).
	AetherAudit float64 `json:"aether_audit_events_per_sec,omitempty"`
	AuditRatio  float64 `json:"audit_ratio,omitempty"`
	// AuditCPURatio is the same comparison by CPU: aether's CPU per event
	// over aether-audit's (median of per-round ratios; 1 = auditing costs
	// no CPU). Steadier than AuditRatio when other work shares the cores.
	AuditCPURatio float64 `json:"audit_cpu_ratio,omitempty"`
	// With Config.Seal: the median rate of AetherSeal, and SealRatio,
	// AetherSeal / Aether, the share of the plain rate the runtime keeps
	// when it opens every input record and seals every table write and
	// output with per-user keys (median of per-round ratios).
	AetherSeal float64 `json:"aether_seal_events_per_sec,omitempty"`
	SealRatio  float64 `json:"seal_ratio,omitempty"`
	// SealCPURatio is aether's CPU per event over aether-seal's (median of
	// per-round ratios; 1 = sealing costs no CPU).
	SealCPURatio float64 `json:"seal_cpu_ratio,omitempty"`

	Users      int    `json:"users"`
	Partitions int    `json:"partitions"`
	Rounds     int    `json:"rounds"`
	Storage    string `json:"storage"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	// Median process CPU time per input event, in microseconds, from a
	// variant's first record to its last (all goroutines, the in-process
	// broker's included).
	AetherCPU      float64 `json:"aether_cpu_us_per_event"`
	HandwrittenCPU float64 `json:"handwritten_cpu_us_per_event"`
	BareCPU        float64 `json:"bare_cpu_us_per_event"`
	AetherAuditCPU float64 `json:"aether_audit_cpu_us_per_event,omitempty"`
	AetherSealCPU  float64 `json:"aether_seal_cpu_us_per_event,omitempty"`
	// Per-round rates, in round order.
	AetherRounds      []float64 `json:"aether_rounds"`
	HandwrittenRounds []float64 `json:"handwritten_rounds"`
	BareRounds        []float64 `json:"bare_rounds"`
	// Output records written per round (a sanity check: aether and
	// handwritten run the same operators and should write about as many).
	AetherOutputs      []int64 `json:"aether_outputs"`
	HandwrittenOutputs []int64 `json:"handwritten_outputs"`
	// Timer deliveries that fired at least one timer, per round, up to
	// the processor's stop (they depend on wall-clock sweeps, so vary).
	AetherTimerFires      []int64 `json:"aether_timer_fires"`
	HandwrittenTimerFires []int64 `json:"handwritten_timer_fires"`
	// With Config.Audit, per round: AetherAudit's rates, the events in its
	// trail and how many were attestations, and how often the record path
	// waited for room in the audit queue.
	AetherAuditRounds []float64 `json:"aether_audit_rounds,omitempty"`
	AuditEvents       []int     `json:"audit_events,omitempty"`
	AuditAttestations []int     `json:"audit_attestations,omitempty"`
	AuditQueueBlocked []uint64  `json:"audit_queue_blocked,omitempty"`
	// With Config.Seal, per round: AetherSeal's rates, its ratio to
	// Aether's, and the keyring's successful opens and seals.
	AetherSealRounds []float64 `json:"aether_seal_rounds,omitempty"`
	SealRoundRatios  []float64 `json:"seal_round_ratios,omitempty"`
	SealOpens        []int64   `json:"seal_opens,omitempty"`
	SealSeals        []int64   `json:"seal_seals,omitempty"`
	// Seconds is the wall time of the whole run, setup included.
	Seconds float64 `json:"wall_seconds"`
}

// measurement is one variant's run in one round.
type measurement struct {
	elapsed time.Duration // first record seen -> all records handled
	rate    float64
	outputs int64
	fires   int64 // timer deliveries that fired a timer
	cpu     time.Duration
	audit   auditCheck
	seal    sealCheck
}

// instance is one variant's processor, built for one round.
type instance interface {
	// run runs the processor until ctx is cancelled.
	run(ctx context.Context) error
	// wait blocks until n input records were handled and returns when the
	// first was seen and when the last was handled. It gives up when ctx
	// ends or exited is closed (run returned).
	wait(ctx context.Context, exited <-chan struct{}) (first, last time.Time, err error)
	// output is the output topic, "" if none.
	output() string
	// topics are the topics the run created, deleted after it.
	topics() []string
	// name is the processor's name (its consumer group).
	name() string
	// timerFires counts the loopback ticks that fired at least one timer.
	timerFires() int64
}

type env struct {
	cfg     Config
	log     io.Writer
	addrs   []string
	client  sarama.Client
	admin   sarama.ClusterAdmin
	baseDir string // LevelDB storage; "" for memory
	// auditDir holds the AetherAudit variant's trails (Config.Audit).
	auditDir string
	// seal is the keyring setup of the AetherSeal variant (Config.Seal).
	seal *sealEnv
}

// Run runs the benchmark and writes progress lines to log.
func Run(ctx context.Context, cfg Config, log io.Writer) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = io.Discard
	}
	began := time.Now()

	b, err := broker.Start(broker.Partitions(cfg.Partitions))
	if err != nil {
		return nil, err
	}
	defer b.Close()
	e := &env{cfg: cfg, log: log, addrs: b.Addrs()}
	fmt.Fprintf(log, "embedded broker on %v, %d partitions, %s storage, GOMAXPROCS %d\n",
		e.addrs, cfg.Partitions, cfg.Storage, runtime.GOMAXPROCS(0))

	if cfg.Storage == StorageLevelDB {
		dir, err := os.MkdirTemp("", "aether-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		e.baseDir = dir
	}
	if cfg.Audit {
		dir, err := os.MkdirTemp("", "aether-bench-audit-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		e.auditDir = dir
	}
	if cfg.Seal {
		if e.seal, err = setupSeal(ctx, cfg.Redis); err != nil {
			return nil, err
		}
		defer func() {
			n, err := e.seal.close()
			if err != nil {
				fmt.Fprintf(log, "deleting the data keys under %s: %v (they expire within %s)\n", e.seal.prefix, err, keyTTL)
				return
			}
			fmt.Fprintf(log, "deleted %s data keys under %s\n", thousands(n), e.seal.prefix)
		}()
	}
	if e.client, err = sarama.NewClient(e.addrs, broker.SaramaConfig("aether-bench-client")); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	defer e.client.Close()
	if e.admin, err = sarama.NewClusterAdmin(e.addrs, broker.SaramaConfig("aether-bench-admin")); err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	defer e.admin.Close()

	if err := e.produceInput(ctx); err != nil {
		return nil, err
	}

	rates := map[string][]float64{}
	outputs := map[string][]int64{}
	fires := map[string][]int64{}
	cpus := map[string][]float64{} // µs per event
	var audits []auditCheck
	var seals []sealCheck
	for round := 1; round <= cfg.Rounds; round++ {
		for _, v := range cfg.order(round) {
			runtime.GC() // leave the previous variant's garbage out of this one
			m, err := e.measure(ctx, v, round)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", round, v, err)
			}
			rates[v] = append(rates[v], m.rate)
			outputs[v] = append(outputs[v], m.outputs)
			fires[v] = append(fires[v], m.fires)
			cpus[v] = append(cpus[v], m.cpu.Seconds()*1e6/float64(cfg.Events))
			detail := ""
			if v != Bare {
				detail = fmt.Sprintf(", %s output records, %s timer deliveries", thousands(m.outputs), thousands(m.fires))
			}
			if v == AetherAudit {
				audits = append(audits, m.audit)
				detail += fmt.Sprintf(", trail of %d events (%d attestations) verified, every offset attested once", m.audit.events, m.audit.attestations)
			}
			if v == AetherSeal {
				seals = append(seals, m.seal)
				detail += fmt.Sprintf(", %s values opened and %s sealed, output sealed", thousands(m.seal.opens), thousands(m.seal.seals))
			}
			fmt.Fprintf(log, "round %d/%d %s: %s events/s (%.3f s, %.2f us CPU per event%s)\n",
				round, cfg.Rounds, v, thousands(int64(math.Round(m.rate))), m.elapsed.Seconds(), cpus[v][len(cpus[v])-1], detail)
		}
	}

	res := &Result{
		Events:             cfg.Events,
		Aether:             median(rates[Aether]),
		Handwritten:        median(rates[Handwritten]),
		Bare:               median(rates[Bare]),
		Users:              cfg.Users,
		Partitions:         cfg.Partitions,
		Rounds:             cfg.Rounds,
		Storage:            cfg.Storage,
		GOMAXPROCS:         runtime.GOMAXPROCS(0),
		AetherCPU:          round(median(cpus[Aether]), 2),
		HandwrittenCPU:     round(median(cpus[Handwritten]), 2),
		BareCPU:            round(median(cpus[Bare]), 2),
		AetherRounds:       roundAll(rates[Aether], 0),
		HandwrittenRounds:  roundAll(rates[Handwritten], 0),
		BareRounds:         roundAll(rates[Bare], 0),
		AetherOutputs:      outputs[Aether],
		HandwrittenOutputs: outputs[Handwritten],

		AetherTimerFires:      fires[Aether],
		HandwrittenTimerFires: fires[Handwritten],
	}
	// Ratios pair the variants within each round (they ran seconds apart,
	// under the same load), then take the median over rounds: drift in the
	// machine's speed between rounds cancels out.
	var overhead, efficiency []float64
	for r := range rates[Aether] {
		overhead = append(overhead, rates[Aether][r]/rates[Handwritten][r])
		efficiency = append(efficiency, rates[Aether][r]/rates[Bare][r])
	}
	res.OverheadRatio = round(median(overhead), 4)
	res.EfficiencyRatio = round(median(efficiency), 4)
	res.Aether, res.Handwritten, res.Bare = round(res.Aether, 0), round(res.Handwritten, 0), round(res.Bare, 0)
	var compared []comparison // printed after the medians, in this order
	if cfg.Audit {
		c := compare(rates, cpus, AetherAudit, "the audit trail")
		compared = append(compared, c)
		res.AetherAudit, res.AuditRatio, res.AuditCPURatio, res.AetherAuditCPU = c.rate, c.ratio, c.cpuRatio, c.cpu
		res.AetherAuditRounds = c.rounds
		for _, a := range audits {
			res.AuditEvents = append(res.AuditEvents, a.events)
			res.AuditAttestations = append(res.AuditAttestations, a.attestations)
			res.AuditQueueBlocked = append(res.AuditQueueBlocked, a.blocked)
		}
	}
	if cfg.Seal {
		c := compare(rates, cpus, AetherSeal, "sealing")
		compared = append(compared, c)
		res.AetherSeal, res.SealRatio, res.SealCPURatio, res.AetherSealCPU = c.rate, c.ratio, c.cpuRatio, c.cpu
		res.AetherSealRounds, res.SealRoundRatios = c.rounds, c.roundRatios
		for _, s := range seals {
			res.SealOpens = append(res.SealOpens, s.opens)
			res.SealSeals = append(res.SealSeals, s.seals)
		}
	}
	res.Seconds = round(time.Since(began).Seconds(), 1)
	fmt.Fprintf(log, "medians over %d round(s): aether %s, handwritten %s, bare %s events/s; per-round ratios' medians: aether/handwritten %.3f, aether/bare %.3f\n",
		cfg.Rounds, thousands(int64(res.Aether)), thousands(int64(res.Handwritten)), thousands(int64(res.Bare)),
		res.OverheadRatio, res.EfficiencyRatio)
	for _, c := range compared {
		c.print(log, res.AetherCPU)
	}
	return res, nil
}

// produceInput generates the events once, writes them to RawTopic and
// waits until the broker acknowledged all of them.
func (e *env) produceInput(ctx context.Context) error {
	cfg := e.cfg
	if err := broker.EnsureTopic(ctx, e.addrs, broker.SaramaConfig("aether-bench-setup"),
		broker.TopicSpec{Name: RawTopic, Partitions: int32(cfg.Partitions)}); err != nil {
		return err
	}
	gen, err := clickstream.New(clickstream.Config{Users: cfg.Users, Seed: cfg.Seed})
	if err != nil {
		return err
	}
	recs := gen.Take(cfg.Events)
	bytes := 0
	for _, r := range recs {
		bytes += len(r.Raw)
	}

	const cid = "aether-bench-emitter"
	em, err := goka.NewEmitter(e.addrs, goka.Stream(RawTopic), codec.Goka(codec.Bytes()),
		goka.WithEmitterClientID(cid),
		goka.WithEmitterProducerBuilder(goka.ProducerBuilderWithConfig(broker.SaramaConfig(cid))),
		goka.WithEmitterTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(broker.SaramaConfig(cid), broker.GokaTopicManagerConfig())),
		goka.WithEmitterLogger(discardLogger{}))
	if err != nil {
		return fmt.Errorf("emitter: %w", err)
	}
	start := time.Now()
	var failed atomic.Int64
	var firstErr error
	var mu sync.Mutex
	for _, r := range recs {
		if err := ctx.Err(); err != nil {
			_ = em.Finish()
			return err
		}
		p, err := em.Emit(r.Key, r.Raw)
		if err != nil {
			_ = em.Finish()
			return fmt.Errorf("emit: %w", err)
		}
		p.Then(func(err error) {
			if err != nil {
				failed.Add(1)
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	if err := em.Finish(); err != nil {
		return fmt.Errorf("emitter: %w", err)
	}
	if n := failed.Load(); n > 0 {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Errorf("%d of %d events not acknowledged, first: %w", n, cfg.Events, firstErr)
	}
	got, err := e.records(RawTopic)
	if err != nil {
		return err
	}
	if got != int64(cfg.Events) {
		return fmt.Errorf("input topic holds %d records, want %d", got, cfg.Events)
	}
	fmt.Fprintf(e.log, "emitted %s events (%d users, %.0f bytes on average) to %s in %.2f s, all acknowledged\n",
		thousands(int64(cfg.Events)), cfg.Users, float64(bytes)/float64(cfg.Events), RawTopic, time.Since(start).Seconds())
	if cfg.Seal {
		return e.produceSealedInput(ctx, recs)
	}
	return nil
}

func (e *env) newInstance(ctx context.Context, variant string, round int) (instance, error) {
	switch variant {
	case Aether, AetherAudit, AetherSeal:
		return newAether(ctx, e, round, variant)
	case Handwritten:
		return newHandwritten(ctx, e, round)
	case Bare:
		return newBare(e, round)
	}
	return nil, fmt.Errorf("unknown variant %q", variant)
}

// measure runs one variant on the whole input and stops it again.
func (e *env) measure(ctx context.Context, variant string, round int) (measurement, error) {
	inst, err := e.newInstance(ctx, variant, round)
	if err != nil {
		return measurement{}, err
	}
	defer e.cleanup(inst)
	if a, ok := inst.(*aetherInstance); ok {
		defer a.close()
	}

	stopProfile := func() {}
	if e.cfg.CPUProfile != "" && variant == e.cfg.ProfileVariant {
		if stopProfile, err = startProfile(e.cfg.CPUProfile, round); err != nil {
			return measurement{}, err
		}
	}
	defer stopProfile()

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var runErr error
	exited := make(chan struct{})
	sampler := startCPUSampler(5 * time.Millisecond)
	go func() {
		runErr = inst.run(rctx)
		close(exited)
	}()
	wctx, wcancel := context.WithTimeout(ctx, e.cfg.Timeout)
	first, last, werr := inst.wait(wctx, exited)
	wcancel()
	cpu := sampler.between(first, last)
	stopProfile()
	stopProfile = func() {}

	cancel()
	select {
	case <-exited:
	case <-time.After(time.Minute):
		return measurement{}, errors.New("processor did not stop within a minute")
	}
	if werr != nil {
		if runErr != nil && !errors.Is(runErr, context.Canceled) {
			werr = errors.Join(werr, runErr)
		}
		return measurement{}, werr
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return measurement{}, fmt.Errorf("processor: %w", runErr)
	}
	m := measurement{elapsed: max(last.Sub(first), time.Microsecond), fires: inst.timerFires(), cpu: cpu}
	if a, ok := inst.(*aetherInstance); ok {
		if m.audit, err = a.checkAudit(e); err != nil {
			return measurement{}, err
		}
		if m.seal, err = a.checkSeal(ctx, e); err != nil {
			return measurement{}, err
		}
	}
	m.rate = float64(e.cfg.Events) / m.elapsed.Seconds()
	if out := inst.output(); out != "" {
		if m.outputs, err = e.records(out); err != nil {
			return measurement{}, err
		}
	}
	return m, nil
}

func startProfile(file string, round int) (stop func(), err error) {
	if round > 1 {
		file += ".r" + strconv.Itoa(round)
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}, nil
}

// records returns the number of records in topic (the sum of its
// partitions' high-water marks; nothing is deleted from these topics).
func (e *env) records(topic string) (int64, error) {
	if err := e.client.RefreshMetadata(topic); err != nil {
		return 0, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	parts, err := e.client.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	var n int64
	for _, p := range parts {
		hwm, err := e.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, fmt.Errorf("offset of %s/%d: %w", topic, p, err)
		}
		n += hwm
	}
	return n, nil
}

// cleanup deletes a run's topics and storage so that later rounds do not
// carry them (kfake keeps every record in memory).
func (e *env) cleanup(inst instance) {
	for _, t := range inst.topics() {
		if err := e.admin.DeleteTopic(t); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			fmt.Fprintf(e.log, "  (could not delete topic %s: %v)\n", t, err)
		}
	}
	if dir := e.storageDir(inst.name()); dir != "" {
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintf(e.log, "  (could not remove %s: %v)\n", dir, err)
		}
	}
}

// storageDir returns the LevelDB directory of a processor, "" for memory
// storage.
func (e *env) storageDir(name string) string {
	if e.baseDir == "" {
		return ""
	}
	return filepath.Join(e.baseDir, name)
}

func (e *env) storageBuilder(name string) storage.Builder {
	if dir := e.storageDir(name); dir != "" {
		return storage.DefaultBuilder(dir)
	}
	return storage.MemoryBuilder()
}

// gokaOptions are the options of the hand-built processors: the same
// builders and sarama settings the Aether runtime gives its processors,
// each builder with its own sarama config (goka mutates them).
func (e *env) gokaOptions(name string) []goka.ProcessorOption {
	cid := "aether-bench-" + name
	sc := func() *sarama.Config { return broker.SaramaConfig(cid) }
	return []goka.ProcessorOption{
		goka.WithClientID(cid),
		goka.WithLogger(discardLogger{}),
		goka.WithConsumerGroupBuilder(goka.ConsumerGroupBuilderWithConfig(sc())),
		goka.WithConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(sc())),
		goka.WithProducerBuilder(goka.ProducerBuilderWithConfig(sc())),
		goka.WithTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(sc(), broker.GokaTopicManagerConfig())),
		goka.WithStorageBuilder(e.storageBuilder(name)),
	}
}

// counter counts the input records a hand-built processor's callback
// handled, and when the first was seen and the last handled.
type counter struct {
	n     int64
	count atomic.Int64
	first atomic.Int64 // unix ns; 0 = none yet
	last  atomic.Int64
	done  chan struct{}
}

func newCounter(n int) *counter { return &counter{n: int64(n), done: make(chan struct{})} }

// seen is called when the callback starts on an input record.
func (c *counter) seen() {
	if c.first.Load() == 0 {
		c.first.CompareAndSwap(0, time.Now().UnixNano())
	}
}

// handled is called when the callback is done with an input record.
func (c *counter) handled() {
	if c.count.Add(1) == c.n {
		c.last.Store(time.Now().UnixNano())
		close(c.done)
	}
}

func (c *counter) wait(ctx context.Context, exited <-chan struct{}) (first, last time.Time, err error) {
	select {
	case <-c.done:
		return time.Unix(0, c.first.Load()), time.Unix(0, c.last.Load()), nil
	case <-exited:
		return first, last, fmt.Errorf("processor stopped after %d of %d records", c.count.Load(), c.n)
	case <-ctx.Done():
		return first, last, fmt.Errorf("%d of %d records handled: %w", c.count.Load(), c.n, ctx.Err())
	}
}

type discardLogger struct{}

func (discardLogger) Print(...any)          {}
func (discardLogger) Println(...any)        {}
func (discardLogger) Printf(string, ...any) {}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func round(x float64, digits int) float64 { return report.Round(x, digits) }

func roundAll(xs []float64, digits int) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = round(x, digits)
	}
	return out
}

func thousands(n int64) string { return report.Thousands(n) }

// comparison summarises a variant that is Aether with one feature on
// (aether-audit, aether-seal) against the plain Aether of the same rounds.
type comparison struct {
	variant string // its name, as in the log
	feature string // "with <feature>:" starts its log line
	// Medians over rounds: rate (events/s), rate ratio variant/Aether, CPU
	// ratio Aether/variant, and CPU per event (µs), rounded as reported.
	rate, ratio, cpuRatio, cpu float64
	rounds                     []float64 // per-round rates
	roundRatios                []float64 // per-round rate ratios
}

func compare(rates, cpus map[string][]float64, variant, feature string) comparison {
	ratios, cpuRatios := pairedRatios(rates, cpus, variant)
	return comparison{
		variant:     variant,
		feature:     feature,
		rate:        round(median(rates[variant]), 0),
		ratio:       round(median(ratios), 4),
		cpuRatio:    round(median(cpuRatios), 4),
		cpu:         round(median(cpus[variant]), 2),
		rounds:      roundAll(rates[variant], 0),
		roundRatios: roundAll(ratios, 4),
	}
}

// print writes the comparison's summary line; aetherCPU is plain Aether's
// median CPU per event, for reference.
func (c comparison) print(log io.Writer, aetherCPU float64) {
	fmt.Fprintf(log, "with %s: %s %s events/s, %.2f us CPU per event (aether %.2f); per-round ratios' medians: %s/aether %.3f by rate, %.3f by CPU per event (aether/%s)\n",
		c.feature, c.variant, thousands(int64(c.rate)), c.cpu, aetherCPU, c.variant, c.ratio, c.cpuRatio, c.variant)
}

// pairedRatios are, round by round, variant's rate over Aether's and
// Aether's CPU per event over variant's (rounds without a CPU reading
// left out).
func pairedRatios(rates, cpus map[string][]float64, variant string) (rate, cpu []float64) {
	for r := range rates[variant] {
		rate = append(rate, rates[variant][r]/rates[Aether][r])
		if cpus[variant][r] > 0 {
			cpu = append(cpu, cpus[Aether][r]/cpus[variant][r])
		}
	}
	return rate, cpu
}
