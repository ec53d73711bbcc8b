// Package rollout serves models that change while the process runs: a hot
// swap of the current model (Swap), and a staged rollout in which a
// candidate model scores a stable share of the users (SetCandidate,
// Promote, ClearCandidate). Watch polls a model store for new approved
// versions and swaps them in.
//
// A Switch is a recommend.ModelScorer: every answer can say which model
// made it (recommend.ScoreWithModel).
//
// Each model the Switch holds lives in a generation with a reference
// count. A call holds a reference to the generations it scores with for
// its whole duration, so a Swap never fails an in-flight call: the call
// finishes on the model it started on, and the replaced model is closed
// (if it has a Close() error method) once the last such call has ended.
package rollout

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/operators/score"
	"github.com/aetherai/aether/recommend"
)

// Metric names.
const (
	MetricRequests  = "aether_model_requests_total"
	MetricInference = "aether_model_inference_seconds"
	MetricSwaps     = "aether_model_swaps_total"
	MetricLoaded    = "aether_model_loaded_info"
)

// Roles of a model in a Switch, the role label of the metrics.
const (
	RoleCurrent   = "current"
	RoleCandidate = "candidate"
)

// EventModelChange is the event attribute of the Switch's log lines (the
// same as approval.EventModelChange).
const EventModelChange = "model_change"

// Option configures New.
type Option func(*Switch)

// Registerer registers the Switch's metrics with reg. A registry that
// already holds them (another Switch) shares them.
func Registerer(reg prometheus.Registerer) Option { return func(s *Switch) { s.reg = reg } }

// Logger logs every model change on log (default: discarded).
func Logger(log *slog.Logger) Option { return func(s *Switch) { s.log = log } }

// Batch wraps every model the Switch serves with score.Batched(model, max),
// so that concurrent calls share inferences, per model. Use it instead of
// wrapping the Switch itself, which would hide which model scored what.
func Batch(max int) Option { return func(s *Switch) { s.batch = max } }

// Switch is a recommend.ModelScorer that routes each record to the current
// model or, for a share of the users, to a candidate. It is safe for
// concurrent use.
type Switch struct {
	cur   atomic.Pointer[gen]
	cand  atomic.Pointer[gen]
	share atomic.Uint64 // float64 bits of the candidate's share

	mu     sync.Mutex // serialises changes
	last   recommend.Model
	closed bool
	reg    prometheus.Registerer
	log    *slog.Logger
	batch  int

	requests  *prometheus.CounterVec
	inference *prometheus.HistogramVec
	swaps     prometheus.Counter
	loaded    *prometheus.GaugeVec
}

var _ recommend.ModelScorer = (*Switch)(nil)

// gen is one model in the Switch, with its reference count: 1 for the
// Switch while it serves the model, plus 1 per call using it.
type gen struct {
	raw    recommend.Scorer // as given: closed on retirement
	scorer recommend.Scorer // raw, or raw batched
	model  recommend.Model
	refs   atomic.Int64
	closed chan struct{} // closed once the model is retired and idle
	log    *slog.Logger
}

func (s *Switch) newGen(sc recommend.Scorer) *gen {
	g := &gen{raw: sc, scorer: sc, model: sc.Model(), closed: make(chan struct{}), log: s.log}
	if s.batch > 0 {
		g.scorer = score.Batched(sc, s.batch)
	}
	g.refs.Store(1)
	return g
}

// tryAcquire takes a reference unless g is already retired and idle.
func (g *gen) tryAcquire() bool {
	for {
		n := g.refs.Load()
		if n <= 0 {
			return false
		}
		if g.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference; the last one closes the model.
func (g *gen) release() {
	if g.refs.Add(-1) != 0 {
		return
	}
	if c, ok := g.raw.(interface{ Close() error }); ok {
		if err := c.Close(); err != nil {
			g.log.Warn("closing a replaced model failed", "event", EventModelChange,
				"version", g.model.Version, "sha256", g.model.SHA256, "error", err.Error())
		}
	}
	close(g.closed)
}

// acquire returns the generation p points at, with a reference, or nil.
func acquire(p *atomic.Pointer[gen]) *gen {
	for {
		g := p.Load()
		if g == nil || g.tryAcquire() {
			return g
		}
		// g was retired between the load and the acquire: p holds its
		// successor by now.
	}
}

// New returns a Switch serving current. It panics if current is nil.
func New(current recommend.Scorer, opts ...Option) *Switch {
	if current == nil {
		panic("rollout: New with a nil scorer")
	}
	s := &Switch{}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.requests = register(s.reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRequests,
		Help: "Records scored, by the role (current or candidate) and version of the model that scored them.",
	}, []string{"role", "version"}))
	s.inference = register(s.reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    MetricInference,
		Help:    "Duration of one scoring call to a model, by role (current or candidate).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	}, []string{"role"}))
	s.swaps = register(s.reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: MetricSwaps,
		Help: "Times the current model was replaced (Swap or Promote).",
	}))
	s.loaded = register(s.reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricLoaded,
		Help: "1 for each model being served, by role, version and SHA-256.",
	}, []string{"role", "version", "sha256"}))
	g := s.newGen(current)
	s.cur.Store(g)
	s.mu.Lock()
	s.updateInfo()
	s.mu.Unlock()
	s.logChange("load", g.model, recommend.Model{}, RoleCurrent, 0)
	return s
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("rollout: registering metrics: %v", err))
	}
	return c
}

// updateInfo sets the loaded_info gauge; s.mu is held.
func (s *Switch) updateInfo() {
	s.loaded.Reset()
	if g := s.cur.Load(); g != nil {
		s.loaded.WithLabelValues(RoleCurrent, g.model.Version, g.model.SHA256).Set(1)
	}
	if g := s.cand.Load(); g != nil {
		s.loaded.WithLabelValues(RoleCandidate, g.model.Version, g.model.SHA256).Set(1)
	}
}

func (s *Switch) logChange(action string, m, prev recommend.Model, role string, share float64) {
	attrs := []slog.Attr{
		slog.String("event", EventModelChange),
		slog.String("action", action),
		slog.String("role", role),
		slog.String("version", m.Version),
		slog.String("sha256", m.SHA256),
	}
	if prev != (recommend.Model{}) {
		attrs = append(attrs, slog.String("previous_version", prev.Version), slog.String("previous_sha256", prev.SHA256))
	}
	if role == RoleCandidate {
		attrs = append(attrs, slog.Float64("share", share))
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "model "+action, attrs...)
}

// Swap makes next the current model. Calls already running finish on the
// model they started with; that model is closed (if it has a Close()
// error method) once they have all ended. It panics if next is nil.
func (s *Switch) Swap(next recommend.Scorer) {
	if next == nil {
		panic("rollout: Swap with a nil scorer")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closedLocked(next) {
		return
	}
	g := s.newGen(next)
	old := s.cur.Swap(g)
	s.swaps.Inc()
	s.updateInfo()
	s.logChange("swap", g.model, old.model, RoleCurrent, 0)
	old.release()
}

// SetCandidate makes c the candidate model, scoring the users whose hash
// falls below share (0..1, clamped). Setting the candidate already set
// only changes the share; another candidate replaces (and eventually
// closes) the previous one.
func (s *Switch) SetCandidate(c recommend.Scorer, share float64) {
	if c == nil {
		s.ClearCandidate()
		return
	}
	if math.IsNaN(share) {
		share = 0
	}
	share = min(max(share, 0), 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closedLocked(c) {
		return
	}
	s.share.Store(math.Float64bits(share))
	old := s.cand.Load()
	if old != nil && old.raw == c {
		s.logChange("candidate", old.model, recommend.Model{}, RoleCandidate, share)
		return
	}
	g := s.newGen(c)
	s.cand.Store(g)
	s.updateInfo()
	var prev recommend.Model
	if old != nil {
		prev = old.model
	}
	s.logChange("candidate", g.model, prev, RoleCandidate, share)
	if old != nil {
		old.release()
	}
}

// ClearCandidate stops the rollout: every user is scored by the current
// model again; the candidate is closed once its calls end. It returns the
// candidate it cleared, or ok false, changing nothing, without one: the
// check and the change are one step, so a concurrent SetCandidate or
// Promote cannot slip between them.
func (s *Switch) ClearCandidate() (cleared recommend.Model, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cand.Swap(nil)
	if old == nil {
		return recommend.Model{}, false
	}
	s.share.Store(0)
	s.updateInfo()
	s.logChange("clear_candidate", old.model, recommend.Model{}, RoleCandidate, 0)
	old.release()
	return old.model, true
}

// Promote makes the candidate the current model (a swap) and ends the
// rollout. It returns the model it promoted, now the current one, or ok
// false, changing nothing, without a candidate (or once closed). The
// check and the swap are one step, as in ClearCandidate.
func (s *Switch) Promote() (promoted recommend.Model, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cand.Load()
	if c == nil || s.closed {
		return recommend.Model{}, false
	}
	old := s.cur.Swap(c) // the candidate's reference moves to current
	s.cand.Store(nil)
	s.share.Store(0)
	s.swaps.Inc()
	s.updateInfo()
	s.logChange("promote", c.model, old.model, RoleCurrent, 0)
	old.release()
	return c.model, true
}

// Candidate returns the candidate's identity and share; ok is false
// without a candidate.
func (s *Switch) Candidate() (m recommend.Model, share float64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.cand.Load()
	if g == nil {
		return recommend.Model{}, 0, false
	}
	return g.model, math.Float64frombits(s.share.Load()), true
}

// ErrClosed is returned by the scoring calls of a closed Switch.
var ErrClosed = errors.New("rollout: switch closed")

// Close stops serving: the current model and the candidate are closed
// once their in-flight calls end, and later calls fail with ErrClosed.
// Changes after Close are ignored (a swapped-in model is closed at once).
func (s *Switch) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.last = s.Model()
	cur, cand := s.cur.Swap(nil), s.cand.Swap(nil)
	s.loaded.Reset()
	cur.release()
	if cand != nil {
		cand.release()
	}
	return nil
}

// closedLocked closes sc if the Switch is closed; s.mu is held.
func (s *Switch) closedLocked(sc recommend.Scorer) bool {
	if !s.closed {
		return false
	}
	if c, ok := sc.(interface{ Close() error }); ok {
		_ = c.Close()
	}
	return true
}

// Model identifies the current model (the last one, once closed).
func (s *Switch) Model() recommend.Model {
	if g := s.cur.Load(); g != nil {
		return g.model
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Popular returns the current model's popular items (none once closed).
func (s *Switch) Popular(k int) []recommend.Item {
	g := acquire(&s.cur)
	if g == nil {
		return nil
	}
	defer g.release()
	return g.scorer.Popular(k)
}

// Score returns the top k items of each record, from the model that
// record's user is routed to.
func (s *Switch) Score(ctx context.Context, records []features.Record, k int) ([][]recommend.Item, error) {
	items, _, err := s.ScoreWithModel(ctx, records, k)
	return items, err
}

// Hash maps a user to [0, 1): users with Hash(user) < share are scored by
// the candidate. It is FNV-1a followed by MurmurHash3's 64-bit finaliser
// (FNV alone spreads similar ids such as user-1, user-2 poorly), so it is
// stable across processes, hosts and releases.
func Hash(userID string) float64 {
	h := fnv.New64a()
	h.Write([]byte(userID))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return float64(x>>11) / (1 << 53)
}

// ScoreWithModel is Score that also says which model scored each record.
// A call whose records go to both models is split into one call per
// model, run concurrently, and merged back in the records' order.
func (s *Switch) ScoreWithModel(ctx context.Context, records []features.Record, k int) ([][]recommend.Item, []recommend.Model, error) {
	cur := acquire(&s.cur)
	if cur == nil {
		return nil, nil, ErrClosed
	}
	defer cur.release()
	share := math.Float64frombits(s.share.Load())
	var cand *gen
	if share > 0 {
		if cand = acquire(&s.cand); cand != nil {
			defer cand.release()
		}
	}
	if cand == nil {
		items, err := s.run(ctx, cur, RoleCurrent, records, k)
		if err != nil {
			return nil, nil, err
		}
		return items, fill(cur.model, len(records)), nil
	}
	toCand := make([]bool, len(records))
	var nc int
	for i, r := range records {
		if Hash(r.UserID) < share {
			toCand[i] = true
			nc++
		}
	}
	switch nc {
	case 0:
		items, err := s.run(ctx, cur, RoleCurrent, records, k)
		if err != nil {
			return nil, nil, err
		}
		return items, fill(cur.model, len(records)), nil
	case len(records):
		items, err := s.run(ctx, cand, RoleCandidate, records, k)
		if err != nil {
			return nil, nil, err
		}
		return items, fill(cand.model, len(records)), nil
	}
	var recC, recK []features.Record
	for i, r := range records {
		if toCand[i] {
			recC = append(recC, r)
		} else {
			recK = append(recK, r)
		}
	}
	var itemsC [][]recommend.Item
	var errC error
	done := make(chan struct{})
	go func() {
		defer close(done)
		itemsC, errC = s.run(ctx, cand, RoleCandidate, recC, k)
	}()
	itemsK, errK := s.run(ctx, cur, RoleCurrent, recK, k)
	<-done
	if err := errors.Join(errK, errC); err != nil {
		return nil, nil, err
	}
	items := make([][]recommend.Item, len(records))
	models := make([]recommend.Model, len(records))
	var ic, ik int
	for i := range records {
		if toCand[i] {
			items[i], models[i] = itemsC[ic], cand.model
			ic++
		} else {
			items[i], models[i] = itemsK[ik], cur.model
			ik++
		}
	}
	return items, models, nil
}

func (s *Switch) run(ctx context.Context, g *gen, role string, records []features.Record, k int) ([][]recommend.Item, error) {
	start := time.Now()
	items, err := g.scorer.Score(ctx, records, k)
	s.inference.WithLabelValues(role).Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, fmt.Errorf("%s model %s: %w", role, g.model.Version, err)
	}
	if len(items) != len(records) {
		return nil, fmt.Errorf("%s model %s returned %d answers for %d records", role, g.model.Version, len(items), len(records))
	}
	s.requests.WithLabelValues(role, g.model.Version).Add(float64(len(records)))
	return items, nil
}

func fill(m recommend.Model, n int) []recommend.Model {
	out := make([]recommend.Model, n)
	for i := range out {
		out[i] = m
	}
	return out
}
