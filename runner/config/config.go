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
	"regexp"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"gopkg.in/yaml.v3"

	es "github.com/aetherai/aether/audit/elasticsearch"
	"github.com/aetherai/aether/broker"
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
	Evidence Evidence    `yaml:"evidence"`
	Forget   ForgetConf  `yaml:"forget"`
	Privacy  Privacy     `yaml:"privacy"`
}

// Kafka says where the brokers are and how each part of the pipeline
// connects to them.
type Kafka struct {
	Brokers    []string `yaml:"brokers"`
	Partitions int32    `yaml:"partitions"`
	// Security is TLS and SASL to the brokers; absent means plaintext
	// without authentication (the embedded broker), which `runner
	// evidence` reports.
	Security *KafkaSecurity `yaml:"security"`
}

// KafkaSecurity is how the pipeline's parts connect to Kafka: over TLS,
// and each as its own SASL principal, so that each gets only the ACLs
// derived for it (runner acls).
type KafkaSecurity struct {
	TLS  *TLSClient `yaml:"tls"`
	SASL KafkaSASL  `yaml:"sasl"`
	// Principals maps each role to its credentials: a processor's name,
	// "ingest" (the ingest API's producer), "views" (the API's view of the
	// feature store) and "admin" (topic and ACL administration by runner
	// topics and runner acls). The role's Kafka principal is
	// User:<username>.
	Principals map[string]KafkaPrincipal `yaml:"principals"`
}

// KafkaSASL is how principals authenticate; no mechanism means no SASL.
type KafkaSASL struct {
	// Mechanism is PLAIN (only with tls), SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `yaml:"mechanism"`
}

// KafkaPrincipal is one role's SASL credentials.
type KafkaPrincipal struct {
	Username string `yaml:"username"`
	// Password is the password or "env:NAME" (read from the environment).
	Password string `yaml:"password"`
}

// KafkaAdminRole is the role of runner topics and runner acls.
const KafkaAdminRole = "admin"

// DefaultKafkaUsername is a role's username, and so its principal
// (User:aether-<role>), when the file gives it no credentials.
func DefaultKafkaUsername(role string) string { return "aether-" + role }

// Username is role's SASL username: the configured one, else
// DefaultKafkaUsername(role).
func (k Kafka) Username(role string) string {
	if k.Security != nil {
		if p, ok := k.Security.Principals[role]; ok && p.Username != "" {
			return p.Username
		}
	}
	return DefaultKafkaUsername(role)
}

// AdminPrincipal returns the admin role's credentials as declared, and
// whether kafka.security.principals declares them.
func (k Kafka) AdminPrincipal() (KafkaPrincipal, bool) {
	if k.Security == nil {
		return KafkaPrincipal{}, false
	}
	p, ok := k.Security.Principals[KafkaAdminRole]
	return p, ok
}

// Credentials returns role's username and password, the password read
// from the environment for "env:NAME". ok is false when SASL is off; with
// SASL on, a role without credentials is an error naming the field.
func (k Kafka) Credentials(role string) (username, password string, ok bool, err error) {
	if k.Security == nil || k.Security.SASL.Mechanism == "" {
		return "", "", false, nil
	}
	field := "kafka.security.principals." + role
	p, found := k.Security.Principals[role]
	if !found {
		return "", "", false, &FieldError{Field: field, Reason: "no credentials for this role (SASL is on)"}
	}
	password, err = resolveSecret(field+".password", p.Password)
	if err != nil {
		return "", "", false, err
	}
	return p.Username, password, true, nil
}

// Sarama returns the sarama configurations role connects to Kafka with,
// the shape processors.Sarama, processors.ClientSarama and
// processors.PerProcessorSarama take: broker.SaramaConfig with
// kafka.security.tls and role's SASL credentials (roles: a processor's
// name, "ingest", "views", KafkaAdminRole). Files and secrets are read
// once, here, so a missing one fails at start.
func (k Kafka) Sarama(role string) (func(clientID string) *sarama.Config, error) {
	var s broker.Security
	if ks := k.Security; ks != nil && ks.TLS != nil {
		s.TLS = &broker.TLS{CAFile: ks.TLS.CAFile, CertFile: ks.TLS.CertFile, KeyFile: ks.TLS.KeyFile, ServerName: ks.TLS.ServerName}
	}
	user, pass, ok, err := k.Credentials(role)
	if err != nil {
		return nil, err
	}
	if ok {
		s.SASL = &broker.SASL{Mechanism: k.Security.SASL.Mechanism, Username: user, Password: pass}
	}
	fn, err := s.SaramaConfigs()
	if err != nil {
		return nil, &FieldError{Field: "kafka.security", Reason: fmt.Sprintf("role %s: %v", role, err)}
	}
	return fn, nil
}

func (k Kafka) validateSecurity(bad func(field, format string, args ...any)) {
	s := k.Security
	if s == nil {
		return
	}
	s.TLS.validate("kafka.security.tls", bad)
	switch s.SASL.Mechanism {
	case "":
		if len(s.Principals) > 0 {
			bad("kafka.security.sasl.mechanism", "principals are given but no mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		}
	case "PLAIN":
		if s.TLS == nil {
			bad("kafka.security.sasl.mechanism", "PLAIN sends passwords in clear: it needs kafka.security.tls")
		}
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		bad("kafka.security.sasl.mechanism", "unknown mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", s.SASL.Mechanism)
	}
	for role, p := range s.Principals {
		field := "kafka.security.principals." + role
		if role == "" {
			bad("kafka.security.principals", "a role name is empty")
		}
		if p.Username == "" {
			bad(field+".username", "is empty")
		}
		if p.Password == "" {
			bad(field+".password", "is empty (give it or env:NAME)")
		}
	}
}

// Redis is the recommendation cache.
type Redis struct {
	Addr     string `yaml:"addr"`
	Username string `yaml:"username"`
	// Password is the password or "env:NAME" (read from the environment).
	Password  string        `yaml:"password"`
	DB        int           `yaml:"db"`
	TLS       *TLSClient    `yaml:"tls"`
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
	// Elasticsearch, when its urls are set, keeps the trail in
	// Elasticsearch instead of File (see package audit/elasticsearch).
	Elasticsearch AuditElasticsearch `yaml:"elasticsearch"`
	// Messages is how the processors audit the Kafka records they read:
	// "attestations" (the default: one record per input partition every
	// 10,000 records or 5 s, with the offsets, a digest and the outcome
	// counts) or "per-message" (one record per Kafka record: costly).
	Messages string `yaml:"messages"`
}

// Ways of auditing Kafka messages (audit.messages).
const (
	AuditAttestations = "attestations"
	AuditPerMessage   = "per-message"
)

// AuditElasticsearch is the Elasticsearch audit trail.
type AuditElasticsearch struct {
	URLs []string `yaml:"urls"`
	// IndexPrefix names the daily indices <prefix>-YYYY.MM.DD, the index
	// template and the ILM policy (default aether-audit).
	IndexPrefix string `yaml:"indexPrefix"`
	Username    string `yaml:"username"`
	// Password is "env:NAME": read from the environment variable NAME,
	// never written in the file.
	Password string `yaml:"password"`
	// CAFile is PEM certificates to trust for https URLs.
	CAFile string `yaml:"caFile"`
	// Retention is how long an index is kept: the ILM policy deletes it
	// after that (default 400 days).
	Retention time.Duration `yaml:"retention"`
	// SpillDir keeps events Elasticsearch did not take yet, replayed when
	// it is back (default the current directory).
	SpillDir string `yaml:"spillDir"`
	// FlushInterval, when positive, acknowledges writes once queued and
	// ships at least this often; 0 waits until each write is stored.
	FlushInterval time.Duration `yaml:"flushInterval"`
}

// Enabled reports whether the trail goes to Elasticsearch.
func (e AuditElasticsearch) Enabled() bool { return len(e.URLs) > 0 }

// ResolvePassword reads the password from the environment ("" when none
// is configured).
func (e AuditElasticsearch) ResolvePassword() (string, error) {
	if e.Password == "" {
		return "", nil
	}
	return resolveSecret("audit.elasticsearch.password", e.Password)
}

func (e *AuditElasticsearch) defaults() {
	if !e.Enabled() {
		return
	}
	if e.IndexPrefix == "" {
		e.IndexPrefix = es.DefaultPrefix
	}
	if e.Retention == 0 {
		e.Retention = 400 * 24 * time.Hour
	}
	if e.SpillDir == "" {
		e.SpillDir = "."
	}
}

var auditIndexPrefix = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

func (a AuditConf) validate() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: "audit." + field, Reason: fmt.Sprintf(format, args...)})
	}
	if a.Messages != "" && a.Messages != AuditAttestations && a.Messages != AuditPerMessage {
		bad("messages", "is %q: want %s or %s", a.Messages, AuditAttestations, AuditPerMessage)
	}
	e := a.Elasticsearch
	if !e.Enabled() {
		if e.IndexPrefix != "" || e.Username != "" || e.Password != "" || e.CAFile != "" || e.SpillDir != "" || e.Retention != 0 || e.FlushInterval != 0 {
			bad("elasticsearch.urls", "at least one URL is required when audit.elasticsearch is set")
		}
		return errs
	}
	if a.File != "" {
		bad("file", "give audit.file or audit.elasticsearch, not both")
	}
	for i, s := range e.URLs {
		u, err := url.Parse(s)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			bad(fmt.Sprintf("elasticsearch.urls[%d]", i), "is not an http(s) URL")
		case u.User != nil:
			bad(fmt.Sprintf("elasticsearch.urls[%d]", i), "carries credentials; use username and password")
		}
	}
	if !auditIndexPrefix.MatchString(e.IndexPrefix) {
		bad("elasticsearch.indexPrefix", "%q must be lower case letters, digits, '.', '_' or '-'", e.IndexPrefix)
	}
	if e.Password != "" && !strings.HasPrefix(e.Password, "env:") {
		bad("elasticsearch.password", `must be "env:NAME"; a password does not belong in the file`)
	}
	if (e.Username == "") != (e.Password == "") {
		bad("elasticsearch.username", "username and password go together")
	}
	if e.Retention < time.Hour {
		bad("elasticsearch.retention", "must be at least 1h, got %s", e.Retention)
	}
	if e.FlushInterval < 0 {
		bad("elasticsearch.flushInterval", "must not be negative")
	}
	return errs
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
	c.HTTP.defaults()
	c.Evidence.defaults()
	if c.Sessions.Gap == 0 {
		c.Sessions.Gap = 30 * time.Minute
	}
	if c.Sessions.Grace == 0 {
		c.Sessions.Grace = 2 * time.Minute
	}
	if c.Sessions.EmitInterval == 0 {
		c.Sessions.EmitInterval = 5 * time.Minute
	}
	c.Audit.Elasticsearch.defaults()
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
	c.Kafka.validateSecurity(bad)
	if c.Redis.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Redis.Addr); err != nil {
			bad("redis.addr", "%q is not host:port", c.Redis.Addr)
		}
	}
	c.Redis.TLS.validate("redis.tls", bad)
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
	c.HTTP.validate(bad)
	c.Evidence.validate(bad)
	c.validatePrivacy(bad)
	if c.Sessions.Gap <= 0 {
		bad("sessions.gap", "must be positive")
	}
	if c.Sessions.Grace < 0 {
		bad("sessions.grace", "must not be negative")
	}
	if c.Sessions.EmitInterval <= 0 {
		bad("sessions.emitInterval", "must be positive")
	}
	errs = append(errs, c.Audit.validate()...)
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
