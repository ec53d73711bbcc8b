package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// ProblemKind names what is wrong with a trail.
type ProblemKind string

// The problems Verify reports.
const (
	// ProblemAltered: a record's content does not match its hash.
	ProblemAltered ProblemKind = "altered"
	// ProblemRemoved: records are missing (a gap in seq).
	ProblemRemoved ProblemKind = "removed"
	// ProblemInserted: a record or line that does not belong to the chain.
	ProblemInserted ProblemKind = "inserted"
	// ProblemReordered: records are out of order.
	ProblemReordered ProblemKind = "reordered"
	// ProblemBrokenLink: a record's prevHash is not its predecessor's hash.
	ProblemBrokenLink ProblemKind = "broken link"
)

// Problem is the first thing wrong with a trail: which line and record, and
// what.
type Problem struct {
	Kind   ProblemKind
	Line   int    // 1-based line number in the file
	Seq    uint64 // the record's seq; 0 when the line is not a record
	Detail string
}

func (p *Problem) Error() string {
	if p.Seq == 0 {
		return fmt.Sprintf("line %d: %s: %s", p.Line, p.Kind, p.Detail)
	}
	return fmt.Sprintf("record seq %d (line %d): %s: %s", p.Seq, p.Line, p.Kind, p.Detail)
}

// Report summarises an intact trail. A trail cut at its end still verifies:
// compare LastSeq and LastHash with a head kept elsewhere (FileSink.Head).
type Report struct {
	Records  int
	Redacted int
	LastSeq  uint64
	LastHash string
	// LastTime is the last record's event time: how current the trail is.
	LastTime time.Time
}

// seqPrefix recovers the seq of a line too damaged to decode.
var seqPrefix = regexp.MustCompile(`^\{"seq":([0-9]+),`)

// lookahead bounds how far Verify reads ahead to tell a reordering from a
// gap.
const lookahead = 1024

type parsedLine struct {
	line   int
	raw    []byte
	rec    Record
	err    error
	digest string
	redact bool
	time   time.Time
}

type lineReader struct {
	sc      *bufio.Scanner
	line    int
	pending []parsedLine
	err     error
	onEvent func(Event) // nil, or sees each event that decodes
}

func (r *lineReader) fill(n int) {
	for len(r.pending) < n && r.err == nil {
		if !r.sc.Scan() {
			r.err = r.sc.Err()
			if r.err == nil {
				r.err = io.EOF
			}
			return
		}
		r.line++
		p := parsedLine{line: r.line, raw: bytes.Clone(r.sc.Bytes())}
		p.rec, p.err = parseRecord(p.raw)
		if p.err == nil {
			var e Event
			e, p.digest, p.err = recordDigest(p.rec)
			p.redact, p.time = e.Redacted, e.Time
			if p.err == nil && r.onEvent != nil {
				r.onEvent(e)
			}
		}
		r.pending = append(r.pending, p)
	}
}

// Verify reads a file trail and checks that records run from seq 1 without
// gaps, that each record's prevHash is its predecessor's hash, that each
// hash matches the record's seq, prevHash and event digest, and that each
// non-redacted event matches that digest. It returns the first problem as a
// *Problem, or a read error. Redacted records verify by the digest they
// keep.
func Verify(r io.Reader) (Report, error) { return verify(r, nil) }

// verify is Verify, showing onEvent (if not nil) every event it decodes.
func verify(r io.Reader, onEvent func(Event)) (Report, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	lr := &lineReader{sc: sc, onEvent: onEvent}
	rep := Report{LastHash: GenesisHash}
	var prev *parsedLine
	for {
		lr.fill(1)
		if len(lr.pending) == 0 {
			if errors.Is(lr.err, io.EOF) {
				return rep, nil
			}
			return rep, fmt.Errorf("audit: reading trail: %w", lr.err)
		}
		cur := lr.pending[0]
		lr.pending = lr.pending[1:]
		expected := rep.LastSeq + 1
		if cur.err != nil {
			seq := cur.rec.Seq
			if seq == 0 {
				if m := seqPrefix.FindSubmatch(cur.raw); m != nil {
					seq, _ = strconv.ParseUint(string(m[1]), 10, 64)
				}
			}
			kind := ProblemAltered
			if seq == 0 {
				// Not a record at all: inserted if the chain goes on after
				// it, else a record overwritten.
				lr.fill(1)
				if len(lr.pending) > 0 && lr.pending[0].err == nil && lr.pending[0].rec.Seq == expected {
					kind = ProblemInserted
				}
			}
			return rep, &Problem{Kind: kind, Line: cur.line, Seq: seq, Detail: cur.err.Error()}
		}
		rec := cur.rec
		if ChainHash(rec.Seq, rec.PrevHash, cur.digest) != rec.Hash {
			return rep, &Problem{Kind: ProblemAltered, Line: cur.line, Seq: rec.Seq,
				Detail: "content does not match the record's hash"}
		}
		switch {
		case rec.Seq > expected:
			lr.fill(lookahead)
			for _, p := range lr.pending {
				if p.err == nil && p.rec.Seq == expected {
					return rep, &Problem{Kind: ProblemReordered, Line: cur.line, Seq: rec.Seq,
						Detail: fmt.Sprintf("comes before record seq %d (line %d)", expected, p.line)}
				}
			}
			missing := fmt.Sprintf("record seq %d is", expected)
			if rec.Seq-expected > 1 {
				missing = fmt.Sprintf("records seq %d to %d are", expected, rec.Seq-1)
			}
			return rep, &Problem{Kind: ProblemRemoved, Line: cur.line, Seq: rec.Seq,
				Detail: missing + " missing before it"}
		case rec.Seq < expected:
			if prev != nil && rec.Seq == prev.rec.Seq && rec.Hash != prev.rec.Hash && rec.PrevHash == prev.rec.PrevHash {
				// Two records claim seq S and link to the same predecessor:
				// the one the chain continues from is genuine.
				lr.fill(1)
				if len(lr.pending) > 0 && lr.pending[0].err == nil && lr.pending[0].rec.PrevHash == rec.Hash {
					return rep, &Problem{Kind: ProblemInserted, Line: prev.line, Seq: prev.rec.Seq,
						Detail: fmt.Sprintf("the chain continues from the record seq %d at line %d instead", rec.Seq, cur.line)}
				}
			}
			return rep, &Problem{Kind: ProblemInserted, Line: cur.line, Seq: rec.Seq,
				Detail: fmt.Sprintf("record seq %d was expected here; this seq came already", expected)}
		case rec.PrevHash != rep.LastHash:
			return rep, &Problem{Kind: ProblemBrokenLink, Line: cur.line, Seq: rec.Seq,
				Detail: "prevHash is not the hash of the record before it"}
		}
		rep.Records++
		if cur.redact {
			rep.Redacted++
		}
		rep.LastSeq, rep.LastHash, rep.LastTime = rec.Seq, rec.Hash, cur.time
		prev = &cur
	}
}

// VerifyFile is Verify on the file at path.
func VerifyFile(path string) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return Report{}, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	return Verify(f)
}

// VerifyWithCoverage runs Verify and, on the same decoded events,
// CoverageOf's check of the attestations: one read and one decode of the
// trail for both. The coverage is returned when the chain holds (err nil);
// then every record decoded, so it covers the whole trail.
func VerifyWithCoverage(r io.Reader) (Report, CoverageReport, error) {
	c := NewCoverageCheck()
	rep, err := verify(r, c.Add)
	if err != nil {
		return rep, CoverageReport{}, err
	}
	return rep, c.Report(), nil
}

// Redact replaces the event of every non-redacted record for which match
// returns true by its redacted form (ID, Time, Kind and the original
// event's digest) and returns how many it redacted. The chain stays
// verifiable because it covers the digest. The trail is verified first and
// rewritten atomically (a temporary file in the same directory, fsynced,
// renamed over it); it must not be open in a FileSink (ErrInUse).
func Redact(path string, match func(Event) bool) (int, error) {
	in, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	defer in.Close()
	if err := lockNB(in); err != nil {
		return 0, fmt.Errorf("audit: %s: %w (%v)", path, ErrInUse, err)
	}
	if _, err := Verify(in); err != nil {
		return 0, fmt.Errorf("audit: not redacting %s, it does not verify: %w", path, err)
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	f, n, err := rewriteRedacted(path, in, match, false)
	if f != nil {
		f.Close()
	}
	return n, err
}

// rewriteRedacted writes the trail read from in, with match's records
// redacted (redactLines), to a new file beside path: mode 0600, locked
// before it becomes the trail when lock is set, fsynced, then renamed over
// path and the directory synced. It returns the new file, open at its end
// for a sink to append to, and how many records it redacted; with none,
// nothing replaces path and f is nil.
func rewriteRedacted(path string, in io.Reader, match func(Event) bool, lock bool) (f *os.File, n int, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".redact-*")
	if err != nil {
		return nil, 0, fmt.Errorf("audit: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return nil, 0, fmt.Errorf("audit: %w", err)
	}
	if lock {
		// No other sink or Redact can take it before it is the trail.
		if err := lockNB(tmp); err != nil {
			return nil, 0, fmt.Errorf("audit: locking %s: %w", tmp.Name(), err)
		}
	}
	w := bufio.NewWriter(tmp)
	if n, err = redactLines(path, in, w, match); err != nil || n == 0 {
		return nil, 0, err
	}
	if err := w.Flush(); err != nil {
		return nil, 0, fmt.Errorf("audit: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return nil, 0, fmt.Errorf("audit: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, 0, fmt.Errorf("audit: %w", err)
	}
	keep = true
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return tmp, n, nil
}

// redactLines copies the trail read from in to w, line by line, with the
// event of every non-redacted record for which match returns true replaced
// by its redacted form, and returns how many it redacted. path names the
// trail in errors.
func redactLines(path string, in io.Reader, w *bufio.Writer, match func(Event) bool) (int, error) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	n, line := 0, 0
	for sc.Scan() {
		line++
		raw := sc.Bytes()
		rec, err := parseRecord(raw)
		if err != nil {
			return 0, fmt.Errorf("audit: %s line %d: %w", path, line, err)
		}
		e, digest, err := recordDigest(rec)
		if err != nil {
			return 0, fmt.Errorf("audit: %s line %d: %w", path, line, err)
		}
		if !e.Redacted && match(e) {
			rec.Event, err = jsonMarshal(e.redact(digest))
			if err != nil {
				return 0, err
			}
			if raw, err = jsonMarshal(rec); err != nil {
				return 0, err
			}
			n++
		}
		w.Write(raw)
		w.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("audit: reading %s: %w", path, err)
	}
	return n, nil
}
