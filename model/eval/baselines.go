package eval

import (
	"cmp"
	"math/bits"
	"slices"
)

// popular is POP's list: the training items with the most events, ties by
// item id.
func (e *evaluator) popular() []int32 {
	counts := make([]uint64, len(e.train.Items))
	for _, s := range e.train.List {
		for _, it := range s.Items {
			counts[it]++
		}
	}
	order := make([]int32, len(counts))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return cmp.Compare(e.rank[a], e.rank[b])
	})
	n := 0
	for n < len(order) && n < MaxRank && counts[order[n]] > 0 {
		n++
	}
	return order[:n]
}

// occurrence is one event of a training session: session s, position p.
type occurrence struct{ s, p int32 }

// rowFunc adds up item a's rule scores towards its partners: for each
// occurrence of a, it calls add(b, w) for each partner event b with its
// weight w (in units of 1/lcm20^2).
type rowFunc func(items []int32, p int, add func(b int32, w uint64))

// arRow pairs the item at p with every other position of the session:
// counting every pair of positions i < j both ways gives a's row one count
// per (occurrence of a, other position).
func arRow(items []int32, p int, add func(int32, uint64)) {
	for j, b := range items {
		if j != p {
			add(b, 1)
		}
	}
}

// srWeights[d] is 1/d^2 in units of 1/lcm20^2.
var srWeights = func() (w [SRSteps + 1]uint64) {
	for d := 1; d <= SRSteps; d++ {
		q := uint64(lcm20 / d)
		w[d] = q * q
	}
	return w
}()

// srRow credits the items up to SRSteps after p with 1/d^2.
func srRow(items []int32, p int, add func(int32, uint64)) {
	for d := 1; d <= SRSteps && p+d < len(items); d++ {
		add(items[p+d], srWeights[d])
	}
}

// u128 is an exact sum of weights.
type u128 struct{ hi, lo uint64 }

func (a *u128) add(w uint64) {
	var c uint64
	a.lo, c = bits.Add64(a.lo, w, 0)
	a.hi += c
}

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// rules returns the Partners best partners, best first, of every training
// item that is the last item of a prediction point (the only rows the
// evaluation reads), indexed by item; ties by item id.
func (e *evaluator) rules(row rowFunc) map[int32][]int32 {
	// Where each training item occurs.
	n := len(e.train.Items)
	start := make([]int, n+1)
	for _, s := range e.train.List {
		for _, it := range s.Items {
			start[it+1]++
		}
	}
	for i := range n {
		start[i+1] += start[i]
	}
	occ := make([]occurrence, start[n])
	fill := slices.Clone(start[:n])
	for si, s := range e.train.List {
		for p, it := range s.Items {
			occ[fill[it]] = occurrence{int32(si), int32(p)}
			fill[it]++
		}
	}

	out := map[int32][]int32{}
	sums := make([]u128, n)
	var touched []int32
	add := func(b int32, w uint64) {
		if sums[b] == (u128{}) {
			touched = append(touched, b)
		}
		sums[b].add(w)
	}
	for _, pt := range e.points {
		a := e.last(pt)
		if a < 0 {
			continue
		}
		if _, done := out[a]; done {
			continue
		}
		touched = touched[:0]
		for _, o := range occ[start[a]:start[a+1]] {
			row(e.train.List[o.s].Items, int(o.p), add)
		}
		slices.SortFunc(touched, func(x, y int32) int {
			if c := sums[y].cmp(sums[x]); c != 0 {
				return c
			}
			return cmp.Compare(e.rank[x], e.rank[y])
		})
		out[a] = slices.Clone(touched[:min(len(touched), Partners)])
		for _, b := range touched {
			sums[b] = u128{}
		}
	}
	return out
}
