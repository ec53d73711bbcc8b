package audit_test

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/model/approval"
)

func TestLogHandlerAuditsEventLines(t *testing.T) {
	var out bytes.Buffer
	sink := audit.NewMemory()
	var errs []error
	log := slog.New(audit.LogHandler(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}),
		sink, "runner", func(err error) { errs = append(errs, err) }))

	sha := "ab" + string(bytes.Repeat([]byte("0"), 62))
	approval.Change{Action: approval.ActionLoad, Outcome: approval.OutcomeRefused, SHA256: sha, Version: "v7",
		Manifest: "approved.json", Reason: "not approved"}.Log(log)
	approval.Change{Action: approval.ActionApprove, Outcome: "approved", SHA256: sha, Version: "v7",
		By: "alice", Ticket: "CHG-1"}.Log(log)
	log.With("processor", "sessionizer").Info("partition assigned",
		"event", "job_event", "action", "assign", slog.Group("part", "partition", 3))
	log.Info("plain line, not audited", "action", "x")
	log.Info("secret line", "event", "admin_action", "action", "login", "password", "hunter2")

	evs := sink.Events()
	require.Len(t, evs, 3)
	require.Equal(t, audit.KindModelChange, evs[0].Kind)
	require.Equal(t, "runner", evs[0].Actor)
	require.Equal(t, "load", evs[0].Action)
	require.Equal(t, "refused", evs[0].Outcome)
	require.Equal(t, "model/"+sha, evs[0].Resource)
	require.Equal(t, map[string]string{"sha256": sha, "version": "v7", "manifest": "approved.json", "reason": "not approved"}, evs[0].Attributes)

	require.Equal(t, "alice", evs[1].Actor, "an approval's actor is its approver")
	require.Equal(t, "approve", evs[1].Action)
	require.Equal(t, "CHG-1", evs[1].Attributes["ticket"])

	require.Equal(t, audit.KindJobEvent, evs[2].Kind)
	require.Equal(t, map[string]string{"processor": "sessionizer", "part.partition": "3"}, evs[2].Attributes)
	require.Equal(t, "ok", evs[2].Outcome)

	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], audit.ErrInvalidEvent)
	require.NotContains(t, errs[0].Error(), "hunter2")

	// The log itself is unchanged: only the Warn line passes the level.
	require.Equal(t, 1, bytes.Count(out.Bytes(), []byte("\n")))
	require.Contains(t, out.String(), `"outcome":"refused"`)
}
