package elasticsearch

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	backlog   prometheus.Gauge
	spilled   prometheus.Counter
	replayed  prometheus.Counter
	errors    *prometheus.CounterVec
	lastWrite prometheus.Gauge
	written   prometheus.Counter
}

// newMetrics makes the sink's metrics, unregistered.
func newMetrics() *metrics {
	m := &metrics{
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aether_audit_backlog_events",
			Help: "Audit events accepted but not yet in Elasticsearch (queued or spilled)."}),
		spilled: prometheus.NewCounter(prometheus.CounterOpts{Name: "aether_audit_spilled_events_total",
			Help: "Audit events written to the local spill file because Elasticsearch was slow or down."}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{Name: "aether_audit_replayed_events_total",
			Help: "Audit events replayed from the spill file to Elasticsearch."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aether_audit_sink_errors_total",
			Help: "Audit sink errors by reason: unreachable, unauthorized, forbidden, rejected, server_error, timeout, request, queue_full, spill."},
			[]string{"reason"}),
		lastWrite: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aether_audit_last_write_timestamp_seconds",
			Help: "Unix time at which audit events were last stored durably (in Elasticsearch or the spill file)."}),
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: "aether_audit_events_written_total",
			Help: "Audit events stored in Elasticsearch."}),
	}
	for _, r := range []string{"unreachable", "unauthorized", "forbidden", "rejected", "server_error", "timeout", "request", "queue_full", "spill"} {
		m.errors.WithLabelValues(r)
	}
	return m
}

// register registers the metrics with reg, if not nil; on failure none
// stays registered.
func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	var done []prometheus.Collector
	for _, c := range []prometheus.Collector{m.backlog, m.spilled, m.replayed, m.errors, m.lastWrite, m.written} {
		if err := reg.Register(c); err != nil {
			for _, d := range done {
				reg.Unregister(d)
			}
			return fmt.Errorf("audit: elasticsearch: registering metrics: %w", err)
		}
		done = append(done, c)
	}
	return nil
}
