package engine_test

import (
	"testing"
	"time"

	"github.com/aetherai/aether/clickstream"
	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/internal/engine"
	"github.com/aetherai/aether/operators"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/operators/sessionize"
)

type discard struct{}

func (discard) Operator(string, time.Duration, error) {}

// BenchmarkHandle measures the runtime's per-record work around the
// sessionize + features chain (envelope, fencing, de-duplication, codecs)
// without Kafka, against the same chain and codecs called directly.
func BenchmarkHandle(b *testing.B) {
	gen, err := clickstream.New(clickstream.Config{Users: 1000, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	recs := gen.Take(20000)
	chain := operators.Chain(sessionize.New[features.State](), features.New())

	b.Run("engine", func(b *testing.B) {
		n := engine.New(engine.Spec[features.State, event.Event, features.Record]{
			Chain: chain,
			Table: features.StateCodec(),
			Inputs: []engine.Input[event.Event]{{Topic: "raw", Codec: codec.JSON[event.Event](),
				EventTime: func(e event.Event) time.Time { return e.Timestamp },
				EventID:   func(e event.Event) string { return e.EventID },
				Validate:  func(e event.Event) error { return e.Validate() }}},
			Outputs: []engine.Output[features.Record]{{Topic: "out", Codec: codec.JSON[features.Record]()}},
		})
		tables := map[string][]byte{}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			r := &recs[i%len(recs)]
			rec := engine.Record{Topic: "raw", Offset: int64(i), Key: r.Key, Value: r.Raw}
			res := n.Handle(rec, tables[r.Key], discard{})
			if res.Table != nil {
				tables[r.Key] = res.Table
			}
		}
	})
	b.Run("direct", func(b *testing.B) {
		// The same decode, state codec, chain and output codec, no runtime.
		c, sc, oc := codec.JSON[event.Event](), features.StateCodec(), codec.JSON[features.Record]()
		tables := map[string][]byte{}
		ctx := &directCtx{}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			r := &recs[i%len(recs)]
			e, err := c.Decode(r.Raw)
			if err != nil {
				b.Fatal(err)
			}
			var st features.State
			if raw := tables[r.Key]; raw != nil {
				if st, err = sc.Decode(raw); err != nil {
					b.Fatal(err)
				}
			}
			ctx.key, ctx.at, ctx.state = r.Key, e.Timestamp, &st
			if err := chain.Process(ctx, e, func(rec features.Record) error { _, err := oc.Encode(rec); return err }); err != nil {
				b.Fatal(err)
			}
			if tables[r.Key], err = sc.Encode(st); err != nil {
				b.Fatal(err)
			}
		}
	})
}

type directCtx struct {
	key   string
	at    time.Time
	state *features.State
}

func (c *directCtx) Key() string                           { return c.key }
func (c *directCtx) EventTime() time.Time                  { return c.at }
func (c *directCtx) Watermark() time.Time                  { return c.at }
func (c *directCtx) Source() operators.Source              { return operators.Source{} }
func (c *directCtx) State() *features.State                { return c.state }
func (c *directCtx) SetTimer(time.Time)                    {}
func (c *directCtx) ClearTimer()                           {}
func (c *directCtx) Lookup(string, string) ([]byte, error) { return nil, nil }
