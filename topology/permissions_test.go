package topology_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/operators"
	"github.com/aetherai/aether/topology"
)

func TestAccessIsLeastPrivilege(t *testing.T) {
	top := topology.New("shop")
	clicks := topology.NewStream("clicks", codec.String())
	orders := topology.NewStream("orders", codec.String())
	counts := topology.NewStream("counts", codec.String())
	top.Source(clicks, orders)
	pass := operators.Func[int, string, string]("pass", func(_ operators.Context[int], in string, emit func(string) error) error {
		return emit(in)
	})
	counter := topology.AddProcessor(top, "counter", clicks, codec.JSON[int](), pass).Consume(orders).Emit(counts)
	topology.AddProcessor(top, "reporter", counts, nil, pass).Lookup(counter.Table()).Emit(topology.NewStream("report", codec.String()))

	got, err := top.Access(counter.Table().Name())
	require.NoError(t, err)
	require.Equal(t, []topology.Access{
		{Role: "counter", Reads: []string{"clicks", "orders"}, Writes: []string{"clicks.dlq", "counts", "orders.dlq"},
			Owns: []string{"counter-loop", "counter-table"}, Group: "counter"},
		{Role: "reporter", Reads: []string{"counter-table", "counts"}, Writes: []string{"counts.dlq", "report"}, Group: "reporter"},
		{Role: topology.RoleIngest, Writes: []string{"clicks", "orders"}},
		{Role: topology.RoleViews, Reads: []string{"counter-table"}},
	}, got)
	require.Equal(t, "counter-loop", top.Processor("counter").LoopTopic())
	require.Equal(t, "", top.Processor("reporter").LoopTopic())

	_, err = top.Access("report")
	require.EqualError(t, err, `topology "shop": view of table "report", which no processor owns`)

	bad := topology.New("bad")
	in := topology.NewStream("in", codec.String())
	topology.AddProcessor(bad, "ingest", in, nil, pass).Emit(topology.NewStream("out", codec.String()))
	_, err = bad.Access()
	require.EqualError(t, err, `topology "bad": processor "ingest": the name is reserved for a role of the runtime`)
}
