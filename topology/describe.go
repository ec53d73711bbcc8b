package topology

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Format selects a rendering of Describe.
type Format string

// The formats Describe renders.
const (
	Text    Format = "text"
	Mermaid Format = "mermaid"
	DOT     Format = "dot"
	JSON    Format = "json"
)

// Describe renders the topology as plain text, a Mermaid flowchart, a
// Graphviz DOT graph, or JSON (the declarations, for tools).
func (t *Topology) Describe(f Format) (string, error) {
	switch f {
	case Text, "":
		return t.describeText(), nil
	case Mermaid:
		return t.describeMermaid(), nil
	case DOT:
		return t.describeDOT(), nil
	case JSON:
		return t.describeJSON()
	default:
		return "", fmt.Errorf("unknown describe format %q (want text, mermaid, dot or json)", f)
	}
}

func (t *Topology) describeDOT() string {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %q {\n  rankdir=LR;\n", t.name)
	declared := map[string]bool{}
	stream := func(s StreamSpec) string {
		id := "stream:" + s.Name
		if !declared[id] {
			declared[id] = true
			fmt.Fprintf(&b, "  %q [shape=cylinder, label=\"%s\"];\n", id, streamLabel(s, `\n`))
		}
		return id
	}
	for _, s := range t.sources {
		stream(s)
	}
	for _, p := range t.processors {
		pid := "processor:" + p.Name
		fmt.Fprintf(&b, "  %q [shape=box, label=\"%s\\n%s\"];\n", pid, p.Name, strings.Join(p.Operators, " -> "))
		for _, s := range p.Inputs {
			fmt.Fprintf(&b, "  %q -> %q;\n", stream(s), pid)
			fmt.Fprintf(&b, "  %q -> %q [style=dashed, label=\"dead letters\"];\n", pid, stream(p.DeadLetterStream(s)))
		}
		if p.Table != nil {
			tid := "table:" + p.Table.Name
			fmt.Fprintf(&b, "  %q [shape=box3d, label=\"%s\"];\n", tid, p.Table.Name)
			fmt.Fprintf(&b, "  %q -> %q [dir=both];\n", pid, tid)
		}
		for _, l := range p.Lookups {
			fmt.Fprintf(&b, "  %q -> %q [style=dotted, label=\"lookup\"];\n", "table:"+l.Name, pid)
		}
		for _, s := range p.Outputs {
			fmt.Fprintf(&b, "  %q -> %q;\n", pid, stream(s))
		}
		for _, s := range p.Sinks {
			fmt.Fprintf(&b, "  %q [shape=note];\n  %q -> %q;\n", "sink:"+s, pid, "sink:"+s)
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// describedStream is a stream in the JSON description.
type describedStream struct {
	Name             string   `json:"name"`
	Codec            string   `json:"codec"`
	RetentionSeconds int64    `json:"retentionSeconds,omitempty"`
	Partitions       int32    `json:"partitions,omitempty"`
	Personal         []string `json:"personal,omitempty"`
	Sealed           bool     `json:"sealed,omitempty"`
}

type describedProcessor struct {
	Name        string     `json:"name"`
	Inputs      []string   `json:"inputs"`
	Operators   []string   `json:"operators"`
	Table       *TableSpec `json:"table,omitempty"`
	Lookups     []string   `json:"lookups,omitempty"`
	Outputs     []string   `json:"outputs,omitempty"`
	Sinks       []string   `json:"sinks,omitempty"`
	DeadLetters []string   `json:"deadLetters"`
}

func (t *Topology) describeJSON() (string, error) {
	out := struct {
		Name       string               `json:"name"`
		Sources    []string             `json:"sources"`
		Streams    []describedStream    `json:"streams"`
		Processors []describedProcessor `json:"processors"`
	}{Name: t.name, Sources: []string{}, Streams: []describedStream{}, Processors: []describedProcessor{}}
	for _, s := range t.sources {
		out.Sources = append(out.Sources, s.Name)
	}
	for _, s := range t.Streams() {
		out.Streams = append(out.Streams, describedStream{Name: s.Name, Codec: s.Codec,
			RetentionSeconds: int64(s.Retention / time.Second), Partitions: s.Partitions, Personal: s.Personal, Sealed: s.Sealed})
	}
	for _, p := range t.processors {
		dp := describedProcessor{Name: p.Name, Operators: p.Operators, Table: p.Table, Outputs: []string{}, DeadLetters: []string{}}
		for _, s := range p.Inputs {
			dp.Inputs = append(dp.Inputs, s.Name)
			dp.DeadLetters = append(dp.DeadLetters, p.DeadLetterStream(s).Name)
		}
		for _, s := range p.Outputs {
			dp.Outputs = append(dp.Outputs, s.Name)
		}
		for _, l := range p.Lookups {
			dp.Lookups = append(dp.Lookups, l.Name)
		}
		dp.Sinks = p.Sinks
		out.Processors = append(out.Processors, dp)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return "", err
	}
	return string(b) + "\n", nil
}

func streamLine(s StreamSpec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s [%s", s.Name, s.Codec)
	if s.Retention > 0 {
		fmt.Fprintf(&b, ", retention %s", humanDuration(s.Retention))
	}
	if s.Partitions > 0 {
		fmt.Fprintf(&b, ", %d partitions", s.Partitions)
	}
	if len(s.Personal) > 0 {
		fmt.Fprintf(&b, ", personal: %s", strings.Join(s.Personal, ", "))
	}
	if s.Sealed {
		b.WriteString(", sealed per subject")
	}
	b.WriteString("]")
	return b.String()
}

// streamLabel is a stream's name, retention and personal fields, one per
// line, lines joined by the diagram's line break.
func streamLabel(s StreamSpec, br string) string {
	label := s.Name
	if s.Retention > 0 {
		label += br + "retention " + humanDuration(s.Retention)
	}
	if len(s.Personal) > 0 {
		label += br + "personal: " + strings.Join(s.Personal, ", ")
	}
	if s.Sealed {
		label += br + "sealed per subject"
	}
	return label
}

func humanDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func (t *Topology) describeText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "topology %s\n", t.name)
	if len(t.sources) > 0 {
		b.WriteString("sources:\n")
		for _, s := range t.sources {
			fmt.Fprintf(&b, "  %s\n", streamLine(s))
		}
	}
	for _, p := range t.processors {
		fmt.Fprintf(&b, "processor %s\n", p.Name)
		for _, s := range p.Inputs {
			fmt.Fprintf(&b, "  consumes %s\n", streamLine(s))
		}
		fmt.Fprintf(&b, "  operators %s\n", strings.Join(p.Operators, " -> "))
		if p.Table != nil {
			sealed := ""
			if p.Table.Sealed {
				sealed = ", state sealed per subject"
			}
			fmt.Fprintf(&b, "  table %s [%s%s]\n", p.Table.Name, p.Table.Codec, sealed)
		}
		for _, l := range p.Lookups {
			fmt.Fprintf(&b, "  looks up %s (owned by %s)\n", l.Name, l.Owner)
		}
		for _, s := range p.Outputs {
			fmt.Fprintf(&b, "  emits %s\n", streamLine(s))
		}
		for _, s := range p.Sinks {
			fmt.Fprintf(&b, "  sinks to %s\n", s)
		}
		for _, s := range p.Inputs {
			fmt.Fprintf(&b, "  dead letters %s\n", p.DeadLetterStream(s).Name)
		}
	}
	return b.String()
}

func mermaidID(kind, name string) string {
	r := strings.NewReplacer(".", "_", "-", "_", " ", "_", "/", "_", ":", "_")
	return kind + "_" + r.Replace(name)
}

func (t *Topology) describeMermaid() string {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	declared := map[string]bool{}
	stream := func(s StreamSpec) string {
		id := mermaidID("s", s.Name)
		if !declared[id] {
			declared[id] = true
			fmt.Fprintf(&b, "  %s[(\"%s\")]\n", id, streamLabel(s, "<br/>"))
		}
		return id
	}
	for _, s := range t.sources {
		stream(s)
	}
	for _, p := range t.processors {
		pid := mermaidID("p", p.Name)
		fmt.Fprintf(&b, "  %s[\"%s<br/>%s\"]\n", pid, p.Name, strings.Join(p.Operators, " → "))
		for _, s := range p.Inputs {
			fmt.Fprintf(&b, "  %s --> %s\n", stream(s), pid)
			fmt.Fprintf(&b, "  %s -. dead letters .-> %s\n", pid, stream(p.DeadLetterStream(s)))
		}
		if p.Table != nil {
			tid := mermaidID("t", p.Table.Name)
			fmt.Fprintf(&b, "  %s[(\"%s\")]\n", tid, p.Table.Name)
			fmt.Fprintf(&b, "  %s <--> %s\n", pid, tid)
		}
		for _, l := range p.Lookups {
			fmt.Fprintf(&b, "  %s -. lookup .-> %s\n", mermaidID("t", l.Name), pid)
		}
		for _, s := range p.Outputs {
			fmt.Fprintf(&b, "  %s --> %s\n", pid, stream(s))
		}
		for _, s := range p.Sinks {
			sid := mermaidID("k", s)
			fmt.Fprintf(&b, "  %s --> %s>\"%s\"]\n", pid, sid, s)
		}
	}
	return b.String()
}
