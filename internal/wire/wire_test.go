package wire

import (
	"encoding/binary"
	"errors"
	"testing"
)

var errShort, errBig = errors.New("short"), errors.New("big")

func TestReader(t *testing.T) {
	var b []byte
	for _, v := range []int64{0, -1, 63, -64, 1 << 40} {
		b = binary.AppendVarint(b, v)
	}
	b = binary.AppendUvarint(b, 1<<33)
	r := Reader{B: b, Truncated: errShort, Overflow: errBig}
	for _, want := range []int64{0, -1, 63, -64, 1 << 40} {
		if got := r.Varint(); got != want {
			t.Fatalf("Varint = %d, want %d", got, want)
		}
	}
	if got := r.Uint32(); got != 0 || r.Err != errBig {
		t.Fatalf("Uint32 of 2^33 = %d, %v; want 0, overflow", got, r.Err)
	}
	r = Reader{B: []byte{0x80}, Truncated: errShort, Overflow: errBig}
	if r.Uvarint(); r.Err != errShort {
		t.Fatalf("truncated varint: %v", r.Err)
	}
	r.Fail(errBig)
	if r.Err != errShort {
		t.Fatal("the first error stays")
	}
}
