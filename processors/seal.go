package processors

import (
	"context"
	"errors"
	"fmt"

	"github.com/lovoo/goka"

	"github.com/aetherai/aether/internal/engine"
	"github.com/aetherai/aether/topology"
)

// Sealer seals and opens the values of sealed streams (topology.Sealed)
// with the key of each record's data subject, the record key. Deleting a
// subject's key makes every record sealed with it unreadable, which is how
// a user is erased from topics that cannot delete single records
// (crypto-shredding). keyring.Keyring implements it.
type Sealer interface {
	// AppendSeal appends plain, sealed with subject's key, to dst.
	AppendSeal(ctx context.Context, dst []byte, subject string, plain []byte) ([]byte, error)
	// AppendOpen appends the value sealed holds to dst.
	AppendOpen(ctx context.Context, dst []byte, subject string, sealed []byte) ([]byte, error)
	// Forget drops any copy of subject's key held in memory; processors
	// call it when they handle the subject's forget control record.
	Forget(subject string)
	// Retryable reports whether an error of Seal or Open may pass on a
	// retry (the key store unreachable), as opposed to a value that can
	// never be opened (not sealed, tampered, or its key destroyed).
	Retryable(err error) bool
	// Shredded reports whether an error of Open means the subject's key
	// is gone (deleted, or expired unused): the value is as good as
	// deleted.
	Shredded(err error) bool
	// NotSealed reports whether an error of Open means the value was
	// never sealed (written in clear, say before sealing was turned on).
	NotSealed(err error) bool
}

// Seal makes the runtime open the values of sealed input streams before
// decoding them and seal the values it emits to sealed streams. A sealed
// record that cannot be opened is dead-lettered with stage "open" and its
// bytes as they were; a record whose output cannot be sealed, with stage
// "seal", and nothing of it is applied. Table state written in clear
// (before sealing was turned on) is read as it is and sealed on the key's
// next write. Key-store errors are retried as sink writes are (3 more
// times, 50 ms, 100 ms, 200 ms apart). Without Seal, sealed streams carry
// their values in clear and New logs a warning naming them.
func Seal(s Sealer) Option {
	return optionFunc(func(c *config) error {
		if s == nil {
			return errors.New("seal: nil sealer")
		}
		c.sealer = s
		return nil
	})
}

// ClientSeal makes an Emitter seal the values it sends to a sealed stream,
// and a View open the state of a sealed table, with the record key as the
// subject.
func ClientSeal(s Sealer) ClientOption {
	return clientOpt(func(c *clientConfig) error {
		if s == nil {
			return errors.New("seal: nil sealer")
		}
		c.sealer = s
		return nil
	})
}

// sealedTopics lists the names of sealed streams among specs.
func sealedTopics(specs []topology.StreamSpec) map[string]bool {
	m := map[string]bool{}
	for _, s := range specs {
		if s.Sealed {
			m[s.Name] = true
		}
	}
	return m
}

// retrySealer runs a Seal or Open with withRetries. A final failure is
// counted in aether_seal_errors_total{op}, op "shredded" when
// the subject's key is gone (expected after a deletion: not an alert).
func (p *proc) retrySealer(ctx context.Context, op string, fn func(context.Context) ([]byte, error)) ([]byte, error) {
	var out []byte
	err := p.withRetries(ctx, p.sealer.Retryable, func(ctx context.Context) error {
		var err error
		out, err = fn(ctx)
		return err
	})
	if err != nil {
		out = nil
	}
	switch {
	case err != nil && p.sealer.Shredded(err):
		p.r.metrics.sealErrors.WithLabelValues(p.spec.Name, "shredded").Inc()
	case err != nil:
		p.r.metrics.sealErrors.WithLabelValues(p.spec.Name, op).Inc()
	}
	return out, err
}

// sealedLookup reports whether the table the operators look up as name is
// sealed and there is a sealer to open it.
func (p *proc) sealedLookup(name string) bool {
	if p.sealer == nil {
		return false
	}
	for _, l := range p.spec.Lookups {
		if l.Name == name {
			return l.Sealed
		}
	}
	return false
}

// open returns rec with its value opened when its topic is sealed, and the
// key's table value with its state opened when the table is sealed (the
// envelope alone when the state's key is gone: see openTableValue); or the
// failure to dead-letter the record with.
func (p *proc) open(ctx context.Context, rec engine.Record, table []byte) (engine.Record, []byte, *engine.Failure) {
	if p.sealedIn[rec.Topic] {
		v, err := p.retrySealer(ctx, "open", func(ctx context.Context) ([]byte, error) { return p.sealer.AppendOpen(ctx, nil, rec.Key, rec.Value) })
		if err != nil {
			return rec, nil, &engine.Failure{Stage: "open", Err: err}
		}
		rec.Value = v
	}
	if p.sealedTable {
		v, shredded, err := p.openTable(ctx, rec.Key, table)
		if err != nil {
			return rec, nil, &engine.Failure{Stage: "open", Err: fmt.Errorf("table value: %w", err)}
		}
		if shredded {
			// The key expired while the user was away (a deletion
			// tombstones the value too): the state is gone, the
			// envelope's offsets and event ids stay.
			p.log.Info("table state sealed with a key that is gone: starting afresh", "key_hash", keyHash(rec.Key))
		}
		table = v
	}
	return rec, table, nil
}

// openTable is openTableValue with the retries and metrics of the runtime.
func (p *proc) openTable(ctx context.Context, key string, table []byte) (v []byte, shredded bool, err error) {
	if len(table) == 0 {
		return table, false, nil
	}
	v, err = p.retrySealer(ctx, "open", func(ctx context.Context) ([]byte, error) { return openState(ctx, p.sealer, key, table) })
	if err != nil && p.sealer.Shredded(err) {
		v, err = stateless(table)
		return v, true, err
	}
	return v, false, err
}

// openLookup is openTableValue with the retries and metrics of the
// runtime, for the lookups of a processor's operators.
func (p *proc) openLookup(ctx context.Context, key string, table []byte) ([]byte, error) {
	v, shredded, err := p.openTable(ctx, key, table)
	if shredded {
		return nil, nil
	}
	return v, err
}

// openTableValue opens the state in a sealed table's value for the views:
// a value whose key is gone (the user deleted, or away longer than the key
// lives) is as good as deleted, and nil is returned for it.
func openTableValue(ctx context.Context, s Sealer, key string, table []byte) ([]byte, error) {
	if len(table) == 0 {
		return table, nil
	}
	v, err := openState(ctx, s, key, table)
	if err != nil && s.Shredded(err) {
		return nil, nil
	}
	return v, err
}

// stateless is a table value without its state: the envelope alone.
func stateless(table []byte) ([]byte, error) {
	off, err := engine.StateOffset(table)
	return table[:off:off], err
}

// seal seals, in place, res's emits to sealed streams and, when the table
// is sealed, the state in its table value.
func (p *proc) seal(ctx context.Context, key string, res *engine.Result) *engine.Failure {
	for i, e := range res.Emits {
		if !p.sealedOut[e.Topic] {
			continue
		}
		v, err := p.retrySealer(ctx, "seal", func(ctx context.Context) ([]byte, error) { return p.sealer.AppendSeal(ctx, nil, e.Key, e.Value) })
		if err != nil {
			return &engine.Failure{Stage: "seal", Err: fmt.Errorf("output to %s: %w", e.Topic, err)}
		}
		res.Emits[i].Value = v
	}
	if p.sealedTable && len(res.Table) > 0 {
		v, err := p.retrySealer(ctx, "seal", func(ctx context.Context) ([]byte, error) { return sealState(ctx, p.sealer, key, res.Table) })
		if err != nil {
			return &engine.Failure{Stage: "seal", Err: fmt.Errorf("table value: %w", err)}
		}
		res.Table = v
	}
	return nil
}

// sealState seals the operator state inside a table value. The envelope's
// bookkeeping before it (offsets, event-id hashes, timers) stays clear, so
// that the timer index is rebuilt at recovery without the key store.
func sealState(ctx context.Context, s Sealer, key string, table []byte) ([]byte, error) {
	off, err := engine.StateOffset(table)
	if err != nil || off == len(table) {
		return table, err
	}
	return s.AppendSeal(ctx, table[:off:off], key, table[off:])
}

// openState opens the state that sealState sealed. State in clear,
// written before the table was sealed, is returned as it is: the next
// write of the key seals it. (A value in clear on a sealed stream is still
// refused: see open.)
func openState(ctx context.Context, s Sealer, key string, table []byte) ([]byte, error) {
	off, err := engine.StateOffset(table)
	if err != nil || off == len(table) {
		return table, err
	}
	v, err := s.AppendOpen(ctx, table[:off:off], key, table[off:])
	if err != nil && s.NotSealed(err) {
		return table, nil
	}
	return v, err
}

// forgetKey drops the subject's key from the sealer's memory.
func (p *proc) forgetKey(ctx goka.Context) {
	if p.sealer != nil {
		p.sealer.Forget(ctx.Key())
	}
}
