package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// FileOption configures OpenFile.
type FileOption interface{ applyFile(*fileConfig) error }

type fileConfig struct {
	syncInterval time.Duration // 0: fsync every write
	reg          prometheus.Registerer
}

type fileOpt func(*fileConfig) error

func (f fileOpt) applyFile(c *fileConfig) error { return f(c) }

// SyncEveryWrite makes Write return only after the records are fsynced:
// nothing acknowledged is lost in a crash. It is the default.
func SyncEveryWrite() FileOption {
	return fileOpt(func(c *fileConfig) error { c.syncInterval = 0; return nil })
}

// SyncInterval fsyncs at most every d instead of on every Write: faster, but
// a machine crash may lose the records of the last d.
func SyncInterval(d time.Duration) FileOption {
	return fileOpt(func(c *fileConfig) error {
		if d <= 0 {
			return fmt.Errorf("audit: sync interval must be positive, got %s", d)
		}
		c.syncInterval = d
		return nil
	})
}

// FileRegisterer exports the trail's progress on reg:
// aether_audit_events_written_total and
// aether_audit_last_write_timestamp_seconds, the names the Elasticsearch
// sink exports too, so that the stalled-trail alert works on either.
func FileRegisterer(reg prometheus.Registerer) FileOption {
	return fileOpt(func(c *fileConfig) error { c.reg = reg; return nil })
}

// ErrInUse is returned when another FileSink or Redact holds the trail.
var ErrInUse = errors.New("audit trail is in use")

// FileSink is the hash-chained JSON-lines trail: one Record per line,
// appended with O_APPEND to a 0600 file that is locked (flock) while open.
// It is safe for concurrent use.
type FileSink struct {
	path string
	cfg  fileConfig

	mu       sync.Mutex
	f        *os.File
	seq      uint64
	lastHash string
	dirty    bool  // written since the last fsync
	err      error // sticky: a failed write leaves the file's end unknown
	closed   bool

	stop chan struct{}
	done chan struct{}

	written   prometheus.Counter
	lastWrite prometheus.Gauge
}

var _ Sink = (*FileSink)(nil)

// OpenFile opens or creates the trail at path and resumes its chain after
// the last record. An unterminated last line, the remains of a write cut
// short by a crash (never acknowledged), is truncated. The rest of the trail
// is not checked: that is Verify's job.
func OpenFile(path string, opts ...FileOption) (*FileSink, error) {
	var cfg fileConfig
	for _, o := range opts {
		if err := o.applyFile(&cfg); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := lockNB(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: %s: %w (%v)", path, ErrInUse, err)
	}
	s := &FileSink{path: path, cfg: cfg, f: f, lastHash: GenesisHash,
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: "aether_audit_events_written_total",
			Help: "Audit events stored in the trail."}),
		lastWrite: prometheus.NewGauge(prometheus.GaugeOpts{Name: "aether_audit_last_write_timestamp_seconds",
			Help: "Unix time at which audit events were last stored in the trail."}),
	}
	if err := s.resume(); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: %s: %w", path, err)
	}
	if cfg.reg != nil {
		for _, c := range []prometheus.Collector{s.written, s.lastWrite} {
			if err := cfg.reg.Register(c); err != nil {
				f.Close()
				return nil, fmt.Errorf("audit: registering metrics: %w", err)
			}
		}
	}
	if cfg.syncInterval > 0 {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.syncLoop()
	}
	return s, nil
}

// resume reads the last line and continues the chain from it.
func (s *FileSink) resume() error {
	fi, err := s.f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size == 0 {
		return nil
	}
	// Read backwards in chunks until the last complete line is in buf.
	const chunk = 64 << 10
	var buf []byte
	end := size
	for {
		start := max(end-chunk, 0)
		b := make([]byte, end-start)
		if _, err := s.f.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		buf = append(b, buf...)
		end = start
		// Done when buf holds the newline before the last complete line
		// (ignoring an unterminated tail), or the whole file.
		body := buf[:bytes.LastIndexByte(buf, '\n')+1]
		if len(body) > 0 && bytes.LastIndexByte(body[:len(body)-1], '\n') >= 0 || start == 0 {
			break
		}
	}
	complete := size
	if buf[len(buf)-1] != '\n' {
		i := bytes.LastIndexByte(buf, '\n')
		complete = size - int64(len(buf)-(i+1))
		if err := s.f.Truncate(complete); err != nil {
			return fmt.Errorf("truncating an unterminated last line: %w", err)
		}
		buf = buf[:i+1]
		if complete == 0 {
			return nil
		}
	}
	body := buf[:len(buf)-1]
	line := body[bytes.LastIndexByte(body, '\n')+1:]
	r, err := parseRecord(line)
	if err != nil {
		return fmt.Errorf("last line: %w", err)
	}
	_, digest, err := recordDigest(r)
	if err != nil {
		return fmt.Errorf("last record (seq %d): %w", r.Seq, err)
	}
	if ChainHash(r.Seq, r.PrevHash, digest) != r.Hash {
		return fmt.Errorf("last record (seq %d) does not match its hash; run verify", r.Seq)
	}
	s.seq, s.lastHash = r.Seq, r.Hash
	return nil
}

// Path is the trail's file.
func (s *FileSink) Path() string { return s.path }

// Head returns the last record's seq and hash (0 and GenesisHash when
// empty). Kept elsewhere, they let Verify's report show that no records
// were cut from the end.
func (s *FileSink) Head() (seq uint64, hash string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq, s.lastHash
}

// Write validates all events, then appends them as consecutive records in
// one write(2); with SyncEveryWrite it returns after fsync. Nothing is
// written if any event is invalid. After a failed write the sink refuses
// further writes: reopen it to resume from what reached the file.
func (s *FileSink) Write(ctx context.Context, events ...Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, e := range events {
		if err := e.Validate(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.err != nil {
		return s.err
	}
	if len(events) == 0 {
		return nil
	}
	seq, hash := s.seq, s.lastHash
	var buf []byte
	for _, e := range events {
		var err error
		seq++
		if buf, hash, err = appendRecord(buf, seq, hash, e); err != nil {
			return err
		}
	}
	if _, err := s.f.Write(buf); err != nil {
		s.err = fmt.Errorf("audit: %s: write failed, sink stopped: %w", s.path, err)
		return s.err
	}
	s.seq, s.lastHash = seq, hash
	if s.cfg.syncInterval > 0 {
		s.dirty = true
	} else if err := s.f.Sync(); err != nil {
		s.err = fmt.Errorf("audit: %s: fsync failed, sink stopped: %w", s.path, err)
		return s.err
	}
	s.written.Add(float64(len(events)))
	s.lastWrite.SetToCurrentTime()
	return nil
}

func (s *FileSink) syncLoop() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.syncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			if s.dirty && s.err == nil {
				if err := s.f.Sync(); err != nil {
					s.err = fmt.Errorf("audit: %s: fsync failed, sink stopped: %w", s.path, err)
				}
				s.dirty = false
			}
			s.mu.Unlock()
		}
	}
}

// Close fsyncs and closes the file. Closing twice is a no-op.
func (s *FileSink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	if s.stop != nil {
		close(s.stop)
		<-s.done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	syncErr := s.f.Sync()
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("audit: %s: %w", s.path, err)
	}
	if syncErr != nil {
		return fmt.Errorf("audit: %s: fsync: %w", s.path, syncErr)
	}
	return nil
}

// lockNB takes an exclusive flock on f, failing at once if it is held.
func lockNB(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

func jsonMarshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return b, nil
}
