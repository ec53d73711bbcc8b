package features_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/operators/optest"
)

const benchUsers = 1000

// benchStream is n events over 1,000 users in event-time order: each user
// acts every 20 seconds (mostly clicks and views), and every 100th round
// comes after a 40-minute pause, so 1% of events start a session.
func benchStream(n int) []event.Event {
	keys := make([]string, benchUsers)
	for i := range keys {
		keys[i] = "user_" + strconv.Itoa(i)
	}
	types := [...]event.Type{event.View, event.Click, event.Click, event.View, event.Click, event.AddToCart, event.View, event.Click, event.Click, event.Purchase}
	evs := make([]event.Event, n)
	ts := t0
	for i := range evs {
		u := i % benchUsers
		if u == 0 {
			ts = ts.Add(20 * time.Second)
			if (i/benchUsers)%100 == 99 {
				ts = ts.Add(40 * time.Minute)
			}
		}
		evs[i] = event.Event{UserID: keys[u], ProductID: "prod_" + strconv.Itoa(100_000+(i*7919)%50_000),
			EventType: types[i%len(types)], Timestamp: ts.Add(time.Duration(u) * time.Millisecond)}
	}
	return evs
}

var benchPolicies = []struct {
	name string
	opt  features.Option
}{
	{"interval-5m", features.EmitInterval(5 * time.Minute)},
	{"session-change", features.EmitOnSessionChange()},
	{"every", features.EmitEvery()},
}

// BenchmarkFeatures measures the reference chain (sessionize, then
// features) per input event, for each emission policy:
//
//   - harness: through optest.Harness, timers included (the harness scans
//     every pending timer on each event, so this is dominated by it);
//   - operator: the chain alone on a bare context, state kept decoded;
//   - cycle: what the runtime does per record: decode the table value, run
//     the chain, encode the table value and every emitted record.
func BenchmarkFeatures(b *testing.B) {
	evs := benchStream(1 << 17)
	for _, p := range benchPolicies {
		b.Run("harness/"+p.name, func(b *testing.B) {
			var h *harness
			records := 0
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				e := &evs[i%len(evs)]
				if i%len(evs) == 0 {
					h = optest.New(pipeline(nil, p.opt))
				}
				if err := h.Process(e.UserID, e.Timestamp, *e); err != nil {
					b.Fatal(err)
				}
				records += len(h.Emitted)
				h.Emitted = h.Emitted[:0]
			}
			b.ReportMetric(float64(records)/float64(b.N), "records/op")
		})
		b.Run("operator/"+p.name, func(b *testing.B) {
			op := pipeline(nil, p.opt)
			states := make([]features.State, benchUsers)
			c := &bareCtx{}
			records := 0
			emit := func(features.Record) error { records++; return nil }
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%len(evs) == 0 {
					clear(states)
				}
				e := &evs[i%len(evs)]
				c.key, c.now, c.state = e.UserID, e.Timestamp, &states[i%benchUsers]
				if err := op.Process(c, *e, emit); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(records)/float64(b.N), "records/op")
		})
		b.Run("cycle/"+p.name, func(b *testing.B) {
			op := pipeline(nil, p.opt)
			sc, rc := features.StateCodec(), features.RecordCodec()
			table := make([][]byte, benchUsers)
			c := &bareCtx{}
			records, outBytes := 0, 0
			emit := func(r features.Record) error {
				out, err := rc.Encode(r)
				records++
				outBytes += len(out)
				return err
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%len(evs) == 0 {
					clear(table)
				}
				e := &evs[i%len(evs)]
				u := i % benchUsers
				var st features.State
				if table[u] != nil {
					var err error
					if st, err = sc.Decode(table[u]); err != nil {
						b.Fatal(err)
					}
				}
				c.key, c.now, c.state = e.UserID, e.Timestamp, &st
				if err := op.Process(c, *e, emit); err != nil {
					b.Fatal(err)
				}
				enc, err := sc.Encode(st)
				if err != nil {
					b.Fatal(err)
				}
				table[u] = enc
			}
			b.ReportMetric(float64(records)/float64(b.N), "records/op")
			if records > 0 {
				b.ReportMetric(float64(outBytes)/float64(records), "B/record")
			}
			size := 0
			for _, t := range table {
				size += len(t)
			}
			b.ReportMetric(float64(size)/benchUsers, "B/state")
		})
	}
}

// BenchmarkStateCodec encodes and decodes a state with 20 recent items,
// against JSON as the baseline.
func BenchmarkStateCodec(b *testing.B) {
	s := fullState()
	for _, c := range []codec.Codec[features.State]{features.StateCodec(), codec.JSON[features.State]()} {
		enc, err := c.Encode(s)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.Format()+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Encode(s); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(enc)), "bytes")
		})
		b.Run(c.Format()+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.Format()+"/roundtrip", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v, err := c.Decode(enc)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Encode(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRecordCodec encodes and decodes a 20-item record, against JSON.
func BenchmarkRecordCodec(b *testing.B) {
	s := fullState()
	r := s.Record("user_abc123")
	r.Reason = features.ReasonInterval
	for _, c := range []codec.Codec[features.Record]{features.RecordCodec(), codec.JSON[features.Record]()} {
		enc, err := c.Encode(r)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.Format()+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Encode(r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(enc)), "bytes")
		})
		b.Run(c.Format()+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
