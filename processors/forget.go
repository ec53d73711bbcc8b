package processors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"

	"github.com/aetherai/aether/internal/engine"
	"github.com/aetherai/aether/topology"
)

// Forgetting a key (a user's deletion request, see package controls/forget)
// happens inside the processors, because a tombstone written to a table
// from outside would be overwritten by the running processor's next write
// of the state it holds.
//
// A forget control record is a record on an input topic of the topology,
// keyed by the key to forget, with the header
//
//	aether-control: forget
//
// and an empty value (SendForget writes one). A processor that receives
// one does not decode it as an event and never dead-letters it; in the
// key's partition goroutine, after every earlier record of the key, it
//
//   - deletes the key's table value (ctx.Delete: a tombstone in the table
//     topic and the value gone from local storage) and its pending timers,
//     when it has a table;
//   - calls Forget on each of its sinks that implements topology.Forgetter
//     (the Redis cache deletes the user's keys), with the sink retries;
//   - forwards the control record, with the same key and header, to each
//     of its output streams, so that downstream processors forget the key
//     too;
//   - counts it as outcome "forgotten" in aether_records_total (and, with
//     Audit, in the partition's attestation) and notes the key for
//     WaitForgotten.
//
// Control records are keyed like the events, so a topology that re-keys
// between processors (a key that is not the user id) forgets the same key
// downstream, not the re-keyed ones.
const (
	// HeaderControl marks a control record; its value says which.
	HeaderControl = "aether-control"
	// ControlForget is the HeaderControl value of a forget control record.
	ControlForget = "forget"
	// OutcomeForgotten is the aether_records_total outcome of a forget
	// control record.
	OutcomeForgotten = "forgotten"
)

// IsForget reports whether a consumed record is a forget control record
// (for scans of topics that must not count control records as data).
func IsForget(m *sarama.ConsumerMessage) bool {
	for _, h := range m.Headers {
		if h != nil && string(h.Key) == HeaderControl {
			return string(h.Value) == ControlForget
		}
	}
	return false
}

// forget handles a forget control record and reports whether the record
// was one; handle calls it for every record with an empty value (events
// are never empty), before decoding.
func (p *proc) forget(ctx goka.Context) bool {
	if string(ctx.Headers()[HeaderControl]) != ControlForget {
		return false
	}
	key, topic, part := ctx.Key(), string(ctx.Topic()), ctx.Partition()
	p.forgetKey(ctx)
	if p.node.Stateful() {
		ctx.Delete()
		p.parts.get(part).setTimer(key, time.Time{})
	}
	for _, f := range engine.SinkForgetters(p.node) {
		n := 0
		err := p.writeSink(ctx.Context(), func(c context.Context) error {
			var err error
			n, err = f.Forget(c, key)
			return err
		})
		if err != nil {
			// Not dead-lettered: the control record holds no data to
			// retry from. The deletion request checks the store itself.
			p.r.metrics.sinkErrors.WithLabelValues(p.spec.Name).Inc()
			p.log.Error("sink could not forget a key", "sink", f.Name, "key_hash", keyHash(key), "err", err)
			continue
		}
		p.log.Info("sink forgot a key", "sink", f.Name, "key_hash", keyHash(key), "items", n)
	}
	hdr := goka.WithCtxEmitHeaders(goka.Headers{HeaderControl: []byte(ControlForget)})
	for _, out := range p.spec.Outputs {
		ctx.Emit(goka.Stream(out.Name), key, []byte{}, hdr)
	}
	now := time.Now()
	p.r.metrics.records.WithLabelValues(p.spec.Name, topic, OutcomeForgotten).Inc()
	p.pm.forgotten.add(key, now)
	p.aud.forgotten(ctx, now) // the control record's offset, in the attestations
	p.log.Info("key forgotten", "topic", topic, "partition", part, "offset", ctx.Offset(), "key_hash", keyHash(key))
	return true
}

// forgetLog remembers when a processor last forgot each key, for
// WaitForgotten; entries older than forgetLogTTL are dropped.
type forgetLog struct {
	mu      sync.Mutex
	at      map[string]time.Time
	changed chan struct{} // closed and replaced on every add
}

const forgetLogTTL = time.Hour

func newForgetLog() *forgetLog {
	return &forgetLog{at: map[string]time.Time{}, changed: make(chan struct{})}
}

func (l *forgetLog) add(key string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, t := range l.at {
		if at.Sub(t) > forgetLogTTL {
			delete(l.at, k)
		}
	}
	l.at[key] = at
	close(l.changed)
	l.changed = make(chan struct{})
}

// since reports whether key was forgotten at or after t, and a channel
// closed at the next add.
func (l *forgetLog) since(key string, t time.Time) (bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.at[key]
	return ok && !at.Before(t), l.changed
}

// Forgotten returns how many forget control records the named processor
// has handled in this runtime.
func (r *Runtime) Forgotten(processor string) uint64 {
	var n uint64
	for _, p := range r.procs {
		if p.spec.Name != processor {
			continue
		}
		for _, in := range p.spec.Inputs {
			n += uint64(counterValue(r.metrics.records.WithLabelValues(processor, in.Name, OutcomeForgotten)))
		}
	}
	return n
}

// WaitForgotten blocks until every processor of this runtime that a
// forget control record sent to topic reaches (directly, or forwarded
// through outputs) has forgotten key at or after since, and returns the
// names of those processors. Take since before sending the record.
func (r *Runtime) WaitForgotten(ctx context.Context, topic, key string, since time.Time) ([]string, error) {
	reached := map[string]bool{topic: true}
	var procs []*proc
	for changed := true; changed; {
		changed = false
		for _, sp := range r.topo.Processors() {
			if !slices.ContainsFunc(sp.Inputs, func(in topology.StreamSpec) bool { return reached[in.Name] }) {
				continue
			}
			for _, out := range sp.Outputs {
				if !reached[out.Name] {
					reached[out.Name], changed = true, true
				}
			}
		}
	}
	var names []string
	for _, p := range r.procs {
		if slices.ContainsFunc(p.spec.Inputs, func(in topology.StreamSpec) bool { return reached[in.Name] }) {
			procs = append(procs, p)
			names = append(names, p.spec.Name)
		}
	}
	if len(procs) == 0 {
		return nil, fmt.Errorf("processors: no processor of this runtime consumes %q or what follows it", topic)
	}
	for _, p := range procs {
		for {
			done, changed := p.pm.forgotten.since(key, since)
			if done {
				break
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return names, fmt.Errorf("processors: waiting for processor %q to forget the key: %w", p.spec.Name, ctx.Err())
			}
		}
	}
	return names, nil
}

// SendForget writes a forget control record for key to topic (an input of
// the topology: the processors reading it forget the key and forward the
// record downstream) and waits for the broker's acknowledgement. It is
// partitioned like Emitter's records, so it follows every earlier record
// of the key.
func SendForget(ctx context.Context, brokers []string, topic, key string, opts ...ClientOption) error {
	if key == "" {
		return errors.New("processors: forget: empty key")
	}
	c, err := clientDefaults(opts, "aether-forget")
	if err != nil {
		return err
	}
	e, err := c.emitter(brokers, topic)
	if err != nil {
		return fmt.Errorf("processors: forget: emitter %s: %w", topic, err)
	}
	done := make(chan error, 1)
	go func() {
		done <- e.EmitSyncWithHeaders(key, []byte{}, goka.Headers{HeaderControl: []byte(ControlForget)})
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if ferr := e.Finish(); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("processors: forget: send to %s: %w", topic, err)
	}
	return nil
}

// Has reports whether the view holds a value for key, without decoding it
// (a deletion request waits until the feature store no longer has the
// user).
func (v *View[S]) Has(key string) (bool, error) {
	raw, err := v.v.Get(key)
	return raw != nil, err
}
