package approval

import (
	"context"
	"log/slog"
)

// EventModelChange is the event attribute of every Change log line.
const EventModelChange = "model_change"

// Actions of a Change.
const (
	// ActionApprove is an approval (Approve).
	ActionApprove = "approve"
	// ActionLoad is a model about to be loaded for serving (Gate.Admit,
	// and the runner once the model is loaded).
	ActionLoad = "load"
)

// Outcomes of a Change.
const (
	OutcomeApproved        = "approved"         // added to the manifest
	OutcomeAlreadyApproved = "already_approved" // in the manifest under the same ticket: nothing changed
	OutcomeAdmitted        = "admitted"         // in the manifest: may be loaded
	OutcomeLoaded          = "loaded"           // loaded and serving
	OutcomeRefused         = "refused"          // refused; Reason says why
)

// Change is one model lifecycle event: an approval, a refusal, an
// admission or a load. Log writes it as a structured log line with
// event=model_change, which the runner's logger also writes to the audit
// trail (audit.LogHandler).
type Change struct {
	Action, Outcome string
	// SHA256 and Version identify the model.
	SHA256, Version string
	// By and Ticket are the approval's (empty when there is none).
	By, Ticket string
	// Manifest is the approved-models manifest's path, if one is involved.
	Manifest string
	// Source is where the model came from (a directory or a store URI),
	// if known.
	Source string
	// Reason explains a refusal.
	Reason string
}

// Log writes c as one line at Info, or Warn for a refusal, with the
// attributes event=model_change, action, outcome, sha256, version, by,
// ticket, and manifest, source and reason when set. A nil log discards it.
func (c Change) Log(log *slog.Logger) {
	if log == nil {
		return
	}
	level := slog.LevelInfo
	if c.Outcome == OutcomeRefused {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("event", EventModelChange),
		slog.String("action", c.Action),
		slog.String("outcome", c.Outcome),
		slog.String("sha256", c.SHA256),
		slog.String("version", c.Version),
		slog.String("by", c.By),
		slog.String("ticket", c.Ticket),
	}
	for _, a := range []slog.Attr{slog.String("manifest", c.Manifest), slog.String("source", c.Source), slog.String("reason", c.Reason)} {
		if a.Value.String() != "" {
			attrs = append(attrs, a)
		}
	}
	log.LogAttrs(context.Background(), level, "model "+c.Action+": "+c.Outcome, attrs...)
}
