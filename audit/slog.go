package audit

import (
	"context"
	"log/slog"
	"strings"
)

// LogAttrEvent is the log attribute that turns a log line into an audit
// event: a line whose "event" attribute names a Kind (model_change,
// job_event, admin_action, ...) is written to the trail as well.
const LogAttrEvent = "event"

// LogHandler returns a slog.Handler that passes every record to next and
// also writes each record whose "event" attribute names a Kind to sink as
// one audit Event. The model lifecycle (approval, admission, load,
// refusal, swap, rollout) already reports itself as structured log lines;
// this is the one place they become audit records, so no path can log a
// change without auditing it.
//
// The mapping: Kind from "event"; Action from "action" (else the message);
// Outcome from "outcome" (else "ok"); Actor from "actor", else "by" for an
// approval, else defaultActor; Resource from "resource", else
// "model/<sha256>" when "sha256" is set; CorrelationID from
// "correlation_id"; every other attribute (groups flattened as
// "group.key") goes into Attributes. An event the audit package refuses (a
// secret-looking attribute, say) or a failed write is passed to onError,
// never to the log line it came from, which is still logged.
func LogHandler(next slog.Handler, sink Sink, defaultActor string, onError func(error)) slog.Handler {
	if onError == nil {
		onError = func(error) {}
	}
	return &logHandler{next: next, sink: sink, actor: defaultActor, onError: onError}
}

type logHandler struct {
	next    slog.Handler
	sink    Sink
	actor   string
	onError func(error)
	attrs   []slog.Attr // from WithAttrs, keys already group-qualified
	group   string      // "a.b." prefix from WithGroup
}

func (h *logHandler) Enabled(ctx context.Context, l slog.Level) bool {
	// Audit lines are written whatever the log level.
	return true
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	fields := make(map[string]string, len(h.attrs)+r.NumAttrs())
	for _, a := range h.attrs {
		flatten(fields, "", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		flatten(fields, h.group, a)
		return true
	})
	if k := Kind(fields[LogAttrEvent]); k.Valid() {
		if err := h.write(ctx, k, r, fields); err != nil {
			h.onError(err)
		}
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *logHandler) write(ctx context.Context, k Kind, r slog.Record, fields map[string]string) error {
	take := func(key string) string {
		v := fields[key]
		delete(fields, key)
		return v
	}
	delete(fields, LogAttrEvent)
	e := Event{Time: r.Time, Kind: k, Action: take("action"), Outcome: take("outcome"),
		Actor: take("actor"), Resource: take("resource"), CorrelationID: take("correlation_id")}
	if e.Action == "" {
		e.Action = r.Message
	}
	if e.Outcome == "" {
		e.Outcome = OutcomeOK
	}
	if e.Actor == "" && e.Action == "approve" {
		e.Actor = fields["by"]
	}
	if e.Actor == "" {
		e.Actor = h.actor
	}
	if sha := fields["sha256"]; e.Resource == "" && sha != "" {
		e.Resource = "model/" + sha
	}
	for k, v := range fields {
		if v == "" {
			delete(fields, k)
		}
	}
	e.Attributes = fields
	e, err := New(e)
	if err != nil {
		return err
	}
	return h.sink.Write(ctx, e)
}

// flatten adds a to fields under prefix, resolving groups and LogValuers.
func flatten(fields map[string]string, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			flatten(fields, p, g)
		}
		return
	}
	if a.Key == "" {
		return
	}
	fields[prefix+a.Key] = v.String()
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range attrs {
		if h.group != "" {
			a = slog.Attr{Key: strings.TrimSuffix(h.group, "."), Value: slog.GroupValue(a)}
		}
		c.attrs = append(c.attrs, a)
	}
	return &c
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.group = h.group + name + "."
	return &c
}
