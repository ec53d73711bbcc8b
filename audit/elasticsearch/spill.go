package elasticsearch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/aetherai/aether/audit"
)

// spillFile holds, as file-trail lines (one audit.Record each), the events
// that have not reached Elasticsearch, in seq order. Lines before offset
// are replayed already; when all are, the file is truncated. It is locked
// (flock) while open, so two sinks never share one.
type spillFile struct {
	path   string
	f      *os.File
	size   int64 // bytes in the file
	offset int64 // replayed up to here
	count  int   // records after offset
}

func openSpill(path string) (*spillFile, error) {
	f, err := openLocked(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &spillFile{path: path, f: f, size: fi.Size()}, nil
}

func openLocked(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w (%v)", path, audit.ErrInUse, err)
	}
	return f, nil
}

// scan reads every complete record at open, counts them and returns the
// one with the highest seq. An unterminated last line (a write cut short
// by a crash, never acknowledged) is truncated.
func (s *spillFile) scan() (last *audit.Record, err error) {
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(s.f, 64<<10)
	var pos int64
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				if err := s.f.Truncate(pos); err != nil {
					return nil, err
				}
				s.size = pos
			}
			break
		}
		if err != nil {
			return nil, err
		}
		pos += int64(len(line))
		var r audit.Record
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("spill file %s: record %d: %w", s.path, s.count+1, err)
		}
		if _, err := r.Check(); err != nil {
			return nil, fmt.Errorf("spill file %s: %w", s.path, err)
		}
		s.count++
		if last == nil || r.Seq > last.Seq {
			last = &r
		}
	}
	return last, nil
}

// append writes entries at the end and fsyncs.
func (s *spillFile) append(entries []*entry) error {
	var buf bytes.Buffer
	for _, e := range entries {
		buf.Write(e.doc)
		buf.WriteByte('\n')
	}
	n, err := s.f.Write(buf.Bytes())
	s.size += int64(n)
	if err != nil {
		return err
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	s.count += len(entries)
	return nil
}

// prepend puts entries, older than everything in the file, before the
// records not yet replayed: the file is rewritten (temporary file, fsync,
// rename) so its order stays the seq order.
func (s *spillFile) prepend(entries []*entry) error {
	if s.count == 0 {
		if err := s.reset(); err != nil {
			return err
		}
		return s.append(entries)
	}
	rest := make([]byte, s.size-s.offset)
	if _, err := s.f.ReadAt(rest, s.offset); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), "."+filepath.Base(s.path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	var buf bytes.Buffer
	for _, e := range entries {
		buf.Write(e.doc)
		buf.WriteByte('\n')
	}
	buf.Write(rest)
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	tmp.Close()
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return err
	}
	syncDir(s.path)
	f, err := openLocked(s.path)
	if err != nil {
		return err
	}
	s.f.Close()
	s.f, s.size, s.offset = f, int64(buf.Len()), 0
	s.count += len(entries)
	return nil
}

// read returns up to n records after offset, each with its end offset. It
// reads only as far as those n records, not the rest of the file.
func (s *spillFile) read(n int, prefix string) ([]*entry, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(s.f, s.offset, s.size-s.offset), 64<<10)
	var out []*entry
	pos := s.offset
	for len(out) < n {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			break // the end, or an unterminated tail
		}
		if err != nil {
			return nil, err
		}
		pos += int64(len(line))
		line = line[:len(line)-1]
		var r audit.Record
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("spill file %s: %w", s.path, err)
		}
		e, err := r.Check()
		if err != nil {
			return nil, fmt.Errorf("spill file %s: %w", s.path, err)
		}
		out = append(out, &entry{seq: r.Seq, id: e.ID, index: indexName(prefix, e.Time), doc: line, end: pos})
	}
	return out, nil
}

// advance marks the records up to end (n of them) as replayed; when none
// is left the file is emptied.
func (s *spillFile) advance(end int64, n int) error {
	s.offset = end
	s.count -= n
	if s.count == 0 {
		return s.reset()
	}
	return nil
}

func (s *spillFile) reset() error {
	s.offset, s.count = 0, 0
	if s.size == 0 {
		return nil
	}
	if err := s.f.Truncate(0); err != nil {
		return err
	}
	s.size = 0
	return s.f.Sync()
}

func (s *spillFile) close() error { return s.f.Close() }

func syncDir(path string) {
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
