// Package api is the HTTP API of the reference recommendation pipeline, as
// one http.Handler:
//
//	POST /v1/events                      ingest one event or a batch (API key)
//	GET  /v1/recommendations/{userId}    top-k items: cache, inference or fallback (API key)
//	GET  /v1/features/{userId}           the user's feature record (API key)
//	GET  /metrics                        Prometheus metrics (no key)
//	GET  /healthz                        liveness (no key)
//	GET  /readyz                         readiness (no key)
//
// Every route behind an API key expects `Authorization: Bearer KEY`; reads
// need a key as much as writes, since recommendations and feature records
// are personal data. The server holds only the keys' SHA-256 digests (a
// configuration may give nothing else), compares them in constant time, and
// names the client, never the key, in logs and the audit trail; each client
// has one key. A known key then passes, in this order, the client's
// address allowlist (403; the address is the TCP peer, or from
// X-Forwarded-For only through Config.TrustedProxies, see clientAddr) and
// its rate limit (429 with Retry-After). Every 401, 403 and 429 is audited
// as access_denied with the address pseudonymised.
// /metrics, /healthz and /readyz need no key: the runner binds them, like
// the rest of the internal endpoints, to a loopback or private address.
// HTTPS is the listener's (LoadTLS, Listen: TLS 1.2 at least); the admin
// API is a separate handler on its own listener (AdminServer, ListenAdmin).
//
// Ingest is strict, so that a client learns of a mistake at once instead of
// losing data silently: field names match exactly (case-sensitive), an
// unknown field such as "email" or "userID" is a 400 naming it (data
// minimisation: nothing is accepted that the pipeline would drop), a field
// of the wrong type is a 400 naming the field, the timestamp must be RFC
// 3339 and at most an hour ahead of the server's clock, clientIp an IP
// address. In a batch the error names the event's 0-based index ("event 3:
// invalid event: productId is required") and nothing of the batch is sent.
// A body over MaxBodyBytes or a batch over MaxBatch is a 413. Before events
// leave the API their clientIp is replaced by its keyed hash (or dropped,
// Config.ClientIP): the event store never sees a raw address.
//
// Every error is JSON, {"error":"..."}, says what is wrong with the request
// and never carries another user's data. A 4xx is final; a 503 (the event
// store, feature store or model is unavailable) is worth retrying and comes
// with Retry-After.
//
// With Config.Audit set, every request leaves one api_request audit event
// (actor: the client or "anonymous"; resource: the route pattern, never the
// path; outcome: the status code; correlation id: the request id), and a
// 401, 403 or 429 also an access_denied event naming the reason. The {userId}
// path value enters the trail only as its HMAC-SHA256 (Config.
// AuditSubjectKey), never raw. A failed audit write is counted in
// aether_audit_write_errors_total and logged; the request is answered all
// the same.
//
// The package depends on interfaces only (EventSink, FeatureStore,
// recommend.Scorer, recommend.Cache), so it runs without Kafka or Redis in
// tests; the runner plugs in a processors.Emitter, a processors.View of the
// sessionizer's table, the scorer and the Redis cache.
package api

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/recommend"
)

// EventSink stores ingested events durably, in order; the runner produces
// them to user_events_raw keyed by userId and returns once the broker
// acknowledged every one. Send gets only valid events. An error means the
// request is answered 503 and the client retries the whole batch (events
// with an eventId are then applied once).
type EventSink interface {
	Send(ctx context.Context, events []event.Event) error
}

// FeatureStore reads the online feature store (the sessionizer's table).
type FeatureStore interface {
	// Get returns the user's feature record; ok is false if the user has
	// none. An error means the store could not be read.
	Get(userID string) (r features.Record, ok bool, err error)
	// Ready reports whether the store has caught up with its table.
	Ready() bool
}

// Defaults of Config.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultMaxBatch     = 1000
	DefaultK            = 20
	DefaultMaxK         = 100
)

// Config configures a Server. Events, Features, Scorer, Cache and at least
// one API key are required; zero values elsewhere take the defaults.
type Config struct {
	// Events receives the ingested events.
	Events EventSink
	// Features serves feature records, for inference and /v1/features.
	Features FeatureStore
	// Scorer scores feature records and provides the cold-start fallback.
	Scorer recommend.Scorer
	// Cache holds recommendations; a miss is answered by inference and
	// stored.
	Cache recommend.Cache
	// APIKeys maps each API key to the name of the client holding it. The
	// name, never the key, appears in logs and the audit trail; the server
	// keeps only the key's SHA-256. One key per client.
	APIKeys map[string]string
	// Clients maps client names to their key digests and network policy,
	// for keys stored hashed (see ApplyHTTP). A client may appear here and
	// in APIKeys only with the same key.
	Clients map[string]Client
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed (see clientAddr); from any other peer the header is ignored.
	TrustedProxies []netip.Prefix
	// RateLimit limits each client's requests (zero: no limit).
	RateLimit RateLimit
	// ClientIP says how ingest pseudonymises an event's clientIp before
	// the event reaches Events (default: HMAC with a random per-process
	// key, logged as a warning once).
	ClientIP ClientIPPolicy
	// MaxBodyBytes bounds the body of POST /v1/events (default 1 MiB);
	// larger bodies are answered 413.
	MaxBodyBytes int64
	// MaxBatch bounds the events of one request (default 1000); a larger
	// batch is answered 413.
	MaxBatch int
	// DefaultK is the number of items when the request has no k (default
	// 20); MaxK is the largest k accepted (default 100).
	DefaultK, MaxK int
	// Logger receives the access log and errors; nil discards them.
	Logger *slog.Logger
	// Registerer registers the API's metrics and Gatherer serves
	// /metrics. Either may be nil if the other is a *prometheus.Registry
	// (it is then used for both); both nil means a fresh registry.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Now is the clock judging event timestamps and stamping answers
	// (default time.Now).
	Now func() time.Time
	// Ready, if set, is checked by /readyz along with Features.Ready: the
	// runner reports there whether its tables are recovered and its model
	// is loaded.
	Ready func() bool
	// Audit, if set, receives the audit trail of every request: one
	// api_request event each, plus an access_denied event for a 401, 403 or 429
	// (see Server.auditRequest). Writes are synchronous; a failed write is
	// counted in aether_audit_write_errors_total and logged but does not
	// fail the request. nil means no audit trail.
	Audit audit.Sink
	// AuditSubjectKey is the HMAC-SHA256 key of the pseudonymous subject
	// references of audit events (the hex HMAC of the {userId} path
	// value): the raw user id never enters the trail. Empty means a random
	// per-process key, so references match only within one process's run.
	AuditSubjectKey []byte
	// PseudonymousUsers makes the stores see users by pseudonym only: an
	// ingested event's userId is replaced by the user's subject reference
	// (SubjectRef under AuditSubjectKey, which must then be set), and the
	// cache and feature store are read and written under it. Answers
	// carry the user id of the request. With sealed streams this is what
	// lets a deletion leave nothing in Kafka that names the user.
	PseudonymousUsers bool
}

// Server is the API's http.Handler. It is safe for concurrent use.
type Server struct {
	events   EventSink
	features FeatureStore
	scorer   recommend.Scorer
	cache    recommend.Cache
	keys     keyring
	proxies  []netip.Prefix
	limits   map[string]*rate.Limiter
	clientIP *ClientIPPseudonymizer
	maxBody  int64
	maxBatch int
	defK     int
	maxK     int
	log      *slog.Logger
	now      func() time.Time
	ready    func() bool
	audit    audit.Sink
	auditKey []byte
	// pseudonymous: stores are keyed by storeKey(userID), the subject
	// reference.
	pseudonymous bool
	metrics      *metrics
	handler      http.Handler
}

// New validates cfg and returns the server, its metrics registered on
// cfg.Registerer.
func New(cfg Config) (*Server, error) {
	var errs []error
	if cfg.Events == nil {
		errs = append(errs, errors.New("Events is required"))
	}
	if cfg.Features == nil {
		errs = append(errs, errors.New("Features is required"))
	}
	if cfg.Scorer == nil {
		errs = append(errs, errors.New("Scorer is required"))
	}
	if cfg.Cache == nil {
		errs = append(errs, errors.New("Cache is required"))
	}
	keys, err := newKeyring(cfg.APIKeys, cfg.Clients)
	if err != nil {
		errs = append(errs, err)
	}
	limits, err := newLimiters(cfg.RateLimit, keys.clients())
	if err != nil {
		errs = append(errs, err)
	}
	clientIP, err := NewClientIPPseudonymizer(cfg.ClientIP)
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.MaxBodyBytes < 0 || cfg.MaxBatch < 0 || cfg.DefaultK < 0 || cfg.MaxK < 0 {
		errs = append(errs, errors.New("MaxBodyBytes, MaxBatch, DefaultK and MaxK must not be negative"))
	}
	s := &Server{
		events:   cfg.Events,
		features: cfg.Features,
		scorer:   cfg.Scorer,
		cache:    cfg.Cache,
		keys:     keys,
		proxies:  normalizePrefixes(cfg.TrustedProxies),
		limits:   limits,
		clientIP: clientIP,
		maxBody:  cmp.Or(cfg.MaxBodyBytes, DefaultMaxBodyBytes),
		maxBatch: cmp.Or(cfg.MaxBatch, DefaultMaxBatch),
		defK:     cmp.Or(cfg.DefaultK, DefaultK),
		maxK:     cmp.Or(cfg.MaxK, DefaultMaxK),
		log:      cfg.Logger,
		now:      cfg.Now,
		ready:    cfg.Ready,
		audit:    cfg.Audit,
		auditKey: bytes.Clone(cfg.AuditSubjectKey),

		pseudonymous: cfg.PseudonymousUsers,
	}
	if s.pseudonymous && len(s.auditKey) == 0 {
		// A random key would give a user another pseudonym after every
		// restart, and every store would forget them.
		errs = append(errs, errors.New("PseudonymousUsers needs AuditSubjectKey, the key of the pseudonyms"))
	}
	if len(s.auditKey) == 0 {
		s.auditKey = newAuditKey()
	}
	if s.defK > s.maxK {
		errs = append(errs, fmt.Errorf("DefaultK %d is larger than MaxK %d", s.defK, s.maxK))
	}
	reg, gat, err := registries(cfg.Registerer, cfg.Gatherer)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("api: invalid config: %w", errors.Join(errs...))
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.metrics, err = newMetrics(reg, keys.clients()); err != nil {
		return nil, fmt.Errorf("api: metrics: %w", err)
	}
	if s.clientIP.RandomKey() {
		s.log.Warn("clientIp is pseudonymised with a random per-process key: pseudonyms change at every restart; set http.clientIp.keyEnv for stable ones")
	}
	s.handler = s.routes(gat)
	return s, nil
}

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Route patterns; they are also the route label of the metrics and logs
// (a pattern, never a path: paths carry user ids).
const (
	routeEvents          = "POST /v1/events"
	routeRecommendations = "GET /v1/recommendations/{userId}"
	routeFeatures        = "GET /v1/features/{userId}"
	routeMetrics         = "GET /metrics"
	routeHealthz         = "GET /healthz"
	routeReadyz          = "GET /readyz"
	routeUnmatched       = "unmatched"
)

func (s *Server) routes(gat prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, routed(pattern, h))
		// The same path with any other method: a JSON 405 rather than
		// the mux's plain-text one.
		method, path, _ := strings.Cut(pattern, " ")
		mux.Handle(path, routed(pattern, s.methodNotAllowed(method)))
	}
	handle(routeEvents, s.requireKey(s.postEvents))
	handle(routeRecommendations, s.requireKey(s.getRecommendations))
	handle(routeFeatures, s.requireKey(s.getFeatures))
	handle(routeMetrics, promhttp.HandlerFor(gat, promhttp.HandlerOpts{}).ServeHTTP)
	handle(routeHealthz, s.healthz)
	handle(routeReadyz, s.readyz)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.reject(w, r, http.StatusNotFound, reasonNotFound, "no such endpoint")
	})
	return chain(mux, s.instrument, s.recoverPanics)
}

func (s *Server) methodNotAllowed(allow string) http.HandlerFunc {
	if allow == http.MethodGet {
		allow = "GET, HEAD"
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		s.reject(w, r, http.StatusMethodNotAllowed, reasonMethodNotAllowed, "method "+r.Method+" not allowed; use "+allow)
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyStatus is the body of /readyz.
type readyStatus struct {
	Status   string   `json:"status"`
	NotReady []string `json:"notReady,omitempty"`
}

// readyz answers 200 once the feature store has caught up and cfg.Ready
// holds, else 503 naming the parts not ready ("featureStore", "pipeline").
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	var st readyStatus
	if !s.features.Ready() {
		st.NotReady = append(st.NotReady, "featureStore")
	}
	if s.ready != nil && !s.ready() {
		st.NotReady = append(st.NotReady, "pipeline")
	}
	if len(st.NotReady) > 0 {
		st.Status = "not ready"
		WriteJSON(w, http.StatusServiceUnavailable, st)
		return
	}
	st.Status = "ok"
	WriteJSON(w, http.StatusOK, st)
}

func registries(reg prometheus.Registerer, gat prometheus.Gatherer) (prometheus.Registerer, prometheus.Gatherer, error) {
	switch {
	case reg == nil && gat == nil:
		r := prometheus.NewRegistry()
		return r, r, nil
	case reg == nil:
		r, ok := gat.(prometheus.Registerer)
		if !ok {
			return nil, nil, errors.New("Registerer is required when Gatherer is not a registry")
		}
		return r, gat, nil
	case gat == nil:
		g, ok := reg.(prometheus.Gatherer)
		if !ok {
			return nil, nil, errors.New("Gatherer is required when Registerer is not a registry")
		}
		return reg, g, nil
	}
	return reg, gat, nil
}

// AuditErrors is the counter of failed audit writes
// (aether_audit_write_errors_total), for the admin API to count its own in.
func (s *Server) AuditErrors() prometheus.Counter { return s.metrics.auditErrors }
