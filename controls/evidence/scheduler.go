package evidence

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultPeriod is how often a Scheduler re-evaluates when no Period is
// given: a broken control shows within five minutes.
const DefaultPeriod = 5 * time.Minute

// The metrics a Scheduler exports.
const (
	MetricStatus        = "aether_control_status"
	MetricLastEvaluated = "aether_control_last_evaluated_timestamp_seconds"
)

type schedulerConfig struct {
	eval   options
	period time.Duration
	reg    prometheus.Registerer
	notify func(Report)
}

type schedOpt func(*schedulerConfig)

func (f schedOpt) applyScheduler(c *schedulerConfig) { f(c) }

// Period sets how often Run re-evaluates (default DefaultPeriod); it must
// be positive.
func Period(d time.Duration) SchedulerOption {
	return schedOpt(func(c *schedulerConfig) { c.period = d })
}

// Registerer registers the scheduler's metrics (MetricStatus,
// MetricLastEvaluated) with reg; without it they are only reachable
// through Scheduler.Collector.
func Registerer(reg prometheus.Registerer) SchedulerOption {
	return schedOpt(func(c *schedulerConfig) { c.reg = reg })
}

// OnReport calls f with every new report, after Latest and the metrics
// show it: to log status changes, write a file, or audit the evaluation.
// f runs on the scheduler's goroutine; a slow f delays the next period.
func OnReport(f func(Report)) SchedulerOption {
	return schedOpt(func(c *schedulerConfig) { c.notify = f })
}

// Scheduler re-evaluates a fixed set of checks every period, keeps the
// latest report for HTTP (Handler) and exports each control's status as a
// metric. It is safe for concurrent use.
type Scheduler struct {
	checks []Check
	cfg    schedulerConfig
	evalMu sync.Mutex // one evaluation at a time

	mu     sync.Mutex
	latest *Report
}

// validID is the form of a control id: it is a metric label value and an
// HTML id, and stays readable in both.
var validID = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// NewScheduler checks the checks (ids present, well-formed and unique,
// each with a function) and the options, and registers the metrics. It
// does not evaluate: call Run or EvaluateNow.
func NewScheduler(checks []Check, opts ...SchedulerOption) (*Scheduler, error) {
	cfg := schedulerConfig{eval: defaultOptions(), period: DefaultPeriod}
	for _, o := range opts {
		o.applyScheduler(&cfg)
	}
	if cfg.period <= 0 {
		return nil, fmt.Errorf("evidence: the period must be positive, got %s", cfg.period)
	}
	if err := validateChecks(checks); err != nil {
		return nil, err
	}
	s := &Scheduler{checks: append([]Check(nil), checks...), cfg: cfg}
	if cfg.reg != nil {
		if err := cfg.reg.Register(s.Collector()); err != nil {
			return nil, fmt.Errorf("evidence: registering metrics: %w", err)
		}
	}
	return s, nil
}

func validateChecks(checks []Check) error {
	seen := map[string]bool{}
	for i, c := range checks {
		switch {
		case !validID.MatchString(c.ID):
			return fmt.Errorf("evidence: check %d: id %q is not lower case letters, digits and underscores", i, c.ID)
		case seen[c.ID]:
			return fmt.Errorf("evidence: check %d: id %q is used twice", i, c.ID)
		case c.Run == nil:
			return fmt.Errorf("evidence: check %q has no function", c.ID)
		}
		seen[c.ID] = true
	}
	return nil
}

// Period is the re-evaluation period.
func (s *Scheduler) Period() time.Duration { return s.cfg.period }

// Run evaluates at once, then every period, until ctx ends; it returns
// nil then. An evaluation in progress when ctx ends is cut short (its
// checks report errors) and not published.
func (s *Scheduler) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.period)
	defer t.Stop()
	for {
		s.evaluate(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// EvaluateNow evaluates the checks, publishes the report (Latest, the
// metrics, OnReport) and returns it.
func (s *Scheduler) EvaluateNow(ctx context.Context) Report {
	rep := s.evaluate(ctx)
	return rep
}

func (s *Scheduler) evaluate(ctx context.Context) Report {
	s.evalMu.Lock()
	defer s.evalMu.Unlock()
	rep := evaluate(ctx, s.checks, s.cfg.eval)
	if ctx.Err() != nil {
		return rep // cancelled: not published
	}
	s.mu.Lock()
	s.latest = &rep
	s.mu.Unlock()
	if s.cfg.notify != nil {
		s.cfg.notify(rep)
	}
	return rep
}

// Latest returns the last published report; false before the first.
func (s *Scheduler) Latest() (Report, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.latest == nil {
		return Report{}, false
	}
	return *s.latest, true
}

// Collector exports the latest report: MetricStatus per control and
// MetricLastEvaluated. Before the first evaluation it exports nothing, so
// that absent() alerts see the gap.
func (s *Scheduler) Collector() prometheus.Collector { return collector{s} }

var (
	statusDesc = prometheus.NewDesc(MetricStatus,
		"Status of each compliance control at its last evaluation: 1 pass, 0 fail, -1 error (could not be evaluated).",
		[]string{"control", "criteria"}, nil)
	lastEvaluatedDesc = prometheus.NewDesc(MetricLastEvaluated,
		"Unix time at which the last evaluation of the controls finished.", nil, nil)
)

type collector struct{ s *Scheduler }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- statusDesc
	ch <- lastEvaluatedDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	rep, ok := c.s.Latest()
	if !ok {
		return
	}
	for _, ctl := range rep.Controls {
		ch <- prometheus.MustNewConstMetric(statusDesc, prometheus.GaugeValue, StatusValue(ctl.Status),
			ctl.ID, strings.Join(ctl.Criteria, ","))
	}
	end := rep.GeneratedAt.Add(time.Duration(rep.DurationSeconds * float64(time.Second)))
	ch <- prometheus.MustNewConstMetric(lastEvaluatedDesc, prometheus.GaugeValue, float64(end.UnixNano())/1e9)
}

// StatusValue is a status as the metric's value: 1 pass, 0 fail, -1
// error.
func StatusValue(s Status) float64 {
	switch s {
	case StatusPass:
		return 1
	case StatusFail:
		return 0
	default:
		return -1
	}
}

// Handler serves the latest report: JSON for a path ending in ".json"
// (mount it at /evidence.json), the HTML page otherwise (/evidence).
// Before the first evaluation it answers 503.
func (s *Scheduler) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep, ok := s.Latest()
		if !ok {
			http.Error(w, "evidence: no evaluation has finished yet", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if strings.HasSuffix(r.URL.Path, ".json") {
			w.Header().Set("Content-Type", "application/json")
			_ = WriteJSON(w, rep)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = WriteHTML(w, rep)
	})
}
