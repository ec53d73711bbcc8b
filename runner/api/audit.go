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
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
		return // spares every request the record it would not write
	}
	actor := ri.client
	if actor == "" {
		actor = auditActorAnonymous
	}
	attrs := map[string]string{}
	if ri.client != "" {
		attrs["client"] = ri.client
	}
	if a := ri.answer; a != nil {
		// Which model made the answer, and how.
		attrs["source"] = string(a.source)
		attrs["modelVersion"] = a.model.Version
		attrs["modelSha256"] = a.model.SHA256
	}
	rec := requestRecord{kind: audit.KindAPIRequest, actor: actor, route: route, status: status, info: ri, attrs: attrs, deniedAttrs: attrs}
	if a := ri.answer; a != nil && a.source == recommend.FromInference {
		// A fresh inference gets a record of its own.
		rec.derived = func(base audit.Event) audit.Event {
			inf := base
			inf.Kind, inf.Action, inf.Outcome = audit.KindInference, "score", "ok"
			inf.Resource = "model/" + a.model.SHA256
			inf.Attributes = map[string]string{"modelVersion": a.model.Version, "route": route}
			return inf
		}
	}
	trail := auditTrail{sink: s.audit, key: s.auditKey, errors: s.metrics.auditErrors, log: s.log, now: s.now, failMsg: "audit write failed"}
	trail.write(r, rec)
}

// auditTrail is where the API or the admin API writes the records of its
// requests, and how it reports a failed write. Both write the same
// records, so that one trail reads alike whichever listener served.
type auditTrail struct {
	sink    audit.Sink         // nil: no trail
	key     []byte             // keys the subject and client address references
	errors  prometheus.Counter // counts failed writes; nil: not counted
	log     *slog.Logger
	now     func() time.Time
	failMsg string // the log message of a failed write
}

// requestRecord is one answered request, as auditTrail.write records it.
type requestRecord struct {
	kind   audit.Kind // of the request's own record
	actor  string
	route  string // the route pattern, never the path
	status int
	info   *requestInfo // id, reason, {userId} and client address
	// attrs and deniedAttrs are added to the status and reason attributes
	// of the request's record and of the access_denied record.
	attrs, deniedAttrs map[string]string
	// derived, if set, makes one more record from the common fields of the
	// request's, written after it.
	derived func(base audit.Event) audit.Event
}

// write writes rec's records in one call: the request's, the derived one,
// and for a denial (401, 403, 429) the access_denied record with the
// reason and the client address's reference. If one of them is invalid,
// none is written. A failure does not fail the request: it is counted and
// logged.
func (t auditTrail) write(r *http.Request, rec requestRecord) {
	if t.sink == nil {
		return
	}
	ri := rec.info
	code := strconv.Itoa(rec.status)
	var subject string
	if ri.userID != "" {
		subject = hmacHex(t.key, ri.userID)
	}
	base := audit.Event{
		Time:          t.now(),
		Actor:         rec.actor,
		Resource:      rec.route,
		Action:        r.Method,
		Subject:       subject,
		CorrelationID: ri.id,
	}
	req := base
	req.Kind, req.Outcome, req.Attributes = rec.kind, code, statusAttrs(code, ri.reason, rec.attrs)
	records := []audit.Event{req}
	if rec.derived != nil {
		records = append(records, rec.derived(base))
	}
	if isDenial(rec.status) {
		records = append(records, accessDenied(base, code, ri.reason, statusAttrs(code, ri.reason, rec.deniedAttrs), ri.ip, t.key))
	}
	events := make([]audit.Event, 0, len(records))
	var err error
	for _, ev := range records {
		if ev, err = audit.New(ev); err != nil {
			break
		}
		events = append(events, ev)
	}
	if err == nil {
		// The client may be gone; the trail must be written all the same.
		err = t.sink.Write(context.WithoutCancel(r.Context()), events...)
	}
	if err != nil {
		if t.errors != nil {
			t.errors.Inc()
		}
		t.log.LogAttrs(r.Context(), slog.LevelError, t.failMsg,
			slog.String("request_id", ri.id), slog.String("route", rec.route), slog.Any("error", err))
	}
}

// statusAttrs are a request record's attributes: the status, the reason
// if any, then more (which may override them).
func statusAttrs(code, reason string, more map[string]string) map[string]string {
	attrs := map[string]string{"status": code}
	if reason != "" {
		attrs["reason"] = reason
	}
	maps.Copy(attrs, more)
	return attrs
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
// (which it takes over) with the client's address as a keyed hash (never
// raw).
func accessDenied(base audit.Event, code, reason string, attrs map[string]string, ip netip.Addr, key []byte) audit.Event {
	ev := base
	ev.Kind, ev.Outcome, ev.Attributes = audit.KindAccessDenied, code, attrs
	if reason != "" {
		ev.Outcome += " " + reason
	}
	if ip.IsValid() {
		ev.Attributes[attrClientIPRef] = hmacHex(key, ip.String())
	}
	return ev
}
