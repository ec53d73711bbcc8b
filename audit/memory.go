package audit

import (
	"context"
	"sync"
)

// MemorySink keeps events in memory, for tests. It validates like every
// sink.
type MemorySink struct {
	mu     sync.Mutex
	events []Event
	closed bool
}

var _ Sink = (*MemorySink)(nil)

// NewMemory returns an empty memory sink.
func NewMemory() *MemorySink { return &MemorySink{} }

// Write validates all events, then stores them in order.
func (m *MemorySink) Write(ctx context.Context, events ...Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, e := range events {
		if err := e.Validate(); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for _, e := range events {
		m.events = append(m.events, normalize(e))
	}
	return nil
}

// Events returns a copy of the stored events in write order; it works after
// Close too.
func (m *MemorySink) Events() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Event, len(m.events))
	for i, e := range m.events {
		out[i] = normalize(e)
	}
	return out
}

// Close marks the sink closed; closing twice is a no-op.
func (m *MemorySink) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
