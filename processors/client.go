package processors

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"

	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/topology"
)

// ClientOption configures an Emitter or a View.
type ClientOption interface{ applyClient(*clientConfig) error }

type clientConfig struct {
	sarama   func(string) *sarama.Config
	clientID string
	sealer   Sealer
}

type clientOpt func(*clientConfig) error

func (f clientOpt) applyClient(c *clientConfig) error { return f(c) }

// ClientSarama sets the sarama configuration of an emitter or view.
func ClientSarama(fn func(clientID string) *sarama.Config) ClientOption {
	return clientOpt(func(c *clientConfig) error {
		if fn == nil {
			return errors.New("sarama: nil config function")
		}
		c.sarama = fn
		return nil
	})
}

// ClientID sets the Kafka client ID.
func ClientID(id string) ClientOption {
	return clientOpt(func(c *clientConfig) error { c.clientID = id; return nil })
}

func clientDefaults(opts []ClientOption, id string) (clientConfig, error) {
	c := clientConfig{sarama: broker.SaramaConfig, clientID: id}
	for _, o := range opts {
		if err := o.applyClient(&c); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (c clientConfig) topicManager() goka.TopicManagerBuilder {
	return goka.TopicManagerBuilderWithConfig(c.sarama(c.clientID), broker.GokaTopicManagerConfig())
}

// emitter returns a raw Goka emitter to topic with c's client ID and
// sarama configuration.
func (c clientConfig) emitter(brokers []string, topic string) (*goka.Emitter, error) {
	return goka.NewEmitter(brokers, goka.Stream(topic), rawCodec,
		goka.WithEmitterClientID(c.clientID),
		goka.WithEmitterProducerBuilder(goka.ProducerBuilderWithConfig(c.sarama(c.clientID))),
		goka.WithEmitterTopicManagerBuilder(c.topicManager()))
}

// Emitter produces typed records to a stream, keyed, encoded with the
// stream's codec, and sealed with the key's subject key when the stream is
// sealed and the emitter has a sealer (ClientSeal).
type Emitter[T any] struct {
	stream *topology.Stream[T]
	e      *goka.Emitter
	sealer Sealer // nil: values in clear
}

// NewEmitter returns an emitter for stream.
func NewEmitter[T any](brokers []string, stream *topology.Stream[T], opts ...ClientOption) (*Emitter[T], error) {
	c, err := clientDefaults(opts, "aether-emitter-"+stream.Name())
	if err != nil {
		return nil, err
	}
	e, err := c.emitter(brokers, stream.Name())
	if err != nil {
		return nil, fmt.Errorf("emitter %s: %w", stream.Name(), err)
	}
	em := &Emitter[T]{stream: stream, e: e}
	if stream.Spec().Sealed {
		em.sealer = c.sealer
	}
	return em, nil
}

// encode encodes v, sealed for key's subject when the emitter seals.
func (e *Emitter[T]) encode(ctx context.Context, key string, v T) ([]byte, error) {
	b, err := e.stream.Codec().Encode(v)
	if err != nil {
		return nil, fmt.Errorf("emitter %s: encode: %w", e.stream.Name(), err)
	}
	if e.sealer == nil {
		return b, nil
	}
	if b, err = e.sealer.AppendSeal(ctx, nil, key, b); err != nil {
		return nil, fmt.Errorf("emitter %s: seal: %w", e.stream.Name(), err)
	}
	return b, nil
}

// Emit sends v under key without waiting for the broker's acknowledgement;
// Finish waits for all of them.
func (e *Emitter[T]) Emit(key string, v T) error {
	b, err := e.encode(context.Background(), key, v)
	if err != nil {
		return err
	}
	return e.EmitRaw(key, b)
}

// EmitRaw sends bytes as they are, never sealed: for replaying dead letters
// (which keep the bytes as they were, sealed or not) or injecting bad input.
func (e *Emitter[T]) EmitRaw(key string, b []byte) error {
	_, err := e.e.Emit(key, b)
	return err
}

// EmitSync sends v and waits for the acknowledgement.
func (e *Emitter[T]) EmitSync(key string, v T) error {
	b, err := e.encode(context.Background(), key, v)
	if err != nil {
		return err
	}
	return e.e.EmitSync(key, b)
}

// Keyed is one record to emit.
type Keyed[T any] struct {
	Key   string
	Value T
}

// EmitAll sends every record and waits until the broker has acknowledged
// all of them; it returns the first error. Records are sent in order, so
// records of one key keep their order.
func (e *Emitter[T]) EmitAll(ctx context.Context, recs []Keyed[T]) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	for _, r := range recs {
		b, err := e.encode(ctx, r.Key, r.Value)
		if err != nil {
			fail(err)
			break
		}
		p, err := e.e.Emit(r.Key, b)
		if err != nil {
			fail(err)
			break
		}
		wg.Add(1)
		p.Then(func(err error) {
			if err != nil {
				fail(err)
			}
			wg.Done()
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return first
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Finish waits for every pending record and closes the emitter.
func (e *Emitter[T]) Finish() error { return e.e.Finish() }

// View is a read-only, continuously updated local copy of a processor's
// table (for example the online feature store), decoded to S.
type View[S any] struct {
	table  *topology.Table[S]
	v      *goka.View
	sealer Sealer // opens the state of a sealed table (ClientSeal)
}

// NewView returns a view of table; call Run to keep it updated.
func NewView[S any](brokers []string, table *topology.Table[S], opts ...ClientOption) (*View[S], error) {
	c, err := clientDefaults(opts, "aether-view-"+table.Name())
	if err != nil {
		return nil, err
	}
	v, err := goka.NewView(brokers, goka.Table(table.Name()), rawCodec,
		goka.WithViewClientID(c.clientID),
		goka.WithViewStorageBuilder(storage.MemoryBuilder()),
		goka.WithViewConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(c.sarama(c.clientID))),
		goka.WithViewTopicManagerBuilder(c.topicManager()))
	if err != nil {
		return nil, fmt.Errorf("view %s: %w", table.Name(), err)
	}
	view := &View[S]{table: table, v: v}
	if table.TableSpec().Sealed {
		view.sealer = c.sealer
	}
	return view, nil
}

// Run keeps the view updated until ctx is cancelled.
func (v *View[S]) Run(ctx context.Context) error { return v.v.Run(ctx) }

// Recovered reports whether the view has caught up with the table topic.
func (v *View[S]) Recovered() bool { return v.v.Recovered() }

// Get returns key's value; ok is false if the key has none.
func (v *View[S]) Get(key string) (s S, ok bool, err error) {
	raw, err := v.v.Get(key)
	if err != nil || raw == nil {
		return s, false, err
	}
	b := raw.([]byte)
	if v.sealer != nil {
		if b, err = openTableValue(context.Background(), v.sealer, key, b); err != nil || b == nil {
			if err != nil {
				err = fmt.Errorf("view %s: %w", v.table.Name(), err)
			}
			return s, false, err
		}
	}
	s, err = v.table.Decode(b)
	return s, err == nil, err
}
