package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Redact redacts the records of the trail this sink holds open, as the
// package-level Redact does for a trail no sink holds: the event of every
// non-redacted record for which match returns true is replaced by its
// redacted form, which keeps the chain verifiable. It lets a deletion
// request be served while the runner writes the trail. Writes wait while
// it runs: under the sink's lock, the file is verified, rewritten to a
// locked temporary file in the same directory (fsynced), renamed over the
// trail, and the sink appends to the new file from then on. Records
// written after Redact returns are not redacted. A trail that does not
// verify is left alone.
func (s *FileSink) Redact(match func(Event) bool) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	if s.err != nil {
		return 0, s.err
	}
	in, err := os.Open(s.path)
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	defer in.Close()
	if same, err := sameFile(in, s.f); err != nil || !same {
		return 0, errors.Join(fmt.Errorf("audit: %s is no longer the file this sink writes", s.path), err)
	}
	rep, err := Verify(in)
	if err != nil {
		return 0, fmt.Errorf("audit: not redacting %s, it does not verify: %w", s.path, err)
	}
	if rep.LastSeq != s.seq || rep.LastHash != s.lastHash {
		return 0, fmt.Errorf("audit: not redacting %s: it ends at seq %d, the sink at seq %d", s.path, rep.LastSeq, s.seq)
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	tmp, n, err := rewriteRedacted(s.path, in, match, true)
	if err != nil || n == 0 {
		return 0, err
	}
	// tmp's offset is at its end: the sink's next write appends there.
	old := s.f
	s.f, s.dirty = tmp, false
	_ = old.Close()
	return n, nil
}

func sameFile(a, b *os.File) (bool, error) {
	ai, err := a.Stat()
	if err != nil {
		return false, err
	}
	bi, err := b.Stat()
	if err != nil {
		return false, err
	}
	return os.SameFile(ai, bi), nil
}
