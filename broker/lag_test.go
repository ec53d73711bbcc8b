package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gatherSeries registers c with a pedantic registry (which also checks the
// collected metrics against Describe) and returns every series as
// `name{label="value",...}` -> value, labels sorted by name.
func gatherSeries(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[seriesKey(mf.GetName(), m)] = metricValue(m)
		}
	}
	return out
}

func seriesKey(name string, m *dto.Metric) string {
	var ls []string
	for _, l := range m.GetLabel() {
		ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	sort.Strings(ls)
	return name + "{" + strings.Join(ls, ",") + "}"
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	}
	return 0
}

// seriesOf keeps the series of one metric name.
func seriesOf(all map[string]float64, name string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range all {
		if strings.HasPrefix(k, name+"{") {
			out[k] = v
		}
	}
	return out
}

// produceTo writes counts[p] records to partition p of topic.
func produceTo(t *testing.T, addrs []string, topic string, counts []int) {
	t.Helper()
	cfg := SaramaConfig("lag-test-producer")
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(addrs, cfg)
	require.NoError(t, err)
	defer p.Close()
	var msgs []*sarama.ProducerMessage
	for part, n := range counts {
		for i := range n {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: int32(part),
				Value: sarama.StringEncoder(fmt.Sprintf("v%d", i))})
		}
	}
	require.NoError(t, p.SendMessages(msgs))
}

// commitOffsets commits offsets[p] for group on partition p of topic (a
// negative value commits nothing there), the way a consumer that has
// processed the records before offsets[p] does. It is a simple commit
// (no group membership, generation -1), as sarama's OffsetManager would
// send if kfake answered its initial OffsetFetch for a new group.
func commitOffsets(t *testing.T, addrs []string, group, topic string, offsets []int64) {
	t.Helper()
	cfg := SaramaConfig("lag-test-committer")
	client, err := sarama.NewClient(addrs, cfg)
	require.NoError(t, err)
	defer client.Close()
	coord, err := client.Coordinator(group)
	require.NoError(t, err)
	req := sarama.NewOffsetCommitRequest(cfg, group)
	for p, off := range offsets {
		if off >= 0 {
			req.AddBlock(topic, int32(p), off, 0, "")
		}
	}
	resp, err := coord.CommitOffset(req)
	require.NoError(t, err)
	for _, parts := range resp.Errors {
		for p, kerr := range parts {
			require.ErrorIs(t, kerr, sarama.ErrNoError, "commit partition %d", p)
		}
	}
}

func TestLagCollectorReportsExactLag(t *testing.T) {
	b := startBroker(t, Partitions(3))
	ctx := testCtx(t, 30*time.Second)
	const topic = "orders"
	require.NoError(t, EnsureTopic(ctx, b.Addrs(), SaramaConfig("lag-test"), TopicSpec{Name: topic, Partitions: 3}))

	produced := []int{10, 7, 4}
	produceTo(t, b.Addrs(), topic, produced)
	// Group "billing" is behind on every partition; "audit" has read
	// partition 0 completely and committed nothing on partition 2.
	commitOffsets(t, b.Addrs(), "billing", topic, []int64{3, 0, 4})
	commitOffsets(t, b.Addrs(), "audit", topic, []int64{10, 5, -1})

	c, err := NewLagCollector(b.Addrs(), SaramaConfig("lag-test"), LagGroups("billing", "audit", "billing", "idle"))
	require.NoError(t, err)
	got := gatherSeries(t, c)

	assert.Equal(t, map[string]float64{
		`aether_kafka_consumer_lag{group="billing",partition="0",topic="orders"}`: 7,
		`aether_kafka_consumer_lag{group="billing",partition="1",topic="orders"}`: 7,
		`aether_kafka_consumer_lag{group="billing",partition="2",topic="orders"}`: 0,
		`aether_kafka_consumer_lag{group="audit",partition="0",topic="orders"}`:   0,
		`aether_kafka_consumer_lag{group="audit",partition="1",topic="orders"}`:   2,
	}, seriesOf(got, MetricConsumerLag))
	assert.Equal(t, map[string]float64{
		`aether_kafka_consumer_committed_offset{group="billing",partition="0",topic="orders"}`: 3,
		`aether_kafka_consumer_committed_offset{group="billing",partition="1",topic="orders"}`: 0,
		`aether_kafka_consumer_committed_offset{group="billing",partition="2",topic="orders"}`: 4,
		`aether_kafka_consumer_committed_offset{group="audit",partition="0",topic="orders"}`:   10,
		`aether_kafka_consumer_committed_offset{group="audit",partition="1",topic="orders"}`:   5,
	}, seriesOf(got, MetricCommittedOffset))
	// One high-water mark per partition, although two groups read it.
	assert.Equal(t, map[string]float64{
		`aether_kafka_partition_high_watermark{partition="0",topic="orders"}`: 10,
		`aether_kafka_partition_high_watermark{partition="1",topic="orders"}`: 7,
		`aether_kafka_partition_high_watermark{partition="2",topic="orders"}`: 4,
	}, seriesOf(got, MetricHighWatermark))
	assert.Equal(t, 0.0, got[MetricLagScrapeErrors+"{}"])

	// Lag follows new records and new commits at the next scrape.
	produceTo(t, b.Addrs(), topic, []int{0, 0, 6})
	commitOffsets(t, b.Addrs(), "billing", topic, []int64{10, -1, -1})
	got = gatherSeries(t, c)
	assert.Equal(t, 0.0, got[`aether_kafka_consumer_lag{group="billing",partition="0",topic="orders"}`])
	assert.Equal(t, 6.0, got[`aether_kafka_consumer_lag{group="billing",partition="2",topic="orders"}`])
	assert.Equal(t, 0.0, got[MetricLagScrapeErrors+"{}"])
}

func TestLagCollectorAllGroupsByDefault(t *testing.T) {
	b := startBroker(t, Partitions(2))
	ctx := testCtx(t, 30*time.Second)
	require.NoError(t, EnsureTopic(ctx, b.Addrs(), SaramaConfig("lag-test"), TopicSpec{Name: "a", Partitions: 2}))
	require.NoError(t, EnsureTopic(ctx, b.Addrs(), SaramaConfig("lag-test"), TopicSpec{Name: "b", Partitions: 1}))
	produceTo(t, b.Addrs(), "a", []int{5, 5})
	produceTo(t, b.Addrs(), "b", []int{9})
	commitOffsets(t, b.Addrs(), "g1", "a", []int64{1, 2})
	commitOffsets(t, b.Addrs(), "g2", "b", []int64{4})

	c, err := NewLagCollector(b.Addrs(), SaramaConfig("lag-test"))
	require.NoError(t, err)
	got := gatherSeries(t, c)
	assert.Equal(t, map[string]float64{
		`aether_kafka_consumer_lag{group="g1",partition="0",topic="a"}`: 4,
		`aether_kafka_consumer_lag{group="g1",partition="1",topic="a"}`: 3,
		`aether_kafka_consumer_lag{group="g2",partition="0",topic="b"}`: 5,
	}, seriesOf(got, MetricConsumerLag))
	assert.Equal(t, 0.0, got[MetricLagScrapeErrors+"{}"])
}

func TestLagCollectorCountsErrorsWithinTimeout(t *testing.T) {
	// A listener that accepts and never answers: the worst kind of broker.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
		}
	}()

	c, err := NewLagCollector([]string{ln.Addr().String()}, SaramaConfig("lag-test"),
		LagGroups("g"), LagTimeout(300*time.Millisecond))
	require.NoError(t, err)
	start := time.Now()
	got := gatherSeries(t, c)
	assert.Less(t, time.Since(start), 5*time.Second, "scrape not bounded by LagTimeout")
	assert.Equal(t, 1.0, got[MetricLagScrapeErrors+"{}"])
	assert.Empty(t, seriesOf(got, MetricConsumerLag))

	got = gatherSeries(t, c) // a fresh registry: the counter keeps counting
	assert.Equal(t, 2.0, got[MetricLagScrapeErrors+"{}"])
}

func TestLagCollectorGroupsFuncError(t *testing.T) {
	b := startBroker(t, Partitions(1))
	c, err := NewLagCollector(b.Addrs(), SaramaConfig("lag-test"), LagGroupsFunc(func(context.Context) ([]string, error) {
		return nil, errors.New("no processors yet")
	}))
	require.NoError(t, err)
	got := gatherSeries(t, c)
	assert.Equal(t, 1.0, got[MetricLagScrapeErrors+"{}"])
}

func TestNewLagCollectorValidates(t *testing.T) {
	cfg := SaramaConfig("lag-test")
	cases := map[string]func() (*LagCollector, error){
		"no addrs":     func() (*LagCollector, error) { return NewLagCollector(nil, cfg) },
		"nil config":   func() (*LagCollector, error) { return NewLagCollector([]string{"x:1"}, nil) },
		"nil option":   func() (*LagCollector, error) { return NewLagCollector([]string{"x:1"}, cfg, nil) },
		"empty group":  func() (*LagCollector, error) { return NewLagCollector([]string{"x:1"}, cfg, LagGroups("")) },
		"nil func":     func() (*LagCollector, error) { return NewLagCollector([]string{"x:1"}, cfg, LagGroupsFunc(nil)) },
		"zero timeout": func() (*LagCollector, error) { return NewLagCollector([]string{"x:1"}, cfg, LagTimeout(0)) },
		"nil logger":   func() (*LagCollector, error) { return NewLagCollector([]string{"x:1"}, cfg, LagLogger(nil)) },
		"invalid sarama": func() (*LagCollector, error) {
			bad := SaramaConfig("lag-test")
			bad.Net.DialTimeout = 0
			return NewLagCollector([]string{"x:1"}, bad)
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := mk()
			assert.Error(t, err)
		})
	}
	// The caller's config is not modified.
	cfg.Metadata.AllowAutoTopicCreation = true
	_, err := NewLagCollector([]string{"x:1"}, cfg)
	require.NoError(t, err)
	assert.True(t, cfg.Metadata.AllowAutoTopicCreation)
}

func TestLagCollectorConcurrentScrapes(t *testing.T) {
	b := startBroker(t, Partitions(2))
	produceTo(t, b.Addrs(), "c", []int{3, 4})
	commitOffsets(t, b.Addrs(), "g", "c", []int64{1, 1})
	c, err := NewLagCollector(b.Addrs(), SaramaConfig("lag-test"), LagGroups("g"))
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(c))
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := reg.Gather()
			errs <- err
		}()
	}
	for range 4 {
		require.NoError(t, <-errs)
	}
	got := gatherSeries(t, c)
	assert.Equal(t, 2.0, got[`aether_kafka_consumer_lag{group="g",partition="0",topic="c"}`])
	assert.Equal(t, 3.0, got[`aether_kafka_consumer_lag{group="g",partition="1",topic="c"}`])
	assert.Equal(t, 0.0, got[MetricLagScrapeErrors+"{}"])
}
