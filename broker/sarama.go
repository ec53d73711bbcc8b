package broker

import (
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// Group timing used by SaramaConfig. kfake refuses session timeouts below
// its minimum (6 s, like Kafka's group.min.session.timeout.ms default).
const (
	GroupSessionTimeout   = 6 * time.Second
	GroupHeartbeat        = 1 * time.Second
	GroupRebalanceTimeout = 15 * time.Second
)

// SaramaConfig returns a NEW sarama configuration for clientID, suitable for
// goka (pass it to goka.ProducerBuilderWithConfig,
// goka.ConsumerGroupBuilderWithConfig, goka.SaramaConsumerBuilderWithConfig,
// goka.TopicManagerBuilderWithConfig) and for plain sarama clients. It never
// touches goka's global configuration and shares no mutable state between
// calls: callers may change the result freely.
//
// Give each goka builder its own SaramaConfig: goka's builders write
// ClientID (and the producer builder Producer.Partitioner) into the config
// they were given every time they build a client, so one config shared by
// builders that run concurrently is a data race.
//
// An empty clientID keeps sarama's default ("sarama").
func SaramaConfig(clientID string) *sarama.Config {
	c := sarama.NewConfig()
	if clientID != "" {
		c.ClientID = clientID
	}

	// 2.8 is the newest protocol level sarama v1.61 maps fully and kfake
	// serves (2.0 to 4.0 work; 0.10.x fails since kfake needs produce v3+).
	// It enables CreateTopics v7, DescribeConfigs v3 and DescribeCluster.
	c.Version = sarama.V2_8_0_0

	// Network: the broker is local, so fail fast on a wrong address instead
	// of sarama's 30 s dial timeout.
	c.Net.DialTimeout = 5 * time.Second

	// Producer.
	// goka's producer and sarama's SyncProducer both read the Successes and
	// Errors channels; SyncProducer refuses a config without them.
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	// Acks from all in-sync replicas (with replication 1 that is the leader):
	// an acknowledged record is durable in the sense the broker offers.
	c.Producer.RequiredAcks = sarama.WaitForAll
	// No idempotent producer (sarama's default, stated for clarity): it
	// would require Net.MaxOpenRequests = 1 and goka does not use it.
	c.Producer.Idempotent = false
	// Explicitly sarama's FNV-1a hash partitioner, the one goka's emitters
	// and processors assume for copartitioning (goka's producer builder sets
	// the same partitioner with goka's hasher).
	c.Producer.Partitioner = sarama.NewHashPartitioner
	// goka retries sends 10 times (sarama: 3) so a leader move in a fault
	// injection test does not lose emitted records.
	c.Producer.Retry.Max = 10
	// No compression (goka's default is snappy): the broker is in process,
	// and client CPU, not the network, limits throughput.
	c.Producer.Compression = sarama.CompressionNone
	// Flush settings stay at sarama's defaults (send as soon as possible,
	// batching whatever accumulates while a request is in flight). goka's
	// default of a 100 ms flush frequency would make every
	// SyncProducer.SendMessage take ~100 ms.

	// Consumer.
	// goka reads the consumer's Errors channel.
	c.Consumer.Return.Errors = true
	// Streams start at the oldest offset for a group without committed
	// offsets, so records emitted before a processor starts are processed
	// (goka's default is newest). Tables are always read from oldest.
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	// goka's value: the time a message may take to process before the
	// partition consumer stops fetching ahead (sarama: 100 ms).
	c.Consumer.MaxProcessingTime = time.Second
	// goka's processors need copartitioning: the same partition of every
	// input topic on the same member (goka's DefaultConfig sets this too).
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{goka.CopartitioningStrategy}
	// Fast group membership: kfake's minimum session timeout (6 s, sarama's
	// default is 10 s) so a dead member is detected quickly; heartbeats
	// every second (sarama: 3 s) so members notice a rebalance quickly.
	c.Consumer.Group.Session.Timeout = GroupSessionTimeout
	c.Consumer.Group.Heartbeat.Interval = GroupHeartbeat
	// How long the coordinator waits for all members to rejoin (sarama:
	// 60 s). goka sleeps 5 s after a consumer-group session ends before it
	// rejoins, so this must be comfortably above 5 s.
	c.Consumer.Group.Rebalance.Timeout = GroupRebalanceTimeout
	// Retry a failed join/sync sooner (sarama: 2 s).
	c.Consumer.Group.Rebalance.Retry.Backoff = 500 * time.Millisecond

	// Admin: kfake answers at once; 10 s leaves room on a busy machine.
	c.Admin.Timeout = 10 * time.Second

	return c
}

// GokaTopicManagerConfig returns a NEW goka topic manager configuration for
// the embedded broker: replication 1 for table and stream topics (goka's
// NewTopicManagerConfig defaults to 2, which fails on a one-broker cluster),
// everything else as goka.NewTopicManagerConfig (tables compacted, streams
// retained 1 h, mismatches ignored, 10 s creation timeout). Use it with
// goka.TopicManagerBuilderWithConfig(SaramaConfig(id), GokaTopicManagerConfig()).
func GokaTopicManagerConfig() *goka.TopicManagerConfig {
	c := goka.NewTopicManagerConfig()
	c.Table.Replication = 1
	c.Stream.Replication = 1
	return c
}
