package pipebench

import (
	"context"
	"fmt"
	"time"

	"github.com/lovoo/goka"
	gokacodec "github.com/lovoo/goka/codec"

	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/event"
)

// bare only decodes each event (JSON into event.Event, by the input codec)
// and counts per key in its table: the ceiling of any processor that reads
// these events and keeps per-key state on this setup.
type bare struct {
	group string
	cnt   *counter
	gp    *goka.Processor
}

func newBare(e *env, round int) (*bare, error) {
	b := &bare{group: fmt.Sprintf("bench-bare-r%d", round), cnt: newCounter(e.cfg.Events)}
	g := goka.DefineGroup(goka.Group(b.group),
		goka.Input(goka.Stream(RawTopic), codec.Goka(codec.JSON[event.Event]()), b.process),
		goka.Persist(new(gokacodec.Int64)),
	)
	gp, err := goka.NewProcessor(e.addrs, g, e.gokaOptions(b.group)...)
	if err != nil {
		return nil, err
	}
	b.gp = gp
	return b, nil
}

func (b *bare) process(ctx goka.Context, msg any) {
	b.cnt.seen()
	defer b.cnt.handled()
	if _, ok := msg.(event.Event); !ok {
		return
	}
	n, _ := ctx.Value().(int64)
	ctx.SetValue(n + 1)
}

func (b *bare) run(ctx context.Context) error { return b.gp.Run(ctx) }
func (b *bare) wait(ctx context.Context, exited <-chan struct{}) (time.Time, time.Time, error) {
	return b.cnt.wait(ctx, exited)
}
func (b *bare) timerFires() int64 { return 0 }
func (b *bare) output() string    { return "" }
func (b *bare) name() string      { return b.group }
func (b *bare) topics() []string  { return []string{b.group + "-table"} }
