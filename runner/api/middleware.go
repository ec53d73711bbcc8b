package api

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/aetherai/aether/recommend"
)

// middleware wraps a handler with one cross-cutting concern.
type middleware func(http.Handler) http.Handler

// chain wraps h in mws, the first outermost.
func chain(h http.Handler, mws ...middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// requestInfo is what the middleware and handlers learn about a request
// for its access log line; instrument puts it in the request's context.
type requestInfo struct {
	id     string
	route  string // the matched pattern
	client string // the API key's client, once authenticated
	reason string // why the request was rejected, if it was
	userID string // the {userId} path value, for the audit subject only
	// ip is the client's address (see clientAddr), for the allowlist and,
	// pseudonymised, the audit trail; the zero Addr when unknown.
	ip netip.Addr
	// answer is set when a recommendation was served.
	answer *answerInfo
}

// answerInfo is what the trail records of a recommendation served: where
// it came from and which model made it.
type answerInfo struct {
	source recommend.Source
	model  recommend.Model
}

type infoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

// RequestIDHeader carries the request id, taken from the request if it
// is a plausible id and generated otherwise, and echoed in the response.
const RequestIDHeader = "X-Request-Id"

// instrument is the outermost middleware: it assigns the request id,
// then, once the request is answered, writes the access log line
// (method, route pattern, status, duration, client; never the path, which
// holds a user id, nor the key or the body) and the request metrics.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &requestInfo{id: requestID(r.Header.Get(RequestIDHeader)), ip: clientAddr(r, s.proxies)}
		w.Header().Set(RequestIDHeader, ri.id)
		rec := &recorder{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, ri))
		defer func() {
			d := time.Since(start)
			route := ri.route
			if route == "" {
				route = routeUnmatched
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			s.metrics.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
			s.metrics.duration.WithLabelValues(route).Observe(d.Seconds())
			s.auditRequest(r, ri, route, status)
			logRequest(s.log, "http request", r, ri, route, status, d)
		}()
		next.ServeHTTP(rec, r)
	})
}

// logRequest writes the access log line of an answered request (method,
// route pattern, status, duration, client, reason; never the path, which
// holds a user id, nor the key or the body), for both APIs.
func logRequest(log *slog.Logger, msg string, r *http.Request, ri *requestInfo, route string, status int, d time.Duration) {
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	if !log.Enabled(r.Context(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", ri.id),
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Duration("duration", d),
	}
	if ri.client != "" {
		attrs = append(attrs, slog.String("client", ri.client))
	}
	if ri.reason != "" {
		attrs = append(attrs, slog.String("reason", ri.reason))
	}
	log.LogAttrs(r.Context(), level, msg, attrs...)
}

// panicked is the deferred half of both APIs' recoverPanics: v is what
// recover returned. It logs the panic with its stack and answers 500
// (reject), or, when the handler had started its response, marks the
// request (aborted) and aborts the response.
func panicked(v any, log *slog.Logger, msg string, w http.ResponseWriter, r *http.Request, ri *requestInfo,
	aborted func(), reject func()) {
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	log.LogAttrs(r.Context(), slog.LevelError, msg,
		slog.String("request_id", ri.id), slog.String("route", ri.route),
		slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
	if rec, ok := w.(*recorder); ok && rec.status != 0 {
		ri.reason = reasonPanic
		aborted()
		panic(http.ErrAbortHandler)
	}
	reject()
}

// recoverPanics answers a panicking handler with a 500 and logs the panic
// with its stack; the process and the other requests carry on. If the
// handler had already started its response, the response is aborted.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			panicked(recover(), s.log, "http handler panic", w, r, infoFrom(r.Context()),
				func() { s.metrics.rejected[reasonPanic].Inc() },
				func() { s.reject(w, r, http.StatusInternalServerError, reasonPanic, "internal error") })
		}()
		next.ServeHTTP(w, r)
	})
}

// routed records the route pattern for the log and metrics.
func routed(pattern string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := infoFrom(r.Context())
		ri.route = pattern
		ri.userID = r.PathValue("userId")
		h(w, r)
	})
}

// requestID returns the client's id if it is 1 to 128 characters of
// [A-Za-z0-9._:/+=-] (anything else could forge log lines), else a fresh
// random one.
func requestID(given string) string {
	if len(given) == 0 || len(given) > 128 {
		return rand.Text()
	}
	for i := 0; i < len(given); i++ {
		c := given[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '_' || c == ':' || c == '/' || c == '+' || c == '=' || c == '-':
		default:
			return rand.Text()
		}
	}
	return given
}

// recorder remembers the status written.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
