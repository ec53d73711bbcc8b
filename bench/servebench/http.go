package servebench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/operators/cache"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/recommend"
	"github.com/aetherai/aether/runner/api"
)

// userIDs returns "user_0" ... "user_<n-1>".
func userIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "user_" + strconv.Itoa(i)
	}
	return out
}

// filled describes the pre-filled cache.
type filled struct {
	// medianKey is the key of an entry of median size, medianBytes its
	// size.
	medianKey   string
	medianBytes int
	// padded counts the entries the model gave fewer than k items, filled
	// up with popular items (a cache hit needs at least k).
	padded int
}

// fillCache stores recommendations for every user through the cache, as
// the scorer would: user i gets the model's top k for the feature record of
// generator user i mod TrainUsers (scored in batches), filled up to k items
// with the most popular ones when the model found fewer.
func fillCache(ctx context.Context, fx *fixture, rc *cache.RedisCache, rdb *redis.Client, users []string, k int, log io.Writer) (filled, error) {
	start := time.Now()
	var res filled
	n := min(len(users), len(fx.records))
	answers := make([][]recommend.Item, 0, n)
	for i := 0; i < n; i += 256 {
		out, err := fx.scorer.Score(ctx, fx.records[i:min(i+256, n)], k)
		if err != nil {
			return res, fmt.Errorf("scoring the cache entries: %w", err)
		}
		answers = append(answers, out...)
	}
	// At most k popular items can already be in a user's list.
	popular := fx.scorer.Popular(2 * k)
	for i, items := range answers {
		if len(items) >= k {
			continue
		}
		res.padded++
		for _, p := range popular {
			if len(items) == k {
				break
			}
			if !slices.ContainsFunc(items, func(it recommend.Item) bool { return it.ProductID == p.ProductID }) {
				items = append(items, p)
			}
		}
		if len(items) < k {
			return res, fmt.Errorf("the model knows %d items, fewer than k = %d", fx.scorer.Items(), k)
		}
		answers[i] = items
	}

	id := fx.scorer.Model()
	now := time.Now().UTC()
	const chunk = 500
	batch := make([]recommend.Recommendations, 0, chunk)
	for i := 0; i < len(users); i += chunk {
		batch = batch[:0]
		for j := i; j < min(i+chunk, len(users)); j++ {
			batch = append(batch, recommend.Recommendations{
				UserID: users[j], Items: answers[j%n], Model: id, Source: recommend.FromInference, GeneratedAt: now,
			})
		}
		if err := rc.Put(ctx, batch...); err != nil {
			return res, fmt.Errorf("filling the cache: %w", err)
		}
	}

	// Entry sizes, for the baseline's key.
	sizes := make([]int, len(users))
	for i := 0; i < len(users); i += chunk {
		pipe := rdb.Pipeline()
		cmds := make([]*redis.IntCmd, 0, chunk)
		for _, u := range users[i:min(i+chunk, len(users))] {
			cmds = append(cmds, pipe.StrLen(ctx, rc.Key(u)))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return res, fmt.Errorf("reading the cache entries' sizes: %w", err)
		}
		for j, c := range cmds {
			sizes[i+j] = int(c.Val())
			if sizes[i+j] == 0 {
				return res, fmt.Errorf("cache entry %s is missing after the fill", rc.Key(users[i+j]))
			}
		}
	}
	order := make([]int, len(users))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return sizes[a] - sizes[b] })
	mid := order[len(order)/2]
	res.medianKey, res.medianBytes = rc.Key(users[mid]), sizes[mid]
	fmt.Fprintf(log, "filled the cache with %s entries (k = %d, %d padded with popular items) under %s in %.2f s: %d to %d bytes, median %d\n",
		thousands(int64(len(users))), k, res.padded, rc.Prefix(), time.Since(start).Seconds(),
		sizes[order[0]], sizes[order[len(order)-1]], res.medianBytes)
	return res, nil
}

// noEvents is the API's event sink: the benchmark never posts events.
type noEvents struct{}

func (noEvents) Send(context.Context, []event.Event) error {
	return errors.New("servebench: the event sink is not part of the benchmark")
}

// errFeatureStoreHit is what the feature store answers: a request that
// reaches it was not served from the cache.
var errFeatureStoreHit = errors.New("servebench: feature store hit on a cache-hit benchmark")

// noFeatures is the API's feature store; every request must be a cache
// hit, so Get counts its calls and fails.
type noFeatures struct{ hits atomic.Int64 }

func (f *noFeatures) Get(string) (features.Record, bool, error) {
	f.hits.Add(1)
	return features.Record{}, false, errFeatureStoreHit
}

func (f *noFeatures) Ready() bool { return true }

// httpResult is the HTTP measurement.
type httpResult struct {
	requests, failures  int64 // successes, failures
	rps                 float64
	p50, p99, p999, max time.Duration
	responseBytes       int
	firstFailure        string
	// CPU used during the timed run, in cores (-1: unknown).
	selfCores, redisCores float64
}

// measureHTTP serves the API on a loopback listener and drives it with
// cfg.Connections clients over random users: untimed for a tenth of
// cfg.Duration (at most a second, to open the connections), then for
// cfg.Duration, timing every request.
func measureHTTP(ctx context.Context, fx *fixture, rc *cache.RedisCache, rdb *redis.Client, reg *prometheus.Registry,
	users []string, cfg Config, log io.Writer) (httpResult, error) {
	var keyBytes [16]byte
	if _, err := rand.Read(keyBytes[:]); err != nil {
		return httpResult{}, err
	}
	apiKey := hex.EncodeToString(keyBytes[:])
	fs := &noFeatures{}
	srv, err := api.New(api.Config{
		Events:     noEvents{},
		Features:   fs,
		Scorer:     fx.scorer,
		Cache:      rc,
		APIKeys:    map[string]string{apiKey: "servebench"},
		Registerer: reg,
		Gatherer:   reg,
	})
	if err != nil {
		return httpResult{}, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return httpResult{}, err
	}
	// The runner's server settings.
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		<-served
	}()

	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        cfg.Connections,
		MaxIdleConnsPerHost: cfg.Connections,
		MaxConnsPerHost:     cfg.Connections,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	base := "http://" + ln.Addr().String() + "/v1/recommendations/"
	d := &driver{
		client:  client,
		auth:    "Bearer " + apiKey,
		urls:    make([]string, len(users)),
		needles: make([][]byte, len(users)),
		k:       cfg.K,
	}
	for i, u := range users {
		d.urls[i] = base + u + "?k=" + strconv.Itoa(cfg.K)
		d.needles[i] = []byte(`"userId":"` + u + `"`)
	}
	fmt.Fprintf(log, "HTTP API on http://%s, %d connections, %s over %s users\n",
		ln.Addr(), cfg.Connections, cfg.Duration, thousands(int64(len(users))))

	warm := min(cfg.Duration/10, time.Second)
	if _, err := d.run(ctx, cfg.Connections, warm, false); err != nil {
		return httpResult{}, err
	}
	stopProfile := func() error { return nil }
	if cfg.CPUProfile != "" {
		if stopProfile, err = startProfile(cfg.CPUProfile); err != nil {
			return httpResult{}, err
		}
	}
	cpu := startCPU(ctx, rdb)
	res, err := d.run(ctx, cfg.Connections, cfg.Duration, true)
	res.selfCores, res.redisCores = cpu.stop(ctx)
	if perr := stopProfile(); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return httpResult{}, err
	}
	if h := fs.hits.Load(); h > 0 && res.failures == 0 {
		// Cannot happen (a feature store error is a 503), but be sure.
		res.failures = h
		res.firstFailure = errFeatureStoreHit.Error()
	}
	fmt.Fprintf(log, "HTTP cache hits: %s req/s (%s requests in %s, %d failed), latency p50 %s, p99 %s, p99.9 %s, max %s; "+
		"%d-byte responses; CPU: this process %.2f cores, redis-server %.2f\n",
		thousands(int64(math.Round(res.rps))), thousands(res.requests), cfg.Duration, res.failures,
		millis(res.p50), millis(res.p99), millis(res.p999), millis(res.max), res.responseBytes, res.selfCores, res.redisCores)
	return res, nil
}

// startProfile starts a CPU profile written to path; the function it
// returns stops it and closes the file.
func startProfile(path string) (func() error, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// driver sends the benchmark's requests.
type driver struct {
	client  *http.Client
	auth    string
	urls    []string
	needles [][]byte // `"userId":"<user>"`, by user
	k       int
}

var (
	cacheSource = []byte(`"source":"cache"`)
	productID   = []byte(`"productId":`)
)

// worker is one client's tally.
type worker struct {
	lat      []time.Duration
	ok, fail int64
	first    string
	size     int
}

// run drives the server with conns clients for dur. With timed set it
// returns every successful request's latency; failures are counted either
// way (a failure in the warm-up fails the run too).
func (d *driver) run(ctx context.Context, conns int, dur time.Duration, timed bool) (httpResult, error) {
	workers := make([]worker, conns)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(dur)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.work(ctx, &workers[w], uint64(w), end, timed)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return httpResult{}, err
	}

	var res httpResult
	var lat []time.Duration
	for i := range workers {
		w := &workers[i]
		res.requests += w.ok
		res.failures += w.fail
		if res.firstFailure == "" {
			res.firstFailure = w.first
		}
		if w.size > 0 {
			res.responseBytes = w.size
		}
		lat = append(lat, w.lat...)
	}
	if !timed {
		if res.failures > 0 {
			return res, &FailuresError{Failures: res.failures, Requests: res.requests + res.failures, First: "(warm-up) " + res.firstFailure}
		}
		return res, nil
	}
	slices.Sort(lat)
	res.rps = float64(res.requests) / elapsed.Seconds()
	res.p50, res.p99, res.p999 = percentile(lat, 0.50), percentile(lat, 0.99), percentile(lat, 0.999)
	if len(lat) > 0 {
		res.max = lat[len(lat)-1]
	}
	return res, nil
}

func (d *driver) work(ctx context.Context, w *worker, id uint64, end time.Time, timed bool) {
	rng := mrand.New(mrand.NewPCG(id, uint64(end.UnixNano())))
	var body bytes.Buffer
	if timed {
		w.lat = make([]time.Duration, 0, 1<<14)
	}
	for ctx.Err() == nil {
		t0 := time.Now()
		if !t0.Before(end) {
			return
		}
		u := rng.IntN(len(d.urls))
		msg := d.get(ctx, u, &body)
		if msg != "" {
			w.fail++
			if w.first == "" {
				w.first = msg
			}
			continue
		}
		if timed {
			w.lat = append(w.lat, time.Since(t0))
		}
		w.ok++
		w.size = body.Len()
	}
}

// get requests user u's recommendations and checks the answer: 200, the
// user's, from the cache, k items. It returns what is wrong, "" if nothing.
func (d *driver) get(ctx context.Context, u int, body *bytes.Buffer) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.urls[u], nil)
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Authorization", d.auth)
	resp, err := d.client.Do(req)
	if err != nil {
		return err.Error()
	}
	body.Reset()
	_, err = body.ReadFrom(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return fmt.Sprintf("reading the answer: %v", err)
	case resp.StatusCode != http.StatusOK:
		return fmt.Sprintf("status %d: %.200s", resp.StatusCode, body.Bytes())
	case !bytes.Contains(body.Bytes(), cacheSource):
		return fmt.Sprintf("not from the cache: %.200s", body.Bytes())
	case !bytes.Contains(body.Bytes(), d.needles[u]):
		return fmt.Sprintf("not the answer of the user asked for (index %d): %.200s", u, body.Bytes())
	}
	if n := bytes.Count(body.Bytes(), productID); n != d.k {
		return fmt.Sprintf("%d items, want %d: %.200s", n, d.k, body.Bytes())
	}
	return ""
}

// percentile returns the nearest-rank p-quantile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
