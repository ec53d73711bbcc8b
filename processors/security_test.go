package processors_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/operators"
	"github.com/aetherai/aether/processors"
	"github.com/aetherai/aether/topology"
)

// Each processor's clients get the processor's configuration, whatever the
// option order; the runtime's admin client gets fn("", ...).
func TestPerProcessorSaramaNamesTheProcessor(t *testing.T) {
	b := startBroker(t, 2)
	top := topology.New("shop")
	in := topology.NewStream("clicks", codec.String())
	mid := topology.NewStream("mid", codec.String())
	top.Source(in)
	pass := operators.Func[int, string, string]("pass", func(_ operators.Context[int], v string, emit func(string) error) error { return emit(v) })
	topology.AddProcessor(top, "count", in, codec.JSON[int](), pass).Emit(mid)
	topology.AddProcessor(top, "count-2", mid, nil, pass).Emit(topology.NewStream("out", codec.String()))

	var mu sync.Mutex
	seen := map[string]map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := processors.New(ctx, top, processors.Brokers(b.Addrs()...),
		processors.PerProcessorSarama(func(p, id string) *sarama.Config {
			mu.Lock()
			defer mu.Unlock()
			if seen[p] == nil {
				seen[p] = map[string]bool{}
			}
			seen[p][id] = true
			return broker.SaramaConfig(id)
		}),
		processors.Instance("i-1"))
	require.NoError(t, err)
	require.Equal(t, map[string]map[string]bool{
		"":        {"aether-shop-admin-i-1": true},
		"count":   {"aether-shop-count-i-1": true},
		"count-2": {"aether-shop-count-2-i-1": true},
	}, seen)

	_, err = processors.New(ctx, top, processors.Brokers(b.Addrs()...), processors.PerProcessorSarama(nil))
	require.EqualError(t, err, "per-processor sarama: nil config function")
}
