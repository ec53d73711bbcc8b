package servebench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aetherai/aether/bench/internal/report"
)

// cpuMeter measures the CPU that this process and the Redis server use
// over a phase, in cores (CPU seconds per wall second).
type cpuMeter struct {
	rdb        *redis.Client
	wall       time.Time
	self, serv time.Duration
	selfOK     bool
	servErr    error
}

func startCPU(ctx context.Context, rdb *redis.Client) *cpuMeter {
	m := &cpuMeter{rdb: rdb, wall: time.Now()}
	m.self, m.selfOK = report.ProcessCPU()
	m.serv, m.servErr = redisCPU(ctx, rdb)
	return m
}

// stop returns the cores this process and the Redis server used since
// startCPU; -1 for one that could not be measured.
func (m *cpuMeter) stop(ctx context.Context) (self, server float64) {
	wall := time.Since(m.wall).Seconds()
	self, server = -1, -1
	if s, ok := report.ProcessCPU(); ok && m.selfOK {
		self = round((s-m.self).Seconds()/wall, 2)
	}
	if s, err := redisCPU(ctx, m.rdb); err == nil && m.servErr == nil {
		server = round((s-m.serv).Seconds()/wall, 2)
	}
	return self, server
}

// redisCPU returns the Redis server's CPU time so far (used_cpu_user +
// used_cpu_sys of INFO cpu).
func redisCPU(ctx context.Context, rdb *redis.Client) (time.Duration, error) {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	var total float64
	found := 0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (k != "used_cpu_user" && k != "used_cpu_sys") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("INFO cpu %s: %w", k, err)
		}
		total += f
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("INFO cpu lacks used_cpu_user or used_cpu_sys")
	}
	return time.Duration(total * float64(time.Second)), nil
}
