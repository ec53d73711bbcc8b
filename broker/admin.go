package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// Topic config keys set and read by EnsureTopic and DescribeTopic.
const (
	ConfigRetentionMs   = "retention.ms"
	ConfigCleanupPolicy = "cleanup.policy"
)

// TopicSpec describes a topic for EnsureTopic and DescribeTopic.
type TopicSpec struct {
	Name string
	// Partitions is the partition count; 0 means the broker's default
	// (broker.Partitions) when creating and "any" when checking.
	Partitions int32
	// Retention is retention.ms: 0 = broker default, negative = unlimited
	// (-1). It must be a whole number of milliseconds. DescribeTopic
	// reports the effective value (the broker default included), -1 ms for
	// unlimited.
	Retention time.Duration
	// Compacted sets cleanup.policy=compact (goka table topics). Otherwise
	// the broker default (delete) applies. DescribeTopic reports true when
	// the policy includes compact.
	Compacted bool
}

// ErrPartitionMismatch is returned (wrapped) by EnsureTopic when the topic
// exists with a different partition count.
var ErrPartitionMismatch = errors.New("topic exists with a different partition count")

func (s TopicSpec) validate() error {
	if s.Name == "" {
		return errors.New("broker: topic spec: empty name")
	}
	if s.Partitions < 0 {
		return fmt.Errorf("broker: topic %q: partitions %d < 0", s.Name, s.Partitions)
	}
	if s.Retention > 0 && s.Retention%time.Millisecond != 0 {
		return fmt.Errorf("broker: topic %q: retention %v is not a whole number of milliseconds", s.Name, s.Retention)
	}
	return nil
}

func (s TopicSpec) configEntries() map[string]*string {
	entries := make(map[string]*string)
	switch {
	case s.Retention > 0:
		v := strconv.FormatInt(s.Retention.Milliseconds(), 10)
		entries[ConfigRetentionMs] = &v
	case s.Retention < 0:
		v := "-1"
		entries[ConfigRetentionMs] = &v
	}
	if s.Compacted {
		v := "compact"
		entries[ConfigCleanupPolicy] = &v
	}
	return entries
}

// EnsureTopic creates spec's topic with replication factor 1 and, when set,
// retention.ms and cleanup.policy=compact. A topic that already exists is
// left as it is (nil), unless spec.Partitions is set and differs from the
// topic's partition count: then the error wraps ErrPartitionMismatch. The
// configs of an existing topic are not compared or changed.
//
// cfg is not modified. ctx cancels the admin calls (the connection is closed).
func EnsureTopic(ctx context.Context, addrs []string, cfg *sarama.Config, spec TopicSpec) error {
	if err := spec.validate(); err != nil {
		return err
	}
	admin, err := NewAdmin(ctx, addrs, cfg)
	if err != nil {
		return err
	}
	defer admin.Close()
	return Ensure(ctx, admin, spec)
}

// Ensure is EnsureTopic on an open admin client, for callers that create
// many topics over one connection. If ctx ends first, admin is closed.
func Ensure(ctx context.Context, admin sarama.ClusterAdmin, spec TopicSpec) error {
	if err := spec.validate(); err != nil {
		return err
	}
	detail := &sarama.TopicDetail{
		NumPartitions:     spec.Partitions,
		ReplicationFactor: 1,
		ConfigEntries:     spec.configEntries(),
	}
	if detail.NumPartitions == 0 {
		detail.NumPartitions = -1 // broker default (CreateTopics v4+)
	}
	err := withCtx(ctx, admin, func() error {
		return admin.CreateTopic(spec.Name, detail, false)
	})
	if err == nil {
		return nil
	}
	if !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("broker: create topic %q: %w", spec.Name, err)
	}
	if spec.Partitions == 0 {
		return nil
	}
	n, err := partitionCount(ctx, admin, spec.Name)
	if err != nil {
		return err
	}
	if n != spec.Partitions {
		return fmt.Errorf("broker: topic %q has %d partitions, want %d: %w", spec.Name, n, spec.Partitions, ErrPartitionMismatch)
	}
	return nil
}

// DescribeTopic reads back a topic's partition count, effective retention.ms
// and cleanup.policy. A missing topic is an error wrapping
// sarama.ErrUnknownTopicOrPartition (describing does not auto-create it).
func DescribeTopic(ctx context.Context, addrs []string, cfg *sarama.Config, topic string) (TopicSpec, error) {
	if topic == "" {
		return TopicSpec{}, errors.New("broker: describe topic: empty name")
	}
	admin, err := NewAdmin(ctx, addrs, cfg)
	if err != nil {
		return TopicSpec{}, err
	}
	defer admin.Close()
	return Describe(ctx, admin, topic)
}

// Describe is DescribeTopic on an open admin client, for callers that
// describe many topics over one connection.
func Describe(ctx context.Context, admin sarama.ClusterAdmin, topic string) (TopicSpec, error) {
	if topic == "" {
		return TopicSpec{}, errors.New("broker: describe topic: empty name")
	}
	n, err := partitionCount(ctx, admin, topic)
	if err != nil {
		return TopicSpec{}, err
	}
	spec := TopicSpec{Name: topic, Partitions: n}

	var entries []sarama.ConfigEntry
	err = withCtx(ctx, admin, func() error {
		var err error
		entries, err = admin.DescribeConfig(sarama.ConfigResource{
			Type:        sarama.TopicResource,
			Name:        topic,
			ConfigNames: []string{ConfigRetentionMs, ConfigCleanupPolicy},
		})
		return err
	})
	if err != nil {
		return TopicSpec{}, fmt.Errorf("broker: describe configs of topic %q: %w", topic, err)
	}
	for _, e := range entries {
		switch e.Name {
		case ConfigRetentionMs:
			ms, err := strconv.ParseInt(e.Value, 10, 64)
			if err != nil {
				return TopicSpec{}, fmt.Errorf("broker: topic %q: bad %s %q", topic, ConfigRetentionMs, e.Value)
			}
			if ms < 0 {
				ms = -1
			}
			spec.Retention = time.Duration(ms) * time.Millisecond
		case ConfigCleanupPolicy:
			for _, p := range strings.Split(e.Value, ",") {
				if strings.TrimSpace(p) == "compact" {
					spec.Compacted = true
				}
			}
		}
	}
	return spec, nil
}

// Consume reads every partition of topic from its oldest retained offset up
// to its high-water mark as of the call, and returns the records in
// partition order, then offset order. Records produced after the call are
// not waited for. It is meant for tests and CLI-style checks, not for
// streaming. A missing topic is an error (Consume does not auto-create it).
//
// cfg is not modified (a copy is used). Consume waits for records up to the
// high-water mark; bound it with ctx. A partition that ends in transaction
// control records (transactional producers; goka uses none) never reaches
// its high-water mark with sarama and waits until ctx is done.
func Consume(ctx context.Context, addrs []string, cfg *sarama.Config, topic string) ([]*sarama.ConsumerMessage, error) {
	if topic == "" {
		return nil, errors.New("broker: consume: empty topic")
	}
	if cfg == nil {
		return nil, errors.New("broker: consume: nil config")
	}
	c := *cfg // sarama.Config holds no locks; a shallow copy is safe
	c.Metadata.AllowAutoTopicCreation = false
	c.Consumer.Return.Errors = true

	client, err := newClient(ctx, addrs, &c)
	if err != nil {
		return nil, err
	}
	defer client.Close()

	var parts []int32
	if err := withCtx(ctx, client, func() error {
		var err error
		parts, err = client.Partitions(topic)
		return err
	}); err != nil {
		return nil, fmt.Errorf("broker: consume %q: partitions: %w", topic, err)
	}

	type bounds struct{ low, high int64 }
	bs := make([]bounds, len(parts))
	if err := withCtx(ctx, client, func() error {
		for i, p := range parts {
			low, err := client.GetOffset(topic, p, sarama.OffsetOldest)
			if err != nil {
				return fmt.Errorf("partition %d oldest offset: %w", p, err)
			}
			high, err := client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				return fmt.Errorf("partition %d high-water mark: %w", p, err)
			}
			bs[i] = bounds{low, high}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("broker: consume %q: %w", topic, err)
	}

	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, fmt.Errorf("broker: consume %q: %w", topic, err)
	}
	defer consumer.Close()

	// Read all partitions at once: sarama's broker consumer serves every
	// subscribed partition in one fetch, while partitions read one after
	// another would each wait out the previous one's idle fetch
	// (Consumer.MaxWaitTime).
	readCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([][]*sarama.ConsumerMessage, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		b := bs[i]
		if b.high <= b.low {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, b.low)
		if err != nil {
			cancel()
			wg.Wait()
			return nil, fmt.Errorf("broker: consume %q partition %d: %w", topic, p, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.AsyncClose()
			results[i], errs[i] = readPartition(readCtx, pc, b.high-b.low, b.high)
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		n := 0
		for _, r := range results {
			n += len(r)
		}
		return nil, fmt.Errorf("broker: consume %q: read %d records, high-water marks not reached: %w", topic, n, err)
	}
	var out []*sarama.ConsumerMessage
	for i, p := range parts {
		if errs[i] != nil && !errors.Is(errs[i], context.Canceled) {
			return nil, fmt.Errorf("broker: consume %q partition %d: %w", topic, p, errs[i])
		}
		out = append(out, results[i]...)
	}
	return out, nil
}

// readPartition reads pc until the record before high.
func readPartition(ctx context.Context, pc sarama.PartitionConsumer, capHint, high int64) ([]*sarama.ConsumerMessage, error) {
	msgs := make([]*sarama.ConsumerMessage, 0, capHint)
	for {
		select {
		case <-ctx.Done():
			return msgs, ctx.Err()
		case err := <-pc.Errors():
			return msgs, err
		case m := <-pc.Messages():
			if m.Offset >= high {
				return msgs, nil
			}
			msgs = append(msgs, m)
			if m.Offset >= high-1 {
				return msgs, nil
			}
		}
	}
}

// partitionCount returns the topic's partition count from metadata; metadata
// requests of the admin client do not auto-create topics.
func partitionCount(ctx context.Context, admin sarama.ClusterAdmin, topic string) (int32, error) {
	var md []*sarama.TopicMetadata
	err := withCtx(ctx, admin, func() error {
		var err error
		md, err = admin.DescribeTopics([]string{topic})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("broker: describe topic %q: %w", topic, err)
	}
	for _, t := range md {
		if t.Name != topic {
			continue
		}
		if t.Err != sarama.ErrNoError {
			return 0, fmt.Errorf("broker: describe topic %q: %w", topic, t.Err)
		}
		return int32(len(t.Partitions)), nil
	}
	return 0, fmt.Errorf("broker: describe topic %q: not in metadata: %w", topic, sarama.ErrUnknownTopicOrPartition)
}

type closer interface{ Close() error }

// withCtx runs fn, closing c (which makes fn's blocking network calls fail
// promptly) if ctx ends first; it returns ctx's error in that case.
func withCtx(ctx context.Context, c closer, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = c.Close()
		<-done
		return ctx.Err()
	}
}

// NewAdmin builds a ClusterAdmin, giving up when ctx ends (the admin is
// then closed once its construction returns). Closing it closes its client.
func NewAdmin(ctx context.Context, addrs []string, cfg *sarama.Config) (sarama.ClusterAdmin, error) {
	client, err := newClient(ctx, addrs, cfg)
	if err != nil {
		return nil, err
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("broker: admin client: %w", err)
	}
	return admin, nil
}

// newClient builds a sarama client, giving up when ctx ends (the client is
// then closed once its construction returns).
func newClient(ctx context.Context, addrs []string, cfg *sarama.Config) (sarama.Client, error) {
	if len(addrs) == 0 {
		return nil, errors.New("broker: no broker addresses")
	}
	if cfg == nil {
		return nil, errors.New("broker: nil sarama config")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		c   sarama.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := sarama.NewClient(addrs, cfg)
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("broker: connect to %v: %w", addrs, r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.err == nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}
