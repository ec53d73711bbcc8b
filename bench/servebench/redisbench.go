package servebench

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// InstallRedisTools is the command that installs redis-benchmark (and
// redis-server, redis-cli) on Debian and Ubuntu.
const InstallRedisTools = "apt-get install -y redis-tools"

// findRedisBenchmark returns the path of redis-benchmark.
func findRedisBenchmark() (string, error) {
	p, err := exec.LookPath("redis-benchmark")
	if err != nil {
		return "", fmt.Errorf("redis-benchmark not found in PATH (it runs the Redis baseline): install it with `%s`", InstallRedisTools)
	}
	return p, nil
}

// redisBench is redis-benchmark's result for GET.
type redisBench struct {
	requests     int
	rps          float64
	p50ms, p99ms float64 // 0 if the CSV lacks them (redis-benchmark < 7)
	// redisCores is the CPU redis-server used during the run, in cores
	// (-1: unknown).
	redisCores float64
	// clientCores is the CPU redis-benchmark itself used, in cores.
	clientCores float64
}

// calibrationRequests is -n of the short run that sizes the measured one.
const calibrationRequests = 20000

// runRedisBenchmark runs `redis-benchmark -h HOST -p PORT -c C -n N --csv
// GET key` on one cache entry, after a calibration run of
// calibrationRequests that sizes N to last about cfg.Duration (unless
// cfg.RedisRequests sets it).
func runRedisBenchmark(ctx context.Context, path string, cfg Config, rdb *redis.Client, key string, log io.Writer) (redisBench, error) {
	host, port, err := net.SplitHostPort(cfg.Redis)
	if err != nil {
		return redisBench{}, err
	}
	run := func(n int) (redisBench, error) {
		args := []string{"-h", host, "-p", port, "-c", strconv.Itoa(cfg.Connections), "-n", strconv.Itoa(n), "--csv", "GET", key}
		cmd := exec.CommandContext(ctx, path, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		began := time.Now()
		if err := cmd.Run(); err != nil {
			if ctx.Err() != nil {
				return redisBench{}, ctx.Err()
			}
			return redisBench{}, fmt.Errorf("redis-benchmark %s: %w: %s", strings.Join(args, " "), err,
				strings.TrimSpace(stderr.String()+" "+stdout.String()))
		}
		rb, err := parseCSV(stdout.Bytes())
		if err != nil {
			return redisBench{}, fmt.Errorf("redis-benchmark %s: %w", strings.Join(args, " "), err)
		}
		rb.requests = n
		if ps := cmd.ProcessState; ps != nil {
			rb.clientCores = round((ps.UserTime()+ps.SystemTime()).Seconds()/time.Since(began).Seconds(), 2)
		}
		return rb, nil
	}

	n := cfg.RedisRequests
	if n == 0 {
		cal, err := run(calibrationRequests)
		if err != nil {
			return redisBench{}, err
		}
		n = int(math.Round(cal.rps * cfg.Duration.Seconds()))
		n = min(max(n, calibrationRequests), 100_000_000)
		fmt.Fprintf(log, "redis-benchmark calibration: %s GET/s over %s requests; measuring %s requests (~%s)\n",
			thousands(int64(cal.rps)), thousands(calibrationRequests), thousands(int64(n)), cfg.Duration)
	}
	start := time.Now()
	cpu := startCPU(ctx, rdb)
	rb, err := run(n)
	if err != nil {
		return redisBench{}, err
	}
	_, rb.redisCores = cpu.stop(ctx)
	fmt.Fprintf(log, "redis-benchmark GET of one cache entry, %d connections: %s req/s (%s requests in %.2f s), p50 %.3f ms, p99 %.3f ms; "+
		"CPU: redis-benchmark %.2f cores, redis-server %.2f\n",
		cfg.Connections, thousands(int64(math.Round(rb.rps))), thousands(int64(n)), time.Since(start).Seconds(), rb.p50ms, rb.p99ms, rb.clientCores, rb.redisCores)
	return rb, nil
}

// parseCSV reads redis-benchmark's --csv output: a header row
// ("test","rps","avg_latency_ms",...,"p99_latency_ms",... in version 7;
// "test","rps" before) and one row per test. It returns the GET row's rps
// and, if present, p50 and p99.
func parseCSV(out []byte) (redisBench, error) {
	r := csv.NewReader(bytes.NewReader(out))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return redisBench{}, fmt.Errorf("reading the CSV output: %w: %q", err, out)
	}
	var header, row []string
	for _, rec := range rows {
		if len(rec) == 0 {
			continue
		}
		switch {
		case rec[0] == "test":
			header = rec
		case strings.HasPrefix(strings.ToUpper(rec[0]), "GET"):
			row = rec
		}
	}
	if row == nil {
		return redisBench{}, fmt.Errorf("no GET row in the CSV output: %q", out)
	}
	col := map[string]int{"test": 0, "rps": 1}
	for i, h := range header {
		col[h] = i
	}
	field := func(name string) (float64, bool, error) {
		i, ok := col[name]
		if !ok || i >= len(row) {
			return 0, false, nil
		}
		v, err := strconv.ParseFloat(row[i], 64)
		if err != nil {
			return 0, false, fmt.Errorf("column %s: %w", name, err)
		}
		return v, true, nil
	}
	var rb redisBench
	var errs []error
	var ok bool
	if rb.rps, ok, err = field("rps"); err != nil || !ok || rb.rps <= 0 {
		errs = append(errs, fmt.Errorf("no positive rps in the GET row %q: %v", row, err))
	}
	if rb.p50ms, _, err = field("p50_latency_ms"); err != nil {
		errs = append(errs, err)
	}
	if rb.p99ms, _, err = field("p99_latency_ms"); err != nil {
		errs = append(errs, err)
	}
	return rb, errors.Join(errs...)
}
