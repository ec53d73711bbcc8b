package pipebench

import (
	"sort"
	"sync"
	"time"

	"github.com/aetherai/aether/bench/internal/report"
)

// cpuSampler records the process's CPU time every interval, so that the
// CPU a variant used between its first and last record can be read after
// the fact (the variants report those moments only when they are past).
// CPU per event is steadier than a rate on a shared machine: a neighbour
// slows the wall clock, not the work an event takes.
type cpuSampler struct {
	mu      sync.Mutex
	samples []cpuSample
	stop    chan struct{}
	done    chan struct{}
}

type cpuSample struct {
	at  time.Time
	cpu time.Duration
}

func startCPUSampler(interval time.Duration) *cpuSampler {
	s := &cpuSampler{stop: make(chan struct{}), done: make(chan struct{})}
	if _, ok := report.ProcessCPU(); !ok {
		close(s.done)
		return s
	}
	s.sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				s.sample()
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *cpuSampler) sample() {
	cpu, _ := report.ProcessCPU()
	s.mu.Lock()
	s.samples = append(s.samples, cpuSample{time.Now(), cpu})
	s.mu.Unlock()
}

// between stops the sampler and returns the CPU time used from first to
// last, each read from the nearest sample; 0 if the platform has no
// process CPU clock.
func (s *cpuSampler) between(first, last time.Time) time.Duration {
	select {
	case <-s.done:
	default:
		close(s.stop)
		<-s.done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return 0
	}
	return max(s.at(last)-s.at(first), 0)
}

// at returns the CPU of the sample nearest to t; s.mu is held.
func (s *cpuSampler) at(t time.Time) time.Duration {
	i := sort.Search(len(s.samples), func(i int) bool { return !s.samples[i].at.Before(t) })
	switch {
	case i == len(s.samples):
		return s.samples[i-1].cpu
	case i > 0 && t.Sub(s.samples[i-1].at) < s.samples[i].at.Sub(t):
		return s.samples[i-1].cpu
	}
	return s.samples[i].cpu
}
