package topology_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/operators"
	"github.com/aetherai/aether/topology"
)

type click struct {
	User string `json:"user"`
}

type count struct{ N int }

func counter(name string) operators.Operator[count, click, click] {
	return operators.Func(name, func(ctx operators.Context[count], in click, emit func(click) error) error {
		ctx.State().N++
		return emit(in)
	})
}

func pass(name string) operators.Operator[struct{}, click, click] {
	return operators.Func(name, func(_ operators.Context[struct{}], in click, emit func(click) error) error { return emit(in) })
}

func TestValidTopologyDescribes(t *testing.T) {
	top := topology.New("shop")
	raw := topology.NewStream("raw", codec.JSON[click](), topology.Retention(7*24*time.Hour), topology.Personal("clientIp"))
	mid := topology.NewStream("mid", codec.JSON[click](), topology.Retention(30*24*time.Hour))
	top.Source(raw)
	a := topology.AddProcessor(top, "a", raw, codec.JSON[count](), counter("count")).Emit(mid)
	topology.AddProcessor(top, "b", mid, nil, pass("pass")).Lookup(a.Table()).Emit(topology.NewStream("done", codec.JSON[click]()))
	require.NoError(t, top.Validate())

	text, err := top.Describe(topology.Text)
	require.NoError(t, err)
	require.Equal(t, `topology shop
sources:
  raw [json<topology_test.click>, retention 7d, personal: clientIp]
processor a
  consumes raw [json<topology_test.click>, retention 7d, personal: clientIp]
  operators count
  table a-table [json<topology_test.count>]
  emits mid [json<topology_test.click>, retention 30d]
  dead letters raw.dlq
processor b
  consumes mid [json<topology_test.click>, retention 30d]
  operators pass
  looks up a-table (owned by a)
  emits done [json<topology_test.click>]
  dead letters mid.dlq
`, text)
	m, err := top.Describe(topology.Mermaid)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(m, "flowchart LR\n"))
	for _, edge := range []string{"s_raw --> p_a", "p_a <--> t_a_table", "p_a --> s_mid", "t_a_table -. lookup .-> p_b", "p_a -. dead letters .-> s_raw_dlq"} {
		require.Contains(t, m, edge)
	}
	dot, err := top.Describe(topology.DOT)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(dot, "digraph \"shop\" {\n"))
	require.Contains(t, dot, `"stream:raw" -> "processor:a";`)
	require.Contains(t, dot, `"table:a-table" -> "processor:b" [style=dotted, label="lookup"];`)
	js, err := top.Describe(topology.JSON)
	require.NoError(t, err)
	var desc struct {
		Sources []string
		Streams []struct {
			Name             string
			RetentionSeconds int64
			Personal         []string
		}
		Processors []struct {
			Name                                  string
			Inputs, Outputs, DeadLetters, Lookups []string
			Table                                 *topology.TableSpec
		}
	}
	require.NoError(t, json.Unmarshal([]byte(js), &desc))
	require.Equal(t, []string{"raw"}, desc.Sources)
	require.Len(t, desc.Streams, 5)
	require.Equal(t, int64(7*24*3600), desc.Streams[3].RetentionSeconds)
	require.Equal(t, []string{"clientIp"}, desc.Streams[3].Personal)
	require.Equal(t, "a-table", desc.Processors[0].Table.Name)
	require.Equal(t, []string{"a-table"}, desc.Processors[1].Lookups)
	require.Equal(t, []string{"mid.dlq"}, desc.Processors[1].DeadLetters)
	_, err = top.Describe("svg")
	require.EqualError(t, err, `unknown describe format "svg" (want text, mermaid, dot or json)`)

	names := []string{}
	for _, s := range top.Streams() {
		names = append(names, s.Name)
	}
	require.Equal(t, []string{"done", "mid", "mid.dlq", "raw", "raw.dlq"}, names)
	require.Equal(t, []string{"mid.dlq", "raw.dlq"}, top.DeadLetterTopics())
}

func TestValidateNamesTheNode(t *testing.T) {
	type other struct{ X int }
	cases := map[string]struct {
		build func(*topology.Topology)
		want  string
	}{
		"undeclared stream": {func(top *topology.Topology) {
			topology.AddProcessor(top, "a", topology.NewStream("nowhere", codec.JSON[click]()), codec.JSON[count](), counter("c"))
		}, `processor "a": consumes stream "nowhere", which is neither a declared source nor emitted by any processor`},
		"two writers of one table": {func(top *topology.Topology) {
			raw := topology.NewStream("raw", codec.JSON[click]())
			top.Source(raw)
			topology.AddProcessor(top, "a", raw, codec.JSON[count](), counter("c"))
			topology.AddProcessor(top, "a", raw, codec.JSON[count](), counter("c"))
		}, `table "a-table": written by two processors, "a" and "a"`},
		"writing another processor's table": {func(top *topology.Topology) {
			raw := topology.NewStream("raw", codec.JSON[click]())
			top.Source(raw)
			topology.AddProcessor(top, "a", raw, codec.JSON[count](), counter("c"))
			topology.AddProcessor(top, "b", raw, nil, pass("p")).Emit(topology.NewStream("a-table", codec.JSON[click]()))
		}, `table "a-table": processor(s) b write to it as a stream, but it belongs to processor "a"`},
		"codec mismatch": {func(top *topology.Topology) {
			raw := topology.NewStream("raw", codec.JSON[click]())
			top.Source(raw)
			topology.AddProcessor(top, "a", raw, nil, pass("p")).Emit(topology.NewStream("mid", codec.JSON[click]()))
			topology.AddProcessor(top, "b", topology.NewStream("mid", codec.JSON[other]()), nil,
				operators.Func("q", func(_ operators.Context[struct{}], in other, emit func(other) error) error { return emit(in) })).
				Emit(topology.NewStream("out", codec.JSON[other]()))
		}, `stream "mid": codec mismatch: processor "a" writes json<topology_test.click>, but processor "b" reads json<topology_test.other>`},
		"cycle": {func(top *topology.Topology) {
			x := topology.NewStream("x", codec.JSON[click]())
			y := topology.NewStream("y", codec.JSON[click]())
			topology.AddProcessor(top, "a", x, nil, pass("p")).Emit(y)
			topology.AddProcessor(top, "b", y, nil, pass("p")).Emit(x)
		}, `cycle a -> b -> a: only a processor consuming its own output (a loopback) may close a loop`},
		"duplicate operator": {func(top *topology.Topology) {
			raw := topology.NewStream("raw", codec.JSON[click]())
			top.Source(raw)
			topology.AddProcessor(top, "a", raw, codec.JSON[count](), operators.Chain(counter("c"), counter("c")))
		}, `processor "a": operator name "c" used twice in one chain`},
		"dedupe window": {func(top *topology.Topology) {
			raw := topology.NewStream("raw", codec.JSON[click]())
			top.Source(raw)
			topology.AddProcessor(top, "a", raw, codec.JSON[count](), counter("c")).DedupeWindow(0)
		}, `processor "a": dedupe window 0: must be at least 1`},
		"unknown lookup": {func(top *topology.Topology) {
			raw := topology.NewStream("raw", codec.JSON[click]())
			top.Source(raw)
			other := topology.New("other")
			o := topology.AddProcessor(other, "elsewhere", raw, codec.JSON[count](), counter("c"))
			topology.AddProcessor(top, "a", raw, codec.JSON[count](), counter("c")).Lookup(o.Table())
		}, `processor "a": looks up table "elsewhere-table", which no processor owns`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			top := topology.New("bad")
			tc.build(top)
			err := top.Validate()
			require.Error(t, err)
			require.True(t, topology.IsValidation(err))
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestLoopbackIsNotACycle(t *testing.T) {
	top := topology.New("loop")
	x := topology.NewStream("x", codec.JSON[click]())
	top.Source(x)
	topology.AddProcessor(top, "a", x, codec.JSON[count](), counter("c")).Emit(x)
	require.NoError(t, top.Validate())
}

// A processor's table is sealed when any input is, even one consumed after
// a handle on the table was taken or a lookup of it declared (views and
// lookups read it late).
func TestTableSealedByAnyInput(t *testing.T) {
	top := topology.New("sealing")
	plain := topology.NewStream("plain", codec.JSON[int]())
	sealed := topology.NewStream("sealed", codec.JSON[int](), topology.Sealed())
	top.Source(plain)
	top.Source(sealed)
	p := topology.AddProcessor(top, "p", plain, codec.JSON[int](), operators.Func("pass",
		func(_ operators.Context[int], v int, emit func(int) error) error { return emit(v) }))
	table := p.Table()
	if table.TableSpec().Sealed {
		t.Fatal("sealed with a plain input only")
	}
	q := topology.AddProcessor(top, "q", plain, nil, operators.Func("pass",
		func(_ operators.Context[struct{}], v int, emit func(int) error) error { return emit(v) })).Lookup(table)
	p.Consume(sealed)
	if !q.Spec().Lookups[0].Sealed {
		t.Error("a lookup declared before the sealed input does not see it")
	}
	if !table.TableSpec().Sealed {
		t.Error("a handle taken before the sealed input does not see it")
	}
	if !p.Spec().Table.Sealed {
		t.Error("the processor's table is not sealed")
	}
}
