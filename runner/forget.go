package runner

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/redis/go-redis/v9"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/controls/forget"
	"github.com/aetherai/aether/examples/recommendations/pipeline"
	"github.com/aetherai/aether/keyring"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/processors"
	"github.com/aetherai/aether/runner/api"
	"github.com/aetherai/aether/runner/config"
)

// RouteForget is the admin route that deletes a user's data.
const RouteForget = "POST /admin/v1/users/{userId}/forget"

// ForgetParts are the connections the deletion of a user needs, in the
// runner (admin route) or in `runner forget`.
type ForgetParts struct {
	Config   *config.Config
	Pipeline *pipeline.Pipeline
	Brokers  []string
	// Send writes the forget control record (processors.SendForget as
	// the ingest principal, which may write the raw topic).
	Send func(ctx context.Context, key string) error
	// Lookup reports whether the feature-store view holds the key.
	Lookup func(key string) (bool, error)
	// Wait, in the runner, waits for its processors to forget the key.
	Wait func(ctx context.Context, key string, since time.Time) ([]string, error)
	// Redis and Keys: the cache's client and the user's keys; nil Redis
	// means the pipeline writes no Redis.
	Redis redis.UniversalClient
	Keys  func(userID string) []string
	// Kafka is the configuration topics are scanned and described with
	// (the admin principal).
	Kafka func(clientID string) *sarama.Config
	// AuditSink is the file trail this process holds open, if any.
	AuditSink *audit.FileSink
	// DataKeys is the keyring of the users' data keys
	// (privacy.masterKeyEnv); nil when the topics are not sealed.
	DataKeys *keyring.Keyring
}

// ForgetConfig returns the deletion configuration of the reference
// pipeline: the receipts directory, whether its stores know users by
// pseudonym (privacy.masterKeyEnv), and the stores it writes, in the
// order a deletion runs them: the feature store (through the processors),
// Redis, the raw and processed topics, the dead-letter topics and the
// stateful processors' loopback topics (timer ticks keyed by the user; all
// by retention), then the audit trail (the file, or Elasticsearch). The
// caller sets Audit, Actor and Progress.
func ForgetConfig(p ForgetParts) (forget.Config, error) {
	stores, err := forgetStores(p)
	if err != nil {
		return forget.Config{}, err
	}
	return forget.Config{Stores: stores, ReceiptsDir: p.Config.ReceiptsDir(), KeyedBySubject: p.Config.Privacy.Sealing()}, nil
}

func forgetStores(p ForgetParts) ([]forget.Store, error) {
	wait, err := p.Config.Forget.Wait()
	if err != nil {
		return nil, err
	}
	var stores []forget.Store
	var open func(ctx context.Context, key string, value []byte) ([]byte, error)
	if p.DataKeys != nil {
		// First, so that records still in flight cannot be opened either.
		stores = append(stores, &forget.DataKey{Destroy: p.DataKeys.Destroy, Where: "redis " + p.DataKeys.Prefix() + "<pseudonym>"})
		open = p.DataKeys.Open
	}
	stores = append(stores, &forget.Processors{Topic: p.Pipeline.Raw.Name(), Send: p.Send, Lookup: p.Lookup, Wait: p.Wait, Timeout: wait})
	if p.Redis != nil {
		stores = append(stores, &forget.Redis{Client: p.Redis, Keys: p.Keys})
	}
	scan := func(ctx context.Context, topic string) ([]*sarama.ConsumerMessage, error) {
		return broker.Consume(ctx, p.Brokers, p.Kafka("aether-forget-scan"), topic)
	}
	rr := &retentionReader{brokers: p.Brokers, kafka: p.Kafka}
	retention, release := rr.Retention, rr.Release
	for _, s := range []string{p.Pipeline.Raw.Name(), p.Pipeline.Features.Name()} {
		stores = append(stores, &forget.Retained{StoreName: "topic:" + s, Topics: []string{s}, Scan: scan, Retention: retention, Release: release, Timeout: wait, Open: open})
	}
	stores = append(stores, &forget.Retained{StoreName: "dead-letters", Topics: p.Pipeline.Topology.DeadLetterTopics(), Scan: scan, Retention: retention, Release: release, Timeout: wait, Open: open})
	var loops []string
	for _, sp := range p.Pipeline.Topology.Processors() {
		if sp.Table != nil {
			loops = append(loops, sp.LoopTopic())
		}
	}
	if len(loops) > 0 {
		// Timer ticks: the user id as key, no value.
		note := "timer ticks carry the user id as key and no value; they expire with the topic's retention"
		if p.Config.Privacy.Sealing() {
			note = "timer ticks carry the user's pseudonym as key and no value; they expire with the topic's retention"
		}
		stores = append(stores, &forget.Retained{StoreName: "loopback", Topics: loops, Scan: scan, Retention: retention, Release: release, Timeout: wait, Note: note})
	}
	if e := p.Config.Audit.Elasticsearch; e.Enabled() {
		conn, err := ElasticsearchConn(e)
		if err != nil {
			return nil, err
		}
		stores = append(stores, &forget.AuditElasticsearch{Prefix: e.IndexPrefix, Conn: conn})
	} else {
		a := &forget.AuditFile{Path: p.Config.Audit.File, Sink: p.AuditSink}
		if a.Sink != nil {
			a.Path = a.Sink.Path()
		}
		stores = append(stores, a)
	}
	return stores, nil
}

// retentionReader reads the topics' retention.ms over one admin client,
// opened at a store's first topic and closed by Release once the store's
// deletion has read them all. A failed call drops the client (one whose
// context ended is closed) and the next topic opens another.
type retentionReader struct {
	brokers []string
	kafka   func(clientID string) *sarama.Config

	mu    sync.Mutex
	admin sarama.ClusterAdmin
}

// Retention is broker.DescribeTopic's retention over the open client.
func (r *retentionReader) Retention(ctx context.Context, topic string) (time.Duration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.admin == nil {
		admin, err := broker.NewAdmin(ctx, r.brokers, r.kafka("aether-forget-scan"))
		if err != nil {
			return 0, err
		}
		r.admin = admin
	}
	spec, err := broker.Describe(ctx, r.admin, topic)
	if err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		r.closeLocked()
	}
	return spec.Retention, err
}

// Release closes the client, if open.
func (r *retentionReader) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closeLocked()
}

func (r *retentionReader) closeLocked() {
	if r.admin != nil {
		_ = r.admin.Close()
		r.admin = nil
	}
}

// startForget registers the forget route on the running pipeline's admin
// API: the deletion runs in this process, through its processors, view,
// cache and audit sink.
func startForget(run *Running, p Parts, brokers []string, kafkaAs kafkaConfigs, view *processors.View[features.State], subjectKey []byte) error {
	fp := ForgetParts{
		Config: p.Config, Pipeline: run.Pipeline, Brokers: brokers,
		Send: func(ctx context.Context, key string) error {
			return processors.SendForget(ctx, brokers, run.Pipeline.Raw.Name(), key, processors.ClientSarama(kafkaAs.ingest))
		},
		Lookup: viewLookup(view),
		Wait: func(ctx context.Context, key string, since time.Time) ([]string, error) {
			return run.Runtime.WaitForgotten(ctx, run.Pipeline.Raw.Name(), key, since)
		},
		Kafka: kafkaAs.adminConf,
	}
	if p.Cache != nil {
		fp.Redis, fp.Keys = p.Cache.Client(), p.Cache.Keys
	}
	fp.AuditSink, _ = p.Audit.(*audit.FileSink)
	fp.DataKeys = run.keys
	fc, err := ForgetConfig(fp)
	if err != nil {
		return err
	}
	fc.Audit, fc.Actor = p.Audit, api.AdminActor
	f, err := forget.New(fc)
	if err != nil {
		return err
	}
	wait, _ := p.Config.Forget.Wait()
	return run.Admin.Handle(RouteForget, ForgetHandler(f, subjectKey, wait))
}

// viewLookup asks the feature-store view for a key; a view still
// recovering cannot say.
func viewLookup(view *processors.View[features.State]) func(string) (bool, error) {
	return func(key string) (bool, error) {
		if !view.Recovered() {
			return false, errors.New("the feature-store view is still recovering")
		}
		return view.Has(key)
	}
}

// ForgetHandler serves RouteForget: 200 with the receipt (its "complete"
// says whether every store is done), 400 for a user id events could not
// carry, 500 with the receipt if it could not be written or audited. The
// admin API audits the request with the pseudonym as subject; the handler
// adds the receipt's id and per-store counts to that event. budget is the
// forget timeout: the deletion may take four times it (the write deadline
// is extended for it), and runs on if the caller goes away.
func ForgetHandler(f *forget.Forgetter, subjectKey []byte, budget time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := r.PathValue("userId")
		if err := forget.ValidUserID(user); err != nil {
			api.AdminAuditAttr(r, "reason", "invalid_user_id")
			api.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		// A deletion waits for the processors and scans topics: longer
		// than the admin server's write timeout allows other routes.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(4*budget + time.Minute))
		// Once started, a deletion runs to its receipt even if the caller
		// goes away.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 4*budget)
		defer cancel()
		rc, err := f.Forget(ctx, user, api.SubjectRef(subjectKey, user))
		api.AdminAuditAttr(r, "receipt", rc.ID)
		for _, s := range rc.Stores {
			if s.Count != nil {
				api.AdminAuditAttr(r, s.Name+".count", strconv.FormatInt(*s.Count, 10))
			}
			api.AdminAuditAttr(r, s.Name+".status", s.Status)
		}
		if err != nil {
			api.WriteJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error(), "receipt": rc})
			return
		}
		api.WriteJSON(w, http.StatusOK, rc)
	})
}
