package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/recommend"
)

// auditActorAnonymous is the actor of a request without a valid API key.
const auditActorAnonymous = "anonymous"

// auditRequest writes the request's audit trail: one audit.KindAPIRequest
// event for every request and, for a denial (401, 403, 429), an
// audit.KindAccessDenied event with the reason and the client address's
// pseudonymous reference (attribute clientIpRef, see Server.subjectRef).
// The resource is the route pattern, never the path (it holds a user id);
// the subject is the pseudonymous reference of the {userId} path value, so
// that neither the raw user id nor a raw address enters the trail. A
// failed write does not fail the request: it is counted in
// aether_audit_write_errors_total and logged.
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
	if a := ri.answer; a != nil {
		// Which model made the answer, and how.
		attrs["source"] = string(a.source)
		attrs["modelVersion"] = a.model.Version
		attrs["modelSha256"] = a.model.SHA256
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
	if a := ri.answer; err == nil && a != nil {
		// A fresh inference gets a record of its own.
		if a.source == recommend.FromInference {
			inf := base
			inf.Kind, inf.Action, inf.Outcome = audit.KindInference, "score", "ok"
			inf.Resource = "model/" + a.model.SHA256
			inf.Attributes = map[string]string{"modelVersion": a.model.Version, "route": route}
			if e, err = audit.New(inf); err == nil {
				events = append(events, e)
			}
		}
	}
	if err == nil && isDenial(status) {
		if e, err = audit.New(accessDenied(base, code, ri.reason, attrs, ri.ip, s.auditKey)); err == nil {
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

// attrClientIPRef is the access_denied attribute holding the pseudonymous
// reference of the client's address.
const attrClientIPRef = "clientIpRef"

// isDenial reports whether a status refuses access: a missing or bad
// credential, a forbidden address or an exhausted rate limit.
func isDenial(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusTooManyRequests
}

// subjectRef is the pseudonymous reference of a user id: the hex of its
// HMAC-SHA256 under the server's audit key (Config.AuditSubjectKey, else a
// random per-process key). The same user gets the same reference in one
// trail; without the key a reference cannot be tied back to the user id.
func (s *Server) subjectRef(userID string) string { return hmacHex(s.auditKey, userID) }

// storeKey is the user's key in the event, feature and cache stores: the
// subject reference with Config.PseudonymousUsers, else the id itself.
func (s *Server) storeKey(userID string) string {
	if s.pseudonymous {
		return s.subjectRef(userID)
	}
	return userID
}

// hmacHex is the hex HMAC-SHA256 of v under key.
func hmacHex(key []byte, v string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil))
}

// newAuditKey returns a random HMAC key for subject references.
func newAuditKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

// accessDenied is the access_denied event of a 401, 403 or 429 answered to
// the request base describes: the status and reason as outcome, attrs
// with the client's address as a keyed hash (never raw).
func accessDenied(base audit.Event, code, reason string, attrs map[string]string, ip netip.Addr, key []byte) audit.Event {
	ev := base
	ev.Kind, ev.Outcome, ev.Attributes = audit.KindAccessDenied, code, maps.Clone(attrs)
	if reason != "" {
		ev.Outcome += " " + reason
	}
	if ip.IsValid() {
		ev.Attributes[attrClientIPRef] = hmacHex(key, ip.String())
	}
	return ev
}
