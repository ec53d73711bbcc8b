// Package elasticsearch keeps the audit trail in Elasticsearch: Sink
// writes hash-chained audit records (the file trail's records, one
// document each, _id = event id) through olivere/elastic's BulkProcessor
// into daily indices <prefix>-YYYY.MM.DD, by event time; Verify checks the
// chain of every record there and Redact strips personal data from it.
//
// At Open the sink installs an index template (keyword mappings for every
// string field, event.time as a date, the ILM policy's name) and an ILM
// policy that deletes an index after the retention. When Elasticsearch is
// slow or down (a bulk request or item still failing after the retries,
// or the in-memory queue full) events go to a local spill file, fsynced,
// and are replayed in seq order once it answers again, at the latest at
// the next Open. Nothing is dropped and memory stays bounded.
//
// Metrics (through Registerer): aether_audit_backlog_events (queued plus
// spilled, not yet in Elasticsearch), aether_audit_spilled_events_total,
// aether_audit_replayed_events_total, aether_audit_sink_errors_total
// {reason}, aether_audit_last_write_timestamp_seconds (the last event
// stored in Elasticsearch or the spill file) and
// aether_audit_events_written_total (events stored in Elasticsearch).
//
// Event ids must be unique, as audit.New makes them: a second event with
// the id of an earlier one overwrites its document, and Verify then
// reports the earlier record as removed.
package elasticsearch

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/olivere/elastic/v7"

	"github.com/aetherai/aether/audit"
)

// Sink is the Elasticsearch audit trail. It is safe for concurrent use.
//
// Invariants: records are numbered under mu, so queue and spill file each
// hold them in seq order, and while the spill file holds records every new
// one goes there too (so everything queued is older than everything
// spilled). Only the shipper goroutine (run) uses the BulkProcessor. mu
// and outMu are never held together.
type Sink struct {
	cfg     config
	client  *elastic.Client
	metrics *metrics
	log     *slog.Logger

	mu       sync.Mutex
	seq      uint64
	lastHash string
	queue    []*entry // accepted, in seq order, not yet sent
	pending  int      // accepted and not yet in Elasticsearch: the backlog
	spill    *spillFile
	closed   bool
	lastErr  error // why the last events were spilled
	lostErr  error // events lost at close: neither delivered nor spilled

	wake chan struct{} // something to ship
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the shipper returned

	// The outcome of the bulk commits of the current window, filled by
	// the BulkProcessor's After callback.
	outMu     sync.Mutex
	outcomes  map[string]itemOutcome
	commitErr error
}

var _ audit.Sink = (*Sink)(nil)

// entry is one record on its way to Elasticsearch.
type entry struct {
	seq   uint64
	id    string
	index string
	doc   []byte  // the record's JSON: the document and the spill line
	w     *waiter // the Write waiting for it, in acknowledged mode
	end   int64   // for records read from the spill file: where the line ends
}

// waiter releases a Write once all its events are stored, or with err
// once they cannot be.
type waiter struct {
	n    int
	err  error
	done chan struct{}
}

type itemOutcome struct {
	status int
	reason string
}

// BacklogError is returned by Close when events could not reach
// Elasticsearch: they are kept in the spill file and replayed at the next
// Open. Nothing is lost.
type BacklogError struct {
	Events    int
	SpillFile string
	Cause     error
}

func (e *BacklogError) Error() string {
	return fmt.Sprintf("audit: elasticsearch: %d events not yet in Elasticsearch are kept in %s and replayed at the next open: %v",
		e.Events, e.SpillFile, e.Cause)
}

func (e *BacklogError) Unwrap() error { return e.Cause }

// indexName is the daily index of an event time.
func indexName(prefix string, t time.Time) string {
	return prefix + "-" + t.UTC().Format("2006.01.02")
}

// Open connects, installs the ILM policy and the index template, opens
// the spill file and resumes the chain after the highest seq found in
// Elasticsearch or the spill file. Elasticsearch must answer: without it
// the chain's head is unknown.
func Open(ctx context.Context, opts ...Option) (*Sink, error) {
	cfg := defaults()
	for _, o := range opts {
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.client != nil {
		return nil, errors.New("elasticsearch: Open takes URLs, BasicAuth, CAFile or HTTPClient, not Client")
	}
	client, err := cfg.newClient(true)
	if err != nil {
		return nil, err
	}
	s := &Sink{cfg: cfg, client: client, metrics: newMetrics(), log: cfg.log, lastHash: audit.GenesisHash,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if err := installLifecycle(ctx, client, cfg); err != nil {
		return nil, err
	}
	s.spill, err = openSpill(filepath.Join(cfg.spillDir, cfg.prefix+".spill.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("audit: elasticsearch: spill file: %w", err)
	}
	if err := s.resume(ctx); err != nil {
		s.spill.close()
		return nil, err
	}
	if err := s.metrics.register(cfg.reg); err != nil {
		s.spill.close()
		return nil, err
	}
	s.metrics.backlog.Set(float64(s.pending))
	if s.pending > 0 {
		s.log.Info("audit: replaying spilled events to Elasticsearch", "events", s.pending, "spill_file", s.spill.path)
	}
	go s.run()
	return s, nil
}

// resume finds the chain's head: the highest seq in Elasticsearch or in
// the spill file.
func (s *Sink) resume(ctx context.Context) error {
	last, err := s.spill.scan()
	if err != nil {
		return fmt.Errorf("audit: elasticsearch: %w", err)
	}
	s.pending = s.spill.count
	pattern := s.cfg.prefix + "-*"
	if _, err := s.client.Refresh(pattern).Do(ctx); err != nil {
		return fmt.Errorf("audit: elasticsearch: reading the chain's head: %w", err)
	}
	res, err := s.client.Search(pattern).SortBy(elastic.NewFieldSort("seq").Desc()).Size(1).Do(ctx)
	if err != nil {
		return fmt.Errorf("audit: elasticsearch: reading the chain's head: %w", err)
	}
	if len(res.Hits.Hits) > 0 {
		var r audit.Record
		h := res.Hits.Hits[0]
		if err := json.Unmarshal(h.Source, &r); err != nil {
			return fmt.Errorf("audit: elasticsearch: %s/_doc/%s is not a record: %w", h.Index, h.Id, err)
		}
		if _, err := r.Check(); err != nil {
			return fmt.Errorf("audit: elasticsearch: last record %s/_doc/%s: %w; run verify", h.Index, h.Id, err)
		}
		if last == nil || r.Seq > last.Seq {
			last = &r
		}
	}
	if last != nil {
		s.seq, s.lastHash = last.Seq, last.Hash
	}
	return nil
}

// Head returns the last record's seq and hash (0 and GenesisHash when
// empty); kept elsewhere, they show that no records were cut from the end.
func (s *Sink) Head() (uint64, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq, s.lastHash
}

// SpillFile is the spill file's path.
func (s *Sink) SpillFile() string { return s.spill.path }

// Write validates all events and chains them as consecutive records. By
// default it returns once they are in Elasticsearch or fsynced to the
// spill file; with FlushInterval, once they are queued (or spilled, when
// the queue is full). Nothing is stored if any event is invalid or the
// spill file cannot be written.
func (s *Sink) Write(ctx context.Context, events ...audit.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, e := range events {
		if err := e.Validate(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return audit.ErrClosed
	}
	if len(events) == 0 {
		s.mu.Unlock()
		return nil
	}
	entries := make([]*entry, 0, len(events))
	seq, hash := s.seq, s.lastHash
	for _, e := range events {
		seq++
		r, err := audit.NewRecord(seq, hash, e)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		doc, err := json.Marshal(r)
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("audit: elasticsearch: encoding event %q: %w", e.ID, err)
		}
		hash = r.Hash
		entries = append(entries, &entry{seq: seq, id: e.ID, index: indexName(s.cfg.prefix, e.Time), doc: doc})
	}
	var w *waiter
	switch {
	case s.spill.count > 0 || len(s.queue)+len(entries) > s.cfg.queueSize:
		// Behind older spilled events, or the queue is full: spill, so
		// memory stays bounded and the spill file stays in seq order.
		if s.spill.count == 0 {
			s.metrics.errors.WithLabelValues("queue_full").Inc()
			s.log.Warn("audit: Elasticsearch queue full; spilling events", "spill_file", s.spill.path)
		}
		if err := s.spill.append(entries); err != nil {
			s.mu.Unlock()
			s.metrics.errors.WithLabelValues("spill").Inc()
			return fmt.Errorf("audit: elasticsearch: writing the spill file: %w", err)
		}
		s.metrics.spilled.Add(float64(len(entries)))
		s.metrics.lastWrite.SetToCurrentTime()
	default:
		if s.cfg.flushInterval == 0 {
			w = &waiter{n: len(entries), done: make(chan struct{})}
			for _, e := range entries {
				e.w = w
			}
		}
		s.queue = append(s.queue, entries...)
	}
	s.seq, s.lastHash = seq, hash
	s.pending += len(entries)
	s.metrics.backlog.Set(float64(s.pending))
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	if w != nil {
		<-w.done // bounded: the shipper stores or spills every window
		return w.err
	}
	return nil
}

// Close ships what is queued and replays the spill file while
// Elasticsearch answers. What it cannot deliver stays in the spill file,
// and Close returns a *BacklogError saying so. Closing twice is a no-op.
func (s *Sink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	left := s.spill.count
	closeErr := s.spill.close()
	s.metrics.backlog.Set(float64(s.pending))
	if left > 0 {
		s.log.Warn("audit: closing with events not yet in Elasticsearch; they are replayed at the next open",
			"events", left, "spill_file", s.spill.path)
		cause := s.lastErr
		if cause == nil {
			cause = errors.New("elasticsearch did not accept them")
		}
		return &BacklogError{Events: left, SpillFile: s.spill.path, Cause: cause}
	}
	if s.lostErr != nil {
		return s.lostErr
	}
	if closeErr != nil {
		return fmt.Errorf("audit: elasticsearch: spill file: %w", closeErr)
	}
	return nil
}

// run is the shipper: it sends the queue in windows, and when the queue
// is empty replays the spill file, waiting between failed attempts.
func (s *Sink) run() {
	defer close(s.done)
	var wait time.Duration // before the next replay attempt
	for {
		s.mu.Lock()
		queued, spilled, closing := len(s.queue), s.spill.count, s.closed
		s.mu.Unlock()
		switch {
		case queued > 0:
			if s.cfg.flushInterval > 0 && !closing && queued < s.cfg.batchSize {
				s.linger()
			}
			if !s.shipQueue() && !closing {
				select { // neither Elasticsearch nor the spill file took them
				case <-time.After(s.cfg.retryWait):
				case <-s.stop:
				}
			}
		case spilled > 0:
			if wait > 0 && !closing {
				select {
				case <-time.After(wait):
				case <-s.stop:
				}
			}
			done, progress := s.replay()
			if done || progress {
				wait = 0 // Elasticsearch answers: go on at once
				continue
			}
			if closing {
				return
			}
			wait = min(max(2*wait, s.cfg.retryWait), 2*time.Second)
		default:
			if closing {
				return
			}
			select {
			case <-s.wake:
			case <-s.stop:
			}
		}
	}
}

// linger waits up to the flush interval for a fuller window.
func (s *Sink) linger() {
	t := time.NewTimer(s.cfg.flushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return
		case <-s.stop:
			return
		case <-s.wake:
			s.mu.Lock()
			n := len(s.queue)
			s.mu.Unlock()
			if n >= s.cfg.batchSize {
				return
			}
		}
	}
}

// shipQueue sends one window from the queue. What fails goes, with the
// rest of the queue, to the front of the spill file. It reports false
// when the spill file could not be written either.
func (s *Sink) shipQueue() bool {
	s.mu.Lock()
	n := min(len(s.queue), s.cfg.batchSize)
	win := slices.Clone(s.queue[:n])
	s.queue = slices.Delete(s.queue, 0, n)
	s.mu.Unlock()

	failed, cause := s.send(win)

	s.mu.Lock()
	defer s.mu.Unlock()
	stored := len(win) - len(failed)
	isFailed := map[*entry]bool{}
	for _, e := range failed {
		isFailed[e] = true
	}
	for _, e := range win {
		if !isFailed[e] {
			release(e)
		}
	}
	s.pending -= stored
	if stored > 0 {
		s.metrics.written.Add(float64(stored))
		s.metrics.lastWrite.SetToCurrentTime()
	}
	if len(failed) > 0 {
		s.lastErr = cause
		moved := append(failed, s.queue...)
		if err := s.spill.prepend(moved); err != nil {
			s.metrics.errors.WithLabelValues("spill").Inc()
			if !s.closed {
				// Keep them in memory and try again: dropping them
				// would cut the chain.
				s.log.Error("audit: cannot write the spill file; keeping events in memory", "error", err)
				s.queue = moved
				s.metrics.backlog.Set(float64(s.pending))
				return false
			}
			// Closing: they are lost, and their writers are told so.
			s.queue = nil
			s.pending -= len(moved)
			lost := fmt.Errorf("audit: elasticsearch: %d events neither in Elasticsearch (%v) nor in the spill file: %w", len(moved), cause, err)
			s.lastErr, s.lostErr = lost, lost
			s.log.Error("audit: events lost at close", "events", len(moved), "error", lost)
			for _, e := range moved {
				if e.w != nil {
					e.w.err = lost
				}
				release(e)
			}
		} else {
			s.queue = nil
			s.metrics.spilled.Add(float64(len(moved)))
			s.metrics.lastWrite.SetToCurrentTime()
			s.log.Warn("audit: Elasticsearch did not take events; spilled them for replay",
				"events", len(moved), "spill_file", s.spill.path, "error", cause)
			for _, e := range moved {
				release(e)
			}
		}
	}
	s.metrics.backlog.Set(float64(s.pending))
	return true
}

func release(e *entry) {
	if e.w == nil {
		return
	}
	e.w.n--
	if e.w.n == 0 {
		close(e.w.done)
	}
	e.w = nil
}

// replay sends the next records of the spill file and reports whether
// they all arrived, and whether some did.
func (s *Sink) replay() (done, progress bool) {
	s.mu.Lock()
	chunk, err := s.spill.read(s.cfg.batchSize, s.cfg.prefix)
	s.mu.Unlock()
	if err != nil {
		s.metrics.errors.WithLabelValues("spill").Inc()
		s.log.Error("audit: cannot read the spill file", "error", err)
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
		return false, false
	}
	if len(chunk) == 0 {
		return true, false
	}
	failed, cause := s.send(chunk)
	// The records before the first failure are in; the rest is sent
	// again next time (an overwrite by _id, not a duplicate).
	ok := len(chunk)
	if len(failed) > 0 {
		ok = slices.Index(chunk, failed[0])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok > 0 {
		if err := s.spill.advance(chunk[ok-1].end, ok); err != nil {
			s.metrics.errors.WithLabelValues("spill").Inc()
			s.log.Error("audit: cannot truncate the spill file", "error", err)
		}
		s.pending -= ok
		s.metrics.replayed.Add(float64(ok))
		s.metrics.written.Add(float64(ok))
		s.metrics.lastWrite.SetToCurrentTime()
		s.metrics.backlog.Set(float64(s.pending))
		if s.spill.count == 0 {
			s.log.Info("audit: spill file replayed to Elasticsearch", "spill_file", s.spill.path)
		}
	}
	if len(failed) > 0 {
		s.lastErr = cause
		return false, ok > 0
	}
	return true, true
}

// send writes entries through the BulkProcessor and returns those that
// did not make it, in order, with the reason. Rejected items (408, 429,
// 503, 507) are retried with backoff; a failed request is retried by the
// processor's backoff.
func (s *Sink) send(entries []*entry) ([]*entry, error) {
	todo := entries
	var failed []*entry
	var cause error
	wait := s.cfg.retryWait
	for attempt := 0; ; attempt++ {
		s.outMu.Lock()
		s.outcomes, s.commitErr = map[string]itemOutcome{}, nil
		s.outMu.Unlock()
		// A BulkProcessor per window: one keeps the requests of a failed
		// commit and sends them again with every later one, which the
		// sink does itself from the spill file; a processor that lives for
		// one window keeps memory bounded. It commits only at Close, the
		// one commit whose failure does not block its worker until a
		// health check passes.
		proc, err := s.client.BulkProcessor().Name("aether-audit").Workers(1).
			BulkActions(-1).BulkSize(-1).FlushInterval(0).
			Backoff(backoff{n: s.cfg.retries, wait: s.cfg.retryWait}).
			RetryItemStatusCodes(). // the sink retries items itself, knowing which failed
			After(s.after).Do(context.Background())
		if err != nil {
			failed = append(failed, todo...)
			slices.SortFunc(failed, func(a, b *entry) int { return cmp.Compare(a.seq, b.seq) })
			return failed, fmt.Errorf("audit: elasticsearch: %w", err)
		}
		for _, e := range todo {
			proc.Add(elastic.NewBulkIndexRequest().Index(e.index).Id(e.id).Doc(json.RawMessage(e.doc)))
		}
		_ = proc.Close() // commits, retrying with the backoff; the outcome comes through after
		s.outMu.Lock()
		outcomes, commitErr := s.outcomes, s.commitErr
		s.outMu.Unlock()
		var retry []*entry
		for _, e := range todo {
			o, ok := outcomes[e.id]
			switch {
			case ok && o.status >= 200 && o.status < 300:
			case ok && retryable(o.status):
				retry = append(retry, e)
				cause = fmt.Errorf("item %s rejected: %d %s", e.id, o.status, o.reason)
			case ok:
				s.metrics.errors.WithLabelValues("rejected").Inc()
				failed = append(failed, e)
				cause = fmt.Errorf("item %s refused: %d %s", e.id, o.status, o.reason)
			default:
				failed = append(failed, e)
				if commitErr != nil {
					cause = commitErr
				} else {
					cause = errors.New("no response for the item")
				}
			}
		}
		if commitErr != nil {
			s.metrics.errors.WithLabelValues(errorReason(commitErr)).Inc()
		}
		if len(retry) > 0 {
			s.metrics.errors.WithLabelValues("rejected").Inc()
		}
		if len(retry) == 0 || attempt >= s.cfg.retries {
			failed = append(failed, retry...)
			break
		}
		select {
		case <-time.After(wait):
		case <-s.stop:
		}
		wait *= 2
		todo = retry
	}
	if len(failed) == 0 {
		return nil, nil
	}
	slices.SortFunc(failed, func(a, b *entry) int { return cmp.Compare(a.seq, b.seq) })
	return failed, fmt.Errorf("audit: elasticsearch: %w", cause)
}

func retryable(status int) bool {
	return status == 408 || status == 429 || status == 503 || status == 507
}

// errorReason is the reason label of a failed request.
func errorReason(err error) string {
	var e *elastic.Error
	if errors.As(err, &e) {
		switch {
		case e.Details != nil && e.Details.Type == "node_unreachable":
			return "unreachable"
		case e.Status == 401:
			return "unauthorized"
		case e.Status == 403:
			return "forbidden"
		case e.Status == 429:
			return "rejected"
		case e.Status >= 500:
			return "server_error"
		}
		return "request"
	}
	if strings.Contains(err.Error(), "timeout") || errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "request"
}

// after is the BulkProcessor's After callback: it records each item's
// status by document id, or the request's error.
func (s *Sink) after(_ int64, _ []elastic.BulkableRequest, res *elastic.BulkResponse, err error) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if err != nil {
		s.commitErr = err
		return
	}
	if res == nil {
		return
	}
	for _, item := range res.Items {
		for _, r := range item {
			o := itemOutcome{status: r.Status}
			if r.Error != nil {
				o.reason = r.Error.Type + ": " + r.Error.Reason
			}
			s.outcomes[r.Id] = o
		}
	}
}

// backoff is the BulkProcessor's retry schedule for failed requests: n
// retries, waiting wait, then twice as long each time.
type backoff struct {
	n    int
	wait time.Duration
}

func (b backoff) Next(retry int) (time.Duration, bool) {
	if retry > b.n {
		return 0, false
	}
	return b.wait << (retry - 1), true
}
