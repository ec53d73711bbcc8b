package eval_test

import (
	"context"
	"math/big"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/model/eval"
	"github.com/aetherai/aether/model/history"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/recommend"
)

// sessionsOf builds history.Sessions from item sequences, one session per
// user "s<i>", clicks one second apart, as the sessions format gives them.
func sessionsOf(seqs [][]string) *history.Sessions {
	c := history.NewCollector(0)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, s := range seqs {
		for p, it := range s {
			c.Add(event.Event{UserID: "s" + strconv.Itoa(i), ProductID: it, EventType: event.Click,
				Timestamp: t0.Add(time.Duration(i)*time.Hour + time.Duration(p)*time.Second)})
		}
	}
	return c.Sessions()
}

// byLast is a fake model: its list for a record is the one stored under
// the record's newest item. It records every record it scores.
type byLast struct {
	lists map[string][]recommend.Item
	mu    sync.Mutex
	seen  []features.Record
}

func (b *byLast) Score(_ context.Context, recs []features.Record, k int) ([][]recommend.Item, error) {
	out := make([][]recommend.Item, len(recs))
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, r := range recs {
		b.seen = append(b.seen, r)
		if n := len(r.RecentItems); n > 0 {
			l := b.lists[r.RecentItems[n-1].ProductID]
			out[i] = l[:min(len(l), k)]
		}
	}
	return out, nil
}

func rat(num, den int64) float64 {
	f, _ := big.NewRat(num, den).Float64()
	return f
}

// TestHandMadeFixture checks tie-breaking (numeric ids first, by value)
// and that score-0 items and non-training items are not recommended. The
// expected values are worked out by hand in the comments.
func TestHandMadeFixture(t *testing.T) {
	// POP counts: 10:3, 9:2, a:2, b:1 -> [10 9 a b].
	train := sessionsOf([][]string{{"10", "9", "b", "a"}, {"9", "10"}, {"a", "10"}})
	// Points: (10 -> a), (10 a -> 9), (10 a 9 -> b), (x -> 10), (9 -> 9).
	test := sessionsOf([][]string{{"10", "a", "9", "b"}, {"x", "10"}, {"9", "9"}})
	model := &byLast{lists: map[string][]recommend.Item{
		// zz is no training item; b scores 0; a and 9 tie: 9 first.
		"10": {{ProductID: "zz", Score: 0.9}, {ProductID: "a", Score: 0.5}, {ProductID: "9", Score: 0.5}, {ProductID: "b", Score: 0}},
		// b and 9 tie: 9 first, then b, then 10.
		"a": {{ProductID: "b", Score: 0.25}, {ProductID: "9", Score: 0.25}, {ProductID: "10", Score: 0.1}},
		// b scores 0: only 10 is recommended.
		"9": {{ProductID: "b", Score: 0}, {ProductID: "10", Score: 0.3}},
	}}
	res, err := eval.Evaluate(context.Background(), train, test, model, eval.BatchSize(2), eval.Workers(2))
	require.NoError(t, err)
	require.Equal(t, 5, res.Points)
	// Model ranks: a 2, 9 1, b miss, miss, 9 miss.
	require.Equal(t, eval.Metrics{HR20: rat(2, 5), MRR20: rat(3, 10), HR10: rat(2, 5), MRR10: rat(3, 10)}, res.Model)
	// POP ranks: a 3, 9 2, b 4, 10 1, 9 2: MRR (1/3+1/2+1/4+1+1/2)/5 = 31/60.
	require.Equal(t, eval.Metrics{HR20: 1, MRR20: rat(31, 60), HR10: 1, MRR10: rat(31, 60)}, res.Baselines.POP)
	// AR rows: 10 -> 9:2 a:2 b:1 = [9 a b]; a -> 10:2 9:1 b:1 = [10 9 b];
	// 9 -> 10:2 a:1 b:1 = [10 a b]. Ranks: a 2, 9 2, b 3, miss, 9 miss.
	require.Equal(t, eval.Metrics{HR20: rat(3, 5), MRR20: rat(4, 15), HR10: rat(3, 5), MRR10: rat(4, 15)}, res.Baselines.AR)
	// SR rows: 10 -> 9:1 b:1/4 a:1/9 = [9 b a]; a -> 10:1 = [10];
	// 9 -> b:1 10:1 a:1/4 = [10 b a]. Ranks: a 3, miss, b 2, miss, miss.
	require.Equal(t, eval.Metrics{HR20: rat(2, 5), MRR20: rat(1, 6), HR10: rat(2, 5), MRR10: rat(1, 6)}, res.Baselines.SR)
	require.Equal(t, eval.Stats{TrainSessions: 3, TrainItems: 4, TestSessions: 3, RepeatTargets: 1}, res.Stats)

	// The model saw each prefix as the record's recent items, oldest first.
	require.Len(t, model.seen, 5)
	var prefixes []string
	for _, r := range model.seen {
		var ids []string
		for _, it := range r.RecentItems {
			require.Equal(t, event.Click, it.EventType)
			ids = append(ids, it.ProductID)
		}
		prefixes = append(prefixes, r.UserID+":"+strings.Join(ids, " "))
	}
	slices.Sort(prefixes)
	require.Equal(t, []string{"s0:10", "s0:10 a", "s0:10 a 9", "s1:x", "s2:9"}, prefixes)
}

func TestCompareIDs(t *testing.T) {
	ids := []string{"b", "100", "010", "9", "a", "0", "99", "9a", "18446744073709551616"}
	slices.SortFunc(ids, eval.CompareIDs)
	require.Equal(t, []string{"0", "9", "99", "100", "18446744073709551616", "010", "9a", "a", "b"}, ids)
}

func TestRecentItemsAndErrors(t *testing.T) {
	long := make([]string, 30)
	for i := range long {
		long[i] = strconv.Itoa(i)
	}
	model := &byLast{}
	s := sessionsOf([][]string{long})
	res, err := eval.Evaluate(context.Background(), s, s, model, eval.RecentItems(5))
	require.NoError(t, err)
	require.Equal(t, 29, res.Points)
	for _, r := range model.seen {
		require.LessOrEqual(t, len(r.RecentItems), 5)
	}

	_, err = eval.Evaluate(context.Background(), sessionsOf(nil), s, model)
	require.ErrorIs(t, err, eval.ErrNoTrainItems)
	_, err = eval.Evaluate(context.Background(), s, s, model, eval.BatchSize(0))
	require.ErrorContains(t, err, "BatchSize must be at least 1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = eval.Evaluate(ctx, s, s, model)
	require.ErrorIs(t, err, context.Canceled)
}

// TestBaselinesMatchBruteForce compares POP, AR and SR with a reference
// written as plain loops over the item strings with exact fractions, to
// the last bit.
func TestBaselinesMatchBruteForce(t *testing.T) {
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 7))
		// Few items, so that scores tie often; ids numeric and not; sessions
		// up to 45 clicks, so that SR's 20 steps matter.
		// 32 items, more than the 20 partners a rule keeps.
		vocab := strings.Fields("1 2 3 10 11 100 007 a b c x9 y z q r s t u v w 12 13 14 15 16 17 18 d e f g h")
		gen := func(n int, extra string) [][]string {
			var out [][]string
			for range n {
				s := make([]string, 1+rng.IntN(45))
				for p := range s {
					if p > 0 && rng.IntN(5) == 0 {
						s[p] = s[p-1] // a repeat
					} else if extra != "" && rng.IntN(15) == 0 {
						s[p] = extra // not a training item
					} else {
						s[p] = vocab[min(rng.IntN(len(vocab)), rng.IntN(len(vocab)))]
					}
				}
				out = append(out, s)
			}
			return out
		}
		trainSeqs, testSeqs := gen(40, ""), gen(15, "new")
		want := reference(trainSeqs, testSeqs)
		res, err := eval.Evaluate(context.Background(), sessionsOf(trainSeqs), sessionsOf(testSeqs), &byLast{})
		require.NoError(t, err)
		require.Equal(t, want.Points, res.Points, "seed %d", seed)
		require.Equal(t, want.Baselines, res.Baselines, "seed %d", seed)
		require.Equal(t, eval.Metrics{}, res.Model)
	}
}

var numeric = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)

// refLess orders ids: numbers (no leading zeros) by value, before other
// ids, which go bytewise.
func refLess(a, b string) bool {
	na, nb := numeric.MatchString(a), numeric.MatchString(b)
	if na && nb {
		x, _ := new(big.Int).SetString(a, 10)
		y, _ := new(big.Int).SetString(b, 10)
		return x.Cmp(y) < 0
	}
	if na != nb {
		return na
	}
	return a < b
}

// reference evaluates POP, AR and SR by brute force: the rule row of each
// last item is computed from scratch by looping over all training
// sessions, with exact fractions, and ranked over all training items.
func reference(train, test [][]string) eval.Result {
	items := map[string]bool{}
	count := map[string]int64{}
	for _, s := range train {
		for _, it := range s {
			items[it] = true
			count[it]++
		}
	}
	var all []string
	for it := range items {
		all = append(all, it)
	}
	// top20 returns the (at most 20) items with a positive score, by score
	// descending, then by id.
	top20 := func(score func(string) *big.Rat) []string {
		var cands []string
		scores := map[string]*big.Rat{}
		for _, it := range all {
			if s := score(it); s.Sign() > 0 {
				cands = append(cands, it)
				scores[it] = s
			}
		}
		slices.SortFunc(cands, func(a, b string) int {
			if c := scores[b].Cmp(scores[a]); c != 0 {
				return c
			}
			if refLess(a, b) {
				return -1
			}
			return 1
		})
		return cands[:min(len(cands), 20)]
	}
	// The rows of x: AR counts every ordered pair of positions (i, j),
	// i != j, with s_i = x; SR adds 1/d^2 for every s_j at distance
	// d = j - i in 1..20 after an s_i = x.
	arRow := func(x string) map[string]*big.Rat {
		row := map[string]*big.Rat{}
		for _, s := range train {
			for i := range s {
				for j := range s {
					if i != j && s[i] == x {
						if row[s[j]] == nil {
							row[s[j]] = new(big.Rat)
						}
						row[s[j]].Add(row[s[j]], big.NewRat(1, 1))
					}
				}
			}
		}
		return row
	}
	srRow := func(x string) map[string]*big.Rat {
		row := map[string]*big.Rat{}
		for _, s := range train {
			for i := range s {
				for j := i + 1; j < len(s) && j-i <= 20; j++ {
					if s[i] == x {
						if row[s[j]] == nil {
							row[s[j]] = new(big.Rat)
						}
						d := int64(j - i)
						row[s[j]].Add(row[s[j]], big.NewRat(1, d*d))
					}
				}
			}
		}
		return row
	}
	of := func(row map[string]*big.Rat) func(string) *big.Rat {
		return func(b string) *big.Rat {
			if r := row[b]; r != nil {
				return r
			}
			return new(big.Rat)
		}
	}
	type acc struct {
		hit20, hit10 int64
		rr20, rr10   *big.Rat
	}
	var pop, arA, srA = acc{rr20: new(big.Rat), rr10: new(big.Rat)}, acc{rr20: new(big.Rat), rr10: new(big.Rat)}, acc{rr20: new(big.Rat), rr10: new(big.Rat)}
	score := func(a *acc, list []string, target string) {
		for i, it := range list {
			if it == target {
				r := int64(i + 1)
				a.hit20++
				a.rr20.Add(a.rr20, big.NewRat(1, r))
				if r <= 10 {
					a.hit10++
					a.rr10.Add(a.rr10, big.NewRat(1, r))
				}
			}
		}
	}
	popList := top20(func(it string) *big.Rat { return big.NewRat(count[it], 1) })
	points := int64(0)
	arLists, srLists := map[string][]string{}, map[string][]string{}
	for _, s := range test {
		for p := 1; p < len(s); p++ {
			points++
			last, target := s[p-1], s[p]
			score(&pop, popList, target)
			if items[last] {
				if arLists[last] == nil {
					arLists[last] = top20(of(arRow(last)))
					srLists[last] = top20(of(srRow(last)))
				}
				score(&arA, arLists[last], target)
				score(&srA, srLists[last], target)
			}
		}
	}
	metrics := func(a acc) eval.Metrics {
		if points == 0 {
			return eval.Metrics{}
		}
		f := func(r *big.Rat) float64 {
			v, _ := new(big.Rat).Quo(r, big.NewRat(points, 1)).Float64()
			return v
		}
		return eval.Metrics{HR20: f(big.NewRat(a.hit20, 1)), MRR20: f(a.rr20), HR10: f(big.NewRat(a.hit10, 1)), MRR10: f(a.rr10)}
	}
	return eval.Result{Points: int(points), Baselines: eval.Baselines{POP: metrics(pop), AR: metrics(arA), SR: metrics(srA)}}
}
