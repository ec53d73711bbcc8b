package processors

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/aetherai/aether/internal/engine"
)

// metrics are the runtime's Prometheus collectors, registered once per
// Runtime (no package-level registry).
type metrics struct {
	records     *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	opDuration  *prometheus.HistogramVec
	opErrors    *prometheus.CounterVec
	timers      *prometheus.CounterVec
	sinkErrors  *prometheus.CounterVec
	sealErrors  *prometheus.CounterVec
	watermark   *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aether_records_total",
			Help: "Input records by processor, topic and outcome (applied, replayed, duplicate, dead_lettered; forgotten for forget control records).",
		}, []string{"processor", "topic", "outcome"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aether_dead_letters_total",
			Help: "Records written to a dead-letter topic, by processor, input topic and failing stage.",
		}, []string{"processor", "topic", "stage"}),
		opDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aether_operator_duration_seconds",
			Help:    "Time an operator spends on one record or timer (records sampled one in eight).",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10),
		}, []string{"processor", "operator"}),
		opErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aether_operator_errors_total",
			Help: "Records an operator rejected.",
		}, []string{"processor", "operator"}),
		timers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aether_timers_fired_total",
			Help: "Timer deliveries by processor and outcome.",
		}, []string{"processor", "outcome"}),
		sinkErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aether_sink_errors_total",
			Help: "Failed writes to external sinks, after retries.",
		}, []string{"processor"}),
		sealErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aether_seal_errors_total",
			Help: "Records of sealed streams or tables that could not be opened or sealed, after retries, by processor and op (open, seal; shredded: sealed with a key that is gone, after a deletion).",
		}, []string{"processor", "op"}),
		watermark: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aether_watermark_seconds",
			Help: "Event-time watermark per processor and partition, as Unix seconds.",
		}, []string{"processor", "partition"}),
	}
	for _, c := range []prometheus.Collector{m.records, m.deadLetters, m.opDuration, m.opErrors, m.timers, m.sinkErrors, m.sealErrors, m.watermark} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// procMetrics resolves label values once per processor, so the hot path
// does no label hashing.
type procMetrics struct {
	m        *metrics
	name     string
	outcomes map[string]*[4]prometheus.Counter
	ops      map[string]opMetrics
	// forgotten are the keys the processor forgot lately (forget.go).
	forgotten *forgetLog
}

type opMetrics struct {
	duration prometheus.Observer
	errors   prometheus.Counter
}

func (m *metrics) forProcessor(name string, topics, ops []string) *procMetrics {
	pm := &procMetrics{m: m, name: name, outcomes: map[string]*[4]prometheus.Counter{}, ops: map[string]opMetrics{},
		forgotten: newForgetLog()}
	for _, t := range topics {
		var cs [4]prometheus.Counter
		for o := engine.Applied; o <= engine.DeadLettered; o++ {
			cs[o] = m.records.WithLabelValues(name, t, o.String())
		}
		pm.outcomes[t] = &cs
	}
	for _, op := range ops {
		pm.ops[op] = opMetrics{m.opDuration.WithLabelValues(name, op), m.opErrors.WithLabelValues(name, op)}
	}
	return pm
}

func (pm *procMetrics) record(topic string, o engine.Outcome) {
	if cs, ok := pm.outcomes[topic]; ok {
		cs[o].Inc()
	}
}

// Operator implements engine.Observer.
func (pm *procMetrics) Operator(name string, d time.Duration, err error) {
	om, ok := pm.ops[name]
	if !ok {
		return
	}
	if d > 0 {
		om.duration.Observe(d.Seconds())
	}
	if err != nil {
		om.errors.Inc()
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
