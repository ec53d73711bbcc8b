package pipebench

import (
	"context"
	"encoding/json"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aetherai/aether/bench/internal/report"
	"github.com/aetherai/aether/internal/redistest"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/operators/sessionize"
)

func TestHWCodecRoundTrip(t *testing.T) {
	c := hwCodec{features.StateCodec()}
	in := &hwValue{
		State: features.State{
			Session:     sessionize.State{Start: 1767225600000, Last: 1767225660000, Open: true, Seq: 3, Events: 4},
			Recent:      []features.Item{{ProductID: "prod_7", Type: 1, At: 1767225660000}},
			EventsTotal: 9, FirstSeen: 1767200000000, LastSeen: 1767225660000,
		},
		Timers: [numOps]int64{0, 1767227580000},
	}
	b, err := c.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
	}
	for _, bad := range [][]byte{nil, {5}, b[:len(b)-1]} {
		if _, err := c.Decode(bad); err == nil {
			t.Errorf("Decode(%x): no error", bad)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 95000: "95,000", 1234567: "1,234,567", -4200: "-4,200"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{Events: -1}, {Storage: "rocksdb"}, {Partitions: -2}, {ProfileVariant: "x"}} {
		if err := c.withDefaults().validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := (Config{}).withDefaults().validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestRun runs a small benchmark end to end: every variant handles every
// event, and the aether and handwritten processors, running the same
// operators, write the same output records (when no wall-clock timer sweep
// interfered).
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and nine processors")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var log strings.Builder
	res, err := Run(ctx, Config{Events: 3000, Users: 300, Partitions: 4, Rounds: 1}, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if res.Aether <= 0 || res.Handwritten <= 0 || res.Bare <= 0 || res.OverheadRatio <= 0 || res.EfficiencyRatio <= 0 {
		t.Fatalf("non-positive result: %+v", res)
	}
	a, h := res.AetherOutputs[0], res.HandwrittenOutputs[0]
	if a == 0 {
		t.Fatalf("aether wrote no output records")
	}
	if res.AetherTimerFires[0] == 0 && res.HandwrittenTimerFires[0] == 0 && a != h {
		t.Errorf("aether wrote %d output records, handwritten %d", a, h)
	}
	js, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	const head = `{"events":3000,"aether_events_per_sec":`
	if !strings.HasPrefix(string(js), head) {
		t.Errorf("JSON starts %.60s, want %s", js, head)
	}
	for _, k := range []string{"handwritten_events_per_sec", "bare_events_per_sec", "overhead_ratio", "efficiency_ratio"} {
		if !strings.Contains(string(js), `"`+k+`":`) {
			t.Errorf("JSON lacks %s: %s", k, js)
		}
	}
	t.Log(log.String())
}

func TestRunLevelDB(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and three processors")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{Events: 1000, Users: 100, Partitions: 2, Rounds: 1, Storage: StorageLevelDB}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if res.Storage != StorageLevelDB || res.Aether <= 0 {
		t.Fatalf("result: %+v", res)
	}
}

// TestRunAudit runs the audited variant: its trail verifies and attests
// every input offset (checked inside Run), and the ratio is reported.
func TestRunAudit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and four processors")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var log strings.Builder
	res, err := Run(ctx, Config{Events: 3000, Users: 300, Partitions: 4, Rounds: 1, Audit: true}, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if res.AetherAudit <= 0 || res.AuditRatio <= 0 || res.AuditCPURatio <= 0 || res.AetherAuditCPU <= 0 || res.AetherCPU <= 0 || len(res.AetherAuditRounds) != 1 {
		t.Fatalf("no audited result: %+v", res)
	}
	// 3,000 events over 4 partitions, one attestation per partition at
	// the processor's stop at least; start, rebalance, 4 assigned, 4
	// recovered, ready, 4 revoked and stop around them.
	if a := res.AuditAttestations[0]; a < 4 {
		t.Errorf("%d attestations, want at least 4", a)
	}
	if e := res.AuditEvents[0]; e != res.AuditAttestations[0]+16 {
		t.Errorf("%d events in the trail, want %d attestations + 16 job events", e, res.AuditAttestations[0])
	}
	js, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	const head = `{"events":3000,"aether_events_per_sec":`
	if !strings.HasPrefix(string(js), head) || !strings.Contains(string(js), `"efficiency_ratio":`+strconv.FormatFloat(res.EfficiencyRatio, 'f', -1, 64)+`,"aether_audit_events_per_sec":`) {
		t.Errorf("JSON: %s", js)
	}
	if !strings.Contains(log.String(), "aether-audit/aether") {
		t.Errorf("log lacks the audit ratio:\n%s", log.String())
	}
	t.Log(log.String())
}

func TestCPUSamplerReadsTheNearestSamples(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := &cpuSampler{stop: make(chan struct{}), done: make(chan struct{})}
	close(s.done)
	for i := range 5 {
		s.samples = append(s.samples, cpuSample{at: t0.Add(time.Duration(i) * 10 * time.Millisecond), cpu: time.Duration(i) * time.Second})
	}
	for _, tc := range []struct {
		first, last time.Duration
		want        time.Duration
	}{
		{0, 40 * time.Millisecond, 4 * time.Second},
		{4 * time.Millisecond, 36 * time.Millisecond, 4 * time.Second}, // 0 and 40 ms are nearest
		{6 * time.Millisecond, 34 * time.Millisecond, 2 * time.Second}, // 10 and 30 ms
		{-time.Second, time.Minute, 4 * time.Second},                   // clamped to the samples
		{30 * time.Millisecond, 10 * time.Millisecond, 0},              // never negative
	} {
		if got := s.between(t0.Add(tc.first), t0.Add(tc.last)); got != tc.want {
			t.Errorf("between(%s, %s) = %s, want %s", tc.first, tc.last, got, tc.want)
		}
	}
	if c0, ok := report.ProcessCPU(); ok {
		live := startCPUSampler(time.Millisecond)
		start := time.Now()
		for c, _ := report.ProcessCPU(); c-c0 < 30*time.Millisecond && time.Since(start) < 10*time.Second; c, _ = report.ProcessCPU() {
		}
		if got := live.between(start, time.Now()); got < 20*time.Millisecond {
			t.Errorf("30 ms of spinning measured as %s of CPU", got)
		}
	}
}

func TestRoundOrder(t *testing.T) {
	for r, want := range map[int]string{
		1: "aether handwritten bare", 2: "handwritten bare aether", 3: "bare aether handwritten", 4: "aether handwritten bare",
	} {
		if got := strings.Join(Config{}.order(r), " "); got != want {
			t.Errorf("round %d: %s, want %s", r, got, want)
		}
	}
	for r, want := range map[int]string{
		1: "aether aether-audit handwritten bare", 2: "handwritten bare aether-audit aether",
		3: "bare aether aether-audit handwritten", 4: "aether-audit aether handwritten bare",
	} {
		if got := strings.Join(Config{Audit: true}.order(r), " "); got != want {
			t.Errorf("audit, round %d: %s, want %s", r, got, want)
		}
	}
	for r, want := range map[int]string{
		1: "aether aether-seal handwritten bare", 2: "handwritten bare aether-seal aether",
	} {
		if got := strings.Join(Config{Seal: true}.order(r), " "); got != want {
			t.Errorf("seal, round %d: %s, want %s", r, got, want)
		}
	}
	if got, want := strings.Join(Config{Audit: true, Seal: true}.order(2), " "), "handwritten bare aether-seal aether-audit aether"; got != want {
		t.Errorf("audit and seal, round 2: %s, want %s", got, want)
	}
}

// TestRunSeal runs the sealed variant against the tests' real Redis: the
// run checks that it opened and sealed every record, and the ratio is
// reported.
func TestRunSeal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and four processors")
	}
	redistest.Real(t) // fails under CI without it, skips elsewhere
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var log strings.Builder
	res, err := Run(ctx, Config{Events: 3000, Users: 300, Partitions: 4, Rounds: 1, Seal: true, Redis: redistest.Addr}, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if res.AetherSeal <= 0 || res.SealRatio <= 0 || res.SealCPURatio <= 0 || res.AetherSealCPU <= 0 || len(res.AetherSealRounds) != 1 || len(res.SealRoundRatios) != 1 {
		t.Fatalf("no sealed result: %+v", res)
	}
	if res.SealOpens[0] < 3000 || res.SealSeals[0] < 3000 {
		t.Errorf("%d opens and %d seals, want at least 3000 each", res.SealOpens[0], res.SealSeals[0])
	}
	js, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"efficiency_ratio":`+strconv.FormatFloat(res.EfficiencyRatio, 'f', -1, 64)+`,"aether_seal_events_per_sec":`) {
		t.Errorf("JSON: %s", js)
	}
	if !strings.Contains(log.String(), "aether-seal/aether") || !strings.Contains(log.String(), "deleted 300 data keys") {
		t.Errorf("log lacks the seal ratio or the key cleanup:\n%s", log.String())
	}
}

func TestCounters(t *testing.T) {
	reg := prometheus.NewRegistry()
	ops := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ops_total"}, []string{"outcome", "op"})
	other := prometheus.NewCounter(prometheus.CounterOpts{Name: "other_total"})
	reg.MustRegister(ops, other)
	ops.WithLabelValues("ok", "open").Add(3)
	ops.WithLabelValues("ok", "seal").Add(2)
	ops.WithLabelValues("error", "open").Inc()
	other.Add(7)
	got, err := counters(reg, "ops_total", "op", "outcome")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"open/ok": 3, "seal/ok": 2, "open/error": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("by op and outcome: %v, want %v", got, want)
	}
	got, err = counters(reg, "ops_total", "outcome")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"ok": 5, "error": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("by outcome: %v, want %v", got, want)
	}
}
