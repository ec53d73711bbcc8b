// Package wire reads the varint encodings of Aether's binary codecs (the
// session and feature state, the feature record). Each codec supplies its
// own errors, so that they wrap its package's sentinel.
package wire

import (
	"encoding/binary"
	"math"
)

// Reader decodes from B, remembering the first error in Err, so that a
// decoder reads every field and checks Err once at the end.
type Reader struct {
	B   []byte
	Err error
	// Truncated is the error for input that ends inside a value, Overflow
	// for a varint or count too large for its type.
	Truncated, Overflow error
}

// Fail records err unless an error was recorded before.
func (r *Reader) Fail(err error) {
	if r.Err == nil {
		r.Err = err
	}
}

// Uvarint reads an unsigned varint; the one-byte case, by far the most
// common, is inlined.
func (r *Reader) Uvarint() uint64 {
	if b := r.B; len(b) > 0 && b[0] < 0x80 {
		r.B = b[1:]
		return uint64(b[0])
	}
	return r.uvarintSlow()
}

func (r *Reader) uvarintSlow() uint64 {
	v, n := binary.Uvarint(r.B)
	if n <= 0 {
		r.failVarint(n)
		return 0
	}
	r.B = r.B[n:]
	return v
}

// Varint reads a signed (zig-zag) varint.
func (r *Reader) Varint() int64 {
	if b := r.B; len(b) > 0 && b[0] < 0x80 {
		r.B = b[1:]
		return int64(b[0]>>1) ^ -int64(b[0]&1)
	}
	return r.varintSlow()
}

func (r *Reader) varintSlow() int64 {
	v, n := binary.Varint(r.B)
	if n <= 0 {
		r.failVarint(n)
		return 0
	}
	r.B = r.B[n:]
	return v
}

func (r *Reader) failVarint(n int) {
	if n == 0 {
		r.Fail(r.Truncated)
	} else {
		r.Fail(r.Overflow)
	}
}

// Uint32 reads an unsigned varint that must fit 32 bits.
func (r *Reader) Uint32() uint32 {
	v := r.Uvarint()
	if v > math.MaxUint32 {
		r.Fail(r.Overflow)
		return 0
	}
	return uint32(v)
}
