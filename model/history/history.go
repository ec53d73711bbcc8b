// Package history reads the event histories a model is trained and
// evaluated on, in three formats, and groups them into sessions.
//
//   - FormatEvents: JSON lines of event.Event, as on user_events_raw
//     ({"userId":..,"productId":..,"eventType":..,"timestamp":..}).
//   - FormatSessions: the tab-separated format of public session-based
//     recommendation benchmarks: a header line SessionId<TAB>ItemId<TAB>Time
//     (names in any case and order; other columns are ignored), then one
//     click per line, Time in Unix seconds with an optional fraction. A
//     line becomes a click of user "s<SessionId>" on product ItemId (as
//     given) at Time.
//   - FormatOTTO: the OTTO recsys-dataset's JSON lines, one session a line,
//     read by clickstream.ReadOTTO.
//
// A Reader detects the format from the first non-blank line (a TSV header,
// or a JSON object whose keys say OTTO or event) and, when that line says
// neither, names what the file extension (.tsv, .txt, .csv; .jsonl,
// .ndjson, .json; each optionally .gz) wants. Gzip-compressed input is
// recognised by its magic bytes. Errors name the line (a *LineError; OTTO
// errors read "otto: line N: ..."). While reading, a Reader hashes the
// bytes it reads, so Digest identifies the data a model was trained on.
//
// A Collector groups events into Sessions: the sessions format's sessions
// as they are, event histories per user split at an inactivity gap
// (model.DefaultSessionGap, as model.Train splits them).
package history

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strings"

	"github.com/aetherai/aether/clickstream"
	"github.com/aetherai/aether/event"
)

// Format is the layout of a history file.
type Format string

// The formats a Reader reads.
const (
	// FormatEvents is JSON lines of event.Event.
	FormatEvents Format = "events"
	// FormatSessions is the benchmarks' TSV: SessionId, ItemId, Time.
	FormatSessions Format = "sessions"
	// FormatOTTO is the OTTO dataset's JSON lines, one session a line.
	FormatOTTO Format = "otto"
)

// SessionsHeader is the header line of FormatSessions (the columns it
// needs; other columns may follow or come between).
const SessionsHeader = "SessionId\tItemId\tTime"

// MaxLineBytes bounds a line of FormatEvents and FormatSessions.
const MaxLineBytes = 1 << 20

// LineError is a problem with one line of a history.
type LineError struct {
	// Line is the 1-based line number (of the decompressed text).
	Line int
	// Err says what is wrong.
	Err error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Err.Error()) }

func (e *LineError) Unwrap() error { return e.Err }

// Digest identifies the data a history was read from.
type Digest struct {
	// File is the file's base name ("" for a stream without a name).
	File string `json:"file,omitempty"`
	// Format is the detected format.
	Format Format `json:"format"`
	// SHA256 is the hex SHA-256 of the bytes as stored (of the compressed
	// bytes for a gzip file).
	SHA256 string `json:"sha256"`
	// Bytes is the stored size.
	Bytes int64 `json:"bytes"`
	// Events counts the events read.
	Events uint64 `json:"events"`
}

// extFormat returns the format the file name's extension suggests ("" if
// none).
func extFormat(name string) Format {
	name = strings.TrimSuffix(strings.ToLower(name), ".gz")
	switch filepath.Ext(name) {
	case ".tsv", ".txt", ".csv":
		return FormatSessions
	case ".jsonl", ".ndjson", ".json":
		return FormatEvents // or OTTO: the first line decides
	}
	return ""
}

// Detect returns the format of a history from its file name (only its
// extension matters, and only when the line is not conclusive) and its
// first non-blank line, which is line number line (for errors).
func Detect(name string, firstLine []byte, line int) (Format, error) {
	t := bytes.TrimSpace(bytes.TrimPrefix(firstLine, []byte("\ufeff")))
	if _, err := sessionColumns(t); err == nil {
		return FormatSessions, nil
	} else if bytes.Contains(bytes.ToLower(t), []byte("sessionid")) || (extFormat(name) == FormatSessions && len(t) > 0 && t[0] != '{') {
		return "", &LineError{Line: line, Err: err}
	}
	if len(t) > 0 && t[0] == '{' {
		var keys map[string]json.RawMessage
		if json.Unmarshal(t, &keys) == nil {
			_, s := keys["session"]
			_, e := keys["events"]
			if s && e {
				return FormatOTTO, nil
			}
		}
		return FormatEvents, nil // the events reader names what is wrong
	}
	return "", &LineError{Line: line, Err: fmt.Errorf(
		"not a history: want JSON lines (events or OTTO sessions) or the tab-separated header %q, got %q",
		SessionsHeader, truncate(t))}
}

func truncate(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}

// hashingReader hashes and counts what it reads.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

// Reader reads one history. Its Events can be iterated once.
type Reader struct {
	name   string
	format Format
	raw    *hashingReader
	br     *bufio.Reader
	closer io.Closer
	lineNo int
	// head is the text read for detection: the leading blank lines and the
	// first non-blank line (first, line firstNo); firstErr is io.EOF if
	// that line ended the input.
	head     []byte
	first    []byte
	firstNo  int
	firstErr error

	events   uint64
	used     bool
	complete bool
	err      error
}

// Open opens a history file; Close it when done.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	r, err := NewReader(f, path)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("history: %s: %w", path, err)
	}
	r.closer = f
	return r, nil
}

// NewReader reads a history from r; name is its file name, whose extension
// helps the detection (it may be empty). It reads up to the first non-blank
// line to detect the format.
func NewReader(r io.Reader, name string) (*Reader, error) {
	hr := &hashingReader{r: r, h: sha256.New()}
	br := bufio.NewReaderSize(hr, 64<<10)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		br = bufio.NewReaderSize(zr, 64<<10)
	}
	rd := &Reader{name: name, raw: hr, br: br}
	for {
		line, err := rd.readLine()
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		rd.head = append(append(rd.head, line...), '\n')
		if len(bytes.TrimSpace(line)) > 0 {
			f, derr := Detect(name, line, rd.lineNo)
			if derr != nil {
				return nil, derr
			}
			rd.format, rd.first, rd.firstNo, rd.firstErr = f, line, rd.lineNo, err
			return rd, nil
		}
		if err != nil { // io.EOF: an empty history
			rd.format = extFormat(name)
			if rd.format == "" {
				rd.format = FormatEvents
			}
			rd.firstNo, rd.firstErr = rd.lineNo, err
			return rd, nil
		}
	}
}

// readLine returns the next line without its line ending; io.EOF with the
// last (possibly empty) line at the end of the input. Lines longer than
// MaxLineBytes are an error.
func (r *Reader) readLine() ([]byte, error) {
	r.lineNo++
	var long []byte
	for {
		b, err := r.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, b...)
			if len(long) > MaxLineBytes {
				return nil, &LineError{Line: r.lineNo, Err: fmt.Errorf("longer than %d bytes", MaxLineBytes)}
			}
			continue
		}
		if long != nil {
			b = append(long, b...)
		}
		if len(b) > MaxLineBytes {
			return nil, &LineError{Line: r.lineNo, Err: fmt.Errorf("longer than %d bytes", MaxLineBytes)}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, &LineError{Line: r.lineNo, Err: err}
		}
		b = bytes.TrimSuffix(b, []byte("\n"))
		b = bytes.TrimSuffix(b, []byte("\r"))
		return b, err
	}
}

// Format is the detected format.
func (r *Reader) Format() Format { return r.format }

// Events yields the history's events in file order (for FormatOTTO, after
// reading the whole file). The first bad line stops it; Err says why. It
// can be iterated once: later iterations yield nothing.
func (r *Reader) Events() iter.Seq[event.Event] {
	return func(yield func(event.Event) bool) {
		if r.used {
			return
		}
		r.used = true
		var stopped bool
		switch r.format {
		case FormatOTTO:
			stopped = r.otto(yield)
		case FormatSessions:
			stopped = r.lines(yield, r.sessionsLine())
		default:
			stopped = r.lines(yield, eventsLine)
		}
		if stopped || r.err != nil {
			return
		}
		// Hash what the parsers left unread, so the digest covers the file.
		if _, err := io.Copy(io.Discard, r.raw); err != nil {
			r.err = err
			return
		}
		r.complete = true
	}
}

// lines parses the first non-blank line and every following one.
func (r *Reader) lines(yield func(event.Event) bool, parse func([]byte) (event.Event, bool, error)) (stopped bool) {
	line, lineNo, err := r.first, r.firstNo, r.firstErr
	for {
		if len(bytes.TrimSpace(line)) > 0 {
			e, ok, perr := parse(line)
			if perr != nil {
				r.err = &LineError{Line: lineNo, Err: perr}
				return false
			}
			if ok {
				r.events++
				if !yield(e) {
					return true
				}
			}
		}
		if err != nil { // io.EOF
			return false
		}
		line, err = r.readLine()
		lineNo = r.lineNo
		if err != nil && !errors.Is(err, io.EOF) {
			r.err = err
			return false
		}
	}
}

func eventsLine(b []byte) (event.Event, bool, error) {
	var e event.Event
	if err := json.Unmarshal(b, &e); err != nil {
		return e, false, err
	}
	if err := e.ValidateAt(e.Timestamp); err != nil {
		return e, false, err
	}
	return e, true, nil
}

func (r *Reader) otto(yield func(event.Event) bool) (stopped bool) {
	evs, err := clickstream.ReadOTTO(io.MultiReader(bytes.NewReader(r.head), r.br))
	if err != nil {
		r.err = err
		return false
	}
	for _, e := range evs {
		r.events++
		if !yield(e) {
			return true
		}
	}
	return false
}

// Err is the error that stopped Events, if any.
func (r *Reader) Err() error { return r.err }

// Digest identifies what was read. SHA256 and Bytes cover the whole input
// only once Events has run to its end without an error; before that
// SHA256 is empty.
func (r *Reader) Digest() Digest {
	d := Digest{Format: r.format, Bytes: r.raw.n, Events: r.events}
	if r.name != "" {
		d.File = filepath.Base(r.name)
	}
	if r.complete {
		d.SHA256 = hex.EncodeToString(r.raw.h.Sum(nil))
	}
	return d
}

// Close closes the file Open opened; it does nothing for NewReader.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	return r.closer.Close()
}

// Sessions reads all events and groups them with a Collector, with the
// format's SessionGap.
func (r *Reader) Sessions() (*Sessions, error) {
	c := NewCollector(SessionGap(r.format))
	for e := range r.Events() {
		c.Add(e)
	}
	if r.err != nil {
		return nil, r.err
	}
	return c.Sessions(), nil
}
