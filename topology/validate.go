package topology

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ValidationError lists every problem found in a topology. Each line names
// the node (stream, processor or table) it is about.
type ValidationError struct {
	Topology string
	Problems []string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("topology %q is invalid:\n  %s", e.Topology, strings.Join(e.Problems, "\n  "))
}

// Validate checks the topology and returns a *ValidationError naming every
// problem: unnamed or duplicate nodes, streams consumed but never declared
// or produced, two processors writing one table, a codec mismatch between
// a stream's writer and reader, lookups of unknown tables, inputs of one
// processor with different partition counts, and cycles other than a
// processor consuming its own output (a loopback).
func (t *Topology) Validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for _, err := range t.errs {
		add("%v", err)
	}

	// Who declares each stream, and with which codec.
	type use struct{ who, codec string }
	uses := map[string][]use{}
	for _, s := range t.sources {
		uses[s.Name] = append(uses[s.Name], use{"source", s.Codec})
	}
	writers := map[string][]string{}
	tables := map[string]string{} // table topic -> owner
	tableCodec := map[string]string{}
	for _, p := range t.processors {
		if p.Name == "" {
			add("processor with an empty name")
			continue
		}
		if p.Table != nil {
			if owner, ok := tables[p.Table.Name]; ok {
				add("table %q: written by two processors, %q and %q", p.Table.Name, owner, p.Name)
			}
			tables[p.Table.Name] = p.Name
			tableCodec[p.Table.Name] = p.Table.Codec
		} else if slices.ContainsFunc(t.processors, func(q *ProcessorSpec) bool { return q != p && q.Name == p.Name }) {
			add("processor %q: declared twice", p.Name)
		}
		for _, s := range p.Inputs {
			uses[s.Name] = append(uses[s.Name], use{fmt.Sprintf("processor %q reads", p.Name), s.Codec})
		}
		for _, s := range p.Outputs {
			uses[s.Name] = append(uses[s.Name], use{fmt.Sprintf("processor %q writes", p.Name), s.Codec})
			writers[s.Name] = append(writers[s.Name], p.Name)
		}
		if len(p.Outputs) == 0 && len(p.Sinks) == 0 && p.Table == nil {
			add("processor %q: has no table, output or sink, so its work goes nowhere", p.Name)
		}
	}
	for name, us := range uses {
		if name == "" {
			add("stream with an empty name")
			continue
		}
		if strings.HasSuffix(name, ".dlq") {
			add("stream %q: the .dlq suffix is reserved for dead-letter topics", name)
		}
		if _, ok := tables[name]; ok {
			add("table %q: processor(s) %s write to it as a stream, but it belongs to processor %q", name, strings.Join(writers[name], ", "), tables[name])
		}
		for _, u := range us[1:] {
			if u.codec != us[0].codec {
				add("stream %q: codec mismatch: %s %s, but %s %s", name, us[0].who, us[0].codec, u.who, u.codec)
				break
			}
		}
		for _, u := range us {
			if u.codec == "" {
				add("stream %q: %s it without a codec", name, u.who)
				break
			}
		}
	}
	for _, p := range t.processors {
		var parts int32
		for _, s := range p.Inputs {
			isSource := slices.ContainsFunc(t.sources, func(x StreamSpec) bool { return x.Name == s.Name })
			if !isSource && len(writers[s.Name]) == 0 {
				add("processor %q: consumes stream %q, which is neither a declared source nor emitted by any processor", p.Name, s.Name)
			}
			if s.Partitions != 0 {
				if parts != 0 && parts != s.Partitions {
					add("processor %q: inputs have different partition counts (%d and %d); a processor's inputs must be co-partitioned", p.Name, parts, s.Partitions)
				}
				parts = s.Partitions
			}
		}
		for _, l := range p.Lookups {
			c, ok := tableCodec[l.Name]
			switch {
			case !ok:
				add("processor %q: looks up table %q, which no processor owns", p.Name, l.Name)
			case c != l.Codec:
				add("table %q: codec mismatch: processor %q writes %s, but processor %q reads %s", l.Name, l.Owner, c, p.Name, l.Codec)
			}
		}
	}
	if cycle := t.cycle(); cycle != nil {
		add("cycle %s: only a processor consuming its own output (a loopback) may close a loop", strings.Join(cycle, " -> "))
	}
	if len(problems) == 0 {
		return nil
	}
	slices.Sort(problems)
	return &ValidationError{Topology: t.name, Problems: problems}
}

// cycle returns the processors of a cycle of length > 1 in the
// processor graph (p -> q when q consumes a stream p emits), or nil.
func (t *Topology) cycle() []string {
	next := map[string][]string{}
	for _, p := range t.processors {
		for _, out := range p.Outputs {
			for _, q := range t.processors {
				if q.Name == p.Name {
					continue // loopback
				}
				if slices.ContainsFunc(q.Inputs, func(s StreamSpec) bool { return s.Name == out.Name }) {
					next[p.Name] = append(next[p.Name], q.Name)
				}
			}
		}
	}
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var found []string
	var visit func(n string) bool
	visit = func(n string) bool {
		color[n] = grey
		stack = append(stack, n)
		for _, m := range next[n] {
			switch color[m] {
			case grey:
				i := slices.Index(stack, m)
				found = append(append([]string(nil), stack[i:]...), m)
				return true
			case white:
				if visit(m) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, p := range t.processors {
		if color[p.Name] == white && visit(p.Name) {
			return found
		}
	}
	return nil
}

// IsValidation reports whether err is a topology validation error.
func IsValidation(err error) bool {
	var v *ValidationError
	return errors.As(err, &v)
}
