package evidence_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aetherai/aether/internal/redisglob"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/controls/evidence"
)

// TestEvidenceSchedulerTurnsRedWithinOnePeriod is the acceptance
// test for Redis: a key written without a TTL turns the control red within
// one period, EXPIRE turns it green again, and the gauges follow.
func TestEvidenceSchedulerTurnsRedWithinOnePeriod(t *testing.T) {
	redisBackends(t, func(t *testing.T, c *redis.Client) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		prefix := uniquePrefix(t, c)
		reg := prometheus.NewRegistry()
		const period = 100 * time.Millisecond
		reports := make(chan evidence.Report, 100)
		s, err := evidence.NewScheduler([]evidence.Check{
			evidence.RedisTTL(c, redisglob.Escape(prefix)+"*"),
			evidence.TLSEverywhere([]evidence.Endpoint{{Name: "redis", Addr: c.Options().Addr, TLS: false}}),
		}, evidence.Period(period), evidence.Registerer(reg), evidence.OnReport(func(r evidence.Report) {
			select {
			case reports <- r:
			default:
			}
		}))
		require.NoError(t, err)
		_, ok := s.Latest()
		require.False(t, ok)
		st, _ := gauges(t, reg)
		require.Empty(t, st, "no series before the first evaluation")

		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()

		// waitFor returns how long the status took to become want.
		waitFor := func(want float64) time.Duration {
			t.Helper()
			start := time.Now()
			require.Eventually(t, func() bool {
				st, _ := gauges(t, reg)
				return st["redis_key_ttl"] == want
			}, 5*time.Second, 10*time.Millisecond)
			return time.Since(start)
		}
		waitFor(1)
		st, last := gauges(t, reg)
		require.Equal(t, map[string]float64{"redis_key_ttl": 1, "encryption_in_transit": 0}, st)
		require.InDelta(t, float64(time.Now().UnixNano())/1e9, last, 5)

		require.NoError(t, c.Set(context.Background(), prefix+"u-1", "{}", 0).Err())
		took := waitFor(0)
		require.Less(t, took, period+time.Second, "red within one period (and one evaluation)")
		rep, ok := s.Latest()
		require.True(t, ok)
		require.Equal(t, evidence.StatusFail, rep.Controls[0].Status)

		require.NoError(t, c.Expire(context.Background(), prefix+"u-1", time.Minute).Err())
		waitFor(1)

		cancel()
		require.NoError(t, <-done)
		require.NotEmpty(t, reports)
	})
}

func TestEvidenceSchedulerErrorGaugeAndHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := evidence.NewScheduler([]evidence.Check{
		{ID: "broken", Criteria: []string{"CC7.2", "PI1.4"}, Run: func(context.Context) evidence.Result { panic("no") }},
	}, evidence.Registerer(reg), evidence.Timeout(time.Second))
	require.NoError(t, err)
	require.Equal(t, evidence.DefaultPeriod, s.Period())

	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/evidence")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	s.EvaluateNow(context.Background())
	st, _ := gauges(t, reg)
	require.Equal(t, map[string]float64{"broken": -1}, st)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var criteria string
	for _, mf := range mfs {
		if mf.GetName() == evidence.MetricStatus {
			for _, l := range mf.GetMetric()[0].GetLabel() {
				if l.GetName() == "criteria" {
					criteria = l.GetValue()
				}
			}
		}
	}
	require.Equal(t, "CC7.2,PI1.4", criteria)

	resp, err = http.Get(srv.URL + "/evidence")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Contains(t, string(body), `<tr id="control-broken" class="status-error" data-status="error">`)

	resp, err = http.Get(srv.URL + "/evidence.json")
	require.NoError(t, err)
	var rep evidence.Report
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&rep))
	resp.Body.Close()
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.Equal(t, evidence.StatusError, rep.Controls[0].Status)
	require.True(t, strings.HasPrefix(rep.Controls[0].Why, "the check panicked: no"))
}

func TestEvidenceSchedulerValidates(t *testing.T) {
	ok := evidence.Check{ID: "a", Run: func(context.Context) evidence.Result { return evidence.Result{Status: evidence.StatusPass} }}
	for name, tc := range map[string]struct {
		checks []evidence.Check
		opts   []evidence.SchedulerOption
		err    string
	}{
		"period":    {[]evidence.Check{ok}, []evidence.SchedulerOption{evidence.Period(0)}, "period must be positive"},
		"duplicate": {[]evidence.Check{ok, ok}, nil, `id "a" is used twice`},
		"bad id":    {[]evidence.Check{{ID: "Redis TTL", Run: ok.Run}}, nil, "not lower case"},
		"no func":   {[]evidence.Check{{ID: "b"}}, nil, `check "b" has no function`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := evidence.NewScheduler(tc.checks, tc.opts...)
			require.ErrorContains(t, err, tc.err)
		})
	}
	reg := prometheus.NewRegistry()
	_, err := evidence.NewScheduler([]evidence.Check{ok}, evidence.Registerer(reg))
	require.NoError(t, err)
	_, err = evidence.NewScheduler([]evidence.Check{ok}, evidence.Registerer(reg))
	require.ErrorContains(t, err, "registering metrics", "two schedulers on one registry would export conflicting statuses")
}
