package engine

import "testing"

// StateOffset finds the state where decodeEnvelope does, and refuses what
// it refuses.
func TestStateOffset(t *testing.T) {
	e := envelope{names: []string{"a", "b"}, wm: 1_700_000_000_000,
		fences: []fence{{1, 10}, {2, 20}}, idHead: 1, ids: []uint32{7, 8, 9},
		timers: []timer{{"b", 1_700_000_060_000}}, state: []byte("the state")}
	b := e.appendTo(nil)
	off, err := StateOffset(b)
	if err != nil || string(b[off:]) != "the state" {
		t.Fatalf("offset %d (%q), err %v", off, b[off:], err)
	}
	var d envelope
	for cut := 1; cut < off; cut++ {
		_, err1 := StateOffset(b[:cut])
		err2 := decodeEnvelope(b[:cut], &d, nil)
		if (err1 == nil) != (err2 == nil) {
			t.Errorf("cut at %d: StateOffset %v, decodeEnvelope %v", cut, err1, err2)
		}
	}
	if off, err := StateOffset(nil); off != 0 || err != nil {
		t.Errorf("empty value: %d, %v", off, err)
	}
	if _, err := StateOffset([]byte{9}); err == nil {
		t.Error("another version accepted")
	}
}
