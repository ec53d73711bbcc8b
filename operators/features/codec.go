package features

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/internal/wire"
)

// Formats of the binary codecs.
const (
	StateFormat  = "binary/features.state.v1"
	RecordFormat = "binary/features.record.v1"
)

const version1 = 1

// ErrMalformed is wrapped by the decode errors of StateCodec and
// RecordCodec.
var ErrMalformed = errors.New("malformed features encoding")

// StateCodec returns the compact binary codec of State, for the
// sessionizer processor's table. The encoding is a version byte, a flags
// byte, the sessionize.State encoding, then varints (times as deltas to
// the session's latest event time) and the recent items with
// length-prefixed product ids: about 25 bytes plus 4 + len(productId) per
// recent item. Decode rejects truncated or invalid input, and input with
// trailing bytes, with an error wrapping ErrMalformed; it never panics. It
// allocates the recent-items slice and one string holding every product
// id.
func StateCodec() codec.Codec[State] { return stateCodec{} }

type stateCodec struct{}

func (stateCodec) Format() string { return StateFormat }

const (
	stateEmitted = 1 << iota
	statePending
)

func (stateCodec) Encode(s State) ([]byte, error) {
	size := 96
	for i := range s.Recent {
		size += 12 + len(s.Recent[i].ProductID)
	}
	return s.appendBinary(make([]byte, 0, size)), nil
}

// Append implements codec.Appender: the runtime writes the state straight
// after the table envelope.
func (stateCodec) Append(dst []byte, s State) ([]byte, error) { return s.appendBinary(dst), nil }

func (s *State) appendBinary(b []byte) []byte {
	var flags byte
	if s.Emitted {
		flags |= stateEmitted
	}
	if s.Pending {
		flags |= statePending
	}
	b = append(b, version1, flags)
	b = s.Session.Append(b)
	base := s.Session.Last
	b = binary.AppendUvarint(b, s.EventsTotal)
	b = binary.AppendVarint(b, base-s.FirstSeen)
	b = binary.AppendVarint(b, s.LastSeen-base)
	for _, c := range s.SessionCounts {
		b = binary.AppendUvarint(b, c)
	}
	for _, c := range s.LifetimeCounts {
		b = binary.AppendUvarint(b, c)
	}
	b = binary.AppendUvarint(b, s.ClosedSessions)
	b = binary.AppendVarint(b, s.TotalSessionMs)
	b = binary.AppendVarint(b, s.LastSessionMs)
	b = binary.AppendVarint(b, s.GapBeforeMs)
	b = binary.AppendVarint(b, s.LastEmit-base)
	b = binary.AppendUvarint(b, uint64(len(s.Recent)))
	prev := base
	for i := range s.Recent {
		it := &s.Recent[i]
		b = binary.AppendVarint(b, it.At-prev)
		prev = it.At
		b = append(b, it.Type)
		b = binary.AppendUvarint(b, uint64(len(it.ProductID)))
		b = append(b, it.ProductID...)
	}
	return b
}

func (stateCodec) Decode(b []byte) (State, error) {
	var s State
	if len(b) < 2 {
		return s, malformed("state", "truncated")
	}
	if b[0] != version1 {
		return s, fmt.Errorf("%w: state version %d, want %d", ErrMalformed, b[0], version1)
	}
	flags := b[1]
	if flags&^(stateEmitted|statePending) != 0 {
		return s, malformed("state", "unknown flags")
	}
	s.Emitted, s.Pending = flags&stateEmitted != 0, flags&statePending != 0
	rest, err := s.Session.Decode(b[2:])
	if err != nil {
		return State{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	r := newReader(rest)
	base := s.Session.Last
	s.EventsTotal = r.Uvarint()
	s.FirstSeen = base - r.Varint()
	s.LastSeen = base + r.Varint()
	for i := range s.SessionCounts {
		s.SessionCounts[i] = r.Uvarint()
	}
	for i := range s.LifetimeCounts {
		s.LifetimeCounts[i] = r.Uvarint()
	}
	s.ClosedSessions = r.Uvarint()
	s.TotalSessionMs = r.Varint()
	s.LastSessionMs = r.Varint()
	s.GapBeforeMs = r.Varint()
	s.LastEmit = base + r.Varint()
	if n := r.count(3, MaxRecentItems); n > 0 {
		s.Recent = make([]Item, n, n+1) // room for one more item without growing
		r.B, r.Err = decodeItems(r.B, s.Recent, base)
	}
	if err := r.done("state"); err != nil {
		return State{}, err
	}
	return s, nil
}

// decodeItems decodes len(items) recent items from b, with one string
// allocation for all product ids. It is the hot loop of State decoding,
// written out so that the one-byte varint cases need no call.
func decodeItems(b []byte, items []Item, prev int64) ([]byte, error) {
	all := string(b)
	for i := range items {
		it := &items[i]
		if len(b) > 0 && b[0] < 0x80 {
			prev += int64(b[0]>>1) ^ -int64(b[0]&1)
			b = b[1:]
		} else {
			d, n := binary.Varint(b)
			if n <= 0 {
				return b, errTruncated
			}
			prev += d
			b = b[n:]
		}
		it.At = prev
		if len(b) < 2 {
			return b, errTruncated
		}
		if int(b[0]) >= NumTypes {
			return b, malformed("state", "event type")
		}
		it.Type = b[0]
		l := uint64(b[1])
		b = b[2:]
		if l >= 0x80 {
			v, n := binary.Uvarint(b)
			if n <= 0 || v >= 1<<57 {
				return b, errTruncated
			}
			l = l&0x7f | v<<7
			b = b[n:]
		}
		if l > uint64(len(b)) {
			return b, errTruncated
		}
		off := len(all) - len(b)
		it.ProductID = all[off : off+int(l)]
		b = b[l:]
	}
	return b, nil
}

// RecordCodec returns the compact binary codec of Record. Times are kept
// to the millisecond and decode in UTC; floats are exact, and Encode
// rejects NaN and infinities as encoding/json does. A decoded
// record's RecentItems is never nil. Decode rejects truncated or invalid
// input with an error wrapping ErrMalformed.
func RecordCodec() codec.Codec[Record] { return recordCodec{} }

type recordCodec struct{}

func (recordCodec) Format() string { return RecordFormat }

const recordOpen = 1

// Reason codes; reasonOther is followed by the reason as a string.
var reasonCodes = [...]Reason{"", ReasonSessionStarted, ReasonSessionClosed, ReasonInterval, ReasonEveryEvent}

const (
	reasonOther = 0xff
	typeOther   = 0xff
)

func (recordCodec) Encode(r Record) ([]byte, error) {
	for _, f := range [...]float64{r.Session.DurationSeconds, r.AvgSessionSeconds, r.LastSessionSeconds, r.GapBeforeSessionSeconds} {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("features: encode record: unsupported float %v", f)
		}
	}
	size := 128 + len(r.UserID) + len(r.Reason)
	for i := range r.RecentItems {
		size += 12 + len(r.RecentItems[i].ProductID)
	}
	b := make([]byte, 0, size)
	b = append(b, version1)
	b = appendString(b, r.UserID)
	b = binary.AppendUvarint(b, r.EventsTotal)
	ss := &r.Session
	var flags byte
	if ss.Open {
		flags |= recordOpen
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(ss.Seq))
	base := ss.Start.UnixMilli()
	b = binary.AppendVarint(b, base)
	b = binary.AppendVarint(b, ss.LastEventAt.UnixMilli()-base)
	b = appendFloat(b, ss.DurationSeconds)
	b = binary.AppendUvarint(b, uint64(ss.Events))
	b = appendCounts(b, &ss.Counts)
	b = appendCounts(b, &r.LifetimeCounts)
	b = binary.AppendUvarint(b, uint64(r.Sessions))
	b = appendFloat(b, r.AvgSessionSeconds)
	b = appendFloat(b, r.LastSessionSeconds)
	b = binary.AppendVarint(b, base-r.FirstSeen.UnixMilli())
	b = binary.AppendVarint(b, r.LastSeen.UnixMilli()-base)
	b = appendFloat(b, r.GapBeforeSessionSeconds)
	b = binary.AppendUvarint(b, r.LateEvents)
	code := byte(reasonOther)
	for i, c := range reasonCodes {
		if c == r.Reason {
			code = byte(i)
		}
	}
	b = append(b, code)
	if code == reasonOther {
		b = appendString(b, string(r.Reason))
	}
	b = binary.AppendUvarint(b, uint64(len(r.RecentItems)))
	prev := base
	for i := range r.RecentItems {
		it := &r.RecentItems[i]
		at := it.At.UnixMilli()
		b = binary.AppendVarint(b, at-prev)
		prev = at
		if t := it.EventType.Index(); t >= 0 {
			b = append(b, byte(t))
		} else {
			b = append(b, typeOther)
			b = appendString(b, string(it.EventType))
		}
		b = appendString(b, it.ProductID)
	}
	return b, nil
}

func (recordCodec) Decode(b []byte) (Record, error) {
	var r Record
	if len(b) < 1 {
		return r, malformed("record", "truncated")
	}
	if b[0] != version1 {
		return r, fmt.Errorf("%w: record version %d, want %d", ErrMalformed, b[0], version1)
	}
	rd := newReader(b[1:])
	rd.strings()
	r.UserID = rd.string()
	r.EventsTotal = rd.Uvarint()
	ss := &r.Session
	flags := rd.byte()
	if flags&^recordOpen != 0 && rd.Err == nil {
		rd.Err = malformed("record", "unknown flags")
	}
	ss.Open = flags&recordOpen != 0
	ss.Seq = rd.Uint32()
	base := rd.Varint()
	ss.Start = millis(base)
	ss.LastEventAt = millis(base + rd.Varint())
	ss.DurationSeconds = rd.float()
	ss.Events = rd.Uint32()
	rd.counts(&ss.Counts)
	rd.counts(&r.LifetimeCounts)
	r.Sessions = rd.Uint32()
	r.AvgSessionSeconds = rd.float()
	r.LastSessionSeconds = rd.float()
	r.FirstSeen = millis(base - rd.Varint())
	r.LastSeen = millis(base + rd.Varint())
	r.GapBeforeSessionSeconds = rd.float()
	r.LateEvents = rd.Uvarint()
	switch code := rd.byte(); {
	case int(code) < len(reasonCodes):
		r.Reason = reasonCodes[code]
	case code == reasonOther:
		r.Reason = Reason(rd.string())
	case rd.Err == nil:
		rd.Err = malformed("record", "reason")
	}
	n := rd.count(3, math.MaxInt32)
	r.RecentItems = make([]RecentItem, n)
	prev := base
	for i := range r.RecentItems {
		it := &r.RecentItems[i]
		at := prev + rd.Varint()
		prev = at
		it.At = millis(at)
		switch t := rd.byte(); {
		case int(t) < NumTypes:
			it.EventType = event.Types[t]
		case t == typeOther:
			it.EventType = event.Type(rd.string())
		case rd.Err == nil:
			rd.Err = malformed("record", "event type")
		}
		it.ProductID = rd.string()
	}
	if err := rd.done("record"); err != nil {
		return Record{}, err
	}
	return r, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendFloat writes f's bits byte-reversed as a uvarint: whole and
// half-round numbers have trailing zero mantissa bytes, which the reversal
// turns into short varints.
func appendFloat(b []byte, f float64) []byte {
	return binary.AppendUvarint(b, bits.ReverseBytes64(math.Float64bits(f)))
}

func appendCounts(b []byte, c *Counts) []byte {
	b = binary.AppendUvarint(b, c.View)
	b = binary.AppendUvarint(b, c.Click)
	b = binary.AppendUvarint(b, c.AddToCart)
	return binary.AppendUvarint(b, c.Purchase)
}

func malformed(what, why string) error { return fmt.Errorf("%w: %s: %s", ErrMalformed, what, why) }

var (
	errTruncated = malformed("input", "truncated")
	errOverflow  = malformed("input", "varint overflow")
)

// reader decodes from B, remembering the first error. After strings(),
// string() returns substrings of one copy of the remaining input, so that
// decoding allocates once for all strings.
type reader struct {
	wire.Reader
	all string
}

func newReader(b []byte) reader {
	return reader{Reader: wire.Reader{B: b, Truncated: errTruncated, Overflow: errOverflow}}
}

func (r *reader) byte() byte {
	if len(r.B) == 0 {
		r.Fail(errTruncated)
		return 0
	}
	c := r.B[0]
	r.B = r.B[1:]
	return c
}

// float reads a float written by appendFloat, rejecting NaN and infinities
// (which Encode, like encoding/json, refuses).
func (r *reader) float() float64 {
	f := math.Float64frombits(bits.ReverseBytes64(r.Uvarint()))
	if math.IsNaN(f) || math.IsInf(f, 0) {
		r.Fail(malformed("input", "float not finite"))
		return 0
	}
	return f
}

func (r *reader) counts(c *Counts) {
	c.View, c.Click, c.AddToCart, c.Purchase = r.Uvarint(), r.Uvarint(), r.Uvarint(), r.Uvarint()
}

// count reads an element count, rejecting one above limit or one the
// remaining input cannot hold at min bytes per element.
func (r *reader) count(min, limit int) int {
	n := r.Uvarint()
	if r.Err != nil {
		return 0
	}
	if n > uint64(limit) || n > uint64(len(r.B)/min) {
		r.Fail(malformed("input", "element count"))
		return 0
	}
	return int(n)
}

func (r *reader) strings() { r.all = string(r.B) }

func (r *reader) string() string {
	n := r.Uvarint()
	if n > uint64(len(r.B)) {
		r.Fail(errTruncated)
		return ""
	}
	if r.Err != nil {
		return ""
	}
	start := len(r.all) - len(r.B)
	r.B = r.B[n:]
	return r.all[start : start+int(n)]
}

func (r *reader) done(what string) error {
	if r.Err != nil {
		return r.Err
	}
	if len(r.B) != 0 {
		return malformed(what, fmt.Sprintf("%d trailing bytes", len(r.B)))
	}
	return nil
}
