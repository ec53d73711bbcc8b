package features_test

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/codec"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/operators/sessionize"
)

// fullState is a realistic state: a second session under way, 20 recent
// items.
func fullState() features.State {
	base := at(0).UnixMilli()
	s := features.State{
		Session: sessionize.State{Start: base, Last: base + 600_000, Open: true, Seq: 2, Events: 31,
			PrevStart: base - 7_200_000, PrevEnd: base - 5_400_000, PrevEvents: 12, Late: 1},
		SessionCounts:  [features.NumTypes]uint64{10, 18, 2, 1},
		LifetimeCounts: [features.NumTypes]uint64{20, 30, 4, 1},
		EventsTotal:    56, ClosedSessions: 1, TotalSessionMs: 1_800_000, LastSessionMs: 1_800_000,
		FirstSeen: base - 7_200_000, LastSeen: base + 600_000, GapBeforeMs: 5_400_000,
		LastEmit: base + 300_000, Emitted: true, Pending: true,
	}
	for i := range 20 {
		s.Recent = append(s.Recent, features.Item{ProductID: "prod_" + strconv.Itoa(1_000_000+i*7919), Type: uint8(i % 4), At: base + int64(i)*30_000})
	}
	return s
}

func TestStateCodec(t *testing.T) {
	c := features.StateCodec()
	assert.Equal(t, "binary/features.state.v1", c.Format())
	for name, s := range map[string]features.State{"zero": {}, "full": fullState()} {
		t.Run(name, func(t *testing.T) {
			b, err := c.Encode(s)
			require.NoError(t, err)
			got, err := c.Decode(b)
			require.NoError(t, err)
			assert.Equal(t, s, got)
			for i := range len(b) {
				_, err := c.Decode(b[:i])
				assert.ErrorIs(t, err, features.ErrMalformed, "prefix of %d bytes", i)
			}
			_, err = c.Decode(append(b, 0))
			assert.ErrorContains(t, err, "trailing")
		})
	}
	full := fullState()
	b, _ := c.Encode(full)
	t.Logf("20-item state: %d bytes", len(b))
	limit := 80 // header, session and counters
	for _, it := range full.Recent {
		limit += len(it.ProductID) + 4
	}
	assert.LessOrEqual(t, len(b), limit)

	bad := func(mut func(b []byte) []byte) error {
		b, _ := c.Encode(fullState())
		_, err := c.Decode(mut(b))
		return err
	}
	assert.ErrorContains(t, bad(func(b []byte) []byte { b[0] = 2; return b }), "version 2")
	assert.ErrorContains(t, bad(func(b []byte) []byte { b[1] = 0x80; return b }), "flags")
	assert.ErrorIs(t, bad(func(b []byte) []byte { b[2] = 0x10; return b }), sessionize.ErrMalformed)
	// The last item's type byte sits before its 12-byte product id and length.
	assert.ErrorContains(t, bad(func(b []byte) []byte { b[len(b)-14] = 9; return b }), "event type")
	// An item count far above what the input holds.
	s := features.State{}
	zb, _ := c.Encode(s)
	zb[len(zb)-1] = 0x7f
	_, err := c.Decode(zb)
	assert.ErrorContains(t, err, "element count")
}

func FuzzStateCodec(f *testing.F) {
	c := features.StateCodec()
	for _, s := range []features.State{{}, fullState()} {
		b, _ := c.Encode(s)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte("garbage that is not a state at all"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := c.Decode(b)
		if err != nil {
			require.ErrorIs(t, err, features.ErrMalformed)
			return
		}
		enc, err := c.Encode(s)
		require.NoError(t, err)
		again, err := c.Decode(enc)
		require.NoError(t, err)
		require.Equal(t, s, again)
	})
}

func sampleRecord(t *testing.T) features.Record {
	h := newHarness(nil, features.EmitEvery())
	for i := range 25 {
		send(t, h, "user_abc123", "prod_"+strconv.Itoa(i), event.Types[i%4], time.Duration(i)*47*time.Second)
	}
	send(t, h, "user_abc123", "prod_x", event.Purchase, 2*time.Hour)
	return h.Emitted[len(h.Emitted)-1].Value
}

func TestRecordCodec(t *testing.T) {
	c := features.RecordCodec()
	assert.Equal(t, "binary/features.record.v1", c.Format())
	odd := features.Record{UserID: "u", Reason: "custom", AvgSessionSeconds: 1.0 / 3,
		RecentItems: []features.RecentItem{{ProductID: "p", EventType: "hover", At: at(time.Millisecond)}}}
	for name, r := range map[string]features.Record{"sample": sampleRecord(t), "zero": {RecentItems: []features.RecentItem{}}, "odd": odd} {
		t.Run(name, func(t *testing.T) {
			b, err := c.Encode(r)
			require.NoError(t, err)
			got, err := c.Decode(b)
			require.NoError(t, err)
			assert.Equal(t, r, got)
			for i := range len(b) {
				_, err := c.Decode(b[:i])
				assert.ErrorIs(t, err, features.ErrMalformed, "prefix of %d bytes", i)
			}
			_, err = c.Decode(append(b, 0))
			assert.ErrorContains(t, err, "trailing")

			j := codec.JSON[features.Record]()
			jb, err := j.Encode(r)
			require.NoError(t, err)
			jr, err := j.Decode(jb)
			require.NoError(t, err)
			assert.Equal(t, r, jr)
			if name == "sample" {
				t.Logf("record with %d items: binary %d bytes, JSON %d bytes", len(r.RecentItems), len(b), len(jb))
				assert.Less(t, len(b), len(jb)/2)
			}
		})
	}
	_, err := c.Decode([]byte{3})
	assert.ErrorContains(t, err, "version 3")
	_, err = c.Encode(features.Record{AvgSessionSeconds: math.NaN()})
	assert.ErrorContains(t, err, "unsupported float")
}

func FuzzRecordCodec(f *testing.F) {
	c := features.RecordCodec()
	b, _ := c.Encode(features.Record{UserID: "u", RecentItems: []features.RecentItem{{ProductID: "p", EventType: event.Click, At: at(0)}}})
	f.Add(b)
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := c.Decode(b)
		if err != nil {
			require.ErrorIs(t, err, features.ErrMalformed)
			return
		}
		enc, err := c.Encode(r)
		require.NoError(t, err)
		again, err := c.Decode(enc)
		require.NoError(t, err)
		require.Equal(t, r, again)
	})
}
