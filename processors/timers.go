package processors

import (
	"sync"
	"time"

	"github.com/lovoo/goka/storage"

	"github.com/aetherai/aether/internal/engine"
)

// clock is a partition's event-time clock: the highest event time seen,
// moved on by the wall clock while the partition is idle (if enabled).
type clock struct {
	mu       sync.Mutex
	wm       time.Time
	lastSeen time.Time // wall time the watermark last moved
}

func (c *clock) observe(at time.Time, now time.Time) {
	c.mu.Lock()
	if at.After(c.wm) {
		c.wm = at
		c.lastSeen = now
	}
	c.mu.Unlock()
}

// at returns the watermark at wall time now.
func (c *clock) at(now time.Time, idleAdvance bool) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wm.IsZero() || !idleAdvance {
		return c.wm
	}
	return c.wm.Add(now.Sub(c.lastSeen))
}

// timerIndex holds, per partition, the earliest pending timer of every key
// that has one. It is rebuilt from the table after a restart and kept in
// step by every table write.
type timerIndex struct {
	mu    sync.Mutex
	parts map[int32]map[string]time.Time
}

func newTimerIndex() *timerIndex { return &timerIndex{parts: map[int32]map[string]time.Time{}} }

func (x *timerIndex) set(part int32, key string, at time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	m := x.parts[part]
	if at.IsZero() {
		if m != nil {
			delete(m, key)
		}
		return
	}
	if m == nil {
		m = map[string]time.Time{}
		x.parts[part] = m
	}
	m[key] = at
}

// due removes and returns the keys of part whose timer is due at wm.
func (x *timerIndex) due(part int32, wm time.Time) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var keys []string
	for k, at := range x.parts[part] {
		if !at.After(wm) {
			keys = append(keys, k)
			delete(x.parts[part], k)
		}
	}
	return keys
}

func (x *timerIndex) partitions() []int32 {
	x.mu.Lock()
	defer x.mu.Unlock()
	ps := make([]int32, 0, len(x.parts))
	for p := range x.parts {
		ps = append(ps, p)
	}
	return ps
}

func (x *timerIndex) drop(keep map[int32]bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for p := range x.parts {
		if !keep[p] {
			delete(x.parts, p)
		}
	}
}

func (x *timerIndex) len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for _, m := range x.parts {
		n += len(m)
	}
	return n
}

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
func loadTimers(st storage.Storage, part int32, idx *timerIndex, clk *clock) error {
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
		clk.observe(wm, now)
		if !next.IsZero() {
			idx.set(part, string(it.Key()), next)
		}
	}
	return it.Err()
}
