package eval

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
)

const (
	// SKNNNeighbours is how many most similar sessions SKNN keeps (k).
	SKNNNeighbours = 100
	// SKNNSampleSize is how many most recent candidate sessions SKNN
	// compares with the current one.
	SKNNSampleSize = 500
)

// sknnIndex is SKNN's training data: the training sessions in recency
// order (by the time of their last click, newest first; equal times in
// training order), each as its set of items, and the inverted index item
// -> sessions.
type sknnIndex struct {
	// items[start[r]:start[r+1]] are the distinct items of the session of
	// recency rank r.
	start []int32
	items []int32
	// posts[pstart[i]:pstart[i+1]] are the recency ranks of the sessions
	// holding item i, ascending (newest first).
	pstart []int32
	posts  []int32
}

func (e *evaluator) sknnIndex() *sknnIndex {
	list := e.train.List
	order := make([]int32, 0, len(list))
	for s, ss := range list {
		if len(ss.Items) > 0 {
			order = append(order, int32(s))
		}
	}
	last := func(s int32) int64 { t := list[s].Times; return t[len(t)-1] }
	slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(last(b), last(a)) })

	n := len(e.train.Items)
	x := &sknnIndex{start: make([]int32, 1, len(order)+1), pstart: make([]int32, n+1)}
	seen := make([]int32, n) // 1 + the last rank an item was seen in
	for r, s := range order {
		for _, it := range list[s].Items {
			if seen[it] != int32(r)+1 {
				seen[it] = int32(r) + 1
				x.items = append(x.items, it)
				x.pstart[it+1]++
			}
		}
		x.start = append(x.start, int32(len(x.items)))
	}
	for i := range n {
		x.pstart[i+1] += x.pstart[i]
	}
	x.posts = make([]int32, len(x.items))
	fill := slices.Clone(x.pstart[:n])
	for r := range len(order) {
		for _, it := range x.items[x.start[r]:x.start[r+1]] {
			x.posts[fill[it]] = int32(r)
			fill[it]++
		}
	}
	return x
}

// sknnWork is one worker's buffers.
type sknnWork struct {
	inSet   []bool    // training item -> in the current prefix
	set     []int32   // the prefix's training items
	heap    []cursor  // merge of the prefix items' postings
	cands   []sknnNbr // the sampled candidate neighbours
	score   []float64 // training item -> score
	touched []int32
}

type cursor struct{ pos, end int32 }

type sknnNbr struct {
	rank int32   // recency rank
	key  float64 // |s ∩ n|^2 / |n|: the similarity's order
}

// sknn returns each point's rank (0: a miss) under SKNN with k neighbours
// out of the sample most recent candidates.
func (e *evaluator) sknn(ctx context.Context, k, sample int) ([]uint8, error) {
	x := e.sknnIndex()
	ranks := make([]uint8, len(e.points))
	// Points are in session order: firsts[j] is session j's first point.
	firsts := make([]int, 0, len(e.test.List)+1)
	for i, pt := range e.points {
		if i == 0 || pt.s != e.points[i-1].s {
			firsts = append(firsts, i)
		}
	}
	firsts = append(firsts, len(e.points))
	chunks := make(chan int)
	var wg sync.WaitGroup
	for range e.cfg.workers {
		wg.Go(func() {
			n := len(e.train.Items)
			w := &sknnWork{inSet: make([]bool, n), score: make([]float64, n)}
			for c := range chunks {
				for j := c; j < min(c+64, len(firsts)-1); j++ {
					e.sknnSession(x, w, firsts[j], firsts[j+1], k, sample, ranks)
				}
			}
		})
	}
feed:
	for c := 0; c < len(firsts)-1; c += 64 {
		select {
		case chunks <- c:
		case <-ctx.Done():
			break feed
		}
	}
	close(chunks)
	wg.Wait()
	return ranks, ctx.Err()
}

// sknnSession ranks the points lo..hi-1, which are the points of one test
// session in order.
func (e *evaluator) sknnSession(x *sknnIndex, w *sknnWork, lo, hi, k, sample int, ranks []uint8) {
	items := e.test.List[e.points[lo].s].Items
	w.set = w.set[:0]
	for i := lo; i < hi; i++ {
		pt := e.points[i]
		if it := e.toTr[items[pt.p-1]]; it >= 0 && !w.inSet[it] {
			w.inSet[it] = true
			w.set = append(w.set, it)
		}
		ranks[i] = uint8(e.sknnRank(x, w, e.target(pt), k, sample))
	}
	for _, it := range w.set {
		w.inSet[it] = false
	}
}

// sknnRank ranks target for the current prefix w.set.
func (e *evaluator) sknnRank(x *sknnIndex, w *sknnWork, target int32, k, sample int) int {
	if target < 0 || len(w.set) == 0 {
		return 0
	}
	// Merge the postings (ascending recency ranks) of the prefix's items:
	// the sessions sharing an item, newest first, each as many times as it
	// shares items; keep the first sample of them.
	h := w.heap[:0]
	for _, it := range w.set {
		if x.pstart[it] < x.pstart[it+1] {
			h = append(h, cursor{x.pstart[it], x.pstart[it+1]})
		}
	}
	less := func(a, b cursor) bool { return x.posts[a.pos] < x.posts[b.pos] }
	down := func(i int) {
		for {
			c := 2*i + 1
			if c >= len(h) {
				return
			}
			if c+1 < len(h) && less(h[c+1], h[c]) {
				c++
			}
			if !less(h[c], h[i]) {
				return
			}
			h[i], h[c] = h[c], h[i]
			i = c
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	cands := w.cands[:0]
	for len(h) > 0 {
		r := x.posts[h[0].pos]
		if len(cands) > 0 && cands[len(cands)-1].rank == r {
			cands[len(cands)-1].key++ // counts |s ∩ n| for now
		} else {
			if len(cands) == sample {
				break
			}
			cands = append(cands, sknnNbr{rank: r, key: 1})
		}
		if h[0].pos++; h[0].pos == h[0].end {
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		}
		down(0)
	}
	w.heap = h
	for i := range cands {
		c := cands[i].key
		cands[i].key = c * c / float64(x.start[cands[i].rank+1]-x.start[cands[i].rank])
	}
	// The k most similar, most similar first, ties by recency. The key
	// c^2/|n| orders exactly as c / sqrt(|s| |n|) (a correctly rounded
	// quotient of small integers: equal fractions give equal keys).
	byKey := func(a, b sknnNbr) int {
		if c := cmp.Compare(b.key, a.key); c != 0 {
			return c
		}
		return cmp.Compare(a.rank, b.rank)
	}
	if len(cands) > k {
		selectTop(cands, k, byKey)
		cands = cands[:k]
	}
	slices.SortFunc(cands, byKey)
	w.cands = cands

	// score(i) = sum of sim(s, n) over the kept n holding i, added in
	// that order; the common factor 1/sqrt(|s|) is left out (it changes
	// no order).
	touched := w.touched[:0]
	for _, c := range cands {
		sim := math.Sqrt(c.key)
		for _, it := range x.items[x.start[c.rank]:x.start[c.rank+1]] {
			if w.score[it] == 0 {
				touched = append(touched, it)
			}
			w.score[it] += sim
		}
	}
	rank := 0
	if ts := w.score[target]; ts > 0 {
		rank = 1
		tr := e.rank[target]
		for _, it := range touched {
			if s := w.score[it]; s > ts || (s == ts && e.rank[it] < tr) {
				rank++
			}
		}
	}
	for _, it := range touched {
		w.score[it] = 0
	}
	w.touched = touched
	if rank > MaxRank {
		return 0
	}
	return rank
}

// selectTop moves the k smallest elements of s under cmpf to s[:k], in
// no particular order (quickselect).
func selectTop[T any](s []T, k int, cmpf func(a, b T) int) {
	lo, hi := 0, len(s)
	for hi-lo > 1 {
		// Median of three as the pivot, moved to hi-1.
		mid := lo + (hi-lo)/2
		if cmpf(s[mid], s[lo]) < 0 {
			s[mid], s[lo] = s[lo], s[mid]
		}
		if cmpf(s[hi-1], s[lo]) < 0 {
			s[hi-1], s[lo] = s[lo], s[hi-1]
		}
		if cmpf(s[mid], s[hi-1]) < 0 {
			s[mid], s[hi-1] = s[hi-1], s[mid]
		}
		p := s[hi-1]
		i := lo
		for j := lo; j < hi-1; j++ {
			if cmpf(s[j], p) < 0 {
				s[i], s[j] = s[j], s[i]
				i++
			}
		}
		s[i], s[hi-1] = s[hi-1], s[i]
		switch {
		case i == k || i == k-1:
			return
		case i < k:
			lo = i + 1
		default:
			hi = i
		}
	}
}
