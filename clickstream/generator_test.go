package clickstream

import (
	"encoding/json"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/event"
)

func gen(t testing.TB, cfg Config) *Generator {
	t.Helper()
	g, err := New(cfg)
	require.NoError(t, err)
	return g
}

// faulty is a config with every fault enabled.
var faulty = Config{Seed: 7, OutOfOrder: 0.05, Duplicate: 0.03, Malformed: 0.02}

func TestNewDefaults(t *testing.T) {
	g := gen(t, Config{})
	assert.Equal(t, Config{
		Users:         1000,
		Products:      5000,
		ZipfS:         1.1,
		Start:         time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		MeanGap:       20 * time.Second,
		SessionGap:    2 * time.Hour,
		SessionLength: 8,
		Transition:    0.7,
		Mix:           [4]float64{0.30, 0.60, 0.08, 0.02},
		OutOfOrderMax: 90 * time.Second,
	}, g.Config())

	assert.Equal(t, 0.0, gen(t, Config{Transition: NoTransition}).Config().Transition)
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{Users: -1}, "Users"},
		{Config{Users: MaxUsers + 1}, "Users"},
		{Config{Products: -5}, "Products"},
		{Config{Products: MaxProducts + 1}, "Products"},
		{Config{ZipfS: 1}, "ZipfS"},
		{Config{ZipfS: 0.5}, "ZipfS"},
		{Config{ZipfS: math.NaN()}, "ZipfS"},
		{Config{Start: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)}, "Start"},
		{Config{MeanGap: -time.Second}, "MeanGap"},
		{Config{MeanGap: 29 * time.Minute}, "MeanGap"},
		{Config{SessionGap: 30 * time.Minute}, "SessionGap"},
		{Config{SessionGap: -time.Hour}, "SessionGap"},
		{Config{SessionLength: 0.5}, "SessionLength"},
		{Config{SessionLength: math.Inf(1)}, "SessionLength"},
		{Config{Transition: 1.5}, "Transition"},
		{Config{Transition: -0.5}, "Transition"},
		{Config{Mix: [4]float64{1, -1, 0, 0}}, "Mix[1] (click)"},
		{Config{OutOfOrder: -0.1}, "OutOfOrder"},
		{Config{OutOfOrderMax: -time.Second}, "OutOfOrderMax"},
		{Config{OutOfOrderMax: time.Hour}, "OutOfOrderMax"},
		{Config{Duplicate: 2}, "Duplicate"},
		{Config{Malformed: math.NaN()}, "Malformed"},
		{Config{OutOfOrder: 0.5, Duplicate: 0.3, Malformed: 0.3}, "OutOfOrder + Duplicate + Malformed"},
	} {
		g, err := New(tc.cfg)
		if assert.Error(t, err, "%+v", tc.cfg) {
			assert.Nil(t, g)
			assert.Contains(t, err.Error(), tc.field)
			assert.True(t, strings.HasPrefix(err.Error(), "clickstream: "), err.Error())
		}
	}
}

func TestDeterministicForSeed(t *testing.T) {
	a, b := gen(t, faulty), gen(t, faulty)
	ra, rb := a.Take(20000), b.Take(20000)
	assert.Equal(t, ra, rb)
	assert.Equal(t, a.Expected(), b.Expected())
	assert.Equal(t, a.Stats(), b.Stats())

	other := faulty
	other.Seed++
	rc := gen(t, other).Take(100)
	same := 0
	for i := range rc {
		if string(rc[i].Raw) == string(ra[i].Raw) {
			same++
		}
	}
	assert.Zero(t, same, "a different seed gives a different stream")

	// Golden: the stream of a seed must not drift silently between changes.
	g := gen(t, Config{Seed: 1})
	assert.Equal(t, `{"userId":"user_419","productId":"prod_21","eventType":"click","timestamp":"2026-01-01T00:00:03.183Z","clientIp":"10.0.1.164","eventId":"evt_1_1"}`,
		string(g.Next().Raw))
	assert.Equal(t, `{"userId":"user_62","productId":"prod_4","eventType":"add_to_cart","timestamp":"2026-01-01T00:00:13.606Z","clientIp":"10.0.0.63","eventId":"evt_1_2"}`,
		string(g.Next().Raw))
}

func TestRecordsAreWellFormed(t *testing.T) {
	g := gen(t, faulty)
	ids := map[string]bool{}
	for _, r := range g.Take(20000) {
		if r.Kind == Malformed {
			assert.Equal(t, event.Event{}, r.Event)
			assert.True(t, strings.HasPrefix(r.Key, "user_"), r.Key)
			continue
		}
		e := r.Event
		require.NoError(t, e.Validate())
		assert.Equal(t, e.UserID, r.Key)

		want, err := json.Marshal(e)
		require.NoError(t, err)
		require.Equal(t, string(want), string(r.Raw), "Raw is json.Marshal of Event")
		var back event.Event
		require.NoError(t, json.Unmarshal(r.Raw, &back))
		assert.True(t, back.Timestamp.Equal(e.Timestamp))
		back.Timestamp = e.Timestamp
		assert.Equal(t, e, back)
		assert.Equal(t, e.Timestamp.Truncate(time.Millisecond), e.Timestamp)
		assert.Equal(t, time.UTC, e.Timestamp.Location())

		ip, err := netip.ParseAddr(e.ClientIP)
		require.NoError(t, err)
		assert.True(t, ip.IsPrivate() && ip.As4()[0] == 10, e.ClientIP)
		assert.True(t, strings.HasPrefix(e.EventID, "evt_7_"), e.EventID)
		if r.Kind != Duplicate {
			assert.False(t, ids[e.EventID], "fresh EventID %s repeated", e.EventID)
			ids[e.EventID] = true
		}
	}
	assert.Len(t, ids, int(g.Stats().Valid+g.Stats().OutOfOrder))
}

func TestClientIPPerUser(t *testing.T) {
	g := gen(t, Config{Seed: 3})
	ipOf, userOf := map[string]string{}, map[string]string{}
	for _, r := range g.Take(20000) {
		if ip, ok := ipOf[r.Key]; ok {
			assert.Equal(t, ip, r.Event.ClientIP)
		}
		ipOf[r.Key] = r.Event.ClientIP
		if u, ok := userOf[r.Event.ClientIP]; ok {
			assert.Equal(t, u, r.Key)
		}
		userOf[r.Event.ClientIP] = r.Key
	}
	assert.Equal(t, "10.0.0.1", ipOf["user_0"])
}

func TestDuplicatesRepeatEarlierEvents(t *testing.T) {
	g := gen(t, faulty)
	seen := map[string]Record{}
	dups := 0
	for _, r := range g.Take(20000) {
		switch r.Kind {
		case Valid, OutOfOrder:
			seen[r.Event.EventID] = r
		case Duplicate:
			dups++
			orig, ok := seen[r.Event.EventID]
			require.True(t, ok, "duplicate %s of an event not emitted before", r.Event.EventID)
			assert.Equal(t, orig.Key, r.Key)
			assert.Equal(t, orig.Event, r.Event)
			assert.Equal(t, orig.Raw, r.Raw)
			assert.NotSame(t, &orig.Raw[0], &r.Raw[0], "each record owns its Raw")
		}
	}
	assert.Equal(t, 590, dups)
}

func TestGlobalEventTimeOrderAndInterleaving(t *testing.T) {
	g := gen(t, Config{Seed: 5})
	recs := g.Take(20000)
	for i := 1; i < len(recs); i++ {
		require.False(t, recs[i].Event.Timestamp.Before(recs[i-1].Event.Timestamp), "record %d", i)
	}
	// Users interleave: first sessions are staggered over one mean session
	// gap, so the first 1000 records (about 15 minutes) hold many users'
	// sessions side by side.
	users, switches := map[string]bool{}, 0
	for i, r := range recs[:1000] {
		users[r.Key] = true
		if i > 0 && r.Key != recs[i-1].Key {
			switches++
		}
	}
	t.Logf("first 1000 records: %d users, %d user switches", len(users), switches)
	// Measured 128 users and 947 switches for seed 5.
	assert.Greater(t, len(users), 100)
	assert.Greater(t, switches, 900)
	all := map[string]bool{}
	for _, r := range recs {
		all[r.Key] = true
	}
	assert.Len(t, all, 1000, "every user active within 20000 records")
	assert.Equal(t, g.Config().Start, recs[0].Event.Timestamp.Truncate(time.Hour))
}

func TestZipfSkew(t *testing.T) {
	g := gen(t, Config{Seed: 11})
	n := 20000
	count := map[string]int{}
	for _, r := range g.Take(n) {
		count[r.Event.ProductID]++
	}
	c := make([]int, 0, len(count))
	for _, v := range count {
		c = append(c, v)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(c)))
	top := 0
	for _, v := range c[:50] { // top 1% of 5000 products
		top += v
	}
	share := float64(top) / float64(n)
	t.Logf("top 1%% of products: %.4f of events, %d distinct products", share, len(count))
	// Uniform popularity would give 0.01; measured 0.34-0.36 over seeds 1,
	// 2, 3, 11, 42.
	assert.Greater(t, share, 0.30)
	assert.Less(t, share, 0.45)
	// prod_0 is the most popular.
	assert.Equal(t, c[0], count["prod_0"])
}

// walkPairs counts consecutive in-session view/click pairs (the walk) and
// how many follow the first item's successor list.
func walkPairs(g *Generator, recs []Record) (pairs, follow int) {
	last := map[string]event.Event{}
	for _, r := range recs {
		e := r.Event
		if e.EventType != event.View && e.EventType != event.Click {
			continue
		}
		if p, ok := last[r.Key]; ok && e.Timestamp.Sub(p.Timestamp) < SessionTimeout {
			pairs++
			if slices.Contains(g.Successors(p.ProductID), e.ProductID) {
				follow++
			}
		}
		last[r.Key] = e
	}
	return pairs, follow
}

func TestTransitionsLearnable(t *testing.T) {
	for _, tc := range []struct {
		transition, want float64
	}{
		{0, 0.7}, // default
		{0.3, 0.3},
		{1, 1},
		{NoTransition, 0},
	} {
		g := gen(t, Config{Seed: 13, Transition: tc.transition})
		pairs, follow := walkPairs(g, g.Take(20000))
		share := float64(follow) / float64(pairs)
		t.Logf("transition %v: %d of %d pairs follow (%.4f)", tc.transition, follow, pairs, share)
		assert.Greater(t, pairs, 15000)
		assert.InDelta(t, tc.want, share, 0.015)
	}

	// The most likely successor is taken about 0.6 of the time.
	g := gen(t, Config{Seed: 13, Transition: 1})
	last, first, pairs := map[string]event.Event{}, 0, 0
	for _, r := range g.Take(20000) {
		e := r.Event
		if e.EventType != event.View && e.EventType != event.Click {
			continue
		}
		if p, ok := last[r.Key]; ok && e.Timestamp.Sub(p.Timestamp) < SessionTimeout {
			pairs++
			if g.Successors(p.ProductID)[0] == e.ProductID {
				first++
			}
		}
		last[r.Key] = e
	}
	assert.InDelta(t, 0.6, float64(first)/float64(pairs), 0.015)
}

func TestSuccessors(t *testing.T) {
	g := gen(t, Config{Seed: 1})
	for i := range g.Config().Products {
		id := ProductID(i)
		s := g.Successors(id)
		require.Len(t, s, NumSuccessors)
		assert.NotContains(t, s, id)
		assert.Len(t, slices.Compact(slices.Sorted(slices.Values(s))), NumSuccessors, "distinct")
	}
	assert.Equal(t, g.Successors("prod_42"), gen(t, Config{Seed: 1, Malformed: 0.5}).Successors("prod_42"),
		"successors depend on Seed and Products only")
	assert.NotEqual(t, g.Successors("prod_42"), gen(t, Config{Seed: 2}).Successors("prod_42"))
	for _, bad := range []string{"", "prod_", "prod_x", "prod_-1", "prod_01", "prod_5000", "item_1"} {
		assert.Nil(t, g.Successors(bad), bad)
	}

	one := gen(t, Config{Products: 1})
	assert.Empty(t, one.Successors("prod_0"))
	for _, r := range one.Take(100) {
		assert.Equal(t, "prod_0", r.Event.ProductID)
	}
	two := gen(t, Config{Products: 2})
	assert.Equal(t, []string{"prod_0"}, two.Successors("prod_1"))
	two.Take(100)
}

// userTimes groups the non-malformed, non-duplicate event times by user.
func userTimes(recs []Record) map[string][]time.Time {
	m := map[string][]time.Time{}
	for _, r := range recs {
		if r.Kind == Valid || r.Kind == OutOfOrder {
			m[r.Key] = append(m[r.Key], r.Event.Timestamp)
		}
	}
	return m
}

func TestSessionGaps(t *testing.T) {
	g := gen(t, Config{Seed: 17})
	cfg := g.Config()
	recs := g.Take(20000)
	events, sessions := 0, 0
	for u, ts := range userTimes(recs) {
		events += len(ts)
		sessions++
		for i := 1; i < len(ts); i++ {
			gap := ts[i].Sub(ts[i-1])
			require.GreaterOrEqual(t, gap, time.Millisecond, "user %s event %d", u, i)
			if gap < SessionTimeout {
				// within a session
				require.LessOrEqual(t, gap, SessionTimeout-cfg.OutOfOrderMax-time.Second, "user %s event %d", u, i)
			} else {
				// between sessions
				require.Greater(t, gap, SessionTimeout+cfg.OutOfOrderMax, "user %s event %d", u, i)
				sessions++
			}
		}
	}
	// Mean session length 8 (the last session of each user is cut short).
	mean := float64(events) / float64(sessions)
	t.Logf("%d events in %d sessions: %.2f per session", events, sessions, mean)
	assert.InDelta(t, 8, mean, 0.5)

	// With out-of-order events, a user's events sorted by time still
	// separate into sessions at a 30-minute gap.
	cfg = Config{Seed: 17, OutOfOrder: 0.3}
	recs = gen(t, cfg).Take(20000)
	for u, ts := range userTimes(recs) {
		slices.SortFunc(ts, time.Time.Compare)
		for i := 1; i < len(ts); i++ {
			gap := ts[i].Sub(ts[i-1])
			require.True(t, gap < SessionTimeout-time.Second+time.Millisecond || gap > SessionTimeout+time.Second-time.Millisecond,
				"user %s event %d: gap %v", u, i, gap)
		}
	}
}

func TestEventTypeMix(t *testing.T) {
	g := gen(t, Config{Seed: 19})
	recs := g.Take(20000)
	count := map[event.Type]int{}
	for _, r := range recs {
		count[r.Event.EventType]++
	}
	for i, typ := range event.Types {
		assert.InDelta(t, DefaultMix[i], float64(count[typ])/20000, 0.01, typ)
	}

	// Carts favour items clicked earlier in the session, purchases items
	// carted or clicked earlier.
	type state struct {
		last            time.Time
		clicked, carted map[string]bool
	}
	users := map[string]*state{}
	carts, cartsClicked, buys, buysSeen := 0, 0, 0, 0
	for _, r := range recs {
		e := r.Event
		s := users[r.Key]
		if s == nil || e.Timestamp.Sub(s.last) >= SessionTimeout {
			s = &state{clicked: map[string]bool{}, carted: map[string]bool{}}
			users[r.Key] = s
		}
		s.last = e.Timestamp
		switch e.EventType {
		case event.Click:
			s.clicked[e.ProductID] = true
		case event.AddToCart:
			carts++
			if s.clicked[e.ProductID] {
				cartsClicked++
			}
			s.carted[e.ProductID] = true
		case event.Purchase:
			buys++
			if s.carted[e.ProductID] || s.clicked[e.ProductID] {
				buysSeen++
			}
		}
	}
	t.Logf("carts of clicked items %d/%d, purchases of carted or clicked items %d/%d", cartsClicked, carts, buysSeen, buys)
	// Measured 0.76 and 0.80 for seed 19.
	assert.Greater(t, float64(cartsClicked)/float64(carts), 0.7)
	assert.Greater(t, float64(buysSeen)/float64(buys), 0.65)
}

func TestFaultFractions(t *testing.T) {
	g := gen(t, faulty)
	n := 20000
	recs := g.Take(n)
	st := g.Stats()
	assert.Equal(t, uint64(n), st.Total())
	kinds := map[Kind]int{}
	for _, r := range recs {
		kinds[r.Kind]++
	}
	assert.Equal(t, Stats{
		Valid:      uint64(kinds[Valid]),
		Duplicate:  uint64(kinds[Duplicate]),
		OutOfOrder: uint64(kinds[OutOfOrder]),
		Malformed:  uint64(kinds[Malformed]),
	}, st)
	// Binomial standard deviations at n=20000 are 0.0010-0.0015.
	assert.InDelta(t, 0.05, float64(st.OutOfOrder)/float64(n), 0.005)
	assert.InDelta(t, 0.03, float64(st.Duplicate)/float64(n), 0.005)
	assert.InDelta(t, 0.02, float64(st.Malformed)/float64(n), 0.005)
	assert.InDelta(t, 0.90, float64(st.Valid)/float64(n), 0.008)

	// Out-of-order events are at most OutOfOrderMax behind the in-order
	// stream, and nearly all land behind an event already emitted.
	var high time.Time
	late := 0
	for _, r := range recs {
		switch r.Kind {
		case Valid:
			high = r.Event.Timestamp
		case OutOfOrder:
			assert.False(t, r.Event.Timestamp.Before(high.Add(-DefaultOutOfOrderMax)))
			if r.Event.Timestamp.Before(high) {
				late++
			}
		}
	}
	t.Logf("%d of %d out-of-order events are behind the stream", late, st.OutOfOrder)
	assert.Greater(t, float64(late)/float64(st.OutOfOrder), 0.9)

	clean := gen(t, Config{Seed: 7})
	clean.Take(n)
	assert.Equal(t, Stats{Valid: uint64(n)}, clean.Stats())
}

func TestMalformedFailDecoding(t *testing.T) {
	g := gen(t, Config{Seed: 23, Malformed: 0.5})
	syntax, validate := 0, 0
	for _, r := range g.Take(20000) {
		if r.Kind != Malformed {
			continue
		}
		var e event.Event
		if err := json.Unmarshal(r.Raw, &e); err != nil {
			syntax++
			continue
		}
		require.Error(t, e.Validate(), "malformed %q decodes to a valid event", r.Raw)
		validate++
	}
	t.Logf("malformed: %d fail json.Unmarshal, %d fail Validate", syntax, validate)
	// 5 of the 8 variants fail decoding, 3 validation.
	assert.InDelta(t, 5.0/8, float64(syntax)/float64(syntax+validate), 0.02)
	assert.InDelta(t, 0.5, float64(syntax+validate)/20000, 0.02)
}

func TestExpectedMatchesRecount(t *testing.T) {
	g := gen(t, faulty)
	recs := g.Take(20000)
	ids := map[string]map[string]bool{}
	for _, r := range recs {
		if r.Kind == Malformed {
			continue
		}
		if ids[r.Key] == nil {
			ids[r.Key] = map[string]bool{}
		}
		ids[r.Key][r.Event.EventID] = true
	}
	want := map[string]uint64{}
	total := uint64(0)
	for u, set := range ids {
		want[u] = uint64(len(set))
		total += uint64(len(set))
	}
	got := g.Expected()
	assert.Equal(t, want, got)
	st := g.Stats()
	assert.Equal(t, st.Valid+st.OutOfOrder, total)
	assert.Equal(t, uint64(19037), total)

	// Expected keeps counting.
	g.Take(1000)
	assert.Greater(t, len(g.Expected()), 0)
	sum := uint64(0)
	for _, c := range g.Expected() {
		sum += c
	}
	assert.Equal(t, g.Stats().Valid+g.Stats().OutOfOrder, sum)
}

func TestTake(t *testing.T) {
	assert.Empty(t, gen(t, Config{}).Take(0))
	assert.Empty(t, gen(t, Config{}).Take(-1))
	a, b := gen(t, faulty), gen(t, faulty)
	recs := a.Take(50)
	require.Len(t, recs, 50)
	for i := range recs {
		assert.Equal(t, b.Next(), recs[i])
	}
}

func TestKindString(t *testing.T) {
	assert.Equal(t, "valid", Valid.String())
	assert.Equal(t, "duplicate", Duplicate.String())
	assert.Equal(t, "out_of_order", OutOfOrder.String())
	assert.Equal(t, "malformed", Malformed.String())
	assert.Equal(t, "kind(9)", Kind(9).String())
}

func TestOneMillionEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 1M events")
	}
	g := gen(t, Config{Seed: 29})
	for range 1_000_000 {
		g.Next()
	}
	assert.Equal(t, uint64(1_000_000), g.Stats().Valid)
	assert.Len(t, g.Expected(), 1000)
}

func BenchmarkNext(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"clean", Config{Seed: 1}},
		{"faults", Config{Seed: 1, OutOfOrder: 0.05, Duplicate: 0.03, Malformed: 0.02}},
		{"users=1M", Config{Seed: 1, Users: 1_000_000, Products: 1_000_000}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := gen(b, bc.cfg)
			b.ReportAllocs()
			for b.Loop() {
				g.Next()
			}
		})
	}
}
