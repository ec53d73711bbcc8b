package topology

import (
	"time"

	"github.com/aetherai/aether/codec"
)

// StreamSpec is what a stream declares, without its type: what topic
// administration, access control, retention and describe need.
type StreamSpec struct {
	Name string
	// Codec identifies the wire format and value type (codec.ID).
	Codec string
	// Retention is how long the topic keeps records; 0 means the broker's
	// default.
	Retention time.Duration
	// Personal lists the fields that carry personal data.
	Personal []string
	// Sealed says the values are sealed with a key per data subject, the
	// record key (crypto-shredding: destroying the key makes the subject's
	// records unreadable). The runtime seals and opens them when given a
	// sealer (processors.Seal).
	Sealed bool
	// Partitions is the declared partition count; 0 means the runtime's
	// default. Streams read by one processor must agree.
	Partitions int32
}

// Stream is a typed Kafka topic. Create it with NewStream; add it to a
// topology by declaring it as a Source or by using it in a processor.
type Stream[T any] struct {
	spec      StreamSpec
	codec     codec.Codec[T]
	eventTime func(T) time.Time
	eventID   func(T) string
	key       func(T) string
	validate  func(T) error
}

// StreamOption configures a stream.
type StreamOption interface{ applyStream(*StreamSpec) }

type streamOpt func(*StreamSpec)

func (f streamOpt) applyStream(s *StreamSpec) { f(s) }

// Retention declares how long the stream's topic keeps records.
func Retention(d time.Duration) StreamOption {
	return streamOpt(func(s *StreamSpec) { s.Retention = d })
}

// Personal declares fields of the stream's records that hold personal data.
func Personal(fields ...string) StreamOption {
	return streamOpt(func(s *StreamSpec) { s.Personal = append(s.Personal, fields...) })
}

// Sealed declares that the stream's values are sealed with a key per data
// subject: its records must be keyed by the subject (a user pseudonym), so
// that deleting the subject's key makes all of them unreadable.
func Sealed() StreamOption {
	return streamOpt(func(s *StreamSpec) { s.Sealed = true })
}

// Partitions declares the stream's partition count.
func Partitions(n int32) StreamOption {
	return streamOpt(func(s *StreamSpec) { s.Partitions = n })
}

// NewStream declares a stream of T values encoded with c.
func NewStream[T any](name string, c codec.Codec[T], opts ...StreamOption) *Stream[T] {
	s := &Stream[T]{spec: StreamSpec{Name: name}, codec: c}
	if c != nil {
		s.spec.Codec = codec.ID(c)
	}
	for _, o := range opts {
		o.applyStream(&s.spec)
	}
	return s
}

// EventTime declares how to read a record's event time. Without it, the
// Kafka record timestamp is used.
func (s *Stream[T]) EventTime(fn func(T) time.Time) *Stream[T] { s.eventTime = fn; return s }

// EventID declares the idempotency key of a record: a processor applies a
// record whose ID it has recently applied for the same key only once.
func (s *Stream[T]) EventID(fn func(T) string) *Stream[T] { s.eventID = fn; return s }

// KeyBy declares how a processor keys the records it emits to this stream.
// Without it, an emitted record keeps the key of the input record.
func (s *Stream[T]) KeyBy(fn func(T) string) *Stream[T] { s.key = fn; return s }

// Validate declares a check that decoded records must pass; a record that
// fails it is dead-lettered with the error as the reason.
func (s *Stream[T]) Validate(fn func(T) error) *Stream[T] { s.validate = fn; return s }

// Name is the stream's topic.
func (s *Stream[T]) Name() string { return s.spec.Name }

// Spec returns the stream's declaration.
func (s *Stream[T]) Spec() StreamSpec { return s.spec }

// Codec returns the stream's codec.
func (s *Stream[T]) Codec() codec.Codec[T] { return s.codec }

// Binding exposes the typed hooks of a stream to the runtime.
type Binding[T any] struct {
	Codec     codec.Codec[T]
	EventTime func(T) time.Time
	EventID   func(T) string
	Key       func(T) string
	Validate  func(T) error
}

// Binding returns the stream's typed hooks.
func (s *Stream[T]) Binding() Binding[T] {
	return Binding[T]{Codec: s.codec, EventTime: s.eventTime, EventID: s.eventID, Key: s.key, Validate: s.validate}
}
