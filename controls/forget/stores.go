package forget

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aetherai/aether/internal/redisglob"
	"github.com/aetherai/aether/keyring"

	"github.com/IBM/sarama"
	"github.com/redis/go-redis/v9"

	"github.com/aetherai/aether/audit"
	es "github.com/aetherai/aether/audit/elasticsearch"
	"github.com/aetherai/aether/processors"
)

// Processors is the feature store and the local state of the running
// processors: the deletion must happen inside the processors (a tombstone
// written from outside would be overwritten by a processor's in-memory
// state), so it sends a forget control record (processors.SendForget) to
// the topology's input topic and waits until the feature store no longer
// finds the user. Its count is 1 if the feature store held the user.
type Processors struct {
	// Topic is the input topic the control record goes to.
	Topic string
	// Send writes the control record (processors.SendForget).
	Send func(ctx context.Context, key string) error
	// Lookup reports whether the feature store (a view of the table)
	// holds the key.
	Lookup func(key string) (bool, error)
	// Wait, if set, blocks until the processors of a runtime in this
	// process have handled the control record (Runtime.WaitForgotten);
	// it returns their names.
	Wait func(ctx context.Context, key string, since time.Time) ([]string, error)
	// Timeout bounds the wait (default one minute).
	Timeout time.Duration
	// Poll is how often Lookup is asked again (default 100ms).
	Poll time.Duration
}

// Name is "feature-store".
func (p *Processors) Name() string { return "feature-store" }

// Find notes whether the feature store holds the user.
func (p *Processors) Find(ctx context.Context, req *Request) (Deletion, error) {
	if p.Send == nil || p.Lookup == nil || p.Topic == "" {
		return nil, errors.New("forget: feature store: Topic, Send and Lookup are required")
	}
	found, err := p.Lookup(req.Key)
	if err != nil {
		return nil, fmt.Errorf("looking the user up in the feature store: %w", err)
	}
	return func(ctx context.Context, progress func(string, ...any)) StoreReceipt {
		sr := StoreReceipt{Method: "forget control record on " + p.Topic + ": each processor deletes the key's table value (tombstone), timers and sink keys, and forwards the record downstream",
			Note: "the table topic is compacted: the tombstone supersedes the user's earlier values, which Kafka removes at the next compaction, and the tombstone after delete.retention.ms"}
		timeout := p.Timeout
		if timeout <= 0 {
			timeout = time.Minute
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		since := time.Now()
		if err := p.Send(ctx, req.Key); err != nil {
			sr.Status, sr.Error = StatusFailed, "sending the forget control record: "+err.Error()
			return sr
		}
		progress("control record sent to %s; waiting for the processors", p.Topic)
		if p.Wait != nil {
			// The processors of this process, when they own the user's
			// partitions (another instance may): then the sinks have
			// forgotten too before the next stores run. Not confirmed,
			// the feature store below still decides.
			wctx, wcancel := context.WithTimeout(ctx, timeout/2)
			names, err := p.Wait(wctx, req.Key, since)
			wcancel()
			if err != nil {
				sr.Note += "; not confirmed by this instance's processors (another instance may own the user's partitions): " + err.Error()
				progress("not confirmed by this instance's processors: %v", err)
			} else {
				progress("forgotten by %s", strings.Join(names, ", "))
			}
		}
		poll := p.Poll
		if poll <= 0 {
			poll = 100 * time.Millisecond
		}
		t := time.NewTicker(poll)
		defer t.Stop()
		lastReport := time.Now()
		for {
			still, err := p.Lookup(req.Key)
			if err == nil && !still {
				break
			}
			if time.Since(lastReport) >= 5*time.Second {
				progress("the feature store still holds the user after %s", time.Since(since).Round(time.Second))
				lastReport = time.Now()
			}
			select {
			case <-ctx.Done():
				sr.Status = StatusFailed
				sr.Error = fmt.Sprintf("the feature store still holds the user after %s: %v", time.Since(since).Round(time.Millisecond), ctx.Err())
				if err != nil {
					sr.Error += " (last lookup: " + err.Error() + ")"
				}
				return sr
			case <-t.C:
			}
		}
		n := int64(0)
		if found {
			n = 1
		}
		sr.Count, sr.Status = count(n), StatusDeleted
		return sr
	}, nil
}

// Redis is the cache: it deletes the user's keys (DEL) and then scans
// until none is left. Its count is the user's keys found before any store
// deleted (the recommender deletes them too when the control record
// reaches it) plus any more the DEL removed.
type Redis struct {
	Client redis.UniversalClient
	// Keys lists the user's keys (cache.RedisCache.Keys).
	Keys func(userID string) []string
	// Timeout bounds the wait for a key written by a record still in
	// flight to go (default 30s).
	Timeout time.Duration
}

// Name is "redis".
func (r *Redis) Name() string { return "redis" }

// Find scans for the user's keys.
func (r *Redis) Find(ctx context.Context, req *Request) (Deletion, error) {
	if r.Client == nil || r.Keys == nil {
		return nil, errors.New("forget: redis: Client and Keys are required")
	}
	keys := r.Keys(req.Key)
	before, err := r.scan(ctx, keys)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, progress func(string, ...any)) StoreReceipt {
		sr := StoreReceipt{Method: "DEL of the user's keys, then SCAN MATCH of each key until none is found"}
		timeout := r.Timeout
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		found := map[string]bool{}
		for _, k := range before {
			found[k] = true
		}
		for {
			for _, k := range keys {
				n, err := r.Client.Del(ctx, k).Result()
				if err != nil {
					sr.Status, sr.Error = StatusFailed, fmt.Sprintf("DEL: %v", err)
					return sr
				}
				if n > 0 {
					found[k] = true
				}
			}
			left, err := r.scan(ctx, keys)
			if err != nil {
				sr.Status, sr.Error = StatusFailed, err.Error()
				return sr
			}
			if len(left) == 0 {
				break
			}
			progress("%d keys written again after DEL; deleting again", len(left))
			select {
			case <-ctx.Done():
				sr.Status, sr.Error = StatusFailed, fmt.Sprintf("%d keys of the user remain: %v", len(left), ctx.Err())
				return sr
			case <-time.After(200 * time.Millisecond):
			}
		}
		sr.Count, sr.Status = count(int64(len(found))), StatusDeleted
		return sr
	}, nil
}

// scan returns the keys among keys that a SCAN MATCH finds.
func (r *Redis) scan(ctx context.Context, keys []string) ([]string, error) {
	var out []string
	for _, k := range keys {
		it := r.Client.Scan(ctx, 0, redisglob.Escape(k), 1000).Iterator()
		for it.Next(ctx) {
			if it.Val() == k {
				out = append(out, k)
			}
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("SCAN: %w", err)
		}
	}
	return out, nil
}

// Retained is a set of Kafka topics whose records cannot be deleted one
// key at a time (streams, dead-letter topics): it counts the user's
// records and states when they expire by the topic's retention.ms (the
// newest record keyed by the user, control records included, plus the
// retention). For sealed topics (Open set, after the DataKey store
// destroyed the user's key) it also tries to open each of them, and the
// store is crypto_shredded only if none opens; without Open the records
// stay readable until they expire, and the receipt's note says so.
type Retained struct {
	// StoreName names the store ("topic:user_events_raw", "dead-letters").
	StoreName string
	Topics    []string
	// Scan reads a topic from its oldest retained record to its end
	// (broker.Consume).
	Scan func(ctx context.Context, topic string) ([]*sarama.ConsumerMessage, error)
	// Retention returns a topic's live retention.ms (broker.DescribeTopic),
	// negative for unlimited; an error wrapping
	// sarama.ErrUnknownTopicOrPartition means the topic does not exist.
	Retention func(ctx context.Context, topic string) (time.Duration, error)
	// Release, if set, is called once a deletion has read every topic:
	// Retention may keep a connection open from one topic to the next
	// (one admin client for all of them) and close it there.
	Release func()
	// Timeout bounds each scan (default one minute).
	Timeout time.Duration
	// Note replaces the receipt's default note.
	Note string
	// Open, for sealed topics, opens a record's value under the key's
	// data key (keyring.Keyring.Open). A record counts as unreadable only
	// when it fails with keyring.ErrDestroyed; keyring.ErrNotSealed (a
	// record in clear) counts as readable, and any other error fails the
	// store.
	Open func(ctx context.Context, key string, value []byte) ([]byte, error)
}

// Name is StoreName.
func (r *Retained) Name() string { return r.StoreName }

// Find does nothing: the topics are scanned after the control record was
// sent, so that its time counts in the expiry.
func (r *Retained) Find(ctx context.Context, req *Request) (Deletion, error) {
	if r.Scan == nil || r.Retention == nil || len(r.Topics) == 0 {
		return nil, errors.New("forget: topics: Topics, Scan and Retention are required")
	}
	return func(ctx context.Context, progress func(string, ...any)) StoreReceipt {
		sr := StoreReceipt{Status: StatusExpires,
			Method: "Kafka cannot delete one key's records: the user's records are counted and expire by the topic's retention.ms",
			Note:   cmp.Or(r.Note, "the records stay readable until they expire (the topics are not sealed: see privacy.masterKeyEnv)")}
		if r.Open != nil {
			sr.Status = StatusShredded
			sr.Method = "the user's records are sealed with the user's data key, destroyed by this request: each is counted and tried, and none opens; they expire by the topic's retention.ms"
			sr.Note = r.Note
		}
		if r.Release != nil {
			defer r.Release()
		}
		var total, readable int64
		var errs []string
		for _, topic := range r.Topics {
			tr := r.topic(ctx, topic, req.Key)
			if tr.Error != "" {
				errs = append(errs, topic+": "+tr.Error)
			}
			total += tr.Records
			if tr.Readable != nil {
				readable += *tr.Readable
			}
			if tr.ExpiresBy != nil && (sr.ExpiresBy == nil || tr.ExpiresBy.After(*sr.ExpiresBy)) {
				sr.ExpiresBy = tr.ExpiresBy
			}
			sr.Topics = append(sr.Topics, tr)
			progress("%s: %d records of the user, retention %s", topic, tr.Records, tr.Retention)
		}
		if readable > 0 {
			errs = append(errs, fmt.Sprintf("%d records of the user still open", readable))
		}
		if len(errs) > 0 {
			sr.Status, sr.Error = StatusFailed, strings.Join(errs, "; ")
			return sr
		}
		sr.Count = count(total)
		return sr
	}, nil
}

func (r *Retained) topic(ctx context.Context, topic, key string) TopicReceipt {
	tr := TopicReceipt{Topic: topic}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ret, err := r.Retention(ctx, topic)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		tr.Retention = "topic does not exist"
		return tr
	}
	if err != nil {
		tr.Error = "retention: " + err.Error()
		return tr
	}
	tr.Retention = ret.String()
	if ret < 0 {
		tr.Retention = "unlimited"
	}
	msgs, err := r.Scan(ctx, topic)
	if err != nil {
		tr.Error = "scan: " + err.Error()
		return tr
	}
	var newest time.Time
	if r.Open != nil {
		tr.Readable = count(0)
	}
	for _, m := range msgs {
		if string(m.Key) != key {
			continue
		}
		if !processors.IsForget(m) {
			tr.Records++
			if r.Open != nil {
				// Only a destroyed key makes a record unreadable: one in
				// clear reads, and one that could not be tried is not
				// shown shredded.
				_, err := r.Open(ctx, key, m.Value)
				switch {
				case err == nil, errors.Is(err, keyring.ErrNotSealed):
					*tr.Readable++
				case !errors.Is(err, keyring.ErrDestroyed) && tr.Error == "":
					tr.Error = fmt.Sprintf("offset %d of partition %d could not be tried: %v", m.Offset, m.Partition, err)
				}
			}
		}
		if m.Timestamp.After(newest) {
			newest = m.Timestamp
		}
	}
	if newest.IsZero() {
		return tr
	}
	newest = newest.UTC()
	tr.Newest = &newest
	if ret < 0 {
		if tr.Records > 0 {
			tr.Error = "retention is unlimited: the user's records never expire"
		}
		return tr
	}
	exp := newest.Add(ret)
	tr.ExpiresBy = &exp
	return tr
}

// AuditFile is the hash-chained file trail: the user's records (subject =
// the pseudonym) are redacted, keeping their digests so that the chain
// still verifies. If a running sink holds the file, pass it as Sink and
// the redaction goes through it; without it, a file held by another
// process (a running runner) is reported pending.
type AuditFile struct {
	Path string
	// Sink is the sink of this process that holds Path, if any.
	Sink *audit.FileSink
}

// Name is "audit".
func (a *AuditFile) Name() string { return "audit" }

// Find does nothing: the redaction counts.
func (a *AuditFile) Find(ctx context.Context, req *Request) (Deletion, error) {
	if a.Path == "" && a.Sink == nil {
		return nil, errors.New("forget: audit: no trail file configured (audit.file or --audit-file)")
	}
	return func(ctx context.Context, progress func(string, ...any)) StoreReceipt {
		sr := StoreReceipt{Status: StatusRedacted, Method: "records whose subject is the user's pseudonym replaced by their redacted form (id, time, kind, digest of the original); the hash chain still verifies"}
		var (
			n   int
			err error
		)
		if a.Sink != nil {
			sr.Method += "; through the running sink"
			n, err = a.Sink.Redact(req.MatchAudit)
		} else {
			n, err = audit.Redact(a.Path, req.MatchAudit)
		}
		switch {
		case errors.Is(err, audit.ErrInUse):
			sr.Status = StatusPending
			if c, cerr := countAudit(a.Path, req); cerr == nil {
				sr.Count = count(c)
			}
			sr.Error = "pending: " + a.Path + " is held by a running runner: redact when the runner stops (run runner forget again), or forget through its admin API (POST /admin/v1/users/{userId}/forget)"
		case err != nil:
			sr.Status, sr.Error = StatusFailed, err.Error()
		default:
			sr.Count = count(int64(n))
		}
		return sr
	}, nil
}

// countAudit counts the records Redact would redact (reading a trail held
// by a sink is safe: it only appends).
func countAudit(path string, req *Request) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	var n int64
	for sc.Scan() {
		var r audit.Record
		var e audit.Event
		if json.Unmarshal(sc.Bytes(), &r) != nil || json.Unmarshal(r.Event, &e) != nil {
			continue
		}
		if !e.Redacted && req.MatchAudit(e) {
			n++
		}
	}
	return n, sc.Err()
}

// AuditElasticsearch is the trail in Elasticsearch (indices <prefix>-*):
// the user's records are redacted as in the file trail. Run it when no
// sink replays a spill file into the trail (see elasticsearch.Redact).
type AuditElasticsearch struct {
	Prefix string
	Conn   []es.ConnOption
}

// Name is "audit-elasticsearch".
func (a *AuditElasticsearch) Name() string { return "audit-elasticsearch" }

// Find does nothing: the redaction counts.
func (a *AuditElasticsearch) Find(ctx context.Context, req *Request) (Deletion, error) {
	return func(ctx context.Context, progress func(string, ...any)) StoreReceipt {
		sr := StoreReceipt{Status: StatusRedacted, Method: "documents of " + a.Prefix + "-* whose subject is the user's pseudonym replaced by their redacted form; the chain still verifies"}
		n, err := es.Redact(ctx, a.Prefix, req.MatchAudit, a.Conn...)
		if err != nil {
			sr.Status, sr.Error = StatusFailed, err.Error()
			return sr
		}
		sr.Count = count(int64(n))
		return sr
	}, nil
}

// DataKey is the user's data key (keyring.Keyring), which seals the
// user's records in the sealed topics: deleting it makes them unreadable
// (crypto-shredding). It runs before the feature store's control record,
// so that records still in flight cannot be opened either.
type DataKey struct {
	// Destroy deletes the key's data key (keyring.Keyring.Destroy).
	Destroy func(ctx context.Context, key string) (existed bool, err error)
	// Where names the key's location for the receipt ("redis
	// aether:keys:<pseudonym>").
	Where string
}

// Name is "data-key".
func (d *DataKey) Name() string { return "data-key" }

// Find does nothing: Destroy says whether the key existed.
func (d *DataKey) Find(ctx context.Context, req *Request) (Deletion, error) {
	if d.Destroy == nil {
		return nil, errors.New("forget: data key: Destroy is required")
	}
	return func(ctx context.Context, progress func(string, ...any)) StoreReceipt {
		sr := StoreReceipt{Method: "the user's data key deleted (" + d.Where + "); every value sealed with it is unreadable"}
		existed, err := d.Destroy(ctx, req.Key)
		if err != nil {
			sr.Status, sr.Error = StatusFailed, err.Error()
			return sr
		}
		n := int64(0)
		if existed {
			n = 1
		}
		sr.Count, sr.Status = count(n), StatusDeleted
		progress("data key destroyed: %v", existed)
		return sr
	}, nil
}
