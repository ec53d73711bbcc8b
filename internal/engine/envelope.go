package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"
)

// The table value of a stateful processor is an envelope around the
// operators' state. The envelope carries what makes state updates
// effectively-once and timers durable, so it is written atomically with the
// state in one table record:
//
//	version   byte (1)
//	watermark varint unix ms: the partition's watermark when last written,
//	          so a restarted runtime can restore its event-time clock
//	fences    uvarint n, then n x (uvarint topic hash, varint last applied offset)
//	ids       uvarint ring head, uvarint n, then n x fixed32 event-id hash
//	timers    uvarint n, then n x (uvarint operator index in the chain,
//	          varint deadline ms - watermark ms)
//	state     the rest: the state codec's bytes
const envelopeVersion = 1

// ErrEnvelope is wrapped by errors about corrupt table values.
var ErrEnvelope = errors.New("corrupt table envelope")

type fence struct {
	topic  uint32
	offset int64
}

type timer struct {
	op       string
	deadline int64 // unix ms
}

type envelope struct {
	// names are the chain's operators: timers are stored by index.
	names  []string
	wm     int64
	fences []fence
	idHead int
	ids    []uint32
	timers []timer
	state  []byte
}

func topicHash(topic string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(topic))
	return h.Sum32()
}

func idHash(id string) uint32 {
	// FNV-1a inline: hashing per record must not allocate.
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return h
}

func (e *envelope) fenceOf(topic uint32) (int64, bool) {
	for _, f := range e.fences {
		if f.topic == topic {
			return f.offset, true
		}
	}
	return 0, false
}

func (e *envelope) setFence(topic uint32, offset int64) {
	for i := range e.fences {
		if e.fences[i].topic == topic {
			e.fences[i].offset = offset
			return
		}
	}
	e.fences = append(e.fences, fence{topic, offset})
}

func (e *envelope) seen(id uint32) bool {
	for _, x := range e.ids {
		if x == id {
			return true
		}
	}
	return false
}

func (e *envelope) remember(id uint32, window int) {
	if window <= 0 {
		return
	}
	if len(e.ids) < window {
		e.ids = append(e.ids, id)
		return
	}
	e.ids[e.idHead%len(e.ids)] = id
	e.idHead = (e.idHead + 1) % len(e.ids)
}

func (e *envelope) appendTo(dst []byte) []byte {
	dst = append(dst, envelopeVersion)
	dst = binary.AppendVarint(dst, e.wm)
	dst = binary.AppendUvarint(dst, uint64(len(e.fences)))
	for _, f := range e.fences {
		dst = binary.AppendUvarint(dst, uint64(f.topic))
		dst = binary.AppendVarint(dst, f.offset)
	}
	dst = binary.AppendUvarint(dst, uint64(e.idHead))
	dst = binary.AppendUvarint(dst, uint64(len(e.ids)))
	for _, id := range e.ids {
		dst = binary.LittleEndian.AppendUint32(dst, id)
	}
	n := 0
	for _, t := range e.timers {
		if slices.Contains(e.names, t.op) {
			n++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(n))
	for _, t := range e.timers {
		if i := slices.Index(e.names, t.op); i >= 0 {
			dst = binary.AppendUvarint(dst, uint64(i))
			dst = binary.AppendVarint(dst, t.deadline-e.wm)
		}
	}
	return append(dst, e.state...)
}

// decodeEnvelope parses b; e.state aliases b. names are the chain's
// operators; a timer of an operator index beyond them (the chain changed) is
// dropped. With nil names, timers keep an empty operator name.
func decodeEnvelope(b []byte, e *envelope, names []string) error {
	*e = envelope{names: names, fences: e.fences[:0], ids: e.ids[:0], timers: e.timers[:0]}
	if len(b) == 0 {
		return nil
	}
	if b[0] != envelopeVersion {
		return fmt.Errorf("%w: version %d", ErrEnvelope, b[0])
	}
	r := reader{b: b[1:]}
	e.wm = r.varint()
	n := r.count(10)
	for i := 0; i < n && r.err == nil; i++ {
		e.fences = append(e.fences, fence{uint32(r.uvarint()), r.varint()})
	}
	e.idHead = int(r.uvarint())
	n = r.count(4)
	for i := 0; i < n && r.err == nil; i++ {
		e.ids = append(e.ids, r.uint32())
	}
	n = r.count(2)
	for i := 0; i < n && r.err == nil; i++ {
		i, d := r.uvarint(), r.varint()
		switch {
		case names == nil:
			e.timers = append(e.timers, timer{"", e.wm + d})
		case i < uint64(len(names)):
			e.timers = append(e.timers, timer{names[i], e.wm + d})
		}
	}
	if r.err != nil {
		return r.err
	}
	if len(e.ids) > 0 && e.idHead >= len(e.ids) {
		return fmt.Errorf("%w: id ring head %d of %d", ErrEnvelope, e.idHead, len(e.ids))
	}
	e.state = r.b
	return nil
}

// StateBytes returns the operator state inside a table value, for views and
// lookups that read a processor's table.
func StateBytes(tableValue []byte) ([]byte, error) {
	var e envelope
	if err := decodeEnvelope(tableValue, &e, nil); err != nil {
		return nil, err
	}
	return e.state, nil
}

// StateOffset returns where the operator state begins in a table value:
// what precedes it is the envelope's bookkeeping (offsets, event-id
// hashes, timers), which the runtime leaves clear when it seals the state.
// It skips the bookkeeping without decoding it: the runtime calls it
// twice per record of a sealed table.
func StateOffset(tableValue []byte) (int, error) {
	if len(tableValue) == 0 {
		return 0, nil
	}
	if tableValue[0] != envelopeVersion {
		return 0, fmt.Errorf("%w: version %d", ErrEnvelope, tableValue[0])
	}
	r := reader{b: tableValue[1:]}
	r.varint() // watermark
	for n := r.count(10); n > 0 && r.err == nil; n-- {
		r.uvarint() // fence topic
		r.varint()  // fence offset
	}
	r.uvarint() // id ring head
	if n := r.count(4); r.err == nil {
		if len(r.b) < 4*n {
			r.fail("id")
		} else {
			r.b = r.b[4*n:]
		}
	}
	for n := r.count(2); n > 0 && r.err == nil; n-- {
		r.uvarint() // timer operator
		r.varint()  // timer deadline
	}
	if r.err != nil {
		return 0, r.err
	}
	return len(tableValue) - len(r.b), nil
}

// Timers returns the earliest pending timer stored in a table value (zero
// if none) and the watermark recorded with it, for rebuilding the timer
// index after a restart.
func Timers(tableValue []byte) (next, watermark time.Time, err error) {
	var e envelope
	if err := decodeEnvelope(tableValue, &e, nil); err != nil {
		return next, watermark, err
	}
	if e.wm != 0 {
		watermark = time.UnixMilli(e.wm).UTC()
	}
	return e.nextTimer(), watermark, nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated %s", ErrEnvelope, what)
	}
	r.b = nil
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) uint32() uint32 {
	if len(r.b) < 4 {
		r.fail("id")
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

// count reads a length and rejects one that the remaining bytes cannot hold,
// given each element takes at least min bytes.
func (r *reader) count(min int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/min+1) {
		r.fail("count")
		return 0
	}
	return int(n)
}
