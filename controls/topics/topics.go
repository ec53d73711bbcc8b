// Package topics derives every Kafka topic a topology uses, with the
// configuration its declaration implies, and compares it with, and applies
// it to, a live cluster: streams keep their declared retention (so
// personal data expires when the declaration says), dead-letter topics
// keep their input's, group tables are compacted, and every processor's
// inputs, table and loopback topic share one partition count
// (co-partitioning).
//
// With least-privilege ACLs no processor may create topics, so they are
// created here, by an administrator, before the pipeline starts.
package topics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/IBM/sarama"

	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/topology"
)

// Kinds of topic.
const (
	KindStream     = "stream"
	KindDeadLetter = "dead letters"
	KindTable      = "table"
	KindLoop       = "loopback"
)

// LoopRetention is the retention of a processor's loopback topic: it
// carries timer ticks, read within seconds, keyed by user; Goka's own
// default for streams.
const LoopRetention = time.Hour

// Topic is one topic with its declared configuration.
type Topic struct {
	broker.TopicSpec
	// Kind says what the topic is for (KindStream, ...).
	Kind string
}

// String is the topic on one line, as `runner topics` prints it.
func (t Topic) String() string {
	s := fmt.Sprintf("%s [%s, %d partitions", t.Name, t.Kind, t.Partitions)
	if t.Retention > 0 {
		s += ", retention.ms=" + strconv.FormatInt(t.Retention.Milliseconds(), 10) + " (" + human(t.Retention) + ")"
	}
	if t.Compacted {
		s += ", cleanup.policy=compact"
	} else {
		s += ", cleanup.policy=delete"
	}
	return s + "]"
}

func human(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}

// Derive lists t's topics sorted by name: its streams (sources, inputs,
// outputs) and dead-letter topics with their declared retention and
// partitions (defaultPartitions when a stream declares none), and each
// stateful processor's table (compacted) and loopback topic, partitioned
// like its inputs.
func Derive(t *topology.Topology, defaultPartitions int32) ([]Topic, error) {
	if defaultPartitions <= 0 {
		return nil, fmt.Errorf("topics: default partitions %d: must be positive", defaultPartitions)
	}
	parts := func(n int32) int32 { return cmp.Or(n, defaultPartitions) }
	dlq := t.DeadLetterTopics()
	var out []Topic
	for _, s := range t.Streams() {
		kind := KindStream
		if _, ok := slices.BinarySearch(dlq, s.Name); ok {
			kind = KindDeadLetter
		}
		out = append(out, Topic{TopicSpec: broker.TopicSpec{Name: s.Name, Partitions: parts(s.Partitions), Retention: s.Retention}, Kind: kind})
	}
	for _, p := range t.Processors() {
		if p.Table == nil {
			continue
		}
		var n int32
		for _, in := range p.Inputs {
			n = cmp.Or(n, in.Partitions)
		}
		out = append(out,
			Topic{TopicSpec: broker.TopicSpec{Name: p.Table.Name, Partitions: parts(n), Compacted: true}, Kind: KindTable},
			Topic{TopicSpec: broker.TopicSpec{Name: p.LoopTopic(), Partitions: parts(n), Retention: LoopRetention}, Kind: KindLoop})
	}
	slices.SortFunc(out, func(a, b Topic) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// Problem is one difference between a declared topic and the cluster.
type Problem struct {
	Topic  string
	Reason string
	// Fixable says whether Apply can fix it (it cannot remove partitions).
	Fixable bool
}

func (p Problem) String() string { return p.Topic + ": " + p.Reason }

// Check compares the declared topics with the cluster and returns every
// difference: a missing topic, another retention.ms, a cleanup policy that
// is or is not compact against the declaration, another partition count.
func Check(ctx context.Context, addrs []string, cfg *sarama.Config, want []Topic) ([]Problem, error) {
	admin, err := broker.NewAdmin(ctx, addrs, cfg)
	if err != nil {
		return nil, fmt.Errorf("topics: admin client: %w", err)
	}
	defer admin.Close()
	problems, _, err := check(ctx, admin, want)
	return problems, err
}

// check is Check on an open admin client; it also returns what it found
// of each existing topic.
func check(ctx context.Context, admin sarama.ClusterAdmin, want []Topic) ([]Problem, map[string]broker.TopicSpec, error) {
	var out []Problem
	live := map[string]broker.TopicSpec{}
	for _, w := range want {
		got, err := broker.Describe(ctx, admin, w.Name)
		if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			out = append(out, Problem{Topic: w.Name, Reason: reasonMissing, Fixable: true})
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		live[w.Name] = got
		out = append(out, compare(w, got)...)
	}
	return out, live, nil
}

// reasonMissing is the Reason of a topic the cluster does not have.
const reasonMissing = "missing"

func compare(w Topic, got broker.TopicSpec) []Problem {
	var out []Problem
	switch {
	case got.Partitions < w.Partitions:
		out = append(out, Problem{w.Name, fmt.Sprintf("%d partitions, want %d", got.Partitions, w.Partitions), true})
	case got.Partitions > w.Partitions:
		out = append(out, Problem{w.Name, fmt.Sprintf("%d partitions, want %d (partitions cannot be removed: recreate the topic)", got.Partitions, w.Partitions), false})
	}
	if w.Retention > 0 && got.Retention != w.Retention {
		out = append(out, Problem{w.Name, fmt.Sprintf("retention.ms=%d, want %d (%s)", got.Retention.Milliseconds(), w.Retention.Milliseconds(), human(w.Retention)), true})
	}
	switch {
	case w.Compacted && !got.Compacted:
		out = append(out, Problem{w.Name, "cleanup.policy is not compact, want compact (a table)", true})
	case !w.Compacted && got.Compacted:
		out = append(out, Problem{w.Name, "cleanup.policy includes compact, want delete (records must expire with the retention)", true})
	}
	return out
}

// Apply creates the missing topics and fixes the configuration of the
// others (retention.ms, cleanup.policy, added partitions), then checks
// again. It returns the problems it fixed; problems it cannot fix (too
// many partitions) or that are left make it fail.
func Apply(ctx context.Context, addrs []string, cfg *sarama.Config, want []Topic) ([]Problem, error) {
	admin, err := broker.NewAdmin(ctx, addrs, cfg)
	if err != nil {
		return nil, fmt.Errorf("topics: admin client: %w", err)
	}
	defer admin.Close()
	problems, live, err := check(ctx, admin, want)
	if err != nil {
		return nil, err
	}
	byName := map[string]Topic{}
	for _, w := range want {
		byName[w.Name] = w
	}
	var fixed []Problem
	done := map[string]bool{}
	for _, p := range problems {
		if !p.Fixable || done[p.Topic] {
			continue
		}
		w := byName[p.Topic]
		if p.Reason == reasonMissing {
			if err := broker.Ensure(ctx, admin, w.TopicSpec); err != nil {
				return fixed, err
			}
			done[p.Topic] = true
			fixed = append(fixed, p)
			continue
		}
		got := live[w.Name]
		if got.Partitions < w.Partitions {
			if err := admin.CreatePartitions(w.Name, w.Partitions, nil, false); err != nil {
				return fixed, fmt.Errorf("topics: add partitions to %q: %w", w.Name, err)
			}
		}
		entries := map[string]sarama.IncrementalAlterConfigsEntry{}
		set := func(k, v string) {
			entries[k] = sarama.IncrementalAlterConfigsEntry{Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &v}
		}
		if w.Retention > 0 && got.Retention != w.Retention {
			set(broker.ConfigRetentionMs, strconv.FormatInt(w.Retention.Milliseconds(), 10))
		}
		if w.Compacted != got.Compacted {
			set(broker.ConfigCleanupPolicy, map[bool]string{true: "compact", false: "delete"}[w.Compacted])
		}
		if len(entries) > 0 {
			if err := admin.IncrementalAlterConfig(sarama.TopicResource, w.Name, entries, false); err != nil {
				return fixed, fmt.Errorf("topics: alter configs of %q: %w", w.Name, err)
			}
		}
		for _, q := range problems {
			if q.Topic == p.Topic && q.Fixable {
				fixed = append(fixed, q)
			}
		}
		done[p.Topic] = true
	}
	left, _, err := check(ctx, admin, want)
	if err != nil {
		return fixed, err
	}
	if len(left) > 0 {
		return fixed, fmt.Errorf("topics: drift left after apply: %s", left[0])
	}
	return fixed, nil
}
