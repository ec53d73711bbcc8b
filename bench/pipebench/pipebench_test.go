package pipebench

import (
	"context"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

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
