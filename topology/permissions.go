package topology

import (
	"fmt"
	"slices"
)

// Roles of a running topology other than its processors, each a Kafka
// principal of its own.
const (
	// RoleIngest writes the topology's sources (the ingest API).
	RoleIngest = "ingest"
	// RoleViews reads the tables served outside the topology (the feature
	// store behind the API).
	RoleViews = "views"
)

// Access is what one role of a running topology needs from Kafka, derived
// from the declaration so that it can be granted and nothing more: a
// processor reads only its inputs and the tables it looks up, writes only
// its outputs and dead-letter topics, owns only its table and loopback
// topic, and joins only its own consumer group.
type Access struct {
	// Role is a processor's name, RoleIngest or RoleViews.
	Role string
	// Reads are topics the role consumes: inputs, looked-up tables, served
	// tables. Sorted.
	Reads []string
	// Writes are topics the role produces to: outputs, dead-letter topics,
	// sources (ingest). Sorted.
	Writes []string
	// Owns are topics the role both reads and writes and whose
	// configuration it checks at start: a processor's group table and its
	// loopback (timer) topic, as Goka uses them. Sorted.
	Owns []string
	// Group is the consumer group the role joins; empty for none.
	Group string
}

// LoopTopic is the topic a stateful processor sends timer ticks to itself
// through (Goka's "<group>-loop"); empty for a stateless processor.
func (p *ProcessorSpec) LoopTopic() string {
	if p.Table == nil {
		return ""
	}
	return p.Name + "-loop"
}

// Access derives the least privilege of every role: one per processor,
// in declaration order, then RoleIngest (writes the sources) if the
// topology has sources, then RoleViews if views names tables served
// outside the topology. A view of a table no processor owns, or a
// processor named like a reserved role, is an error.
func (t *Topology) Access(views ...string) ([]Access, error) {
	tables := map[string]bool{}
	var out []Access
	for _, p := range t.processors {
		if p.Name == RoleIngest || p.Name == RoleViews {
			return nil, fmt.Errorf("topology %q: processor %q: the name is reserved for a role of the runtime", t.name, p.Name)
		}
		a := Access{Role: p.Name, Group: p.Name}
		for _, in := range p.Inputs {
			a.Reads = append(a.Reads, in.Name)
			a.Writes = append(a.Writes, p.DeadLetterStream(in).Name)
		}
		for _, l := range p.Lookups {
			a.Reads = append(a.Reads, l.Name)
		}
		for _, o := range p.Outputs {
			a.Writes = append(a.Writes, o.Name)
		}
		if p.Table != nil {
			tables[p.Table.Name] = true
			a.Owns = append(a.Owns, p.Table.Name, p.LoopTopic())
		}
		out = append(out, a.normalized())
	}
	if len(t.sources) > 0 {
		a := Access{Role: RoleIngest}
		for _, s := range t.sources {
			a.Writes = append(a.Writes, s.Name)
		}
		out = append(out, a.normalized())
	}
	if len(views) > 0 {
		a := Access{Role: RoleViews}
		for _, v := range views {
			if !tables[v] {
				return nil, fmt.Errorf("topology %q: view of table %q, which no processor owns", t.name, v)
			}
			a.Reads = append(a.Reads, v)
		}
		out = append(out, a.normalized())
	}
	return out, nil
}

func (a Access) normalized() Access {
	for _, s := range []*[]string{&a.Reads, &a.Writes, &a.Owns} {
		slices.Sort(*s)
		*s = slices.Compact(*s)
	}
	return a
}
