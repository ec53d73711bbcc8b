package cache

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of the options.
const (
	DefaultTTL       = time.Hour
	DefaultKeyPrefix = "aether:recs:"
	DefaultTimeout   = 500 * time.Millisecond
)

// ErrInvalidOption is wrapped by every error [Redis] returns for an invalid
// option.
var ErrInvalidOption = errors.New("cache: invalid option")

// Option configures [Redis].
type Option interface{ apply(*config) }

type config struct {
	ttl     time.Duration
	prefix  string
	timeout time.Duration
	reg     prometheus.Registerer
	errs    []error
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// TTL sets how long a user's recommendations live in Redis (default
// [DefaultTTL]). Every key the cache writes carries it: SET ... EX ttl.
// It must be a whole number of seconds, at least one.
func TTL(d time.Duration) Option {
	return optionFunc(func(c *config) {
		switch {
		case d < time.Second:
			c.errs = append(c.errs, invalid("TTL %v: must be at least 1s (every key has a TTL)", d))
		case d%time.Second != 0:
			c.errs = append(c.errs, invalid("TTL %v: must be a whole number of seconds (SET EX)", d))
		default:
			c.ttl = d
		}
	})
}

// KeyPrefix sets the prefix of every key (default [DefaultKeyPrefix]); a
// user's key is prefix+userID. The prefix must be non-empty and free of
// the glob characters * ? [ ] \, so that SCAN MATCH prefix* finds exactly
// the cache's keys (for deletion of a user's data, or of the whole cache).
func KeyPrefix(p string) Option {
	return optionFunc(func(c *config) {
		switch {
		case p == "":
			c.errs = append(c.errs, invalid("empty key prefix"))
		case strings.ContainsAny(p, `*?[]\`):
			c.errs = append(c.errs, invalid("key prefix %q contains a glob character", p))
		default:
			c.prefix = p
		}
	})
}

// Registerer registers the cache's metrics (see the package doc) with reg.
// Without it the cache keeps its metrics unregistered.
func Registerer(reg prometheus.Registerer) Option {
	return optionFunc(func(c *config) {
		if reg == nil {
			c.errs = append(c.errs, invalid("nil prometheus.Registerer"))
			return
		}
		c.reg = reg
	})
}

// Timeout bounds each Get, Put and Forget, including waiting for a pooled
// connection (default [DefaultTimeout]). It must be positive. The client
// must have ContextTimeoutEnabled set, or go-redis would ignore the
// deadline on the socket; [Redis] checks that.
func Timeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, invalid("timeout %v: must be positive", d))
			return
		}
		c.timeout = d
	})
}
