package api

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aetherai/aether/recommend"
)

// Reasons a request is rejected: the reason label of
// aether_http_rejected_total, one per kind of error answer.
const (
	reasonMissingKey       = "missing_api_key"
	reasonInvalidKey       = "invalid_api_key"
	reasonIPNotAllowed     = "ip_not_allowed"
	reasonRateLimited      = "rate_limited"
	reasonBodyTooLarge     = "body_too_large"
	reasonMalformedJSON    = "malformed_json"
	reasonInvalidEvent     = "invalid_event"
	reasonEmptyBatch       = "empty_batch"
	reasonBatchTooLarge    = "batch_too_large"
	reasonInvalidUserID    = "invalid_user_id"
	reasonInvalidK         = "invalid_k"
	reasonNoFeatures       = "no_features"
	reasonNotFound         = "not_found"
	reasonMethodNotAllowed = "method_not_allowed"
	reasonUnavailable      = "unavailable"
	reasonInternal         = "internal"
	reasonPanic            = "panic"
)

var reasons = [...]string{
	reasonMissingKey, reasonInvalidKey, reasonIPNotAllowed, reasonRateLimited, reasonBodyTooLarge, reasonMalformedJSON,
	reasonInvalidEvent, reasonEmptyBatch, reasonBatchTooLarge, reasonInvalidUserID,
	reasonInvalidK, reasonNoFeatures, reasonNotFound, reasonMethodNotAllowed,
	reasonUnavailable, reasonInternal, reasonPanic,
}

// metrics are the API's collectors, registered once per Server.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// rejected is resolved per reason up front: every reason is exposed
	// (at 0) from the start, so alerts can rate() it.
	rejected    map[string]prometheus.Counter
	accepted    *prometheus.CounterVec
	answers     map[recommend.Source]prometheus.Counter
	cacheErrors *prometheus.CounterVec
	auditErrors prometheus.Counter
	// rateLimited counts the 429s by client, every client exposed from
	// the start.
	rateLimited *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, clients []string) (*metrics, error) {
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aether_http_rejected_total",
		Help: "API requests answered with an error, by reason.",
	}, []string{"reason"})
	answers := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aether_api_recommendations_total",
		Help: "Recommendations served, by source (cache, inference, fallback).",
	}, []string{"source"})
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aether_http_requests_total",
			Help: "API requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aether_http_request_duration_seconds",
			Help:    "API request duration by route pattern.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 4, 10),
		}, []string{"route"}),
		rejected: map[string]prometheus.Counter{},
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aether_api_events_accepted_total",
			Help: "Events acknowledged by the event store and answered 202, by client; reconcile with the pipeline's input counts.",
		}, []string{"client"}),
		answers: map[recommend.Source]prometheus.Counter{},
		cacheErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aether_api_cache_errors_total",
			Help: "Failed recommendation cache operations (get, put); a failed get is served as a miss.",
		}, []string{"op"}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aether_audit_write_errors_total",
			Help: "API audit events that could not be written to the audit sink (the requests were answered all the same).",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aether_http_rate_limited_total",
			Help: "API requests refused with 429 because the client's rate limit was exceeded, by client.",
		}, []string{"client"}),
	}
	for _, c := range clients {
		m.rateLimited.WithLabelValues(c)
	}
	for _, r := range reasons {
		m.rejected[r] = rejected.WithLabelValues(r)
	}
	for _, src := range []recommend.Source{recommend.FromCache, recommend.FromInference, recommend.FromFallback} {
		m.answers[src] = answers.WithLabelValues(string(src))
	}
	m.cacheErrors.WithLabelValues("get")
	m.cacheErrors.WithLabelValues("put")
	for _, c := range []prometheus.Collector{m.requests, m.duration, rejected, m.accepted, answers, m.cacheErrors, m.auditErrors, m.rateLimited} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
