// Package config reads the runner's YAML file: which Kafka, Redis, model
// and HTTP settings a pipeline runs with. Unknown fields are errors, and
// every error names the field it is about.
package config

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole file. Durations are Go durations ("30m", "1h").
type Config struct {
	// Pipeline names the topology to run; "recommendations" is the only
	// built-in one.
	Pipeline string      `yaml:"pipeline"`
	Kafka    Kafka       `yaml:"kafka"`
	Redis    Redis       `yaml:"redis"`
	Model    Model       `yaml:"model"`
	HTTP     HTTP        `yaml:"http"`
	Sessions Sessions    `yaml:"sessions"`
	Storage  StorageConf `yaml:"storage"`
	Audit    AuditConf   `yaml:"audit"`
}

// Kafka says where the brokers are.
type Kafka struct {
	Brokers    []string `yaml:"brokers"`
	Partitions int32    `yaml:"partitions"`
}

// Redis is the recommendation cache.
type Redis struct {
	Addr      string        `yaml:"addr"`
	Username  string        `yaml:"username"`
	Password  string        `yaml:"password"`
	DB        int           `yaml:"db"`
	TTL       time.Duration `yaml:"ttl"`
	KeyPrefix string        `yaml:"keyPrefix"`
}

// Model says which model to serve and what it must be: a local directory
// (Dir) or a model store URI (URI), pinned by its SHA-256 (SHA256),
// approved in a manifest (Manifest), or both.
type Model struct {
	// Dir is a local model directory (model.onnx, vocab.json,
	// metadata.json). Exactly one of Dir and URI is required.
	Dir string `yaml:"dir"`
	// URI names the model directory in a model store: file:///abs/path or
	// s3://bucket/prefix (see package model/store). It is fetched into
	// CacheDir and checked against its metadata.json before loading.
	URI string `yaml:"uri"`
	// CacheDir is where URI is fetched to; empty means
	// ${AETHER_CACHE_DIR:-$HOME/.cache/aether}/models.
	CacheDir string `yaml:"cacheDir"`
	// SHA256 pins model.onnx's SHA-256: another model is refused.
	SHA256 string `yaml:"sha256"`
	// Manifest is an approved-models manifest (see package
	// model/approval): a model whose SHA-256 is not in it is refused.
	Manifest string `yaml:"manifest"`
	// Library is the ONNX Runtime shared library; empty means
	// ONNXRUNTIME_SHARED_LIBRARY_PATH or the install script's location.
	Library string `yaml:"library"`
	// PollInterval, when positive, makes URI a versioned store prefix
	// (URI/<version>/..., see package model/store): the runner serves its
	// latest version and looks for a newer one at this interval, swapping
	// it in once Manifest approves it. It requires URI and Manifest.
	PollInterval time.Duration `yaml:"pollInterval"`
	// Candidate is a model (a directory or a store URI) that scores
	// CandidateShare of the users (by a stable hash of the user id) next
	// to the current model: a staged rollout. It requires Manifest.
	Candidate string `yaml:"candidate"`
	// CandidateShare is the share of users, 0..1, the Candidate scores.
	CandidateShare float64 `yaml:"candidateShare"`
}

// HTTP is the API listener and its clients.
type HTTP struct {
	Listen string `yaml:"listen"`
	// APIKeys maps each client's name to its key. A value "env:NAME" reads
	// the key from the environment variable NAME.
	APIKeys map[string]string `yaml:"apiKeys"`
}

// Sessions tunes the sessionizer.
type Sessions struct {
	Gap          time.Duration `yaml:"gap"`
	Grace        time.Duration `yaml:"grace"`
	EmitInterval time.Duration `yaml:"emitInterval"`
}

// StorageConf says where processors keep table state.
type StorageConf struct {
	// Dir keeps tables in LevelDB under it; empty keeps them in memory,
	// recovered from Kafka at start.
	Dir string `yaml:"dir"`
}

// AuditConf says where the audit trail goes.
type AuditConf struct {
	// File is the hash-chained JSON-lines trail `runner run` appends to
	// (--audit-file overrides it); empty means aether-audit-<UTC
	// timestamp>.jsonl in the current directory.
	File string `yaml:"file"`
}

// Defaults fills what the file leaves out.
func (c *Config) Defaults() {
	if c.Pipeline == "" {
		c.Pipeline = "recommendations"
	}
	if c.Kafka.Partitions == 0 {
		c.Kafka.Partitions = 8
	}
	if c.Redis.TTL == 0 {
		c.Redis.TTL = time.Hour
	}
	if c.Redis.KeyPrefix == "" {
		c.Redis.KeyPrefix = "aether:recs:"
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = "127.0.0.1:8080"
	}
	if c.Sessions.Gap == 0 {
		c.Sessions.Gap = 30 * time.Minute
	}
	if c.Sessions.Grace == 0 {
		c.Sessions.Grace = 2 * time.Minute
	}
	if c.Sessions.EmitInterval == 0 {
		c.Sessions.EmitInterval = 5 * time.Minute
	}
}

// Load reads, defaults and validates the file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes, defaults and validates YAML bytes.
func Parse(b []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// FieldError is a problem with one field, named by its path in the file.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Validate checks the configuration and returns every problem, each
// naming its field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if c.Pipeline != "recommendations" {
		bad("pipeline", "unknown pipeline %q (built in: recommendations)", c.Pipeline)
	}
	if len(c.Kafka.Brokers) == 0 {
		bad("kafka.brokers", "at least one broker address is required")
	}
	for i, b := range c.Kafka.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			bad(fmt.Sprintf("kafka.brokers[%d]", i), "%q is not host:port", b)
		}
	}
	if c.Kafka.Partitions < 1 || c.Kafka.Partitions > 1024 {
		bad("kafka.partitions", "must be 1..1024, got %d", c.Kafka.Partitions)
	}
	if c.Redis.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Redis.Addr); err != nil {
			bad("redis.addr", "%q is not host:port", c.Redis.Addr)
		}
	}
	if c.Redis.TTL <= 0 {
		bad("redis.ttl", "must be positive: every key Aether writes expires")
	}
	switch {
	case c.Model.Dir == "" && c.Model.URI == "":
		bad("model.dir", "the model directory is required (or model.uri)")
	case c.Model.Dir != "" && c.Model.URI != "":
		bad("model.uri", "give model.dir or model.uri, not both")
	case c.Model.URI != "":
		if reason := checkModelURI(c.Model.URI); reason != "" {
			bad("model.uri", "%q %s", c.Model.URI, reason)
		}
	}
	if c.Model.Manifest != "" && strings.TrimSpace(c.Model.Manifest) == "" {
		bad("model.manifest", "is blank")
	}
	if c.Model.PollInterval < 0 {
		bad("model.pollInterval", "must not be negative")
	}
	if c.Model.PollInterval > 0 {
		if c.Model.URI == "" {
			bad("model.pollInterval", "needs model.uri, a versioned store prefix to poll")
		}
		if c.Model.Manifest == "" {
			bad("model.pollInterval", "needs model.manifest, which approves the new versions")
		}
		if c.Model.SHA256 != "" {
			bad("model.pollInterval", "cannot be combined with model.sha256: a pin allows one model only")
		}
	}
	if share := c.Model.CandidateShare; math.IsNaN(share) || share < 0 || share > 1 {
		bad("model.candidateShare", "must be between 0 and 1, got %v", share)
	} else if share > 0 && c.Model.Candidate == "" {
		bad("model.candidateShare", "is set but model.candidate is not")
	}
	if cand := c.Model.Candidate; cand != "" {
		if strings.TrimSpace(cand) == "" {
			bad("model.candidate", "is blank")
		} else if strings.Contains(cand, "://") {
			if reason := checkModelURI(cand); reason != "" {
				bad("model.candidate", "%q %s", cand, reason)
			}
		}
		if c.Model.Manifest == "" {
			bad("model.candidate", "needs model.manifest, which must approve the candidate")
		}
	}
	if c.Model.SHA256 != "" {
		if b, err := hex.DecodeString(c.Model.SHA256); err != nil || len(b) != 32 {
			bad("model.sha256", "must be 64 hex digits")
		}
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		bad("http.listen", "%q is not host:port", c.HTTP.Listen)
	}
	for name, key := range c.HTTP.APIKeys {
		if name == "" {
			bad("http.apiKeys", "a client name is empty")
		}
		if key == "" {
			bad("http.apiKeys."+name, "the key is empty")
		}
	}
	if c.Sessions.Gap <= 0 {
		bad("sessions.gap", "must be positive")
	}
	if c.Sessions.Grace < 0 {
		bad("sessions.grace", "must not be negative")
	}
	if c.Sessions.EmitInterval <= 0 {
		bad("sessions.emitInterval", "must be positive")
	}
	return errors.Join(errs...)
}

// checkModelURI says what is wrong with a model store URI, or "". The
// store parses it again, with the same rules, when fetching.
func checkModelURI(s string) string {
	const want = "(want file:///abs/path or s3://bucket/prefix)"
	u, err := url.Parse(s)
	if err != nil || !strings.Contains(s, "://") {
		return "is not a URI " + want
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "has a query, fragment or user info " + want
	}
	switch u.Scheme {
	case "file":
		if (u.Host != "" && u.Host != "localhost") || !strings.HasPrefix(u.Path, "/") {
			return "is not an absolute file URI " + want
		}
	case "s3":
		if u.Host == "" || strings.Trim(u.Path, "/") == "" {
			return "names no bucket or no key prefix " + want
		}
	default:
		return fmt.Sprintf("has the unsupported scheme %q %s", u.Scheme, want)
	}
	return ""
}

// ResolveKeys returns the API keys by client, reading "env:NAME" values
// from the environment.
func (h HTTP) ResolveKeys() (map[string]string, error) {
	keys := map[string]string{}
	for name, v := range h.APIKeys {
		if env, ok := strings.CutPrefix(v, "env:"); ok {
			v = os.Getenv(env)
			if v == "" {
				return nil, &FieldError{Field: "http.apiKeys." + name, Reason: fmt.Sprintf("environment variable %s is empty", env)}
			}
		}
		keys[name] = v
	}
	return keys, nil
}
