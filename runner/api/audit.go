package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/aetherai/aether/audit"
)

// auditActorAnonymous is the actor of a request without a valid API key.
const auditActorAnonymous = "anonymous"

// auditRequest writes the request's audit trail: one audit.KindAPIRequest
// event for every request and, for a 401 or 403, an audit.KindAccessDenied
// event with the reason. The resource is the route pattern, never the path
// (it holds a user id); the subject is the pseudonymous reference of the
// {userId} path value (see Server.subjectRef), so that the raw user id never
// enters the trail. A failed write does not fail the request: it is counted
// in aether_audit_write_errors_total and logged.
func (s *Server) auditRequest(r *http.Request, ri *requestInfo, route string, status int) {
	if s.audit == nil {
		return
	}
	actor := ri.client
	if actor == "" {
		actor = auditActorAnonymous
	}
	code := strconv.Itoa(status)
	attrs := map[string]string{"status": code}
	if ri.client != "" {
		attrs["client"] = ri.client
	}
	if ri.reason != "" {
		attrs["reason"] = ri.reason
	}
	var subject string
	if ri.userID != "" {
		subject = s.subjectRef(ri.userID)
	}
	base := audit.Event{
		Time:          s.now(),
		Actor:         actor,
		Resource:      route,
		Action:        r.Method,
		Subject:       subject,
		CorrelationID: ri.id,
	}
	req := base
	req.Kind, req.Outcome, req.Attributes = audit.KindAPIRequest, code, attrs
	events := make([]audit.Event, 0, 2)
	e, err := audit.New(req)
	if err == nil {
		events = append(events, e)
	}
	if err == nil && (status == http.StatusUnauthorized || status == http.StatusForbidden) {
		denied := base
		outcome := code
		if ri.reason != "" {
			outcome += " " + ri.reason
		}
		denied.Kind, denied.Outcome, denied.Attributes = audit.KindAccessDenied, outcome, attrs
		if e, err = audit.New(denied); err == nil {
			events = append(events, e)
		}
	}
	if err == nil {
		// The client may be gone; the trail must be written all the same.
		err = s.audit.Write(context.WithoutCancel(r.Context()), events...)
	}
	if err != nil {
		s.metrics.auditErrors.Inc()
		s.log.LogAttrs(r.Context(), slog.LevelError, "audit write failed",
			slog.String("request_id", ri.id), slog.String("route", route), slog.Any("error", err))
	}
}

// subjectRef is the pseudonymous reference of a user id: the hex of its
// HMAC-SHA256 under the server's audit key (Config.AuditSubjectKey, else a
// random per-process key). The same user gets the same reference in one
// trail; without the key a reference cannot be tied back to the user id.
func (s *Server) subjectRef(userID string) string {
	m := hmac.New(sha256.New, s.auditKey)
	m.Write([]byte(userID))
	return hex.EncodeToString(m.Sum(nil))
}

// newAuditKey returns a random HMAC key for subject references.
func newAuditKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}
