package evidence

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Format names the JSON report's layout (see the package documentation).
const Format = "aether.evidence/1"

// Status is a control's outcome.
type Status string

// The statuses. An error is not a pass: the control could not be shown to
// hold.
const (
	StatusPass  Status = "pass"
	StatusFail  Status = "fail"
	StatusError Status = "error"
)

func (s Status) valid() bool { return s == StatusPass || s == StatusFail || s == StatusError }

// Result is what a check found. Declared and Live are short sentences an
// auditor compares; Why says what decided the status; Details lists the
// evidence (offending items, per-connection states), at most a few dozen
// lines.
type Result struct {
	Status   Status   `json:"status"`
	Declared string   `json:"declared"`
	Live     string   `json:"live"`
	Why      string   `json:"why"`
	Details  []string `json:"details,omitempty"`
}

// Check is one control. Run must honour ctx: Evaluate cancels it at the
// timeout and reports the check as an error without waiting for it.
type Check struct {
	// ID names the control in the report and the metric's control label:
	// lower case, digits and underscores, stable across releases.
	ID string
	// Title says what the control asserts, for a reader.
	Title string
	// Criteria are the SOC 2 criteria the control serves ("CC6.1", ...).
	Criteria []string
	Run      func(ctx context.Context) Result
}

// Control is one check's entry in a report: the check's identity and its
// result.
type Control struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Criteria []string `json:"criteria"`
	Result
	DurationSeconds float64 `json:"durationSeconds"`
}

// Summary counts the controls by status.
type Summary struct {
	Total int `json:"total"`
	Pass  int `json:"pass"`
	Fail  int `json:"fail"`
	Error int `json:"error"`
}

// Skipped is a control the caller could not build (nothing configured to
// check it against). Listing it keeps the gap visible to an auditor.
type Skipped struct {
	ID  string `json:"id"`
	Why string `json:"why"`
}

// Report is one evaluation of a set of checks.
type Report struct {
	Format          string    `json:"format"`
	GeneratedAt     time.Time `json:"generatedAt"`
	DurationSeconds float64   `json:"durationSeconds"`
	// ConfigDigest identifies the configuration evaluated without
	// revealing it (it may hold secrets); see DigestConfig.
	ConfigDigest string    `json:"configDigest,omitempty"`
	Summary      Summary   `json:"summary"`
	Controls     []Control `json:"controls"`
	NotEvaluated []Skipped `json:"notEvaluated,omitempty"`
}

// OK reports whether every control passed: a fail or an error is not OK.
func (r Report) OK() bool { return r.Summary.Pass == r.Summary.Total }

// DigestConfig returns "sha256:<hex>" of a configuration's bytes, the
// report's ConfigDigest.
func DigestConfig(b []byte) string {
	d := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(d[:])
}

// DefaultTimeout bounds one check when no Timeout option is given.
const DefaultTimeout = 30 * time.Second

type options struct {
	timeout      time.Duration
	now          func() time.Time
	configDigest string
	skipped      []Skipped
}

func defaultOptions() options {
	return options{timeout: DefaultTimeout, now: time.Now}
}

// Option configures Evaluate and, through it, a Scheduler.
type Option interface {
	SchedulerOption
	apply(*options)
}

// SchedulerOption configures NewScheduler. Every Option is one; Period and
// Registerer are only that, so passing them to Evaluate does not compile.
type SchedulerOption interface{ applyScheduler(*schedulerConfig) }

type evalOpt func(*options)

func (f evalOpt) apply(o *options)                  { f(o) }
func (f evalOpt) applyScheduler(c *schedulerConfig) { f(&c.eval) }

func applyAll(opts []Option) options {
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}
	return o
}

// Timeout bounds each check (default DefaultTimeout; d <= 0 keeps it).
func Timeout(d time.Duration) Option {
	return evalOpt(func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	})
}

// ConfigDigest records the digest of the configuration evaluated (see
// DigestConfig) in the report.
func ConfigDigest(digest string) Option {
	return evalOpt(func(o *options) { o.configDigest = digest })
}

// NotEvaluated lists controls the caller could not build, with why, in
// the report.
func NotEvaluated(skipped ...Skipped) Option {
	return evalOpt(func(o *options) { o.skipped = append(o.skipped, skipped...) })
}

// Clock replaces time.Now for the report's times; for tests and golden
// files (a fixed clock gives zero durations).
func Clock(now func() time.Time) Option {
	return evalOpt(func(o *options) {
		if now != nil {
			o.now = now
		}
	})
}

// Evaluate runs the checks concurrently, each with its own timeout, and
// returns their results in the order given. It never panics for a check:
// a panic, a timeout, a cancelled ctx or a result without a valid status
// becomes StatusError with the reason in Why.
func Evaluate(ctx context.Context, checks []Check, opts ...Option) Report {
	o := applyAll(opts)
	return evaluate(ctx, checks, o)
}

func evaluate(ctx context.Context, checks []Check, o options) Report {
	start := o.now()
	rep := Report{Format: Format, GeneratedAt: start.UTC(), ConfigDigest: o.configDigest, NotEvaluated: o.skipped}
	rep.Controls = make([]Control, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := o.now()
			res := runOne(ctx, c, o.timeout)
			criteria := c.Criteria
			if criteria == nil {
				criteria = []string{} // [] in JSON, not null
			}
			rep.Controls[i] = Control{ID: c.ID, Title: c.Title, Criteria: criteria, Result: res,
				DurationSeconds: o.now().Sub(t0).Seconds()}
		}()
	}
	wg.Wait()
	for _, c := range rep.Controls {
		rep.Summary.Total++
		switch c.Status {
		case StatusPass:
			rep.Summary.Pass++
		case StatusFail:
			rep.Summary.Fail++
		default:
			rep.Summary.Error++
		}
	}
	rep.DurationSeconds = o.now().Sub(start).Seconds()
	return rep
}

// errTimeout is the cause of a check's context when its timeout passes.
var errTimeout = errors.New("check timed out")

// runOne runs one check in its own goroutine so that a check ignoring its
// context cannot hold the evaluation beyond the timeout; it is left to
// finish on its own.
func runOne(parent context.Context, c Check, timeout time.Duration) Result {
	if c.Run == nil {
		return Result{Status: StatusError, Why: "the check has no function to run"}
	}
	ctx, cancel := context.WithTimeoutCause(parent, timeout, errTimeout)
	defer cancel()
	done := make(chan Result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- Result{Status: StatusError, Why: fmt.Sprintf("the check panicked: %v", p),
					Details: firstLines(string(debug.Stack()), 12)}
			}
		}()
		done <- c.Run(ctx)
	}()
	select {
	case res := <-done:
		if !res.Status.valid() {
			return Result{Status: StatusError, Declared: res.Declared, Live: res.Live,
				Why: fmt.Sprintf("the check returned the status %q, not pass, fail or error", res.Status), Details: res.Details}
		}
		return res
	case <-ctx.Done():
		if errors.Is(context.Cause(ctx), errTimeout) {
			return Result{Status: StatusError, Why: fmt.Sprintf("not evaluated: the check did not finish within %s", timeout)}
		}
		return Result{Status: StatusError, Why: fmt.Sprintf("not evaluated: %v", context.Cause(ctx))}
	}
}

func firstLines(s string, n int) []string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return lines
}

// Helpers the built-in checks share.

// pass, fail and failed build results.
func pass(declared, live, why string, details ...string) Result {
	return Result{Status: StatusPass, Declared: declared, Live: live, Why: why, Details: details}
}

func fail(declared, live, why string, details ...string) Result {
	return Result{Status: StatusFail, Declared: declared, Live: live, Why: why, Details: details}
}

func errResult(declared, why string, details ...string) Result {
	return Result{Status: StatusError, Declared: declared, Live: "unknown", Why: why, Details: details}
}

// plural is "1 key", "2 keys".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// human formats a duration without trailing zero units: 24h, 1h30m, 90s.
func human(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// maxDetails bounds the detail lines a built-in check lists.
const maxDetails = 50

// capped returns at most n items, with a last line saying how many more
// there were.
func capped(items []string, n int) []string {
	if len(items) <= n {
		return items
	}
	out := append([]string(nil), items[:n]...)
	return append(out, fmt.Sprintf("... and %d more", len(items)-n))
}
