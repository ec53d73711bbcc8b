package audit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/audit/audittest"
)

// TestFileSinkRedactWhileOpen redacts through the sink that holds the
// trail: the package-level Redact is refused (ErrInUse), the sink's works,
// the sink goes on appending to the rewritten file, and the whole trail
// verifies.
func TestFileSinkRedactWhileOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := audit.OpenFile(path)
	require.NoError(t, err)
	ctx := context.Background()
	var first []audit.Event
	for i := range 50 {
		first = append(first, audittest.Event(t, i))
	}
	require.NoError(t, s.Write(ctx, first...))
	subject := first[3].Subject
	require.NotEmpty(t, subject)
	match := func(e audit.Event) bool { return e.Subject == subject }
	want := 0
	for _, e := range first {
		if match(e) {
			want++
		}
	}

	_, err = audit.Redact(path, match)
	require.ErrorIs(t, err, audit.ErrInUse)

	n, err := s.Redact(match)
	require.NoError(t, err)
	require.Equal(t, want, n)
	n, err = s.Redact(match)
	require.NoError(t, err)
	require.Zero(t, n, "redacted records are not redacted again")

	// Appends go to the rewritten trail and continue its chain.
	require.NoError(t, s.Write(ctx, audittest.Event(t, 50), audittest.Event(t, 51)))
	_, err = audit.OpenFile(path)
	require.ErrorIs(t, err, audit.ErrInUse, "the rewritten trail is locked by the sink")
	require.NoError(t, s.Close())
	rep, err := audit.VerifyFile(path)
	require.NoError(t, err)
	require.Equal(t, 52, rep.Records)
	require.Equal(t, want, rep.Redacted)
	for _, e := range readEvents(t, path) {
		require.False(t, e.Subject == subject, "record %s still names the subject", e.ID)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left")

	_, err = s.Redact(match)
	require.True(t, errors.Is(err, audit.ErrClosed))
}
