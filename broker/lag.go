package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names exported by LagCollector.
const (
	MetricConsumerLag     = "aether_kafka_consumer_lag"
	MetricCommittedOffset = "aether_kafka_consumer_committed_offset"
	MetricHighWatermark   = "aether_kafka_partition_high_watermark"
	MetricLagScrapeErrors = "aether_kafka_lag_scrape_errors_total"
)

// DefaultLagScrapeTimeout bounds a scrape when LagTimeout is not given:
// half of Prometheus' default scrape_timeout (10 s).
const DefaultLagScrapeTimeout = 5 * time.Second

// LagOption configures NewLagCollector.
type LagOption func(*LagCollector) error

// LagGroups limits the collector to the named consumer groups (a goka
// processor's group is its name). Without LagGroups or LagGroupsFunc every
// group the cluster lists is reported, which needs Describe on the cluster
// and on every group: give a least-privilege deployment its groups.
func LagGroups(groups ...string) LagOption {
	return func(c *LagCollector) error {
		for _, g := range groups {
			if g == "" {
				return errors.New("broker: LagGroups: empty group name")
			}
		}
		gs := append([]string(nil), groups...)
		c.groups = func(context.Context) ([]string, error) { return gs, nil }
		return nil
	}
}

// LagGroupsFunc asks fn for the groups at every scrape, for a process whose
// set of processors changes while it runs.
func LagGroupsFunc(fn func(context.Context) ([]string, error)) LagOption {
	return func(c *LagCollector) error {
		if fn == nil {
			return errors.New("broker: LagGroupsFunc(nil)")
		}
		c.groups = fn
		return nil
	}
}

// LagTimeout bounds one scrape (default DefaultLagScrapeTimeout). Keep it
// below Prometheus' scrape_timeout so a slow cluster costs the lag series
// of that scrape, not the whole /metrics answer.
func LagTimeout(d time.Duration) LagOption {
	return func(c *LagCollector) error {
		if d <= 0 {
			return fmt.Errorf("broker: LagTimeout(%v): want > 0", d)
		}
		c.timeout = d
		return nil
	}
}

// LagLogger logs the cause of each failed scrape step on l (default:
// discarded); the failures are counted in MetricLagScrapeErrors either way.
func LagLogger(l *slog.Logger) LagOption {
	return func(c *LagCollector) error {
		if l == nil {
			return errors.New("broker: LagLogger(nil)")
		}
		c.log = l
		return nil
	}
}

// LagCollector is a prometheus.Collector reporting consumer-group lag as
// the brokers see it: at every scrape it reads each group's committed
// offsets and the high-water mark of every partition a group has committed
// on, so the numbers come from Kafka, not from the consumers' own view, and
// stay right when a consumer is stuck or dead (the case lag alerts exist
// for).
//
// Lag of a partition is high-water mark minus committed offset (a committed
// offset is the next offset the group will read), never negative.
// Partitions without a committed offset have no lag series. A failed step
// (connect, list groups, one group's offsets, one broker's offsets) is
// counted in MetricLagScrapeErrors and the series it would have produced
// are left out; Collect never panics and never blocks longer than the
// timeout.
//
// Each scrape uses its own short-lived connection, so the collector holds
// no resources and needs no Close.
type LagCollector struct {
	addrs   []string
	cfg     sarama.Config
	groups  func(context.Context) ([]string, error) // nil: all groups
	timeout time.Duration
	log     *slog.Logger

	lag, committed, high *prometheus.Desc
	scrapeErrors         prometheus.Counter
}

// NewLagCollector returns a collector for the cluster at addrs. cfg is
// copied (SaramaConfig's settings, TLS and SASL included, apply) and never
// modified; the copy does not auto-create topics. Register the collector
// with the registry served on /metrics.
func NewLagCollector(addrs []string, cfg *sarama.Config, opts ...LagOption) (*LagCollector, error) {
	if len(addrs) == 0 {
		return nil, errors.New("broker: lag collector: no broker addresses")
	}
	if cfg == nil {
		return nil, errors.New("broker: lag collector: nil sarama config")
	}
	c := &LagCollector{
		addrs:   append([]string(nil), addrs...),
		cfg:     *cfg, // sarama.Config holds no locks; a shallow copy is safe
		timeout: DefaultLagScrapeTimeout,
		log:     slog.New(slog.DiscardHandler),
		lag: prometheus.NewDesc(MetricConsumerLag,
			"Messages a consumer group has yet to commit on a partition: high-water mark minus committed offset, read from the brokers at scrape time.",
			[]string{"group", "topic", "partition"}, nil),
		committed: prometheus.NewDesc(MetricCommittedOffset,
			"Offset a consumer group committed on a partition (the next offset it will read).",
			[]string{"group", "topic", "partition"}, nil),
		high: prometheus.NewDesc(MetricHighWatermark,
			"High-water mark (offset of the next record to be written) of a partition some reported group consumes.",
			[]string{"topic", "partition"}, nil),
		scrapeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricLagScrapeErrors,
			Help: "Failed steps of consumer-lag scrapes (connect, list groups, fetch a group's offsets, fetch a broker's high-water marks); the series they would have produced are missing from that scrape.",
		}),
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("broker: lag collector: nil LagOption")
		}
		if err := o(c); err != nil {
			return nil, err
		}
	}
	c.cfg.Metadata.AllowAutoTopicCreation = false
	if err := c.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("broker: lag collector: %w", err)
	}
	return c, nil
}

// Describe implements prometheus.Collector.
func (c *LagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.committed
	ch <- c.high
	c.scrapeErrors.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *LagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	c.scrape(ctx, ch)
	ch <- c.scrapeErrors
}

type topicPartition struct {
	topic     string
	partition int32
}

// fail counts and logs one failed scrape step.
func (c *LagCollector) fail(step string, err error, attrs ...any) {
	c.scrapeErrors.Inc()
	c.log.Warn("consumer lag scrape: "+step+" failed", append(attrs, "err", err)...)
}

func (c *LagCollector) scrape(ctx context.Context, ch chan<- prometheus.Metric) {
	defer func() {
		// A panic in sarama on an odd answer must cost one scrape, not
		// the process serving /metrics (calls run under withCtx are
		// guarded on their own goroutine, see guarded).
		if r := recover(); r != nil {
			c.fail("scrape", fmt.Errorf("panic: %v", r))
		}
	}()
	client, err := newClient(ctx, c.addrs, &c.cfg)
	if err != nil {
		c.fail("connect", err)
		return
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		c.fail("connect", err)
		return
	}
	// Closing the admin would close the client too; the deferred
	// client.Close does that once.

	groups, err := c.listGroups(ctx, client, admin)
	if err != nil {
		c.fail("list groups", err)
		return
	}

	committed := map[string]map[topicPartition]int64{}
	wanted := map[topicPartition]bool{}
	for _, g := range groups {
		var resp *sarama.OffsetFetchResponse
		err := withCtx(ctx, client, guarded(func() error {
			var err error
			resp, err = admin.ListConsumerGroupOffsets(g, nil) // nil: every partition the group committed on
			return err
		}))
		if errors.Is(err, sarama.ErrGroupIDNotFound) {
			continue // not created yet: nothing committed (Kafka answers empty offsets; kfake this error)
		}
		if err != nil {
			c.fail("fetch committed offsets", err, "group", g)
			if ctx.Err() != nil {
				return // the client is closed: later steps would only fail too
			}
			continue
		}
		offs := map[topicPartition]int64{}
		for topic, parts := range groupBlocks(resp, g) {
			for p, b := range parts {
				if b == nil || !errors.Is(b.Err, sarama.ErrNoError) || b.Offset < 0 {
					continue // -1: nothing committed on this partition
				}
				tp := topicPartition{topic, p}
				offs[tp] = b.Offset
				wanted[tp] = true
			}
		}
		committed[g] = offs
	}

	high := c.highWatermarks(ctx, client, wanted)

	for tp, h := range high {
		c.emit(ch, c.high, float64(h), tp.topic, strconv.Itoa(int(tp.partition)))
	}
	for g, offs := range committed {
		for tp, off := range offs {
			p := strconv.Itoa(int(tp.partition))
			c.emit(ch, c.committed, float64(off), g, tp.topic, p)
			h, ok := high[tp]
			if !ok {
				continue // its broker failed: no lag rather than a wrong one
			}
			c.emit(ch, c.lag, float64(max(h-off, 0)), g, tp.topic, p)
		}
	}
}

func (c *LagCollector) emit(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v, labels...)
	if err != nil {
		c.fail("build metric", err)
		return
	}
	ch <- m
}

func (c *LagCollector) listGroups(ctx context.Context, client sarama.Client, admin sarama.ClusterAdmin) ([]string, error) {
	if c.groups != nil {
		gs, err := c.groups(ctx)
		if err != nil {
			return nil, err
		}
		return dedupe(gs), nil
	}
	var all map[string]string
	if err := withCtx(ctx, client, guarded(func() error {
		var err error
		all, err = admin.ListConsumerGroups()
		return err
	})); err != nil {
		return nil, err
	}
	gs := make([]string, 0, len(all))
	for g := range all {
		gs = append(gs, g)
	}
	return dedupe(gs), nil
}

// dedupe returns gs sorted, without duplicates or empty names.
func dedupe(gs []string) []string {
	out := slices.DeleteFunc(slices.Clone(gs), func(g string) bool { return g == "" })
	slices.Sort(out)
	return slices.Compact(out)
}

// groupBlocks returns a group's committed offsets from either layout of the
// OffsetFetch answer (per group from v8, top level before).
func groupBlocks(resp *sarama.OffsetFetchResponse, group string) map[string]map[int32]*sarama.OffsetFetchResponseBlock {
	if resp == nil {
		return nil
	}
	if g := resp.GetGroup(group); g != nil {
		return g.Blocks
	}
	if len(resp.Groups) > 0 {
		return resp.Groups[0].Blocks
	}
	return resp.Blocks
}

// highWatermarks asks each partition's leader for its newest offset, one
// ListOffsets request per broker. Partitions whose leader or answer failed
// are missing from the result (and counted as errors).
func (c *LagCollector) highWatermarks(ctx context.Context, client sarama.Client, tps map[topicPartition]bool) map[topicPartition]int64 {
	out := map[topicPartition]int64{}
	if len(tps) == 0 {
		return out
	}
	type batch struct {
		broker *sarama.Broker
		req    *sarama.OffsetRequest
		tps    []topicPartition
	}
	batches := map[int32]*batch{}
	for tp := range tps {
		var leader *sarama.Broker
		err := withCtx(ctx, client, guarded(func() error {
			var err error
			leader, err = client.Leader(tp.topic, tp.partition)
			return err
		}))
		if err != nil {
			c.fail("find partition leader", err, "topic", tp.topic, "partition", tp.partition)
			if ctx.Err() != nil {
				return out
			}
			continue
		}
		b := batches[leader.ID()]
		if b == nil {
			b = &batch{broker: leader, req: sarama.NewOffsetRequest(c.cfg.Version)}
			batches[leader.ID()] = b
		}
		b.req.AddBlock(tp.topic, tp.partition, sarama.OffsetNewest, 1)
		b.tps = append(b.tps, tp)
	}
	for _, b := range batches {
		var resp *sarama.OffsetResponse
		err := withCtx(ctx, client, guarded(func() error {
			var err error
			resp, err = b.broker.GetAvailableOffsets(b.req)
			return err
		}))
		if err != nil {
			c.fail("fetch high-water marks", err, "broker", b.broker.Addr())
			if ctx.Err() != nil {
				return out
			}
			continue
		}
		for _, tp := range b.tps {
			blk := resp.GetBlock(tp.topic, tp.partition)
			switch {
			case blk == nil:
				c.fail("fetch high-water mark", sarama.ErrIncompleteResponse, "topic", tp.topic, "partition", tp.partition)
			case !errors.Is(blk.Err, sarama.ErrNoError):
				c.fail("fetch high-water mark", blk.Err, "topic", tp.topic, "partition", tp.partition)
			case len(blk.Offsets) > 0:
				out[tp] = blk.Offsets[0]
			default:
				out[tp] = blk.Offset
			}
		}
	}
	return out
}

// guarded turns a panic of fn into an error: withCtx runs fn on its own
// goroutine, where the scrape's recover cannot reach.
func guarded(fn func() error) func() error {
	return func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return fn()
	}
}
