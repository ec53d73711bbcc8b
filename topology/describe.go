package topology

import (
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
)

// Describe renders the topology as plain text or as a Mermaid flowchart.
func (t *Topology) Describe(f Format) (string, error) {
	switch f {
	case Text, "":
		return t.describeText(), nil
	case Mermaid:
		return t.describeMermaid(), nil
	default:
		return "", fmt.Errorf("unknown describe format %q (want text or mermaid)", f)
	}
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
	b.WriteString("]")
	return b.String()
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
			fmt.Fprintf(&b, "  table %s [%s]\n", p.Table.Name, p.Table.Codec)
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
			label := s.Name
			if s.Retention > 0 {
				label += "<br/>retention " + humanDuration(s.Retention)
			}
			if len(s.Personal) > 0 {
				label += "<br/>personal: " + strings.Join(s.Personal, ", ")
			}
			fmt.Fprintf(&b, "  %s[(\"%s\")]\n", id, label)
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
