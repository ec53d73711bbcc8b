package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aetherai/aether/audit"
	"github.com/prometheus/client_golang/prometheus"
)

// AdminPrefix starts the path of every admin route.
const AdminPrefix = "/admin/v1/"

// AdminActor is the audit actor of a request bearing the admin token.
const AdminActor = "admin"

// AdminConfig configures an AdminServer.
type AdminConfig struct {
	// TokenSHA256 is the SHA-256 of the admin bearer token (required): the
	// server keeps no token.
	TokenSHA256 [sha256.Size]byte
	// Audit receives one admin_action event per request, plus an
	// access_denied event per denial; nil means no trail.
	Audit audit.Sink
	// AuditSubjectKey keys the pseudonymous references of {userId} path
	// values and client addresses, as Config.AuditSubjectKey (share it
	// with the API's, so that references match across both trails).
	AuditSubjectKey []byte
	// AuditErrors, if set, counts failed audit writes (Server.AuditErrors:
	// the API's aether_audit_write_errors_total, which alerts watch).
	AuditErrors prometheus.Counter
	// Logger receives the access log and errors; nil discards them.
	Logger *slog.Logger
	// Now stamps audit events (default time.Now).
	Now func() time.Time
}

// AdminServer is the admin API, served on a listener of its own (see
// ListenAdmin) so that it can be bound to loopback while the API faces
// clients. Every route needs `Authorization: Bearer TOKEN` with the admin
// token, unknown routes included (an unauthenticated caller learns
// nothing of the routes). It serves GET /admin/v1/health; the runner adds
// its routes with Handle. It is safe for concurrent use.
type AdminServer struct {
	token    [sha256.Size]byte
	compare  func(x, y []byte) int
	audit    audit.Sink
	auditKey []byte
	auditErr prometheus.Counter // nil: not counted
	log      *slog.Logger
	now      func() time.Time
	mux      *http.ServeMux
	handler  http.Handler

	mu      sync.Mutex
	methods map[string][]string // path -> methods registered
}

// Route patterns of the admin API.
const (
	routeAdminHealth = "GET /admin/v1/health"
)

// Reasons an admin request is refused.
const (
	reasonMissingToken = "missing_admin_token"
	reasonInvalidToken = "invalid_admin_token"
)

// NewAdmin validates cfg and returns the admin server with its health
// route.
func NewAdmin(cfg AdminConfig) (*AdminServer, error) {
	if cfg.TokenSHA256 == ([sha256.Size]byte{}) {
		return nil, errors.New("api: admin: TokenSHA256 is required: the admin API never runs without a token")
	}
	a := &AdminServer{
		token:    cfg.TokenSHA256,
		compare:  subtle.ConstantTimeCompare,
		audit:    cfg.Audit,
		auditKey: bytes.Clone(cfg.AuditSubjectKey),
		auditErr: cfg.AuditErrors,
		log:      cfg.Logger,
		now:      cfg.Now,
		mux:      http.NewServeMux(),
		methods:  map[string][]string{},
	}
	if len(a.auditKey) == 0 {
		a.auditKey = newAuditKey()
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		adminReject(w, r, http.StatusNotFound, reasonNotFound, "no such admin endpoint")
	}))
	if err := a.Handle(routeAdminHealth, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})); err != nil {
		return nil, err
	}
	a.handler = a.instrument(a.recoverPanics(a.requireToken(a.mux)))
	return a, nil
}

// Handle adds an admin route. pattern is "METHOD /admin/v1/...", with
// http.ServeMux wildcards ("POST /admin/v1/users/{userId}/forget"); a
// {userId} value enters the audit trail only as its pseudonymous
// reference. h runs only for requests bearing the admin token, and its
// request is audited as admin_action with the pattern as resource; h may
// add attributes to that event with AdminAuditAttr. Routes may be added
// while the server runs.
func (a *AdminServer) Handle(pattern string, h http.Handler) error {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok || method == "" || strings.ContainsAny(method, "/ ") {
		return fmt.Errorf("api: admin route %q: want \"METHOD %s...\"", pattern, AdminPrefix)
	}
	if !strings.HasPrefix(path, AdminPrefix) {
		return fmt.Errorf("api: admin route %q: the path must start with %s", pattern, AdminPrefix)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if slices.Contains(a.methods[path], method) {
		return fmt.Errorf("api: admin route %q is already registered", pattern)
	}
	err := func() (err error) {
		defer func() {
			if v := recover(); v != nil { // ServeMux panics on a conflicting pattern
				err = fmt.Errorf("api: admin route %q: %v", pattern, v)
			}
		}()
		a.mux.Handle(pattern, adminRouted(pattern, h))
		if len(a.methods[path]) == 0 {
			// The path with any other method: a JSON 405 rather than the
			// mux's plain-text one.
			a.mux.Handle(path, adminRouted(pattern, a.methodNotAllowed(path)))
		}
		return nil
	}()
	if err != nil {
		return err
	}
	a.methods[path] = append(a.methods[path], method)
	return nil
}

// ServeHTTP serves one admin request.
func (a *AdminServer) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

func (a *AdminServer) methodNotAllowed(path string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		allow := slices.Clone(a.methods[path])
		a.mu.Unlock()
		if slices.Contains(allow, http.MethodGet) && !slices.Contains(allow, http.MethodHead) {
			allow = append(allow, http.MethodHead)
		}
		list := strings.Join(allow, ", ")
		w.Header().Set("Allow", list)
		adminReject(w, r, http.StatusMethodNotAllowed, reasonMethodNotAllowed, "method "+r.Method+" not allowed; use "+list)
	}
}

// adminInfo is what the admin middleware learns about a request.
type adminInfo struct {
	requestInfo
	admin bool // the request bore the admin token
	attrs map[string]string
}

type adminInfoKey struct{}

func adminInfoFrom(ctx context.Context) *adminInfo {
	if ai, ok := ctx.Value(adminInfoKey{}).(*adminInfo); ok {
		return ai
	}
	return &adminInfo{}
}

// AdminAuditAttr adds an attribute to the admin_action audit event of the
// admin request r (a receipt's counts, say). Values must not be personal
// data or secrets; audit.New refuses secret-looking keys, and the event is
// then not written.
func AdminAuditAttr(r *http.Request, key, value string) {
	ai := adminInfoFrom(r.Context())
	if ai.attrs == nil {
		ai.attrs = map[string]string{}
	}
	ai.attrs[key] = value
}

func adminRouted(pattern string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ai := adminInfoFrom(r.Context())
		ai.route = pattern
		ai.userID = r.PathValue("userId")
		h.ServeHTTP(w, r)
	})
}

// adminReject answers an admin error as JSON and records the reason.
func adminReject(w http.ResponseWriter, r *http.Request, status int, reason, msg string) {
	adminInfoFrom(r.Context()).reason = reason
	WriteJSON(w, status, errorBody{Error: msg})
}

// requireToken admits requests bearing the admin token; the presented
// token's SHA-256 is compared with the configured digest in constant time.
func (a *AdminServer) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := a.mux.Handler(r); strings.Contains(pattern, " ") {
			// The route, for the denial's audit event; the answer does not
			// tell whether it exists.
			adminInfoFrom(r.Context()).route = pattern
		}
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		tok = strings.TrimSpace(tok)
		if !strings.EqualFold(scheme, "Bearer") || tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="aether-admin"`)
			adminReject(w, r, http.StatusUnauthorized, reasonMissingToken, "admin token required: send the header Authorization: Bearer <admin token>")
			return
		}
		d := sha256.Sum256([]byte(tok))
		if a.compare(d[:], a.token[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="aether-admin", error="invalid_token"`)
			adminReject(w, r, http.StatusUnauthorized, reasonInvalidToken, "invalid admin token")
			return
		}
		adminInfoFrom(r.Context()).admin = true
		next.ServeHTTP(w, r)
	})
}

// instrument assigns the request id, then writes the access log line and
// the audit trail once the request is answered.
func (a *AdminServer) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ai := &adminInfo{requestInfo: requestInfo{id: requestID(r.Header.Get(RequestIDHeader)), ip: parseHostAddr(r.RemoteAddr)}}
		w.Header().Set(RequestIDHeader, ai.id)
		rec := &recorder{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), adminInfoKey{}, ai))
		defer func() {
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			if ai.route == "" {
				ai.route = routeUnmatched
			}
			a.auditRequest(r, ai, status)
			logRequest(a.log, "admin request", r, &ai.requestInfo, ai.route, status, time.Since(start))
		}()
		next.ServeHTTP(rec, r)
	})
}

// recoverPanics answers a panicking admin handler with a 500.
func (a *AdminServer) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			panicked(recover(), a.log, "admin handler panic", w, r, &adminInfoFrom(r.Context()).requestInfo,
				func() {}, func() { adminReject(w, r, http.StatusInternalServerError, reasonPanic, "internal error") })
		}()
		next.ServeHTTP(w, r)
	})
}

// auditRequest writes one audit.KindAdminAction event for every admin
// request (actor "admin" with the token, else "anonymous"; resource the
// route pattern; outcome the status) and, for a 401, 403 or 429, an
// audit.KindAccessDenied event with the reason and the caller address's
// pseudonymous reference.
func (a *AdminServer) auditRequest(r *http.Request, ai *adminInfo, status int) {
	actor := auditActorAnonymous
	if ai.admin {
		actor = AdminActor
	}
	// The handler's attributes describe the action, not the denial.
	rec := requestRecord{kind: audit.KindAdminAction, actor: actor, route: ai.route, status: status, info: &ai.requestInfo, attrs: ai.attrs}
	trail := auditTrail{sink: a.audit, key: a.auditKey, errors: a.auditErr, log: a.log, now: a.now, failMsg: "admin audit write failed"}
	trail.write(r, rec)
}
