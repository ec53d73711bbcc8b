package topics

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/operators"
	"github.com/aetherai/aether/topology"
)

func TestDerive(t *testing.T) {
	top := topology.New("shop")
	clicks := topology.NewStream("clicks", codec.String(), topology.Retention(7*24*time.Hour), topology.Partitions(3))
	counts := topology.NewStream("counts", codec.String(), topology.Retention(90*time.Minute))
	top.Source(clicks)
	pass := operators.Func[int, string, string]("pass", func(_ operators.Context[int], v string, emit func(string) error) error { return emit(v) })
	topology.AddProcessor(top, "counter", clicks, codec.JSON[int](), pass).Emit(counts)
	topology.AddProcessor(top, "printer", counts, nil, pass).Emit(topology.NewStream("printed", codec.String()))

	got, err := Derive(top, 5)
	require.NoError(t, err)
	spec := func(name string, parts int32, ret time.Duration, compact bool, kind string) Topic {
		return Topic{TopicSpec: broker.TopicSpec{Name: name, Partitions: parts, Retention: ret, Compacted: compact}, Kind: kind}
	}
	require.Equal(t, []Topic{
		spec("clicks", 3, 7*24*time.Hour, false, KindStream),
		spec("clicks.dlq", 3, 7*24*time.Hour, false, KindDeadLetter),
		spec("counter-loop", 3, time.Hour, false, KindLoop),
		spec("counter-table", 3, 0, true, KindTable),
		spec("counts", 5, 90*time.Minute, false, KindStream),
		spec("counts.dlq", 5, 90*time.Minute, false, KindDeadLetter),
		spec("printed", 5, 0, false, KindStream),
	}, got)
	require.Equal(t, "counts [stream, 5 partitions, retention.ms=5400000 (1h30m0s), cleanup.policy=delete]", got[4].String())
	require.Equal(t, "counter-table [table, 3 partitions, cleanup.policy=compact]", got[3].String())

	_, err = Derive(top, 0)
	require.EqualError(t, err, "topics: default partitions 0: must be positive")
}

func TestCompare(t *testing.T) {
	w := Topic{TopicSpec: broker.TopicSpec{Name: "s", Partitions: 4, Retention: 24 * time.Hour}, Kind: KindStream}
	require.Empty(t, compare(w, broker.TopicSpec{Name: "s", Partitions: 4, Retention: 24 * time.Hour}))
	require.Equal(t, []Problem{
		{"s", "8 partitions, want 4 (partitions cannot be removed: recreate the topic)", false},
		{"s", "retention.ms=-1, want 86400000 (1d)", true},
		{"s", "cleanup.policy includes compact, want delete (records must expire with the retention)", true},
	}, compare(w, broker.TopicSpec{Name: "s", Partitions: 8, Retention: -time.Millisecond, Compacted: true}))

	// A table's retention is the broker's: only compaction and partitions count.
	tbl := Topic{TopicSpec: broker.TopicSpec{Name: "t", Partitions: 4, Compacted: true}, Kind: KindTable}
	require.Equal(t, []Problem{{"t", "2 partitions, want 4", true}, {"t", "cleanup.policy is not compact, want compact (a table)", true}},
		compare(tbl, broker.TopicSpec{Name: "t", Partitions: 2, Retention: time.Hour}))
}
