package processors

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/lovoo/goka/storage"

	"github.com/aetherai/aether/internal/engine"
)

// partition is the runtime's per-partition state outside the table: the
// event-time clock and the index of pending timers. Only the partition's
// Goka goroutine and the sweeper touch it, so its mutex is rarely contended.
type partition struct {
	// wmMillis mirrors wm for the hot path, which reads it on every record.
	wmMillis atomic.Int64
	// table is the partition's table storage, read directly on the hot
	// path (Goka's ctx.Value would box every value).
	table    atomic.Pointer[storageRef]
	mu       sync.Mutex
	wm       time.Time // highest event time seen
	lastSeen time.Time // wall time the watermark last moved
	// timers holds the earliest pending timer of every key that has one.
	timers map[string]time.Time
}

func (p *partition) observe(at, now time.Time) {
	p.mu.Lock()
	p.advance(at, now)
	p.mu.Unlock()
}

// advance moves the watermark to at if it is later; p.mu is held.
func (p *partition) advance(at, now time.Time) {
	if at.After(p.wm) {
		p.wm = at
		p.lastSeen = now
		p.wmMillis.Store(at.UnixMilli())
	}
}

// eventTime returns the watermark without idle advance, without locking.
func (p *partition) eventTime() time.Time {
	if ms := p.wmMillis.Load(); ms != 0 {
		return time.UnixMilli(ms).UTC()
	}
	return time.Time{}
}

// watermark returns the partition's event-time clock at wall time now:
// with idleAdvance, time passed since the watermark last moved is added.
func (p *partition) watermark(now time.Time, idleAdvance bool) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.wm.IsZero() || !idleAdvance {
		return p.wm
	}
	return p.wm.Add(now.Sub(p.lastSeen))
}

// record notes, after a record of key was handled, its event time (zero
// for none) and the key's earliest timer (zero for none), under one lock.
func (p *partition) record(key string, eventTime, nextTimer, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.advance(eventTime, now)
	p.indexTimer(key, nextTimer)
}

// setTimer records key's earliest timer; zero removes it.
func (p *partition) setTimer(key string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.indexTimer(key, at)
}

// indexTimer sets or (for zero) removes key's timer; p.mu is held.
func (p *partition) indexTimer(key string, at time.Time) {
	if at.IsZero() {
		delete(p.timers, key)
		return
	}
	if p.timers == nil {
		p.timers = map[string]time.Time{}
	}
	p.timers[key] = at
}

// due removes and returns the keys whose timer is due at wm.
func (p *partition) due(wm time.Time) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var keys []string
	for k, at := range p.timers {
		if !at.After(wm) {
			keys = append(keys, k)
			delete(p.timers, k)
		}
	}
	return keys
}

// partitions holds the partition states of one processor.
type partitions struct{ m sync.Map } // int32 -> *partition

func (ps *partitions) get(part int32) *partition {
	if p, ok := ps.m.Load(part); ok {
		return p.(*partition)
	}
	p, _ := ps.m.LoadOrStore(part, &partition{})
	return p.(*partition)
}

// keep forgets the timers of partitions not in keep (revoked in a
// rebalance): their new owner loads them from its table. Clocks stay, as
// they only ever move forward.
func (ps *partitions) keep(keep map[int32]bool) {
	ps.m.Range(func(k, v any) bool {
		if !keep[k.(int32)] {
			p := v.(*partition)
			p.mu.Lock()
			p.timers = nil
			p.mu.Unlock()
		}
		return true
	})
}

func (ps *partitions) each(fn func(int32, *partition)) {
	ps.m.Range(func(k, v any) bool {
		fn(k.(int32), v.(*partition))
		return true
	})
}

type storageRef struct{ storage.Storage }

// recoveringStorage wraps a table partition's storage so that, once Goka
// has recovered it from the table topic, the timers and watermark stored in
// its values are loaded into the runtime before any record is processed.
type recoveringStorage struct {
	storage.Storage
	onRecovered func(storage.Storage)
}

func (s *recoveringStorage) MarkRecovered() error {
	if err := s.Storage.MarkRecovered(); err != nil {
		return err
	}
	s.onRecovered(s.Storage)
	return nil
}

// loadTimers scans a recovered partition's values.
func loadTimers(st storage.Storage, p *partition) error {
	it, err := st.Iterator()
	if err != nil {
		return err
	}
	defer it.Release()
	now := time.Now()
	for it.Next() {
		v, err := it.Value()
		if err != nil {
			return err
		}
		next, wm, err := engine.Timers(v)
		if err != nil {
			continue // reported when the key is next processed
		}
		p.observe(wm, now)
		if !next.IsZero() {
			p.setTimer(string(it.Key()), next)
		}
	}
	return it.Err()
}
