package model

import (
	"cmp"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"time"

	"github.com/aetherai/aether/event"
)

// Defaults of the training options.
const (
	DefaultVocabSize  = 50000
	DefaultNeighbours = 20
	DefaultWindow     = 1
	DefaultSessionGap = 30 * time.Minute
	DefaultShrinkage  = 1.0
	DefaultRepeat     = 10.0
	// DefaultDistanceExponent is the default e of DistanceExponent: a
	// successor at distance d weighs 1/d.
	DefaultDistanceExponent = 1.0
	// DefaultCoOccurrence is the default weight of the session
	// co-occurrence rows blended into each item's successors.
	DefaultCoOccurrence = 0.1
	// DefaultCoWindow is how many places apart two items of a session
	// still co-occur, by default.
	DefaultCoWindow = 20
)

// Limits of the training options.
const (
	// MaxVocabSize bounds VocabSize (item indices are int32 in the graph;
	// the bound keeps the opset-16 graph's dense rows reasonable).
	MaxVocabSize = 1 << 22
	// MaxNeighbours bounds Neighbours.
	MaxNeighbours = 200
	// MaxWindow bounds Window.
	MaxWindow = 50
	// MaxDistanceExponent bounds DistanceExponent.
	MaxDistanceExponent = 10.0
	// MaxCoOccurrence bounds CoOccurrence.
	MaxCoOccurrence = 100.0
)

// ErrNoEvents is returned by Train when no event is usable.
var ErrNoEvents = errors.New("model: no usable events to train on")

// TrainOption configures Train.
type TrainOption func(*trainConfig)

type trainConfig struct {
	vocab      int
	neighbours int
	window     int
	gap        time.Duration
	shrinkage  float64
	repeat     float64
	distExp    float64
	coWeight   float64
	coWindow   int
	version    string
	created    time.Time
	opset      int
}

// VocabSize sets V, how many items (the most frequent, ties by product id)
// the model knows; default 50000, at most MaxVocabSize.
func VocabSize(v int) TrainOption { return func(c *trainConfig) { c.vocab = v } }

// Neighbours sets N, how many successors the model keeps per item (the
// highest scoring ones); default 20, at most MaxNeighbours.
func Neighbours(n int) TrainOption { return func(c *trainConfig) { c.neighbours = n } }

// Window sets how many following items of a session count as successors of
// an item, the one at distance d with weight 1/d^e (e: DistanceExponent);
// default 1, at most MaxWindow.
func Window(w int) TrainOption { return func(c *trainConfig) { c.window = w } }

// DistanceExponent sets e, the decay of a successor's credit with its
// distance d in the session: 1/d^e. Default 1 (1/d); 2 is the 1/d^2 of
// sequential rules (SR), 0 credits the whole Window alike. It matters
// only for Window > 1; 0 <= e <= MaxDistanceExponent.
func DistanceExponent(e float64) TrainOption { return func(c *trainConfig) { c.distExp = e } }

// CoOccurrence sets b, the weight of each item's session co-occurrence
// row in its neighbours: T[i][j] = S[i][j] + b * K[i][j], where S is the
// successor row (Window, DistanceExponent) and K[i][j] the share of the
// items clicked with i in a session, before or after it, within CoWindow
// places, the one at distance d weighing 1/d. Default 0.1; 0 leaves T the
// successor rows alone, the model.onnx that the same data and options gave
// before this option existed; 0 <= b <= MaxCoOccurrence. Real click sessions
// hold more than the next click: the items a session visits together
// predict each other in either order (see the package comment for the
// measurements).
func CoOccurrence(b float64) TrainOption { return func(c *trainConfig) { c.coWeight = b } }

// CoWindow sets how many places apart two items of a session co-occur
// (see CoOccurrence); default 20, at most MaxWindow.
func CoWindow(w int) TrainOption { return func(c *trainConfig) { c.coWindow = w } }

// SessionGap sets the inactivity gap that separates a user's sessions;
// default 30 minutes; 0 splits nothing, for histories whose users are
// sessions already (the session TSV of benchmarks). Transitions are learnt
// within sessions only.
func SessionGap(d time.Duration) TrainOption { return func(c *trainConfig) { c.gap = d } }

// Shrinkage sets s in the normalised rows, S[i][j] / (sum_j S[i][j] + s)
// and likewise K (see CoOccurrence), which damps the scores of items seen
// in few transitions; default 1, s >= 0.
func Shrinkage(s float64) TrainOption { return func(c *trainConfig) { c.shrinkage = s } }

// RepeatPrior sets a, the weight of the prior that every item is clicked
// again: each item's row gets a pseudo-count a * r on itself, r being the
// share of all counted transitions that go from an item to itself, before
// normalising. Frequent items keep the repeat rate their own data show;
// rare ones, whose few transitions say little, lean on the global rate,
// and an item never followed by a known item predicts itself. Default 10,
// a >= 0 (0: repeats only as counted).
func RepeatPrior(a float64) TrainOption { return func(c *trainConfig) { c.repeat = a } }

// Opset selects the ONNX opset of model.onnx, and with it the graph: 13
// adds up candidates by sorting them, 16 (the default) with
// ScatterElements' reduction "add" into a dense row of V+1 scores. Both
// compute the same scores; on 2 cores at V = 46,200 the opset-16 graph
// scores one user faster (35 against 51 us) and a batch of 64 slower (2.5
// against 1.9 ms; see the package's benchmarks). ONNX Runtime 1.24, which
// onnxruntime_go v1.27 requires anyway, runs both.
func Opset(n int) TrainOption { return func(c *trainConfig) { c.opset = n } }

// Version names the model (metadata.json, recommend.Model.Version);
// default: "itemcf-" and the creation time, e.g. "itemcf-20260101T000000Z".
func Version(v string) TrainOption { return func(c *trainConfig) { c.version = v } }

// CreatedAt sets the creation time recorded in metadata.json; default the
// wall clock when Train returns. It does not enter model.onnx.
func CreatedAt(t time.Time) TrainOption { return func(c *trainConfig) { c.created = t } }

func (c *trainConfig) validate() error {
	switch {
	case c.vocab < 1 || c.vocab > MaxVocabSize:
		return fmt.Errorf("model: VocabSize must be between 1 and %d, got %d", MaxVocabSize, c.vocab)
	case c.neighbours < 1 || c.neighbours > MaxNeighbours:
		return fmt.Errorf("model: Neighbours must be between 1 and %d, got %d", MaxNeighbours, c.neighbours)
	case c.window < 1 || c.window > MaxWindow:
		return fmt.Errorf("model: Window must be between 1 and %d, got %d", MaxWindow, c.window)
	case c.gap < 0:
		return fmt.Errorf("model: SessionGap must be 0 or positive, got %v", c.gap)
	case math.IsNaN(c.shrinkage) || math.IsInf(c.shrinkage, 0) || c.shrinkage < 0:
		return fmt.Errorf("model: Shrinkage must be a finite number >= 0, got %v", c.shrinkage)
	case math.IsNaN(c.repeat) || math.IsInf(c.repeat, 0) || c.repeat < 0:
		return fmt.Errorf("model: RepeatPrior must be a finite number >= 0, got %v", c.repeat)
	case math.IsNaN(c.distExp) || c.distExp < 0 || c.distExp > MaxDistanceExponent:
		return fmt.Errorf("model: DistanceExponent must be between 0 and %v, got %v", MaxDistanceExponent, c.distExp)
	case math.IsNaN(c.coWeight) || c.coWeight < 0 || c.coWeight > MaxCoOccurrence:
		return fmt.Errorf("model: CoOccurrence must be between 0 and %v, got %v", MaxCoOccurrence, c.coWeight)
	case c.coWindow < 1 || c.coWindow > MaxWindow:
		return fmt.Errorf("model: CoWindow must be between 1 and %d, got %d", MaxWindow, c.coWindow)
	case c.opset != 13 && c.opset != 16:
		return fmt.Errorf("model: Opset must be 13 or 16, got %d", c.opset)
	case len(c.version) > 128:
		return fmt.Errorf("model: Version longer than 128 bytes")
	}
	return nil
}

// Params are the training parameters, as recorded in metadata.json.
type Params struct {
	VocabSize  int     `json:"vocabSize"`
	Neighbours int     `json:"neighbours"`
	Window     int     `json:"window"`
	SessionGap string  `json:"sessionGap"`
	Shrinkage  float64 `json:"shrinkage"`
	// RepeatPrior is the weight of the repeat prior (see RepeatPrior).
	RepeatPrior float64 `json:"repeatPrior"`
	// DistanceExponent is e in a successor's weight 1/d^e.
	DistanceExponent float64 `json:"distanceExponent"`
	// CoOccurrence is the weight of the co-occurrence rows, CoWindow
	// their reach (see CoOccurrence). Models trained before the option
	// existed have 0 for both: successor rows alone.
	CoOccurrence float64 `json:"coOccurrence"`
	CoWindow     int     `json:"coWindow"`
}

// TrainingStats describe the data a model was trained on.
type TrainingStats struct {
	// Events counts the events used; Skipped those left out (missing ids
	// or time, or a repeated EventID of the same user).
	Events  uint64 `json:"events"`
	Skipped uint64 `json:"skipped"`
	Users   int    `json:"users"`
	// Sessions counts the users' sessions (split by the session gap).
	Sessions int `json:"sessions"`
	// Products counts the distinct products seen, in or out of the
	// vocabulary.
	Products int `json:"products"`
	// Pairs counts the distinct (item, successor) pairs of the successor
	// rows S, as counted (without the repeat prior or the co-occurrence
	// rows), before each item's list is cut to Neighbours.
	Pairs int `json:"pairs"`
}

// Model is a trained item-to-item model. It is immutable once Train
// returns and safe for concurrent use.
type Model struct {
	version string
	created time.Time
	params  Params
	stats   TrainingStats

	vocab  []string // product id per item index, by descending count
	index  map[string]int32
	counts []uint64 // training events per item index
	total  uint64   // training events, in the vocabulary or not

	// Row i (i < V) lists item i's n successors, best first; row V is the
	// padding row. Unused slots hold the sentinel index V and weight 0.
	n      int
	opset  int
	nbrIdx []int32   // (V+1) x n
	nbrW   []float32 // (V+1) x n

	onnx   []byte // the encoded ModelProto, deterministic
	sha256 string // hex SHA-256 of onnx
}

type userEvent struct {
	at  int64 // Unix nanoseconds
	pid int32 // interned product
}

// Train learns a model from an event history; the order of events does
// not matter (each user's events are sorted by time). Events without a
// user, product or time are skipped, and so are repeats of an EventID
// already seen for the same user (client retries).
//
// Each user's events are split into sessions at gaps longer than
// SessionGap. Within a session every item i is credited with the next
// Window items j, the one at distance d with weight 1/d^e (e:
// DistanceExponent, default 1): S[i][j]. Repeats count: a consecutive
// event on the same product, and j == i, are transitions like any other,
// so T[i][i] learns how often item i is clicked again (real sessions
// re-click items a lot, and the evaluation protocol scores those clicks);
// RepeatPrior then adds a pseudo-count to each S[i][i]. With CoOccurrence
// b > 0, i is also credited with the items up to CoWindow places before
// and after it, at 1/d: K[i][j]. Both rows are normalised, as
// S[i][j] / (sum_j S[i][j] + Shrinkage) and likewise K, and T[i][j] is
// S + b * K, an estimate of "j comes soon after i"; each row keeps its
// Neighbours best entries.
// Only the VocabSize most frequent products are items of the model; other
// products keep their places in a session (they count for distances) but
// neither give nor get credit.
//
// Train holds the history in memory, about 30 bytes per event plus the
// distinct ids, and about 100 more per event with an EventID while
// reading (retries are found by user and EventID, and assumed to repeat
// the same event); it builds one item's row at a time from the item's
// places in the sessions. Its result depends on the events only, not on
// their order.
func Train(events iter.Seq[event.Event], opts ...TrainOption) (*Model, error) {
	cfg := trainConfig{
		vocab: DefaultVocabSize, neighbours: DefaultNeighbours, window: DefaultWindow,
		gap: DefaultSessionGap, shrinkage: DefaultShrinkage, repeat: DefaultRepeat, opset: DefaultOpset,
		distExp: DefaultDistanceExponent, coWeight: DefaultCoOccurrence, coWindow: DefaultCoWindow,
	}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if events == nil {
		return nil, ErrNoEvents
	}

	var (
		stats    TrainingStats
		pids     = map[string]int32{}
		products []string
		counts   []uint64
		users    = map[string]int{}
		history  [][]userEvent
		seenIDs  = map[[2]string]struct{}{}
	)
	for e := range events {
		if e.UserID == "" || e.ProductID == "" || e.Timestamp.IsZero() {
			stats.Skipped++
			continue
		}
		if e.EventID != "" {
			k := [2]string{e.UserID, e.EventID}
			if _, dup := seenIDs[k]; dup {
				stats.Skipped++
				continue
			}
			seenIDs[k] = struct{}{}
		}
		p, ok := pids[e.ProductID]
		if !ok {
			p = int32(len(products))
			pids[e.ProductID] = p
			products = append(products, e.ProductID)
			counts = append(counts, 0)
		}
		counts[p]++
		u, ok := users[e.UserID]
		if !ok {
			u = len(history)
			users[e.UserID] = u
			history = append(history, nil)
		}
		history[u] = append(history[u], userEvent{at: e.Timestamp.UnixNano(), pid: p})
		stats.Events++
	}
	seenIDs = nil
	if stats.Events == 0 {
		return nil, ErrNoEvents
	}
	stats.Users = len(history)
	stats.Products = len(products)

	// Vocabulary: the most frequent products, ties by product id.
	order := make([]int32, len(products))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return cmp.Compare(products[a], products[b])
	})
	v := min(cfg.vocab, len(order))
	m := &Model{
		version: cfg.version,
		created: cfg.created,
		params: Params{
			VocabSize: cfg.vocab, Neighbours: cfg.neighbours, Window: cfg.window,
			SessionGap: cfg.gap.String(), Shrinkage: cfg.shrinkage, RepeatPrior: cfg.repeat,
			DistanceExponent: cfg.distExp, CoOccurrence: cfg.coWeight, CoWindow: cfg.coWindow,
		},
		vocab:  make([]string, v),
		index:  make(map[string]int32, v),
		counts: make([]uint64, v),
		total:  stats.Events,
		n:      cfg.neighbours,
		opset:  cfg.opset,
	}
	toItem := make([]int32, len(products)) // product -> item index, -1 outside
	for i := range toItem {
		toItem[i] = -1
	}
	for i, p := range order[:v] {
		m.vocab[i] = products[p]
		m.index[products[p]] = int32(i)
		m.counts[i] = counts[p]
		toItem[p] = int32(i)
	}

	// The sessions, in one array: each session's items in order (-1 for a
	// product outside the vocabulary, which keeps its place), sessions
	// separated by endOfSession. Users go in id order and each user's
	// events in time order (ties by product id), so the float sums, and
	// with them model.onnx, do not depend on the order of the input.
	gap := cfg.gap.Nanoseconds()
	userOrder := make([]string, 0, len(users))
	for u := range users {
		userOrder = append(userOrder, u)
	}
	slices.Sort(userOrder)
	seqs := make([]int32, 0, stats.Events+uint64(len(users))+1)
	seqs = append(seqs, endOfSession)
	for _, u := range userOrder {
		h := history[users[u]]
		slices.SortFunc(h, func(a, b userEvent) int {
			if c := cmp.Compare(a.at, b.at); c != 0 {
				return c
			}
			return cmp.Compare(products[a.pid], products[b.pid])
		})
		for i, e := range h {
			if i > 0 && gap > 0 && e.at-h[i-1].at > gap {
				seqs = append(seqs, endOfSession)
				stats.Sessions++
			}
			seqs = append(seqs, toItem[e.pid]) // repeats too: re-clicks are predictable
		}
		seqs = append(seqs, endOfSession)
		stats.Sessions++
	}
	history = nil
	if len(seqs) > math.MaxInt32 {
		return nil, fmt.Errorf("model: %d events in %d sessions: more than Train's %d places", stats.Events, stats.Sessions, math.MaxInt32)
	}

	dw := distanceWeights(cfg.window, cfg.distExp)
	var cw []float64
	if cfg.coWeight > 0 {
		cw = distanceWeights(cfg.coWindow, 1)
	}
	var prior float64 // the repeat prior: a * r on each item's own entry
	if self, all := repeatShare(seqs, dw); cfg.repeat > 0 && self > 0 {
		prior = cfg.repeat * self / all
	}

	// Each item's row of T, from its occurrences: normalise the successor
	// row S and the co-occurrence row K, blend them, and keep the best
	// neighbours.
	m.nbrIdx = make([]int32, (v+1)*m.n)
	m.nbrW = make([]float32, (v+1)*m.n)
	for i := range m.nbrIdx {
		m.nbrIdx[i] = int32(v)
	}
	occ := occurrences(seqs, v)
	var (
		succ, with = newRow(v), newRow(v)
		es, ks     []entry
	)
	slot := make([]int, v) // item -> its place in es while K is blended in; -1 if none
	for i := range slot {
		slot[i] = -1
	}
	for i := range v {
		for _, p := range occ.of(i) {
			succ.credit(seqs, int(p), 1, dw)
			with.credit(seqs, int(p), 1, cw)
			with.credit(seqs, int(p), -1, cw)
		}
		stats.Pairs += len(succ.touched)
		if prior > 0 {
			succ.add(int32(i), prior)
		}
		es = succ.normalised(es, cfg.shrinkage, 1)
		if len(with.touched) > 0 {
			for k, e := range es {
				slot[e.j] = k
			}
			ks = with.normalised(ks, cfg.shrinkage, cfg.coWeight)
			for _, e := range ks {
				if k := slot[e.j]; k >= 0 {
					es[k].w += e.w
				} else {
					es = append(es, e)
				}
			}
			for _, e := range es {
				slot[e.j] = -1
			}
			slices.SortFunc(es, byWeight)
		}
		for k, e := range es[:min(len(es), m.n)] {
			m.nbrIdx[i*m.n+k] = e.j
			m.nbrW[i*m.n+k] = float32(e.w)
		}
	}
	m.stats = stats

	if m.created.IsZero() {
		m.created = time.Now()
	}
	m.created = m.created.UTC().Truncate(time.Second)
	if m.version == "" {
		m.version = "itemcf-" + m.created.Format("20060102T150405Z")
	}
	if err := m.encode(); err != nil {
		return nil, err
	}
	return m, nil
}

// distanceWeights returns the credit of a successor at distance d =
// 1..window at index d-1: 1/d^e (math.Pow is exact for whole e at these
// d, so e = 1 gives exactly 1/d, as before the option existed).
func distanceWeights(window int, e float64) []float64 {
	w := make([]float64, window)
	for d := 1; d <= window; d++ {
		w[d-1] = 1 / math.Pow(float64(d), e)
	}
	return w
}

// endOfSession separates the sessions in Train's array of sessions.
const endOfSession = -2

// repeatShare returns the successor credit (weights dw) that the items of
// seqs give to themselves, and in all.
func repeatShare(seqs []int32, dw []float64) (self, all float64) {
	for p, i := range seqs {
		if i < 0 {
			continue
		}
		for d := 1; d <= len(dw); d++ {
			j := seqs[p+d]
			if j == endOfSession {
				break
			}
			if j < 0 {
				continue
			}
			all += dw[d-1]
			if j == i {
				self += dw[d-1]
			}
		}
	}
	return self, all
}

// itemPositions lists each item's places in the array of sessions.
type itemPositions struct {
	start []int   // item i's places are at[start[i]:start[i+1]]
	at    []int32 // places in the array, ascending per item
}

func occurrences(seqs []int32, v int) itemPositions {
	o := itemPositions{start: make([]int, v+1)}
	for _, i := range seqs {
		if i >= 0 {
			o.start[i+1]++
		}
	}
	for i := range v {
		o.start[i+1] += o.start[i]
	}
	o.at = make([]int32, o.start[v])
	next := slices.Clone(o.start[:v])
	for p, i := range seqs {
		if i >= 0 {
			o.at[next[i]] = int32(p)
			next[i]++
		}
	}
	return o
}

func (o itemPositions) of(i int) []int32 { return o.at[o.start[i]:o.start[i+1]] }

// row accumulates one item's row in a dense array, remembering the
// entries it touched.
type row struct {
	acc     []float64
	touched []int32
}

func newRow(v int) *row { return &row{acc: make([]float64, v)} }

func (r *row) add(j int32, w float64) {
	if r.acc[j] == 0 {
		r.touched = append(r.touched, j)
	}
	r.acc[j] += w
}

// credit adds the items of place p's session at distance d = 1..len(w)
// from p, after it (step 1) or before it (step -1), each with w[d-1].
func (r *row) credit(seqs []int32, p, step int, w []float64) {
	for d := 1; d <= len(w); d++ {
		j := seqs[p+step*d]
		if j == endOfSession {
			return
		}
		if j >= 0 {
			r.add(j, w[d-1])
		}
	}
}

// entry is one cell of a row of T: item j and its weight.
type entry struct {
	j int32
	w float64
}

// byWeight orders entries best first, ties by item index.
func byWeight(a, b entry) int {
	if c := cmp.Compare(b.w, a.w); c != 0 {
		return c
	}
	return cmp.Compare(a.j, b.j)
}

// normalised returns the row's entries, best first, each count c as
// scale * c / (sum + shrinkage), and clears the row. The sum is taken in
// that order, so it does not depend on the order entries were touched.
func (r *row) normalised(dst []entry, shrinkage, scale float64) []entry {
	dst = dst[:0]
	for _, j := range r.touched {
		dst = append(dst, entry{j, r.acc[j]})
		r.acc[j] = 0
	}
	r.touched = r.touched[:0]
	slices.SortFunc(dst, byWeight)
	sum := 0.0
	for _, e := range dst {
		sum += e.w
	}
	for k := range dst {
		dst[k].w = scale * dst[k].w / (sum + shrinkage)
	}
	return dst
}

// Version is the model's name.
func (m *Model) Version() string { return m.version }

// Created is the model's creation time.
func (m *Model) Created() time.Time { return m.created }

// SHA256 is the hex SHA-256 of the model's model.onnx.
func (m *Model) SHA256() string { return m.sha256 }

// Items is the vocabulary size V: the number of items the model knows.
func (m *Model) Items() int { return len(m.vocab) }

// Params are the training parameters.
func (m *Model) Params() Params { return m.params }

// Stats describe the training data.
func (m *Model) Stats() TrainingStats { return m.stats }

// ONNX returns the encoded ONNX model (model.onnx); do not modify it.
func (m *Model) ONNX() []byte { return m.onnx }
