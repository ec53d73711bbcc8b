// Package forget deletes one user's data from every store Aether writes
// and returns a receipt, store by store, with counts and times (SOC 2
// P4.3, C1.2): `runner forget --user ID -c FILE` and
// `POST /admin/v1/users/{userId}/forget` are thin layers over it.
//
// A Forgetter runs its stores in two passes: Find on every store first
// (what each holds for the user, counted before any store deletes, since
// one store's deletion can remove another's data: the processors clear
// the Redis cache), then each store's deletion in order. The stores of the
// reference pipeline, in the order the runner uses:
//
//	feature-store               Processors: a forget control record on the input topic; the
//	                            processors delete the key's table value (tombstone) and local
//	                            state, their sinks' keys, and forward the record downstream;
//	                            then the feature-store view must stop finding the user
//	redis                       Redis: DEL of the user's cache keys; a SCAN must find none
//	topic:user_events_raw       Retained: Kafka cannot delete one key's records: they are
//	topic:user_features_processed  counted, and expire by the topic's retention.ms at a
//	dead-letters                stated time (the newest record's time + retention)
//	audit                       AuditFile: the user's records in the file trail redacted (the
//	                            chain still verifies), through the running sink if it holds it
//	audit-elasticsearch         AuditElasticsearch: the same in Elasticsearch
//
// The receipt is the controls/evidence Receipt format (id, subject, time,
// expected, stores with name, count and error) with more fields, written
// as <ReceiptsDir>/<id>.json, and recorded in the audit trail as an
// admin_action event with action "forget", the user's pseudonym as subject
// (never the user id) and the per-store counts as attributes. A store that
// failed, or whose deletion is pending, has an error in the receipt: the
// evidence check then reports the request as incomplete.
package forget

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/event"
)

// Store statuses in a receipt.
const (
	// StatusDeleted: the store's data for the user is gone.
	StatusDeleted = "deleted"
	// StatusRedacted: the user's audit records are redacted (their
	// digests stay, so the chain verifies).
	StatusRedacted = "redacted"
	// StatusExpires: the records cannot be deleted one by one; they are
	// deleted by the store's retention by ExpiresBy.
	StatusExpires = "expires_by_retention"
	// StatusShredded: the records cannot be deleted one by one, but their
	// values are sealed with the user's data key, which is destroyed: none
	// is readable; they are deleted by the store's retention by ExpiresBy.
	StatusShredded = "crypto_shredded"
	// StatusPending: the deletion could not run now (the audit file is
	// held by a running runner); Error says when it will.
	StatusPending = "pending"
	// StatusFailed: the deletion failed; Error says why.
	StatusFailed = "failed"
)

// ActionForget is the action of the audit event that records a request.
const ActionForget = "forget"

// Receipt is the record of one deletion request. Its JSON is the
// controls/evidence Receipt with more fields.
type Receipt struct {
	ID string `json:"id"`
	// Subject is the user's pseudonym (the keyed hash the APIs' audit
	// trail uses), never the user id.
	Subject string `json:"subject"`
	// Time is when the deletion completed.
	Time time.Time `json:"time"`
	// Expected lists every store the request had to cover.
	Expected []string       `json:"expected,omitempty"`
	Stores   []StoreReceipt `json:"stores"`
	// Started is when the request was received.
	Started time.Time `json:"started"`
	// Actor is who asked: "admin" (admin API) or "cli".
	Actor string `json:"actor,omitempty"`
	// Complete is true when every store reported a count and no error.
	Complete bool `json:"complete"`
}

// StoreReceipt is one store's part of a receipt.
type StoreReceipt struct {
	Name string `json:"name"`
	// Count is how many records, keys or documents of the user the store
	// held (deleted, redacted, or to expire by retention); nil if unknown.
	Count *int64 `json:"count"`
	// Error says why the deletion failed or is pending.
	Error  string `json:"error,omitempty"`
	Status string `json:"status"`
	// Method says how the store's data was removed.
	Method string `json:"method,omitempty"`
	// Started is when the store's lookup began (every store is looked up
	// before any deletes); Finished when its deletion ended.
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// ExpiresBy is when the last of the counted records expires by
	// retention (StatusExpires).
	ExpiresBy *time.Time `json:"expiresBy,omitempty"`
	// Topics details a Kafka store, topic by topic.
	Topics []TopicReceipt `json:"topics,omitempty"`
	Note   string         `json:"note,omitempty"`
}

// TopicReceipt is one topic's part of a Retained store.
type TopicReceipt struct {
	Topic string `json:"topic"`
	// Records counts the user's records (control records excluded).
	Records int64 `json:"records"`
	// Readable counts those of them whose value the store's Open still
	// opens after the deletion (sealed topics only; it must be 0).
	Readable *int64 `json:"readable,omitempty"`
	// Retention is the topic's retention.ms as a Go duration, or
	// "unlimited".
	Retention string `json:"retention,omitempty"`
	// Newest is the timestamp of the newest record keyed by the user,
	// control records included (they carry the user id as key too).
	Newest    *time.Time `json:"newest,omitempty"`
	ExpiresBy *time.Time `json:"expiresBy,omitempty"`
	Error     string     `json:"error,omitempty"`
}

// Request is one deletion request. It does not carry the user id: the
// stores know the user by Key and Subject only.
type Request struct {
	// Subject is the user's pseudonym in the audit trail.
	Subject string
	// Key is the user's key in Kafka, tables and Redis: Subject when the
	// stores know users by pseudonym (Config.KeyedBySubject), else the
	// user id (as in events' userId).
	Key string
	// ID names the request; Forget sets it.
	ID string
}

// MatchAudit reports whether an audit event belongs to the request's
// user and must be redacted: its subject is the user's pseudonym, and it
// is not the record of a deletion request (those stay, as the proof of
// deletion; they hold only the pseudonym and counts).
func (r *Request) MatchAudit(e audit.Event) bool {
	if e.Subject != r.Subject {
		return false
	}
	return !IsForgetRecord(e)
}

// IsForgetRecord reports whether e records a deletion request: the
// Forgetter's own event (action forget) or the admin API's record of the
// forget route.
func IsForgetRecord(e audit.Event) bool {
	return e.Kind == audit.KindAdminAction &&
		(e.Action == ActionForget || strings.HasSuffix(e.Resource, "/forget"))
}

// Deletion deletes what Find found; progress reports what it waits for.
type Deletion func(ctx context.Context, progress func(format string, args ...any)) StoreReceipt

// Store is one place Aether writes a user's data.
type Store interface {
	// Name names the store in receipts.
	Name() string
	// Find notes what the store holds for the user, before any store
	// deletes anything, and returns the deletion to run. An error fails
	// the store (its deletion does not run).
	Find(ctx context.Context, req *Request) (Deletion, error)
}

// ErrInvalidUser is wrapped by Forget's error for a user id that events
// could not carry (empty, too long, control characters).
var ErrInvalidUser = errors.New("forget: invalid user id")

// Config configures a Forgetter.
type Config struct {
	// Stores are run in order (each Find first, then each deletion).
	Stores []Store
	// ReceiptsDir, if set, receives each receipt as <id>.json.
	ReceiptsDir string
	// Audit, if set, receives the admin_action event of each request.
	Audit audit.Sink
	// Actor is the audit actor and the receipt's actor ("admin", "cli").
	Actor string
	// Progress, if set, receives one line per step (no user id).
	Progress io.Writer
	// Now is the clock (default time.Now).
	Now func() time.Time
	// KeyedBySubject says the stores know users by their pseudonym (the
	// runner's privacy section): Kafka keys, tables and Redis keys are
	// the subject, not the user id.
	KeyedBySubject bool
}

// Forgetter runs deletion requests, one at a time.
type Forgetter struct {
	cfg Config
	mu  sync.Mutex
}

// New validates cfg.
func New(cfg Config) (*Forgetter, error) {
	if len(cfg.Stores) == 0 {
		return nil, errors.New("forget: no stores")
	}
	seen := map[string]bool{}
	for _, s := range cfg.Stores {
		if s == nil || s.Name() == "" {
			return nil, errors.New("forget: a store without a name")
		}
		if seen[s.Name()] {
			return nil, fmt.Errorf("forget: two stores named %q", s.Name())
		}
		seen[s.Name()] = true
	}
	if cfg.Actor == "" {
		cfg.Actor = "cli"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Forgetter{cfg: cfg}, nil
}

// Stores lists the names of the stores, in order.
func (f *Forgetter) Stores() []string {
	names := make([]string, len(f.cfg.Stores))
	for i, s := range f.cfg.Stores {
		names[i] = s.Name()
	}
	return names
}

// ValidUserID checks a user id as events' userId is checked.
func ValidUserID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidUser)
	case len(id) > event.MaxIDLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidUser, event.MaxIDLen)
	case !event.Printable(id):
		return fmt.Errorf("%w: contains control characters or invalid UTF-8", ErrInvalidUser)
	}
	return nil
}

// Forget deletes the user's data from every store and returns the
// receipt, written to ReceiptsDir and recorded in the audit trail. Store
// failures are in the receipt, not in the error; the error reports an
// invalid request (ErrInvalidUser), or a receipt that could not be
// written or audited (the receipt is still returned).
func (f *Forgetter) Forget(ctx context.Context, userID, subject string) (Receipt, error) {
	if err := ValidUserID(userID); err != nil {
		return Receipt{}, err
	}
	if subject == "" {
		return Receipt{}, errors.New("forget: no subject (pseudonym) for the user")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	started := f.cfg.Now().UTC()
	req := &Request{Subject: subject, Key: userID, ID: newID(started)}
	if f.cfg.KeyedBySubject {
		req.Key = subject
	}
	rc := Receipt{ID: req.ID, Subject: subject, Started: started, Actor: f.cfg.Actor, Expected: f.Stores()}
	progress := func(format string, args ...any) {
		if f.cfg.Progress != nil {
			fmt.Fprintf(f.cfg.Progress, "forget %s: %s\n", req.ID, fmt.Sprintf(format, args...))
		}
	}
	progress("subject %s, stores %s", subject, strings.Join(rc.Expected, ", "))

	dels := make([]Deletion, len(f.cfg.Stores))
	rc.Stores = make([]StoreReceipt, len(f.cfg.Stores))
	for i, s := range f.cfg.Stores {
		rc.Stores[i] = StoreReceipt{Name: s.Name(), Started: f.cfg.Now().UTC()}
		d, err := s.Find(ctx, req)
		if err != nil {
			rc.Stores[i].Status, rc.Stores[i].Error = StatusFailed, err.Error()
			rc.Stores[i].Finished = f.cfg.Now().UTC()
			progress("%s: failed: %v", s.Name(), err)
			continue
		}
		dels[i] = d
	}
	for i, s := range f.cfg.Stores {
		if dels[i] == nil {
			continue
		}
		start := rc.Stores[i].Started
		sr := dels[i](ctx, func(format string, args ...any) { progress(s.Name()+": "+format, args...) })
		sr.Name, sr.Started, sr.Finished = s.Name(), start, f.cfg.Now().UTC()
		if sr.Status == "" {
			sr.Status = StatusDeleted
			if sr.Error != "" {
				sr.Status = StatusFailed
			}
		}
		rc.Stores[i] = sr
		progress("%s", describeStore(sr))
	}
	rc.Time = f.cfg.Now().UTC()
	rc.Complete = true
	for _, s := range rc.Stores {
		if s.Error != "" || s.Count == nil {
			rc.Complete = false
		}
	}
	var errs []error
	if f.cfg.ReceiptsDir != "" {
		path, err := WriteReceipt(f.cfg.ReceiptsDir, rc)
		if err != nil {
			errs = append(errs, err)
		} else {
			progress("receipt written to %s", path)
		}
	}
	if f.cfg.Audit != nil {
		if err := f.audit(ctx, rc); err != nil {
			errs = append(errs, err)
		}
	}
	return rc, errors.Join(errs...)
}

// audit records the request: admin_action, action forget, the
// pseudonym as subject, per-store counts as attributes.
func (f *Forgetter) audit(ctx context.Context, rc Receipt) error {
	attrs := map[string]string{"receipt": rc.ID, "complete": strconv.FormatBool(rc.Complete)}
	for _, s := range rc.Stores {
		count := "unknown"
		if s.Count != nil {
			count = strconv.FormatInt(*s.Count, 10)
		}
		attrs[s.Name+".count"] = count
		attrs[s.Name+".status"] = s.Status
	}
	outcome := "complete"
	if !rc.Complete {
		outcome = "incomplete"
	}
	e, err := audit.New(audit.Event{Time: rc.Time, Kind: audit.KindAdminAction, Actor: f.cfg.Actor,
		Action: ActionForget, Resource: "users", Subject: rc.Subject, Outcome: outcome,
		CorrelationID: rc.ID, Attributes: attrs})
	if err != nil {
		return fmt.Errorf("forget: audit event: %w", err)
	}
	if err := f.cfg.Audit.Write(context.WithoutCancel(ctx), e); err != nil {
		return fmt.Errorf("forget: audit: %w", err)
	}
	return nil
}

// WriteReceipt writes rc as <dir>/<id>.json (mode 0600, written to a
// temporary file and renamed) and returns the path.
func WriteReceipt(dir string, rc Receipt) (string, error) {
	if rc.ID == "" || strings.ContainsAny(rc.ID, `/\`) {
		return "", fmt.Errorf("forget: receipt id %q cannot name a file", rc.ID)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("forget: receipts: %w", err)
	}
	b, err := json.MarshalIndent(rc, "", "  ")
	if err != nil {
		return "", fmt.Errorf("forget: receipt: %w", err)
	}
	path := filepath.Join(dir, rc.ID+".json")
	tmp, err := os.CreateTemp(dir, "."+rc.ID+".json-*")
	if err != nil {
		return "", fmt.Errorf("forget: receipts: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(append(b, '\n'))
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return "", fmt.Errorf("forget: receipt %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("forget: receipt: %w", err)
	}
	return path, nil
}

// newID is "del-<UTC time>-<random hex>".
func newID(t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "del-" + t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

func describeStore(s StoreReceipt) string {
	count := "?"
	if s.Count != nil {
		count = strconv.FormatInt(*s.Count, 10)
	}
	line := fmt.Sprintf("%s: %s, count %s", s.Name, s.Status, count)
	if s.ExpiresBy != nil {
		line += ", expires by " + s.ExpiresBy.UTC().Format(time.RFC3339)
	}
	if s.Error != "" {
		line += ": " + s.Error
	}
	return line
}

func count(n int64) *int64 { return &n }
