package api

import (
	"errors"
	"math"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit is a token bucket per client: PerSecond requests a second on
// average, in bursts of up to Burst. Zero PerSecond means no limit; zero
// Burst means PerSecond rounded up (at least 1).
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// newLimiters returns one bucket per client, made up front so that serving
// needs no lock of its own; nil when there is no limit.
func newLimiters(rl RateLimit, clients []string) (map[string]*rate.Limiter, error) {
	switch {
	case rl.PerSecond < 0 || math.IsNaN(rl.PerSecond) || math.IsInf(rl.PerSecond, 0):
		return nil, errors.New("RateLimit.PerSecond must be a finite number, 0 or more")
	case rl.Burst < 0:
		return nil, errors.New("RateLimit.Burst must not be negative")
	case rl.PerSecond == 0:
		return nil, nil
	}
	burst := rl.Burst
	if burst == 0 {
		burst = max(1, int(math.Ceil(rl.PerSecond)))
	}
	m := make(map[string]*rate.Limiter, len(clients))
	for _, c := range clients {
		m[c] = rate.NewLimiter(rate.Limit(rl.PerSecond), burst)
	}
	return m, nil
}

// admit takes a token of client's bucket, judged on the server's clock. If
// none is left it takes nothing and returns how long until one is.
func (s *Server) admit(client string) (time.Duration, bool) {
	lim := s.limits[client]
	if lim == nil {
		return 0, true
	}
	now := s.now()
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return time.Second, false
	}
	wait := res.DelayFrom(now)
	if wait <= 0 {
		return 0, true
	}
	res.CancelAt(now)
	return wait, false
}

// retryAfterSeconds is the Retry-After value for a wait: whole seconds,
// rounded up, at least 1.
func retryAfterSeconds(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}
