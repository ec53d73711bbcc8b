package eval_test

import (
	"context"
	"encoding/json"
	"maps"
	"math/big"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/model/eval"
	"github.com/aetherai/aether/model/history"
)

// sessionsEnding builds history.Sessions from item sequences, session i's
// last click at minute ends[i], clicks one second apart.
func sessionsEnding(seqs [][]string, ends []int) *history.Sessions {
	c := history.NewCollector(0)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, s := range seqs {
		for p, it := range s {
			c.Add(event.Event{UserID: "s" + strconv.Itoa(i), ProductID: it, EventType: event.Click,
				Timestamp: t0.Add(time.Duration(ends[i])*time.Minute - time.Duration(len(s)-1-p)*time.Second)})
		}
	}
	return c.Sessions()
}

// TestSKNNHandMade works SKNN out by hand.
func TestSKNNHandMade(t *testing.T) {
	// Recency (last click): s3 (minute 9), s1 and s2 (minute 5, s1 first
	// as the earlier in the file), s0 (minute 1).
	train := sessionsEnding([][]string{{"1", "2"}, {"1", "3", "4", "5"}, {"2", "3"}, {"1", "1", "6"}}, []int{1, 5, 5, 9})
	// Points: (1 -> 2), (1 2 -> 3).
	test := sessionsOf([][]string{{"1", "2", "3"}})
	run := func(k, sample int) eval.Metrics {
		res, err := eval.Evaluate(context.Background(), train, test, &byLast{}, eval.SKNN(k, sample))
		require.NoError(t, err)
		return *res.Baselines.SKNN
	}
	// Point 1, s = {1}: candidates s3, s1, s0 (by recency); sims 1/sqrt2,
	// 1/2, 1/sqrt2. All kept: 1: 1.91, 6: 0.71, 2: 0.71, 3 4 5: 0.5; the
	// target 2 ties with 6 and goes first: rank 2.
	// Point 2, s = {1, 2}: candidates s3, s1, s2, s0; sims 1/2, 1/sqrt8,
	// 1/2, 1: 1: 1.85, 2: 1.5, 3: 0.85, 6: 0.5, 4 5: 0.35: rank 3.
	require.Equal(t, eval.Metrics{HR20: 1, MRR20: rat(5, 12), HR10: 1, MRR10: rat(5, 12)}, run(100, 500))
	// Sample 2: point 1 compares s3 and s1: 2 is missed; point 2 s3 and
	// s1: 3 ranks third (after 1 and 6).
	require.Equal(t, eval.Metrics{HR20: rat(1, 2), MRR20: rat(1, 6), HR10: rat(1, 2), MRR10: rat(1, 6)}, run(100, 2))
	// k 1: point 1 keeps s3 (tie with s0, the more recent): 2 is missed;
	// point 2 keeps s0 = {1, 2}: 3 is missed.
	require.Equal(t, eval.Metrics{}, run(1, 500))
	// k 2: point 1 keeps s3 and s0: 1, then 2 and 6 tied: rank 2; point
	// 2 keeps s0 and s3 (sim 1/2, more recent than s2): 3 is missed.
	require.Equal(t, eval.Metrics{HR20: rat(1, 2), MRR20: rat(1, 4), HR10: rat(1, 2), MRR10: rat(1, 4)}, run(2, 500))

	// The JSON line: sknn after sr, only with the option.
	res, err := eval.Evaluate(context.Background(), train, test, &byLast{})
	require.NoError(t, err)
	require.Nil(t, res.Baselines.SKNN)
	b, err := json.Marshal(res)
	require.NoError(t, err)
	require.NotContains(t, string(b), "sknn")
	res, err = eval.Evaluate(context.Background(), train, test, &byLast{}, eval.SKNN(100, 500))
	require.NoError(t, err)
	b, err = json.Marshal(res)
	require.NoError(t, err)
	require.Regexp(t, `"sr":\{[^}]*\},"sknn":\{"hr20":1,"mrr20":0.41666`, string(b))

	_, err = eval.Evaluate(context.Background(), train, test, &byLast{}, eval.SKNN(0, 500))
	require.ErrorContains(t, err, "SKNN's neighbours and sample size must be at least 1")
}

// TestSKNNMatchesBruteForce compares SKNN with a reference that scans
// every training session at every point and adds up the scores exactly,
// for the defaults and for cuts that bite (sample 2, k 1 to 3).
func TestSKNNMatchesBruteForce(t *testing.T) {
	vocab := strings.Fields("1 2 3 10 11 100 007 a b c x9 y z q r s t u v w 12 13 14 15 16 17 18 d e f g h")
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 11))
		gen := func(n int, extra string) ([][]string, []int) {
			var out [][]string
			var ends []int
			for range n {
				s := make([]string, 1+rng.IntN(12))
				for p := range s {
					if p > 0 && rng.IntN(5) == 0 {
						s[p] = s[p-1]
					} else if extra != "" && rng.IntN(10) == 0 {
						s[p] = extra
					} else {
						s[p] = vocab[min(rng.IntN(len(vocab)), rng.IntN(len(vocab)))]
					}
				}
				out = append(out, s)
				ends = append(ends, rng.IntN(20)) // equal times happen
			}
			return out, ends
		}
		trainSeqs, trainEnds := gen(60, "")
		testSeqs, testEnds := gen(15, "new")
		train, test := sessionsEnding(trainSeqs, trainEnds), sessionsEnding(testSeqs, testEnds)
		for _, c := range [][2]int{{eval.SKNNNeighbours, eval.SKNNSampleSize}, {100, 2}, {3, 2}, {2, 500}, {1, 500}, {3, 10}, {1, 1}} {
			k, sample := c[0], c[1]
			want := sknnReference(trainSeqs, trainEnds, testSeqs, k, sample)
			res, err := eval.Evaluate(context.Background(), train, test, &byLast{}, eval.SKNN(k, sample), eval.Workers(2))
			require.NoError(t, err)
			require.Equal(t, want, *res.Baselines.SKNN, "seed %d, k %d, sample %d", seed, k, sample)
		}
	}
}

// surd is an exact sum of terms q/sqrt(b): q by squarefree b.
type surd map[int64]*big.Rat

// addInvSqrt adds c/sqrt(m), m >= 1.
func (s surd) addInvSqrt(c, m int64) {
	a, b := int64(1), m // m = a^2 b, b squarefree
	for f := int64(2); f*f <= b; {
		if b%(f*f) == 0 {
			b /= f * f
			a *= f
		} else {
			f++
		}
	}
	if s[b] == nil {
		s[b] = new(big.Rat)
	}
	s[b].Add(s[b], big.NewRat(c, a))
}

func (s surd) equal(o surd) bool {
	return maps.EqualFunc(s, o, func(x, y *big.Rat) bool { return x.Cmp(y) == 0 })
}

// value is s to 300 bits: distinct surds of small numbers differ far
// above that.
func (s surd) value() *big.Float {
	sum := new(big.Float).SetPrec(300)
	for b, q := range s {
		r := new(big.Float).SetPrec(300).SetInt64(b)
		r.Sqrt(r)
		r.Quo(new(big.Float).SetPrec(300).SetRat(q), r)
		sum.Add(sum, r)
	}
	return sum
}

// sknnReference is SKNN by its definition, at every point from scratch:
// the prefix's item set s (items not in training count in |s|), every
// training session sharing an item, the sample most recent (later last
// click first, then earlier in the file), the k most similar by
// |s ∩ n|^2 / (|s| |n|) (then the more recent), scores summed exactly.
func sknnReference(train [][]string, trainEnds []int, test [][]string, k, sample int) eval.Metrics {
	sets := make([]map[string]bool, len(train))
	all := map[string]bool{}
	for i, s := range train {
		sets[i] = map[string]bool{}
		for _, it := range s {
			sets[i][it] = true
			all[it] = true
		}
	}
	newer := func(a, b int) int { // recency order of sessions a and b
		if trainEnds[a] != trainEnds[b] {
			return trainEnds[b] - trainEnds[a]
		}
		return a - b
	}
	var points, hit20, hit10 int64
	rr20, rr10 := new(big.Rat), new(big.Rat)
	for _, ts := range test {
		for p := 1; p < len(ts); p++ {
			points++
			s := map[string]bool{}
			for _, it := range ts[:p] {
				s[it] = true
			}
			type nbr struct {
				i    int
				c    int64
				sim2 *big.Rat
			}
			var cands []nbr
			for i, n := range sets {
				var c int64
				for it := range s {
					if n[it] {
						c++
					}
				}
				if c > 0 {
					cands = append(cands, nbr{i, c, big.NewRat(c*c, int64(len(s)*len(n)))})
				}
			}
			slices.SortFunc(cands, func(a, b nbr) int { return newer(a.i, b.i) })
			cands = cands[:min(len(cands), sample)]
			slices.SortFunc(cands, func(a, b nbr) int {
				if c := b.sim2.Cmp(a.sim2); c != 0 {
					return c
				}
				return newer(a.i, b.i)
			})
			cands = cands[:min(len(cands), k)]
			scores := map[string]surd{}
			for _, n := range cands {
				for it := range sets[n.i] {
					if scores[it] == nil {
						scores[it] = surd{}
					}
					scores[it].addInvSqrt(n.c, int64(len(s)*len(sets[n.i])))
				}
			}
			target := ts[p]
			if scores[target] == nil || !all[target] {
				continue
			}
			tv := scores[target].value()
			rank := int64(1)
			for it, sc := range scores {
				if it == target {
					continue
				}
				if sc.equal(scores[target]) {
					if refLess(it, target) {
						rank++
					}
				} else if sc.value().Cmp(tv) > 0 {
					rank++
				}
			}
			if rank <= 20 {
				hit20++
				rr20.Add(rr20, big.NewRat(1, rank))
				if rank <= 10 {
					hit10++
					rr10.Add(rr10, big.NewRat(1, rank))
				}
			}
		}
	}
	if points == 0 {
		return eval.Metrics{}
	}
	f := func(r *big.Rat) float64 {
		v, _ := new(big.Rat).Quo(r, big.NewRat(points, 1)).Float64()
		return v
	}
	return eval.Metrics{HR20: f(big.NewRat(hit20, 1)), MRR20: f(rr20), HR10: f(big.NewRat(hit10, 1)), MRR10: f(rr10)}
}
