package elasticsearch

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/olivere/elastic/v7"
	"github.com/prometheus/client_golang/prometheus"
)

// Option configures Open.
type Option interface{ apply(*config) error }

// ConnOption says how to reach Elasticsearch; Open, Verify and Redact all
// take it.
type ConnOption interface {
	Option
	conn()
}

type config struct {
	urls       []string
	username   string
	password   string
	caFile     string
	httpClient *http.Client
	client     *elastic.Client

	prefix        string
	retention     time.Duration
	spillDir      string
	flushInterval time.Duration
	queueSize     int
	batchSize     int
	retries       int
	retryWait     time.Duration
	reg           prometheus.Registerer
	log           *slog.Logger
}

func defaults() config {
	return config{
		urls:      []string{"http://127.0.0.1:9200"},
		prefix:    DefaultPrefix,
		retention: DefaultRetention,
		spillDir:  ".",
		queueSize: 10000,
		batchSize: 500,
		retries:   3,
		retryWait: 200 * time.Millisecond,
		log:       slog.Default(),
	}
}

// The defaults.
const (
	DefaultPrefix    = "aether-audit"
	DefaultRetention = 400 * 24 * time.Hour
)

type opt func(*config) error

func (o opt) apply(c *config) error { return o(c) }

type connOpt func(*config) error

func (o connOpt) apply(c *config) error { return o(c) }
func (connOpt) conn()                   {}

// URLs are the Elasticsearch nodes (default http://127.0.0.1:9200).
// Credentials do not belong in them: use BasicAuth.
func URLs(urls ...string) ConnOption {
	return connOpt(func(c *config) error {
		if len(urls) == 0 {
			return errors.New("elasticsearch: no URL given")
		}
		for _, s := range urls {
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("elasticsearch: %q is not an http(s) URL", redactURL(s))
			}
			if u.User != nil {
				return fmt.Errorf("elasticsearch: URL %q carries credentials; give them with BasicAuth", redactURL(s))
			}
		}
		c.urls = urls
		return nil
	})
}

// BasicAuth authenticates every request. The password never appears in
// errors or logs.
func BasicAuth(username, password string) ConnOption {
	return connOpt(func(c *config) error {
		c.username, c.password = username, password
		return nil
	})
}

// CAFile trusts the PEM certificates in path for https URLs, in addition
// to the system's.
func CAFile(path string) ConnOption {
	return connOpt(func(c *config) error {
		c.caFile = path
		return nil
	})
}

// HTTPClient sends the requests through hc (its transport, TLS and
// timeouts); CAFile is then ignored.
func HTTPClient(hc *http.Client) ConnOption {
	return connOpt(func(c *config) error {
		c.httpClient = hc
		return nil
	})
}

// Client uses an existing olivere client for Verify and Redact; the other
// connection options are then ignored. Open does not take it: the sink
// needs its own client (see newClient).
func Client(cl *elastic.Client) ConnOption {
	return connOpt(func(c *config) error {
		c.client = cl
		return nil
	})
}

var validPrefix = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// IndexPrefix names the daily indices <prefix>-YYYY.MM.DD, the index
// template and the ILM policy (default aether-audit).
func IndexPrefix(p string) Option {
	return opt(func(c *config) error {
		if !validPrefix.MatchString(p) {
			return fmt.Errorf("elasticsearch: index prefix %q must be lower case letters, digits, '.', '_' or '-'", p)
		}
		c.prefix = p
		return nil
	})
}

// Retention is how long an index is kept after it was created: the ILM
// policy deletes it then (default 400 days).
func Retention(d time.Duration) Option {
	return opt(func(c *config) error {
		if d < time.Hour {
			return fmt.Errorf("elasticsearch: retention %s is shorter than an hour", d)
		}
		c.retention = d
		return nil
	})
}

// SpillDir is where the spill file <prefix>.spill.jsonl is kept (default
// the current directory). It must survive restarts: events that did not
// reach Elasticsearch wait there.
func SpillDir(dir string) Option {
	return opt(func(c *config) error {
		if dir == "" {
			return errors.New("elasticsearch: spill directory is empty")
		}
		c.spillDir = dir
		return nil
	})
}

// FlushInterval makes Write return once its events are queued in memory,
// and the queue is shipped at least every d: faster, but a crash loses
// what is queued. With 0, the default, Write returns only once its events
// are in Elasticsearch or fsynced to the spill file.
func FlushInterval(d time.Duration) Option {
	return opt(func(c *config) error {
		if d < 0 {
			return fmt.Errorf("elasticsearch: flush interval must not be negative, got %s", d)
		}
		c.flushInterval = d
		return nil
	})
}

// QueueSize bounds the events held in memory (default 10,000); when the
// queue is full, events go to the spill file.
func QueueSize(n int) Option {
	return opt(func(c *config) error {
		if n < 1 {
			return fmt.Errorf("elasticsearch: queue size must be at least 1, got %d", n)
		}
		c.queueSize = n
		return nil
	})
}

// BatchSize is the most events one bulk request carries (default 500).
func BatchSize(n int) Option {
	return opt(func(c *config) error {
		if n < 1 {
			return fmt.Errorf("elasticsearch: batch size must be at least 1, got %d", n)
		}
		c.batchSize = n
		return nil
	})
}

// Retries is how often a failed bulk request or rejected item (408, 429,
// 503, 507) is retried before its events are spilled, waiting wait, then
// twice as long each time (default 3 and 200ms).
func Retries(n int, wait time.Duration) Option {
	return opt(func(c *config) error {
		if n < 0 || wait <= 0 {
			return fmt.Errorf("elasticsearch: retries must be >= 0 with a positive wait, got %d and %s", n, wait)
		}
		c.retries, c.retryWait = n, wait
		return nil
	})
}

// Registerer registers the sink's metrics (see package doc).
func Registerer(reg prometheus.Registerer) Option {
	return opt(func(c *config) error {
		c.reg = reg
		return nil
	})
}

// Logger receives the sink's notices: spilling, replaying, errors
// (default slog.Default()).
func Logger(l *slog.Logger) Option {
	return opt(func(c *config) error {
		if l == nil {
			l = slog.New(slog.NewTextHandler(io.Discard, nil))
		}
		c.log = l
		return nil
	})
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if i := strings.Index(s, "@"); i >= 0 {
			return "…" + s[i:]
		}
		return s
	}
	u.User = url.User("xxxxx")
	return u.String()
}

// newClient builds an olivere client without sniffing or health checks
// (the nodes are given, and behind a load balancer sniffing finds
// unreachable addresses). unreachable503 makes transport failures look
// like a 503 to the client, see unreachableTransport.
func (c *config) newClient(unreachable503 bool) (*elastic.Client, error) {
	if c.client != nil && !unreachable503 {
		return c.client, nil
	}
	hc := c.httpClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if c.caFile != "" {
			pem, err := os.ReadFile(c.caFile)
			if err != nil {
				return nil, fmt.Errorf("elasticsearch: CA file: %w", err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("elasticsearch: CA file %s holds no PEM certificate", c.caFile)
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		// A timeout on the transport, not the client: it surfaces as a
		// transport error, which unreachableTransport turns into a 503.
		tr.ResponseHeaderTimeout = 30 * time.Second
		hc = &http.Client{Transport: tr}
	}
	if unreachable503 {
		base := hc.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		cp := *hc
		cp.Transport = unreachableTransport{base}
		hc = &cp
	}
	opts := []elastic.ClientOptionFunc{elastic.SetURL(c.urls...), elastic.SetSniff(false),
		elastic.SetHealthcheck(false), elastic.SetHttpClient(hc)}
	if c.username != "" || c.password != "" {
		opts = append(opts, elastic.SetBasicAuth(c.username, c.password))
	}
	cl, err := elastic.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: %w", err)
	}
	return cl, nil
}

// unreachableTransport answers a request that could not reach a node
// (refused, reset, timed out) with a 503 whose reason is the transport
// error. The BulkProcessor then retries it with the configured backoff,
// and the error says what happened; olivere would otherwise mark the only
// node dead and answer the next request with "no available connection".
type unreachableTransport struct{ base http.RoundTripper }

func (t unreachableTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(r)
	if err == nil || r.Context().Err() != nil {
		return res, err
	}
	body, _ := json.Marshal(map[string]any{"error": map[string]any{"type": "node_unreachable", "reason": err.Error()}, "status": 503})
	return &http.Response{
		StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable",
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": []string{"application/json"}},
		Body:   io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
		Request: r,
	}, nil
}
