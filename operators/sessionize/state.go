package sessionize

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/aetherai/aether/internal/wire"
)

// State is one key's session state, embedded in the processor's table
// value. Times are Unix milliseconds of event time. The zero State is a key
// never seen.
type State struct {
	// Start and Last are the earliest and latest event times of the current
	// session (open, or the last one when none is open). Last is also the
	// key's latest event time: no placed event is later.
	Start, Last int64
	// Open says whether the current session is still open.
	Open bool
	// Seq counts the sessions started so far; the current session's
	// sequence number.
	Seq uint32
	// Events counts the events placed in the current session.
	Events uint32
	// PrevStart, PrevEnd and PrevEvents describe the last closed session
	// (the one before the open one, or the current one once it closed),
	// including the out-of-order events placed in it later (Previous);
	// Start, Last and Events of a closed session stay as they were when
	// it closed.
	PrevStart, PrevEnd int64
	PrevEvents         uint32
	// Late counts events beyond the grace period (policy LateLifetimeOnly).
	Late uint64
}

// Current summarises the current session: the open one, or the last one
// when none is open.
func (s *State) Current() Session {
	return Session{Seq: s.Seq, Start: millis(s.Start), End: millis(s.Last), Events: s.Events}
}

// PreviousSession summarises the last closed session (zero Seq if none).
func (s *State) PreviousSession() Session {
	seq := s.Seq
	if s.Open {
		seq--
	}
	if seq == 0 {
		return Session{}
	}
	return Session{Seq: seq, Start: millis(s.PrevStart), End: millis(s.PrevEnd), Events: s.PrevEvents}
}

func (s *State) start(t int64) {
	s.Open = true
	s.Seq++
	s.Start, s.Last, s.Events = t, t, 1
}

func (s *State) close() {
	s.Open = false
	s.PrevStart, s.PrevEnd, s.PrevEvents = s.Start, s.Last, s.Events
}

func millis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// ErrMalformed is wrapped by the errors of State.Decode.
var ErrMalformed = errors.New("malformed session state")

const flagOpen = 1

// Append appends s's compact binary encoding to dst and returns the
// extended buffer: a flags byte, then varints, times as deltas to Start
// (typically 20 to 30 bytes). Decode reads it back.
func (s *State) Append(dst []byte) []byte {
	var flags byte
	if s.Open {
		flags |= flagOpen
	}
	dst = append(dst, flags)
	dst = binary.AppendVarint(dst, s.Start)
	dst = binary.AppendVarint(dst, s.Last-s.Start)
	dst = binary.AppendUvarint(dst, uint64(s.Seq))
	dst = binary.AppendUvarint(dst, uint64(s.Events))
	dst = binary.AppendVarint(dst, s.Start-s.PrevStart)
	dst = binary.AppendVarint(dst, s.PrevEnd-s.PrevStart)
	dst = binary.AppendUvarint(dst, uint64(s.PrevEvents))
	dst = binary.AppendUvarint(dst, s.Late)
	return dst
}

// Decode reads an encoding written by Append from the start of b into s
// and returns the bytes after it. Truncated or invalid input yields an
// error wrapping ErrMalformed; s is then undefined.
func (s *State) Decode(b []byte) (rest []byte, err error) {
	if len(b) == 0 {
		return b, errTruncated
	}
	flags := b[0]
	if flags&^flagOpen != 0 {
		return b, errFlags
	}
	r := wire.Reader{B: b[1:], Truncated: errTruncated, Overflow: errOverflow}
	s.Open = flags&flagOpen != 0
	s.Start = r.Varint()
	s.Last = s.Start + r.Varint()
	s.Seq = r.Uint32()
	s.Events = r.Uint32()
	s.PrevStart = s.Start - r.Varint()
	s.PrevEnd = s.PrevStart + r.Varint()
	s.PrevEvents = r.Uint32()
	s.Late = r.Uvarint()
	return r.B, r.Err
}

var (
	errTruncated = fmt.Errorf("%w: truncated", ErrMalformed)
	errFlags     = fmt.Errorf("%w: unknown flags", ErrMalformed)
	errOverflow  = fmt.Errorf("%w: varint overflow", ErrMalformed)
)
