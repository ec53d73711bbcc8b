package processors

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aetherai/aether/broker"
)

// Option configures a Runtime. Options are validated by New.
type Option interface{ apply(*config) error }

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	brokers       []string
	sarama        func(processor, clientID string) *sarama.Config // processor "": the runtime's own client
	storageDir    string
	registerer    prometheus.Registerer
	gatherer      prometheus.Gatherer
	logger        *slog.Logger
	only          map[string]bool
	timerInterval time.Duration
	idleAdvance   bool
	partitions    int32
	createTopics  bool
	sinkRetries   int
	instance      string
	audit         *auditConfig // nil: no audit trail
	sealer        Sealer       // nil: sealed streams in clear
}

func defaults() config {
	return config{
		sarama:        func(_, id string) *sarama.Config { return broker.SaramaConfig(id) },
		timerInterval: time.Second,
		idleAdvance:   true,
		partitions:    8,
		createTopics:  true,
		sinkRetries:   3,
		logger:        slog.New(slog.DiscardHandler),
	}
}

// Brokers sets the Kafka bootstrap addresses (required).
func Brokers(addrs ...string) Option {
	return optionFunc(func(c *config) error {
		if len(addrs) == 0 {
			return errors.New("brokers: at least one address is required")
		}
		c.brokers = addrs
		return nil
	})
}

// Sarama sets the function that returns a fresh sarama configuration for
// each client (TLS, SASL, version). Default: broker.SaramaConfig.
func Sarama(fn func(clientID string) *sarama.Config) Option {
	return optionFunc(func(c *config) error {
		if fn == nil {
			return errors.New("sarama: nil config function")
		}
		c.sarama = func(_, id string) *sarama.Config { return fn(id) }
		return nil
	})
}

// StorageDir keeps table state in LevelDB under dir, one directory per
// table partition. Without it, state lives in memory and is recovered from
// the table topic at start.
func StorageDir(dir string) Option {
	return optionFunc(func(c *config) error { c.storageDir = dir; return nil })
}

// Registry registers the runtime's metrics with reg. Without it, the
// runtime keeps its own registry (see Runtime.Gatherer).
func Registry(reg *prometheus.Registry) Option {
	return optionFunc(func(c *config) error {
		if reg == nil {
			return errors.New("registry: nil")
		}
		c.registerer, c.gatherer = reg, reg
		return nil
	})
}

// Logger sets the structured logger. Default: discard.
func Logger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			return errors.New("logger: nil")
		}
		c.logger = l
		return nil
	})
}

// Only runs just the named processors of the topology (for splitting a
// topology over processes).
func Only(names ...string) Option {
	return optionFunc(func(c *config) error {
		c.only = map[string]bool{}
		for _, n := range names {
			c.only[n] = true
		}
		return nil
	})
}

// TimerInterval sets how often due timers are looked for. Default 1s.
func TimerInterval(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("timer interval %s: must be positive", d)
		}
		c.timerInterval = d
		return nil
	})
}

// IdleAdvance sets whether a partition's event-time clock moves on with the
// wall clock while the partition receives nothing, so that timers of users
// who stopped sending fire even when the whole stream is quiet. Default on.
func IdleAdvance(on bool) Option {
	return optionFunc(func(c *config) error { c.idleAdvance = on; return nil })
}

// DefaultPartitions sets the partition count of streams that declare none.
// Default 8.
func DefaultPartitions(n int32) Option {
	return optionFunc(func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("default partitions %d: must be positive", n)
		}
		c.partitions = n
		return nil
	})
}

// CreateTopics sets whether New creates missing streams with their
// declared retention. Default on.
func CreateTopics(on bool) Option {
	return optionFunc(func(c *config) error { c.createTopics = on; return nil })
}

// Instance names this runtime instance in client IDs and logs.
func Instance(id string) Option {
	return optionFunc(func(c *config) error { c.instance = id; return nil })
}
