// Package topology is Aether's DSL: a Topology declares typed streams,
// processors with their operator chains and group tables, lookups and
// sinks. From the declaration it validates the graph and derives what the
// controls need: who reads and writes what, what is personal data, how long
// it lives. Package processors compiles a topology into Goka processors.
package topology

import (
	"fmt"
	"slices"
	"sort"

	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/internal/engine"
	"github.com/aetherai/aether/operators"
)

// Topology is a named graph of streams and processors. It is not safe for
// concurrent modification; build it once, then hand it to the runtime.
type Topology struct {
	name       string
	sources    []StreamSpec
	processors []*ProcessorSpec
	errs       []error
}

// New returns an empty topology.
func New(name string) *Topology { return &Topology{name: name} }

// Name is the topology's name.
func (t *Topology) Name() string { return t.name }

// Source declares streams that enter the topology from outside (an ingest
// API, another system). A processor may consume only sources and streams
// that another processor emits.
func (t *Topology) Source(streams ...interface{ Spec() StreamSpec }) *Topology {
	for _, s := range streams {
		t.sources = append(t.sources, s.Spec())
	}
	return t
}

// Sources lists the declared source streams.
func (t *Topology) Sources() []StreamSpec { return append([]StreamSpec(nil), t.sources...) }

// Processors lists the processors in declaration order.
func (t *Topology) Processors() []*ProcessorSpec {
	return append([]*ProcessorSpec(nil), t.processors...)
}

// Processor returns the processor called name, or nil.
func (t *Topology) Processor(name string) *ProcessorSpec {
	for _, p := range t.processors {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Streams lists every stream of the topology (sources, inputs, outputs and
// dead-letter topics), one entry per name, sorted by name.
func (t *Topology) Streams() []StreamSpec {
	seen := map[string]StreamSpec{}
	add := func(s StreamSpec) {
		if _, ok := seen[s.Name]; !ok {
			seen[s.Name] = s
		}
	}
	for _, s := range t.sources {
		add(s)
	}
	for _, p := range t.processors {
		for _, s := range p.Inputs {
			add(s)
			add(p.DeadLetterStream(s))
		}
		for _, s := range p.Outputs {
			add(s)
		}
	}
	out := make([]StreamSpec, 0, len(seen))
	for _, s := range seen {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// DeadLetterTopics lists the dead-letter topic of every processor input,
// sorted, one entry per name.
func (t *Topology) DeadLetterTopics() []string {
	var out []string
	for _, p := range t.processors {
		for _, in := range p.Inputs {
			out = append(out, p.DeadLetterStream(in).Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TableSpec describes a processor's group table.
type TableSpec struct {
	// Name is the table's topic: "<processor>-table", Goka's convention.
	Name  string `json:"name"`
	Codec string `json:"codec"`
	// Owner is the processor that writes the table.
	Owner string `json:"owner"`
	// Sealed: the state is derived from a sealed stream, so it is sealed
	// per key too (the envelope's offsets and timers stay clear).
	Sealed bool `json:"sealed,omitempty"`
}

// ProcessorSpec is what a processor declares, without its types.
type ProcessorSpec struct {
	Name      string
	Inputs    []StreamSpec
	Outputs   []StreamSpec
	Table     *TableSpec   // nil for a stateless processor
	Lookups   []*TableSpec // the owners' Table: inputs they consume later count (Sealed)
	Operators []string
	Sinks     []string

	build func() engine.Node
}

// NewNode returns the typed runner of the processor's chain, for the
// runtime (package processors) and tests.
func (p *ProcessorSpec) NewNode() engine.Node { return p.build() }

// DeadLetterStream is the dead-letter topic for one of p's inputs: records
// of in that p cannot process go there, with the reason in headers. It
// keeps the input's retention and personal-data declaration, since it holds
// the input's original bytes.
func (p *ProcessorSpec) DeadLetterStream(in StreamSpec) StreamSpec {
	return StreamSpec{Name: in.Name + ".dlq", Codec: "bytes", Retention: in.Retention, Personal: in.Personal, Sealed: in.Sealed, Partitions: in.Partitions}
}

// Processor is a typed handle on a processor being declared.
type Processor[S, In, Out any] struct {
	idWindow int
	t        *Topology
	spec     *ProcessorSpec
	chain    operators.Operator[S, In, Out]
	table    codec.Codec[S]
	inputs   []*Stream[In]
	outputs  []*Stream[Out]
	sinks    []engine.Sink[Out]
}

// AddProcessor declares a processor called name that consumes input, runs
// chain on every record, and keeps per-key state S in a group table
// encoded with table (the processor's online state; nil for a stateless
// processor). The processor's name is its Kafka consumer group.
func AddProcessor[S, In, Out any](t *Topology, name string, input *Stream[In], table codec.Codec[S], chain operators.Operator[S, In, Out]) *Processor[S, In, Out] {
	p := &Processor[S, In, Out]{t: t, chain: chain, table: table}
	p.spec = &ProcessorSpec{Name: name}
	if chain == nil {
		t.errs = append(t.errs, fmt.Errorf("processor %q: no operator chain", name))
	} else {
		p.spec.Operators = operators.Names(chain)
		if err := operators.CheckNames(chain); err != nil {
			t.errs = append(t.errs, fmt.Errorf("processor %q: %w", name, err))
		}
	}
	if table != nil {
		p.spec.Table = &TableSpec{Name: name + "-table", Codec: codec.ID(table), Owner: name}
	}
	p.spec.build = p.node
	t.processors = append(t.processors, p.spec)
	return p.Consume(input)
}

// Consume adds another input stream of the same type.
func (p *Processor[S, In, Out]) Consume(in *Stream[In]) *Processor[S, In, Out] {
	if in == nil {
		p.t.errs = append(p.t.errs, fmt.Errorf("processor %q: nil input stream", p.spec.Name))
		return p
	}
	p.inputs = append(p.inputs, in)
	p.spec.Inputs = append(p.spec.Inputs, in.spec)
	if in.spec.Sealed && p.spec.Table != nil {
		p.spec.Table.Sealed = true
	}
	return p
}

// Emit sends every value the chain passes on to out.
func (p *Processor[S, In, Out]) Emit(out *Stream[Out]) *Processor[S, In, Out] {
	if out == nil {
		p.t.errs = append(p.t.errs, fmt.Errorf("processor %q: nil output stream", p.spec.Name))
		return p
	}
	p.outputs = append(p.outputs, out)
	p.spec.Outputs = append(p.spec.Outputs, out.spec)
	return p
}

// Sink receives a processor's output values outside Kafka (a cache, a
// search index). Write is called on the partition's goroutine after the
// record's table write and emits, with retries; a write that still fails
// dead-letters the input record with stage "sink".
type Sink[T any] = engine.Sink[T]

// Sink sends every value the chain passes on to an external store.
func (p *Processor[S, In, Out]) Sink(s Sink[Out]) *Processor[S, In, Out] {
	p.sinks = append(p.sinks, s)
	p.spec.Sinks = append(p.spec.Sinks, s.Name())
	return p
}

// DedupeWindow sets how many recent event IDs per key the processor
// remembers (inputs declaring EventID): a retry is skipped while fewer than
// n other events of the key were applied since the original. Default 8;
// each ID adds 4 bytes to every table write.
func (p *Processor[S, In, Out]) DedupeWindow(n int) *Processor[S, In, Out] {
	if n < 1 {
		p.t.errs = append(p.t.errs, fmt.Errorf("processor %q: dedupe window %d: must be at least 1", p.spec.Name, n))
		return p
	}
	p.idWindow = n
	return p
}

// Lookup declares that the chain reads other processors' tables.
func (p *Processor[S, In, Out]) Lookup(tables ...TableRef) *Processor[S, In, Out] {
	for _, t := range tables {
		p.spec.Lookups = append(p.spec.Lookups, t.declaration())
	}
	return p
}

// Table returns the processor's group table, for lookups and views; nil for
// a stateless processor.
func (p *Processor[S, In, Out]) Table() *Table[S] {
	if p.spec.Table == nil {
		return nil
	}
	return &Table[S]{spec: p.spec.Table, codec: p.table}
}

// Spec returns the processor's declaration.
func (p *Processor[S, In, Out]) Spec() *ProcessorSpec { return p.spec }

func (p *Processor[S, In, Out]) node() engine.Node {
	spec := engine.Spec[S, In, Out]{Chain: p.chain, Table: p.table, Sinks: p.sinks, IDWindow: p.idWindow}
	for _, in := range p.inputs {
		b := in.Binding()
		spec.Inputs = append(spec.Inputs, engine.Input[In]{Topic: in.Name(), Codec: b.Codec, EventTime: b.EventTime, EventID: b.EventID, Validate: b.Validate})
	}
	for _, out := range p.outputs {
		spec.Outputs = append(spec.Outputs, engine.Output[Out]{Topic: out.Name(), Codec: out.codec, Key: out.key})
	}
	return engine.New(spec)
}

// TableRef is any typed table.
type TableRef interface {
	TableSpec() TableSpec
	// declaration is the owner's spec itself, not a copy.
	declaration() *TableSpec
}

// Table is a processor's group table: one value S per key.
type Table[S any] struct {
	spec  *TableSpec // the processor's, so inputs declared later count (Sealed)
	codec codec.Codec[S]
}

// TableSpec returns the table's declaration.
func (t *Table[S]) TableSpec() TableSpec { return *t.spec }

func (t *Table[S]) declaration() *TableSpec { return t.spec }

// Name is the table's topic.
func (t *Table[S]) Name() string { return t.spec.Name }

// Codec is the codec of the table's values.
func (t *Table[S]) Codec() codec.Codec[S] { return t.codec }

// Decode decodes a raw table value as stored in the table topic.
func (t *Table[S]) Decode(raw []byte) (S, error) {
	var zero S
	b, err := engine.StateBytes(raw)
	if err != nil {
		return zero, err
	}
	if len(b) == 0 {
		return zero, nil
	}
	return t.codec.Decode(b)
}

// Get reads key from the table inside an operator of a processor that
// declared the table as a lookup. ok is false if the key has no value.
func (t *Table[S]) Get(ctx operators.Lookuper, key string) (v S, ok bool, err error) {
	raw, err := ctx.Lookup(t.spec.Name, key)
	if err != nil || raw == nil {
		return v, false, err
	}
	v, err = t.Decode(raw)
	return v, err == nil, err
}
