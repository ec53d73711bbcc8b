package score

import (
	"context"
	"sync"

	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/recommend"
)

// DefaultMaxBatch is how many records Batched puts in one inference at
// most.
const DefaultMaxBatch = 64

// Batched returns a scorer that merges concurrent Score calls into one
// inference of up to maxBatch records (group commit): the first caller
// runs inferences for everything queued meanwhile until the queue is
// empty, and every caller returns once its own records are scored. Nothing
// waits for a batch to fill, so an idle pipeline pays no latency and a
// busy one (one Goka goroutine per partition, concurrent API requests)
// gets batches as large as its concurrency. Each call still returns only
// after its records were scored, so a processor commits a record's offset
// only after its inference: delivery stays at-least-once.
func Batched(s recommend.Scorer, maxBatch int) recommend.Scorer {
	if maxBatch < 1 {
		maxBatch = DefaultMaxBatch
	}
	return &batcher{Scorer: s, max: maxBatch}
}

type batcher struct {
	recommend.Scorer // Popular and Model as they are
	max              int

	mu    sync.Mutex
	queue []*call
	busy  bool
}

type call struct {
	ctx     context.Context
	records []features.Record
	k       int
	items   [][]recommend.Item
	err     error
	done    chan struct{}
}

func (b *batcher) Score(ctx context.Context, records []features.Record, k int) ([][]recommend.Item, error) {
	c := &call{ctx: ctx, records: records, k: k, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	if !b.busy {
		b.busy = true
		b.drain()
	}
	b.mu.Unlock()
	select {
	case <-c.done:
		return c.items, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// drain runs batches until the queue is empty; b.mu is held on entry and
// exit, and released during inference.
func (b *batcher) drain() {
	for len(b.queue) > 0 {
		var batch []*call
		n := 0
		for len(b.queue) > 0 && (n == 0 || n+len(b.queue[0].records) <= b.max) {
			c := b.queue[0]
			b.queue = b.queue[1:]
			batch = append(batch, c)
			n += len(c.records)
		}
		b.mu.Unlock()
		b.run(batch, n)
		b.mu.Lock()
	}
	b.busy = false
}

// run scores the records of every call in one inference, at the largest k
// asked for, and hands each call its rows cut to its own k.
func (b *batcher) run(batch []*call, n int) {
	records := make([]features.Record, 0, n)
	k := 0
	live := batch[:0:0]
	for _, c := range batch {
		if c.ctx.Err() != nil {
			c.err = c.ctx.Err()
			close(c.done)
			continue
		}
		records = append(records, c.records...)
		k = max(k, c.k)
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	items, err := b.Scorer.Score(context.Background(), records, k)
	i := 0
	for _, c := range live {
		switch {
		case err != nil:
			c.err = err
		default:
			c.items = make([][]recommend.Item, len(c.records))
			for j := range c.records {
				row := items[i+j]
				c.items[j] = row[:min(len(row), c.k)]
			}
		}
		i += len(c.records)
		close(c.done)
	}
}
