// Package eval measures next-item recommendation quality with the standard
// protocol of session-based recommendation, for the model scored through
// ONNX Runtime and for three baselines implemented here (and an opt-in
// fourth, SKNN).
//
// # Protocol
//
// Test sessions are taken in file order, each session's events sorted by
// time (history.Sessions). Every position p >= 1 of a session is one
// prediction point: the method sees the session's items before p and is
// scored on the item at p. Candidates are all training items (a target
// that is not one is a miss for every method, and still a point). Items
// with score 0 are not recommended; ties are broken by ascending item id
// (CompareIDs). HR@K is the share of points whose target ranks within K,
// MRR@K the mean of 1/rank (0 beyond K), for K = 20 and 10. Repeated items
// are not removed: if a session clicks an item twice in a row, the second
// click is a point whose target is the last item seen.
//
// # Methods
//
//   - The model: each point becomes a features.Record whose RecentItems
//     are the prefix's newest RecentItems (20, as the features operator
//     keeps them), scored by Scorer.Score in batches, the call the
//     recommender makes; Evaluate asks for MaxK items, keeps those that
//     are training items and re-sorts them by score, then item id.
//   - POP: the training items by their number of events in the training
//     sessions.
//   - AR, association rules: for every training session and every two
//     positions i < j in it, the pair (s_i, s_j) is counted both ways (an
//     item repeated in a session pairs with itself); each item keeps its
//     Partners best partners; a point is predicted from its last item only.
//   - SR, sequential rules: for every position j of a training session,
//     the items at j-d, d = 1..SRSteps, gain 1/d^2 towards s_j (direction
//     earlier -> later); each item keeps its Partners best; a point is
//     predicted from its last item only.
//   - SKNN, session-based kNN (opt-in, the SKNN option): the training
//     sessions as item sets, with their time (last click); for a point
//     with prefix set s, the candidate neighbours are the training
//     sessions sharing an item with s, of which the SKNNSampleSize most
//     recent are compared (equal times: the earlier in the training
//     file first); similarity cos = |s ∩ n| / sqrt(|s| |n|); the
//     SKNNNeighbours most similar are kept (ties: the more recent), and
//     score(i) is the sum of the similarities of the kept sessions that
//     hold i.
//
// AR, SR and SKNN follow the implementations of session-rec (Ludewig and
// Jannach), with their pruning to the 20 best (SKNN: 500 and 100) and the
// exact tie rule above. SR's weights are summed exactly (as integers in
// units of 1/lcm(1..20)^2), so equal sums tie exactly; SKNN's scores are
// float64 sums of the similarities, added from the most similar neighbour
// down, so items held by neighbours of the same similarities tie exactly.
// Metrics are exact fractions rounded once to float64.
package eval

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/model"
	"github.com/aetherai/aether/model/history"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/recommend"
)

const (
	// Partners is how many partners AR and SR keep per item.
	Partners = 20
	// SRSteps is how many positions back SR credits an item.
	SRSteps = 20
	// MaxRank is the largest cutoff K: ranks beyond it are misses.
	MaxRank = 20
	// DefaultBatchSize is how many points go into one Score call.
	DefaultBatchSize = 64
	// DefaultProgressEvery is how many scored points separate progress
	// lines.
	DefaultProgressEvery = 100_000
)

// lcm20 is lcm(1..20): 1/r for r <= 20 is a whole multiple of 1/lcm20.
const lcm20 = 232792560

// Metrics are the hit rate and mean reciprocal rank at K = 20 and 10.
type Metrics struct {
	HR20  float64 `json:"hr20"`
	MRR20 float64 `json:"mrr20"`
	HR10  float64 `json:"hr10"`
	MRR10 float64 `json:"mrr10"`
}

// Baselines are the baselines' metrics.
type Baselines struct {
	POP Metrics `json:"pop"`
	AR  Metrics `json:"ar"`
	SR  Metrics `json:"sr"`
	// SKNN is set with the SKNN option only.
	SKNN *Metrics `json:"sknn,omitempty"`
}

// Result is an evaluation. Its JSON encoding is the line `runner eval
// --json` prints: {"points":N,"model":{...},"baselines":{"pop":{...},
// "ar":{...},"sr":{...}}}, with "sknn":{...} after "sr" under the SKNN
// option.
type Result struct {
	// Points counts the prediction points.
	Points    int       `json:"points"`
	Model     Metrics   `json:"model"`
	Baselines Baselines `json:"baselines"`
	// Stats describe the data; they are not part of the JSON line.
	Stats Stats `json:"-"`
}

// Stats describe an evaluation's data.
type Stats struct {
	TrainSessions int `json:"trainSessions"`
	TrainItems    int `json:"trainItems"`
	TestSessions  int `json:"testSessions"`
	// UnknownTargets counts the points whose target is not a training
	// item: misses for every method.
	UnknownTargets int `json:"unknownTargets"`
	// RepeatTargets counts the points whose target is the item just
	// before it.
	RepeatTargets int `json:"repeatTargets"`
	// Uncertain counts the model's points where items beyond the MaxK the
	// model returned could tie into the top 20; their rank is taken from
	// the MaxK items returned.
	Uncertain int `json:"uncertain"`
}

// Scorer scores feature records: *model.Loaded, or anything that is a
// recommend.Scorer.
type Scorer interface {
	Score(ctx context.Context, records []features.Record, k int) ([][]recommend.Item, error)
}

// Option configures Evaluate.
type Option func(*config)

type config struct {
	progress io.Writer
	every    int
	batch    int
	workers  int
	recent   int
	// SKNN's neighbours and sample size; 0: no SKNN.
	sknnK, sknnSample int
}

// Progress writes progress lines ("eval: ...") to w.
func Progress(w io.Writer) Option { return func(c *config) { c.progress = w } }

// ProgressEvery sets how many scored points separate progress lines
// (default DefaultProgressEvery).
func ProgressEvery(n int) Option { return func(c *config) { c.every = n } }

// BatchSize sets how many points one Score call scores (default
// DefaultBatchSize, as the recommender's batcher).
func BatchSize(n int) Option { return func(c *config) { c.batch = n } }

// Workers sets how many Score calls run at once (default GOMAXPROCS).
func Workers(n int) Option { return func(c *config) { c.workers = n } }

// RecentItems sets how many of a prefix's newest items a record carries
// (default features.DefaultRecentItems, what the features operator keeps).
func RecentItems(n int) Option { return func(c *config) { c.recent = n } }

// SKNN adds the SKNN baseline, keeping the neighbours most similar of the
// sampleSize most recent candidate sessions (session-rec's k and
// sample_size; SKNNNeighbours and SKNNSampleSize are its defaults).
func SKNN(neighbours, sampleSize int) Option {
	return func(c *config) { c.sknnK, c.sknnSample = neighbours, sampleSize }
}

// ErrNoTrainItems is returned when the training sessions hold no item.
var ErrNoTrainItems = errors.New("eval: no training items")

// point is one prediction point: position p >= 1 of test session s.
type point struct{ s, p int32 }

type evaluator struct {
	cfg    config
	train  *history.Sessions
	test   *history.Sessions
	rank   []int32 // tie-break rank of each training item (CompareIDs order)
	index  map[string]int32
	toTr   []int32 // test item -> training item, -1 if none
	points []point
}

// Evaluate runs the protocol on the test sessions, with candidates and
// baselines from the training sessions and the model scored by scorer.
func Evaluate(ctx context.Context, train, test *history.Sessions, scorer Scorer, opts ...Option) (*Result, error) {
	cfg := config{every: DefaultProgressEvery, batch: DefaultBatchSize, workers: runtime.GOMAXPROCS(0), recent: features.DefaultRecentItems}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	switch {
	case cfg.batch < 1:
		return nil, fmt.Errorf("eval: BatchSize must be at least 1, got %d", cfg.batch)
	case cfg.workers < 1:
		return nil, fmt.Errorf("eval: Workers must be at least 1, got %d", cfg.workers)
	case cfg.recent < 1:
		return nil, fmt.Errorf("eval: RecentItems must be at least 1, got %d", cfg.recent)
	case (cfg.sknnK != 0 || cfg.sknnSample != 0) && (cfg.sknnK < 1 || cfg.sknnSample < 1):
		return nil, fmt.Errorf("eval: SKNN's neighbours and sample size must be at least 1, got %d and %d", cfg.sknnK, cfg.sknnSample)
	case cfg.every < 1:
		return nil, fmt.Errorf("eval: ProgressEvery must be at least 1, got %d", cfg.every)
	case scorer == nil:
		return nil, errors.New("eval: no scorer")
	case train == nil || test == nil:
		return nil, errors.New("eval: no training or test sessions")
	case len(train.Items) == 0:
		return nil, ErrNoTrainItems
	}
	start := time.Now()
	e := newEvaluator(cfg, train, test)
	res := &Result{Points: len(e.points)}
	res.Stats = Stats{TrainSessions: len(train.List), TrainItems: len(train.Items), TestSessions: len(test.List)}
	for _, pt := range e.points {
		items := test.List[pt.s].Items
		if e.toTr[items[pt.p]] < 0 {
			res.Stats.UnknownTargets++
		}
		if items[pt.p] == items[pt.p-1] {
			res.Stats.RepeatTargets++
		}
	}
	e.logf("train: %d sessions, %d items; test: %d sessions, %d points (%d targets not in train, %d repeat the last item)",
		len(train.List), len(train.Items), len(test.List), len(e.points), res.Stats.UnknownTargets, res.Stats.RepeatTargets)

	t := time.Now()
	pop := e.popular()
	res.Baselines.POP = e.tally(func(point) []int32 { return pop })
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ar := e.rules(arRow)
	res.Baselines.AR = e.tally(func(pt point) []int32 { return ar[e.last(pt)] })
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sr := e.rules(srRow)
	res.Baselines.SR = e.tally(func(pt point) []int32 { return sr[e.last(pt)] })
	e.logf("baselines POP, AR, SR: %s", time.Since(t).Round(time.Millisecond))
	if cfg.sknnK > 0 {
		t = time.Now()
		ranks, err := e.sknn(ctx, cfg.sknnK, cfg.sknnSample)
		if err != nil {
			return nil, err
		}
		sk := metricsOf(ranks, len(e.points))
		res.Baselines.SKNN = &sk
		e.logf("baseline SKNN (k %d, sample %d): %s", cfg.sknnK, cfg.sknnSample, time.Since(t).Round(time.Millisecond))
	}

	t = time.Now()
	ranks, uncertain, err := e.scoreModel(ctx, scorer)
	if err != nil {
		return nil, err
	}
	res.Stats.Uncertain = uncertain
	res.Model = metricsOf(ranks, len(e.points))
	e.logf("model: %d points in %s", len(e.points), time.Since(t).Round(time.Millisecond))
	e.logf("done in %s", time.Since(start).Round(time.Millisecond))
	return res, nil
}

func newEvaluator(cfg config, train, test *history.Sessions) *evaluator {
	e := &evaluator{cfg: cfg, train: train, test: test}
	order := make([]int32, len(train.Items))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return CompareIDs(train.Items[a], train.Items[b]) })
	e.rank = make([]int32, len(order))
	for r, i := range order {
		e.rank[i] = int32(r)
	}
	e.index = make(map[string]int32, len(train.Items))
	for i, id := range train.Items {
		e.index[id] = int32(i)
	}
	e.toTr = make([]int32, len(test.Items))
	for i, id := range test.Items {
		if j, ok := e.index[id]; ok {
			e.toTr[i] = j
		} else {
			e.toTr[i] = -1
		}
	}
	for s, ss := range test.List {
		for p := 1; p < len(ss.Items); p++ {
			e.points = append(e.points, point{int32(s), int32(p)})
		}
	}
	return e
}

func (e *evaluator) logf(format string, args ...any) {
	if e.cfg.progress != nil {
		fmt.Fprintf(e.cfg.progress, "eval: "+format+"\n", args...)
	}
}

// target and last are a point's target and last seen item, as training
// items (-1 if not one).
func (e *evaluator) target(pt point) int32 { return e.toTr[e.test.List[pt.s].Items[pt.p]] }
func (e *evaluator) last(pt point) int32   { return e.toTr[e.test.List[pt.s].Items[pt.p-1]] }

// tally scores a baseline whose list for a point is list(pt), best first.
func (e *evaluator) tally(list func(point) []int32) Metrics {
	var t tally
	for _, pt := range e.points {
		t.add(rankOf(list(pt), e.target(pt)))
	}
	return t.metrics(len(e.points))
}

// rankOf returns target's 1-based rank in list, 0 if it is not within
// its first MaxRank items.
func rankOf(list []int32, target int32) int {
	if target < 0 {
		return 0
	}
	for i, it := range list[:min(len(list), MaxRank)] {
		if it == target {
			return i + 1
		}
	}
	return 0
}

// tally adds up hits and reciprocal ranks exactly: reciprocal ranks in
// units of 1/lcm20.
type tally struct {
	hit20, hit10 int64
	rr20, rr10   int64
}

func (t *tally) add(rank int) {
	if rank < 1 || rank > MaxRank {
		return
	}
	t.hit20++
	t.rr20 += lcm20 / int64(rank)
	if rank <= 10 {
		t.hit10++
		t.rr10 += lcm20 / int64(rank)
	}
}

// metricsOf tallies ranks (0: beyond K) over points.
func metricsOf(ranks []uint8, points int) Metrics {
	var t tally
	for _, r := range ranks {
		t.add(int(r))
	}
	return t.metrics(points)
}

func (t tally) metrics(points int) Metrics {
	if points == 0 {
		return Metrics{}
	}
	frac := func(num, den int64) float64 {
		f, _ := new(big.Rat).SetFrac(big.NewInt(num), new(big.Int).Mul(big.NewInt(den), big.NewInt(int64(points)))).Float64()
		return f
	}
	return Metrics{HR20: frac(t.hit20, 1), MRR20: frac(t.rr20, lcm20), HR10: frac(t.hit10, 1), MRR10: frac(t.rr10, lcm20)}
}

// CompareIDs is the tie-break order of item ids: canonical decimal numbers
// (digits, no leading zero) first, by value; then the others, bytewise.
func CompareIDs(a, b string) int {
	na, nb := isNumber(a), isNumber(b)
	switch {
	case na && nb:
		if len(a) != len(b) {
			return cmp.Compare(len(a), len(b))
		}
		return strings.Compare(a, b)
	case na:
		return -1
	case nb:
		return 1
	}
	return strings.Compare(a, b)
}

func isNumber(s string) bool {
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// scoreModel returns each point's rank (0: a miss) under the model, and
// how many points were uncertain (see Stats.Uncertain).
func (e *evaluator) scoreModel(ctx context.Context, scorer Scorer) ([]uint8, int, error) {
	ranks := make([]uint8, len(e.points))
	if len(e.points) == 0 {
		return ranks, 0, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan int)
	var (
		mu        sync.Mutex
		firstErr  error
		done      int
		uncertain int
		wg        sync.WaitGroup
		t0        = time.Now()
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	for range min(e.cfg.workers, (len(e.points)+e.cfg.batch-1)/e.cfg.batch) {
		wg.Go(func() {
			var recs []features.Record
			var cands []candidate
			for lo := range batches {
				hi := min(lo+e.cfg.batch, len(e.points))
				recs = recs[:0]
				for _, pt := range e.points[lo:hi] {
					recs = append(recs, e.record(pt))
				}
				lists, err := scorer.Score(ctx, recs, model.MaxK)
				if err == nil && len(lists) != len(recs) {
					err = fmt.Errorf("eval: scorer returned %d lists for %d records", len(lists), len(recs))
				}
				if err != nil {
					fail(err)
					continue
				}
				unc := 0
				for i, list := range lists {
					var r int
					var u bool
					r, u, cands = e.modelRank(list, e.target(e.points[lo+i]), cands)
					ranks[lo+i] = uint8(r)
					if u {
						unc++
					}
				}
				mu.Lock()
				uncertain += unc
				before := done
				done += hi - lo
				if done/e.cfg.every != before/e.cfg.every && done < len(e.points) {
					e.logf("model: %d/%d points (%s)", done, len(e.points), time.Since(t0).Round(time.Millisecond))
				}
				mu.Unlock()
			}
		})
	}
feed:
	for lo := 0; lo < len(e.points); lo += e.cfg.batch {
		select {
		case batches <- lo:
		case <-ctx.Done():
			break feed
		}
	}
	close(batches)
	wg.Wait()
	if firstErr != nil {
		return nil, 0, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	return ranks, uncertain, nil
}

// record is a point's feature record: the prefix's newest items, oldest
// first, as clicks.
func (e *evaluator) record(pt point) features.Record {
	s := &e.test.List[pt.s]
	from := max(0, int(pt.p)-e.cfg.recent)
	items := make([]features.RecentItem, 0, int(pt.p)-from)
	for k := from; k < int(pt.p); k++ {
		items = append(items, features.RecentItem{
			ProductID: e.test.Items[s.Items[k]], EventType: event.Click, At: time.Unix(0, s.Times[k]).UTC(),
		})
	}
	return features.Record{UserID: s.User, RecentItems: items}
}

type candidate struct {
	item  int32
	score float32
}

// modelRank ranks target among the model's list: training items only,
// score > 0, by score, ties by item id.
func (e *evaluator) modelRank(list []recommend.Item, target int32, cands []candidate) (rank int, uncertain bool, _ []candidate) {
	cands = cands[:0]
	for _, it := range list {
		if j, ok := e.index[it.ProductID]; ok && it.Score > 0 {
			cands = append(cands, candidate{j, it.Score})
		}
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(e.rank[a.item], e.rank[b.item])
	})
	if len(list) >= model.MaxK {
		floor := list[0].Score
		for _, it := range list {
			floor = min(floor, it.Score)
		}
		uncertain = len(cands) < MaxRank || cands[MaxRank-1].score <= floor
	}
	for i, c := range cands[:min(len(cands), MaxRank)] {
		if c.item == target {
			return i + 1, uncertain, cands
		}
	}
	return 0, uncertain, cands
}
