// Package codec turns typed values into bytes and back. A Codec[T] is
// declared once per stream or table and adapted to Goka's untyped codec in
// one place (Goka), so the rest of Aether stays typed.
package codec

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/lovoo/goka"
)

// Codec encodes and decodes values of one type. Implementations must be safe
// for concurrent use.
type Codec[T any] interface {
	Encode(v T) ([]byte, error)
	Decode(b []byte) (T, error)
	// Format names the wire format ("json", "binary/features.v1", ...). Two
	// codecs with the same Format and value type read each other's bytes;
	// topology validation relies on it to find writer/reader mismatches.
	Format() string
}

// Appender is implemented by codecs that can encode into a caller's
// buffer; the runtime uses it to write a table value without a copy.
type Appender[T any] interface {
	// Append appends the encoding of v to dst and returns the result.
	Append(dst []byte, v T) ([]byte, error)
}

// ID identifies a codec by its format and value type, for mismatch checks
// and descriptions, e.g. "json<event.Event>".
func ID[T any](c Codec[T]) string {
	return fmt.Sprintf("%s<%s>", c.Format(), reflect.TypeFor[T]().String())
}

type jsonCodec[T any] struct{}

// JSON encodes values with encoding/json.
func JSON[T any]() Codec[T] { return jsonCodec[T]{} }

func (jsonCodec[T]) Encode(v T) ([]byte, error) { return json.Marshal(v) }
func (jsonCodec[T]) Decode(b []byte) (T, error) {
	var v T
	err := json.Unmarshal(b, &v)
	return v, err
}
func (jsonCodec[T]) Format() string { return "json" }

type bytesCodec struct{}

// Bytes passes raw bytes through unchanged.
func Bytes() Codec[[]byte] { return bytesCodec{} }

func (bytesCodec) Encode(v []byte) ([]byte, error) { return v, nil }
func (bytesCodec) Decode(b []byte) ([]byte, error) { return b, nil }
func (bytesCodec) Format() string                  { return "bytes" }

type stringCodec struct{}

// String encodes strings as their UTF-8 bytes.
func String() Codec[string] { return stringCodec{} }

func (stringCodec) Encode(v string) ([]byte, error) { return []byte(v), nil }
func (stringCodec) Decode(b []byte) (string, error) { return string(b), nil }
func (stringCodec) Format() string                  { return "string" }

// Goka adapts a typed codec to Goka's codec, for emitters and views that
// applications create themselves.
func Goka[T any](c Codec[T]) goka.Codec { return gokaCodec[T]{c} }

type gokaCodec[T any] struct{ c Codec[T] }

func (g gokaCodec[T]) Encode(v any) ([]byte, error) {
	t, ok := v.(T)
	if !ok {
		return nil, fmt.Errorf("codec %s: cannot encode %T", ID(g.c), v)
	}
	return g.c.Encode(t)
}

func (g gokaCodec[T]) Decode(b []byte) (any, error) { return g.c.Decode(b) }
