package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGokaSmoke runs an emitter and a goka processor with a group table on
// the embedded broker, configured only through builders (no
// goka.ReplaceGlobalConfig). It takes one consumer-group join (~6-9 s).
func TestGokaSmoke(t *testing.T) {
	t.Parallel()
	b := startBroker(t, Brokers(3))
	brokers := b.Addrs()
	ctx := testCtx(t, 90*time.Second)

	const (
		input = "clicks"
		group = goka.Group("click-counter")
		keys  = 20
	)
	require.NoError(t, EnsureTopic(ctx, brokers, SaramaConfig("admin"), TopicSpec{Name: input, Partitions: 8}))

	// Each builder gets its own config: goka's builders write ClientID (and
	// the partitioner) into the config they hold.
	tmBuilder := func(id string) goka.TopicManagerBuilder {
		return goka.TopicManagerBuilderWithConfig(SaramaConfig(id), GokaTopicManagerConfig())
	}

	// Emit before the processor starts: Consumer.Offsets.Initial = oldest
	// makes the processor see these records.
	emit := func(from, to int) {
		em, err := goka.NewEmitter(brokers, goka.Stream(input), new(codec.String),
			goka.WithEmitterProducerBuilder(goka.ProducerBuilderWithConfig(SaramaConfig("emitter"))),
			goka.WithEmitterTopicManagerBuilder(tmBuilder("emitter-tm")),
		)
		require.NoError(t, err)
		for k := range keys {
			for i := from; i < to; i++ {
				if i <= k { // key k is emitted k+1 times in total
					_, err := em.Emit(fmt.Sprintf("user-%02d", k), "click")
					require.NoError(t, err)
				}
			}
		}
		require.NoError(t, em.Finish())
	}
	emit(0, keys/2)

	gg := goka.DefineGroup(group,
		goka.Input(goka.Stream(input), new(codec.String), func(ctx goka.Context, _ any) {
			var n int64
			if v := ctx.Value(); v != nil {
				n = v.(int64)
			}
			ctx.SetValue(n + 1)
		}),
		goka.Persist(new(codec.Int64)),
	)
	proc, err := goka.NewProcessor(brokers, gg,
		goka.WithTopicManagerBuilder(tmBuilder("proc-tm")),
		goka.WithConsumerGroupBuilder(goka.ConsumerGroupBuilderWithConfig(SaramaConfig("proc-group"))),
		goka.WithConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(SaramaConfig("proc-consumer"))),
		goka.WithProducerBuilder(goka.ProducerBuilderWithConfig(SaramaConfig("proc-producer"))),
		goka.WithStorageBuilder(storage.MemoryBuilder()),
	)
	require.NoError(t, err)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- proc.Run(runCtx) }()
	require.NoError(t, proc.WaitForReadyContext(ctx))
	t.Logf("processor ready after %v", time.Since(start))

	// Emit the rest while the processor runs.
	emit(keys/2, keys)

	want := func(k int) int64 { return int64(k + 1) }
	require.Eventually(t, func() bool {
		for k := range keys {
			v, err := proc.Get(fmt.Sprintf("user-%02d", k))
			if err != nil || v == nil || v.(int64) != want(k) {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "counts did not converge")
	t.Logf("counts exact after %v", time.Since(start))

	// Exact, not just at least: give a duplicate a moment to show up.
	time.Sleep(200 * time.Millisecond)
	for k := range keys {
		v, err := proc.Get(fmt.Sprintf("user-%02d", k))
		require.NoError(t, err)
		assert.Equal(t, want(k), v, "user-%02d", k)
	}

	// The topic manager created the group table compacted, with the input's
	// partition count and replication 1.
	table, err := DescribeTopic(ctx, brokers, SaramaConfig("admin"), string(goka.GroupTable(group)))
	require.NoError(t, err)
	assert.True(t, table.Compacted)
	assert.Equal(t, int32(8), table.Partitions)

	stop()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("processor did not stop")
	}
	t.Logf("processor stopped after %v", time.Since(start))
}
