package acl_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/broker/brokertest"
	"github.com/aetherai/aether/controls/acl"
	"github.com/aetherai/aether/controls/topics"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/examples/recommendations/pipeline"
	"github.com/aetherai/aether/internal/testcert"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/processors"
	"github.com/aetherai/aether/recommend"
)

func b(principal, rt, name, op string) acl.Binding {
	return acl.Binding{Principal: principal, ResourceType: rt, ResourceName: name, PatternType: acl.Literal,
		Operation: op, Permission: acl.Allow, Host: acl.AnyHost}
}

// examplePipeline is the reference pipeline with the recommender, its
// scorer and cache replaced by in-memory stand-ins.
func examplePipeline(partitions int32) (*pipeline.Pipeline, *memorySink) {
	sink := &memorySink{recs: map[string]recommend.Recommendations{}}
	// A one-second session gap, so that sessions close by timer (through
	// the loopback topic) while the test runs.
	return pipeline.New(pipeline.Config{Partitions: partitions, Scorer: stubScorer{}, Cache: sink,
		Gap: time.Second, Grace: time.Millisecond}), sink
}

func TestDeriveExamplePipeline(t *testing.T) {
	pl, _ := examplePipeline(0)
	got, err := acl.Derive(pl.Topology, acl.Views(pl.Sessionizer.Table().Name()))
	require.NoError(t, err)
	const (
		ing = "User:aether-ingest"
		rec = "User:aether-recommender"
		ses = "User:aether-sessionizer"
		vw  = "User:aether-views"
	)
	want := []acl.Binding{
		b(ing, acl.Topic, "user_events_raw", acl.Write),
		b(rec, acl.Group, "recommender", acl.Read),
		b(rec, acl.Topic, "user_features_processed", acl.Read),
		b(rec, acl.Topic, "user_features_processed.dlq", acl.Write),
		b(ses, acl.Group, "sessionizer", acl.Read),
		b(ses, acl.Topic, "sessionizer-loop", acl.DescribeConfigs),
		b(ses, acl.Topic, "sessionizer-loop", acl.Read),
		b(ses, acl.Topic, "sessionizer-loop", acl.Write),
		b(ses, acl.Topic, "sessionizer-table", acl.DescribeConfigs),
		b(ses, acl.Topic, "sessionizer-table", acl.Read),
		b(ses, acl.Topic, "sessionizer-table", acl.Write),
		b(ses, acl.Topic, "user_events_raw", acl.Read),
		b(ses, acl.Topic, "user_events_raw.dlq", acl.Write),
		b(ses, acl.Topic, "user_features_processed", acl.Write),
		b(vw, acl.Topic, "sessionizer-table", acl.Read),
	}
	require.Equal(t, want, got)
	require.Equal(t, "ALLOW User:aether-ingest WRITE TOPIC user_events_raw", got[0].String())

	// Configured usernames become the principals.
	got, err = acl.Derive(pl.Topology, acl.Principal("ingest", "User:shop-ingest"))
	require.NoError(t, err)
	require.Equal(t, b("User:shop-ingest", acl.Topic, "user_events_raw", acl.Write), got[len(got)-1])

	_, err = acl.Derive(pl.Topology, acl.Views("nope-table"))
	require.EqualError(t, err, `topology "recommendations": view of table "nope-table", which no processor owns`)
	_, err = acl.Derive(pl.Topology, acl.Principal("ingest", "shop"))
	require.EqualError(t, err, `acl: principal "shop" of role "ingest": want User:<name>`)
}

func TestCompareReportsMissingAndExcessThatConcernTheTopology(t *testing.T) {
	want := []acl.Binding{
		b("User:aether-recommender", acl.Topic, "feats", acl.Read),
		b("User:aether-recommender", acl.Group, "recommender", acl.Read),
	}
	wildcard := b("User:aether-recommender", acl.Topic, "*", acl.Read)
	anyone := b("User:*", acl.Topic, "other", acl.Write)
	prefixed := b("User:someone", acl.Topic, "fe", acl.Read)
	prefixed.PatternType = "PREFIXED"
	unrelated := b("User:someone", acl.Topic, "other", acl.Read)
	live := []acl.Binding{want[0], wildcard, anyone, prefixed, unrelated}
	d := acl.Compare(want, live)
	require.Equal(t, []acl.Binding{want[1]}, d.Missing)
	require.Equal(t, []acl.Binding{anyone, wildcard, prefixed}, d.Excess)
	require.False(t, d.Empty())
	require.True(t, acl.Compare(want, append(want, unrelated)).Empty())
}

// secureCluster is kfake with TLS (a CA made for the test), SASL
// SCRAM-SHA-512 and ACLs enforced, a superuser "admin" and one user per
// role of the example pipeline.
type secureCluster struct {
	b  *broker.Broker
	ca *testcert.CA
}

var roles = []string{"sessionizer", "recommender", "ingest", "views"}

func startSecure(t *testing.T) *secureCluster {
	t.Helper()
	ca := testcert.New(t)
	srv := ca.Server(t, "127.0.0.1", "localhost")
	opts := []broker.Option{
		broker.Partitions(2),
		broker.ListenTLS(&tls.Config{Certificates: []tls.Certificate{srv.TLS}, MinVersion: tls.VersionTLS12}),
		broker.Superuser(broker.SASLScramSHA512, "admin", "admin-secret"),
		broker.EnableACLs(),
	}
	for _, r := range roles {
		opts = append(opts, broker.User(broker.SASLScramSHA512, "aether-"+r, r+"-secret"))
	}
	return &secureCluster{b: brokertest.Start(t, opts...), ca: ca}
}

// sarama returns a client configuration for the user (role or "admin").
func (c *secureCluster) sarama(t testing.TB, role string) func(string) *sarama.Config {
	user, pass := "aether-"+role, role+"-secret"
	if role == "admin" {
		user, pass = "admin", "admin-secret"
	}
	fn, err := broker.Security{TLS: &broker.TLS{CAFile: c.ca.CertFile},
		SASL: &broker.SASL{Mechanism: broker.SASLScramSHA512, Username: user, Password: pass}}.SaramaConfigs()
	require.NoError(t, err)
	return fn
}

// Every processor of the example pipeline, the ingest emitter and the
// feature store's view work with only their derived grants, over TLS and
// SCRAM with ACLs enforced: records flow end to end, bad records and
// failed scores are dead-lettered, sessions close by timer through the
// loopback topic, and a restarted sessionizer recovers its table. Each of
// the 15 grants is needed by one of these paths (dropping any one makes
// the path fail: checked against kfake when the grants were derived).
func TestEveryProcessorWorksWithOnlyItsGrants(t *testing.T) {
	pl, _ := examplePipeline(2)
	bindings, err := acl.Derive(pl.Topology, acl.Views(pl.Sessionizer.Table().Name()))
	require.NoError(t, err)
	require.Len(t, bindings, 15)
	exercise(t, bindings, 60*time.Second)
}

// exercise runs the example pipeline on a secure cluster whose only ACLs
// are bindings, giving each wait up to patience.
func exercise(t *testing.T, bindings []acl.Binding, patience time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*patience/2)
	defer cancel()
	c := startSecure(t)
	addrs := c.b.Addrs()
	adminCfg := c.sarama(t, "admin")
	pl, sink := examplePipeline(2)

	want, err := topics.Derive(pl.Topology, 2)
	require.NoError(t, err)
	_, err = topics.Apply(ctx, addrs, adminCfg("admin"), want)
	require.NoError(t, err)

	admin, err := sarama.NewClusterAdmin(addrs, adminCfg("admin"))
	require.NoError(t, err)
	defer admin.Close()
	applied, err := acl.Apply(admin, bindings)
	require.NoError(t, err)
	require.Len(t, applied.Missing, len(bindings))

	// Each processor as its own principal; nothing may create topics.
	perRole := map[string]func(string) *sarama.Config{}
	for _, r := range roles {
		perRole[r] = c.sarama(t, r)
	}
	var mu sync.Mutex
	used := map[string]bool{}
	newRuntime := func() *processors.Runtime {
		rt, err := processors.New(ctx, pl.Topology, processors.Brokers(addrs...), processors.CreateTopics(false),
			processors.PerProcessorSarama(func(p, id string) *sarama.Config {
				mu.Lock()
				used[p] = true
				mu.Unlock()
				require.NotEmpty(t, p, "client %s has no processor", id)
				return perRole[p](id)
			}))
		require.NoError(t, err)
		return rt
	}
	rt := newRuntime()
	stop, err := rt.Start(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"sessionizer": true, "recommender": true}, used)

	em, err := processors.NewEmitter(addrs, pl.Raw, processors.ClientSarama(perRole["ingest"]))
	require.NoError(t, err)
	now := time.Now().UTC()
	users := []string{"user_a", "user_b", "user_c"}
	for i, u := range users {
		require.NoError(t, em.EmitSync(u, event.Event{UserID: u, ProductID: fmt.Sprintf("prod_%d", i), EventType: "click",
			Timestamp: now, EventID: "e-" + u}))
	}
	require.NoError(t, em.EmitSync("user_fail", event.Event{UserID: "user_fail", ProductID: "prod_x", EventType: "click", Timestamp: now}))
	require.NoError(t, em.EmitRaw("user_bad", []byte("{not json")))
	require.NoError(t, em.Finish())

	// ingest -> sessionizer (table, loop, output) -> recommender -> sink.
	require.Eventually(t, func() bool { return sink.len() == len(users) }, patience, 100*time.Millisecond)
	for _, u := range users {
		r, ok := sink.get(u)
		require.True(t, ok, u)
		require.Equal(t, "test", r.Model.Version)
	}
	// The bad record went to the sessionizer's dead-letter topic, the
	// record the scorer failed on to the recommender's.
	dl, err := broker.Consume(ctx, addrs, adminCfg("admin"), "user_events_raw.dlq")
	require.NoError(t, err)
	require.Len(t, dl, 1)
	require.Equal(t, "user_bad", string(dl[0].Key))
	require.Eventually(t, func() bool {
		dl, err := broker.Consume(ctx, addrs, adminCfg("admin"), "user_features_processed.dlq")
		return err == nil && len(dl) > 0 && string(dl[0].Key) == "user_fail"
	}, patience, 200*time.Millisecond)
	// Sessions closed by timer: ticks went through sessionizer-loop.
	require.Eventually(t, func() bool { return timersFired(t, rt) > 0 }, patience, 200*time.Millisecond)

	// The feature store, read by the views principal.
	view, err := processors.NewView(addrs, pl.Sessionizer.Table(), processors.ClientSarama(perRole["views"]))
	require.NoError(t, err)
	vctx, vstop := context.WithCancel(ctx)
	vdone := make(chan error, 1)
	go func() { vdone <- view.Run(vctx) }()
	require.Eventually(t, view.Recovered, patience, 100*time.Millisecond)
	st, ok, err := view.Get("user_a")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, uint64(1), st.Record("user_a").EventsTotal)
	vstop()
	<-vdone

	// A restarted sessionizer recovers its state from its table topic.
	require.NoError(t, stop())
	rt = newRuntime()
	stop, err = rt.Start(ctx)
	require.NoError(t, err)
	defer func() { require.NoError(t, stop()) }()
	raw, err := rt.Get("sessionizer", "user_a")
	require.NoError(t, err)
	st, err = pl.Sessionizer.Table().Decode(raw)
	require.NoError(t, err)
	require.Equal(t, uint64(1), st.Record("user_a").EventsTotal)

	// The recommender's principal may not write the raw stream.
	cfg := perRole["recommender"]("trespasser")
	p, err := sarama.NewSyncProducer(addrs, cfg)
	require.NoError(t, err)
	defer p.Close()
	_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: "user_events_raw", Key: sarama.StringEncoder("user_a"), Value: sarama.StringEncoder("{}")})
	require.ErrorIs(t, err, sarama.ErrTopicAuthorizationFailed)
}

func timersFired(t *testing.T, rt *processors.Runtime) float64 {
	mfs, err := rt.Gatherer().Gather()
	require.NoError(t, err)
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "aether_timers_fired_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == "fired" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

type stubScorer struct{}

func (stubScorer) Score(_ context.Context, rs []features.Record, k int) ([][]recommend.Item, error) {
	out := make([][]recommend.Item, len(rs))
	for i, r := range rs {
		if r.UserID == "user_fail" {
			return nil, errors.New("no score for user_fail")
		}
		out[i] = []recommend.Item{{ProductID: "prod_top", Score: 1}}
	}
	return out, nil
}
func (stubScorer) Popular(int) []recommend.Item { return nil }
func (stubScorer) Model() recommend.Model       { return recommend.Model{Version: "test", SHA256: "00"} }

type memorySink struct {
	mu   sync.Mutex
	recs map[string]recommend.Recommendations
}

func (s *memorySink) Name() string { return "memory" }
func (s *memorySink) Write(_ context.Context, key string, v recommend.Recommendations) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs[key] = v
	return nil
}
func (s *memorySink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}
func (s *memorySink) get(k string) (recommend.Recommendations, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[k]
	return r, ok
}
