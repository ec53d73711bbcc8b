package features_test

// The OTTO session sample (/work/shared/data/otto/sessions.jsonl) is from
// the OTTO recsys dataset, released under CC-BY 4.0 by Otto (GmbH & Co KG):
// https://github.com/otto-de/recsys-dataset (test/resources/train.jsonl).

import (
	"bufio"
	"encoding/json"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/operators/sessionize"
)

// ottoPath is the repository's copy of the sample (with its licence note).
const ottoPath = "../../clickstream/testdata/otto/sessions.jsonl"

type ottoEvent struct {
	AID  int64  `json:"aid"`
	TS   int64  `json:"ts"`
	Type string `json:"type"`
}

type ottoSession struct {
	Session int64       `json:"session"`
	Events  []ottoEvent `json:"events"`
}

var ottoTypes = map[string]event.Type{"clicks": event.Click, "carts": event.AddToCart, "orders": event.Purchase}

func loadOtto(t *testing.T) []ottoSession {
	t.Helper()
	f, err := os.Open(ottoPath)
	require.NoError(t, err)
	defer f.Close()
	var out []ottoSession
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var s ottoSession
		require.NoError(t, json.Unmarshal(sc.Bytes(), &s))
		out = append(out, s)
	}
	require.NoError(t, sc.Err())
	return out
}

// ottoExpect is computed from the raw timestamps, independently of the
// operators.
type ottoExpect struct {
	events, sessions int
	splits           int // sessions ended by the next event, before their timer
	counts           features.Counts
	totalSessionMs   int64
	lastEvents       int    // events in the last session
	lastCounts       [3]int // clicks, carts, orders of the last session
}

func expectOtto(s ottoSession, gap time.Duration) ottoExpect {
	evs := append([]ottoEvent(nil), s.Events...)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].TS < evs[j].TS })
	x := ottoExpect{events: len(evs)}
	start := int64(0)
	for i, e := range evs {
		if i == 0 || e.TS-evs[i-1].TS > gap.Milliseconds() {
			if i > 0 {
				x.totalSessionMs += evs[i-1].TS - start
				// The harness fires a timer before an event at or after its
				// deadline (last + gap + grace); an event before it ends the
				// session itself, and only its Started record is emitted.
				if e.TS-evs[i-1].TS < (gap + sessionize.DefaultGrace).Milliseconds() {
					x.splits++
				}
			}
			x.sessions++
			start = e.TS
			x.lastEvents, x.lastCounts = 0, [3]int{}
		}
		x.lastEvents++
		switch e.Type {
		case "clicks":
			x.counts.Click++
			x.lastCounts[0]++
		case "carts":
			x.counts.AddToCart++
			x.lastCounts[1]++
		case "orders":
			x.counts.Purchase++
			x.lastCounts[2]++
		}
	}
	x.totalSessionMs += evs[len(evs)-1].TS - start
	return x
}

type keyed struct {
	user string
	ev   event.Event
}

// ottoStream maps the sample to clickstream events of users otto_<session>,
// in event-time order across users, as one partition would see them.
func ottoStream(t *testing.T, sessions []ottoSession) []keyed {
	var all []keyed
	for _, s := range sessions {
		user := "otto_" + strconv.FormatInt(s.Session, 10)
		for _, e := range s.Events {
			typ, ok := ottoTypes[e.Type]
			require.True(t, ok, "type %q", e.Type)
			all = append(all, keyed{user, event.Event{UserID: user, ProductID: "prod_" + strconv.FormatInt(e.AID, 10),
				EventType: typ, Timestamp: time.UnixMilli(e.TS).UTC()}})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].ev.Timestamp.Before(all[j].ev.Timestamp) })
	return all
}

func TestOttoSessions(t *testing.T) {
	sessions := loadOtto(t)
	require.Len(t, sessions, 20)
	stream := ottoStream(t, sessions)
	require.Len(t, stream, 862)

	for _, policy := range []struct {
		name string
		opt  features.Option
	}{{"on-session-change", features.EmitOnSessionChange()}, {"interval", features.EmitInterval(5 * time.Minute)}} {
		t.Run(policy.name, func(t *testing.T) {
			h := newHarness([]sessionize.Option{sessionize.Gap(30 * time.Minute)}, policy.opt)
			for _, k := range stream {
				require.NoError(t, h.Process(k.user, k.ev.Timestamp, k.ev))
			}
			end := stream[len(stream)-1].ev.Timestamp
			totalSessions, totalSplits, started, closedN := 0, 0, map[string]int{}, map[string]int{}
			h.Advance(end.Add(24 * time.Hour))
			for _, e := range h.Emitted {
				switch e.Value.Reason {
				case rStarted:
					started[e.Key]++
				case rClosed:
					closedN[e.Key]++
				}
			}
			var sumEvents uint64
			var sumCounts features.Counts
			for _, s := range sessions {
				user := "otto_" + strconv.FormatInt(s.Session, 10)
				x := expectOtto(s, 30*time.Minute)
				totalSessions += x.sessions
				totalSplits += x.splits
				st := h.States[user]
				require.NotNil(t, st, user)
				assert.Equal(t, uint64(x.events), st.EventsTotal, user)
				assert.Equal(t, uint32(x.sessions), st.Session.Seq, user)
				assert.Equal(t, uint64(x.sessions), st.ClosedSessions, user)
				assert.Equal(t, x.sessions, started[user], user)
				assert.Equal(t, x.sessions-x.splits, closedN[user], user)
				assert.Equal(t, x.totalSessionMs, st.TotalSessionMs, user)
				assert.Equal(t, uint32(x.lastEvents), st.Session.Events, user)
				assert.False(t, st.Session.Open, user)
				assert.Zero(t, st.Session.Late, user)

				r := st.Record(user)
				assert.Equal(t, x.counts, r.LifetimeCounts, user)
				assert.Equal(t, features.Counts{Click: uint64(x.lastCounts[0]), AddToCart: uint64(x.lastCounts[1]), Purchase: uint64(x.lastCounts[2])}, r.Session.Counts, user)
				assert.Len(t, r.RecentItems, min(x.events, features.DefaultRecentItems), user)
				for i := 1; i < len(r.RecentItems); i++ {
					assert.False(t, r.RecentItems[i].At.Before(r.RecentItems[i-1].At), user)
				}
				sumEvents += st.EventsTotal
				sumCounts.Click += r.LifetimeCounts.Click
				sumCounts.AddToCart += r.LifetimeCounts.AddToCart
				sumCounts.Purchase += r.LifetimeCounts.Purchase

				// The user's last record is the close of the last session.
				var last features.Record
				for _, e := range h.Emitted {
					if e.Key == user {
						last = e.Value
					}
				}
				want := r
				want.Reason = rClosed
				assert.Equal(t, want, last, user)
			}
			assert.Equal(t, uint64(862), sumEvents)
			assert.Equal(t, features.Counts{Click: 800, AddToCart: 52, Purchase: 10}, sumCounts)
			assert.Equal(t, 144, totalSessions) // 124 gaps over 30 minutes in the data, plus 20 first sessions
			if policy.name == "on-session-change" {
				// A start and a close per session, except where the next
				// session's start record also carries the close (2 splits).
				assert.Equal(t, 2, totalSplits)
				assert.Len(t, h.Emitted, 2*144-totalSplits)
			}
		})
	}
}
