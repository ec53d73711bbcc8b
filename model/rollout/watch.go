package rollout

import (
	"context"
	"log/slog"
	"time"

	"github.com/aetherai/aether/model"
	"github.com/aetherai/aether/recommend"
)

// Watch polls for a newer model every interval until ctx ends, and
// returns ctx's error. At each poll:
//
//  1. fetchLatest returns the latest published model's local directory and
//     its metadata (meta.SHA256 being model.onnx's checked SHA-256). An
//     error is logged and the poll skipped.
//  2. A model that is already current (same SHA-256) is left alone.
//  3. admit decides whether it may be served (the approval gate, which
//     logs and counts its own refusals: Watch does not count them again).
//     A refused model is logged (once per SHA-256 in a row, then at Debug)
//     and the current one keeps serving; it is checked again at the next
//     poll, since it may have been approved meanwhile.
//  4. load loads it; a load error is logged and the current one keeps
//     serving.
//  5. sw.Swap makes it current.
//
// A nil log discards the log lines.
func Watch(ctx context.Context, interval time.Duration,
	fetchLatest func(ctx context.Context) (dir string, meta model.Metadata, err error),
	admit func(meta model.Metadata) error,
	load func(dir string) (recommend.Scorer, error),
	sw *Switch, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var w watcher
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			w.poll(ctx, fetchLatest, admit, load, sw, log)
		}
	}
}

// watcher remembers the last refusal, so that a refused model is logged
// at Warn once, not at every poll.
type watcher struct{ refused string }

// poll is one round of Watch; it returns what happened: "unchanged",
// "fetch_failed", "refused", "load_failed" or "swapped".
func (w *watcher) poll(ctx context.Context,
	fetchLatest func(ctx context.Context) (string, model.Metadata, error),
	admit func(model.Metadata) error,
	load func(string) (recommend.Scorer, error),
	sw *Switch, log *slog.Logger) string {
	dir, meta, err := fetchLatest(ctx)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("model poll: cannot fetch the latest model; the current one keeps serving",
				"event", EventModelChange, "action", "poll", "outcome", "fetch_failed", "error", err.Error())
		}
		return "fetch_failed"
	}
	cur := sw.Model()
	if meta.SHA256 == cur.SHA256 {
		return "unchanged"
	}
	if admit != nil {
		if err := admit(meta); err != nil {
			level := slog.LevelWarn
			if w.refused == meta.SHA256 {
				level = slog.LevelDebug
			}
			w.refused = meta.SHA256
			log.Log(ctx, level, "model poll: new model refused; the current one keeps serving",
				"event", EventModelChange, "action", "swap", "outcome", "refused",
				"version", meta.Version, "sha256", meta.SHA256,
				"current_version", cur.Version, "current_sha256", cur.SHA256, "reason", err.Error())
			return "refused"
		}
	}
	w.refused = ""
	next, err := load(dir)
	if err != nil {
		log.Error("model poll: loading the new model failed; the current one keeps serving",
			"event", EventModelChange, "action", "swap", "outcome", "load_failed",
			"version", meta.Version, "sha256", meta.SHA256, "error", err.Error())
		return "load_failed"
	}
	sw.Swap(next)
	return "swapped"
}
