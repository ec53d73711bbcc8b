package runner_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/audit"
	es "github.com/aetherai/aether/audit/elasticsearch"
	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/internal/esfake"
	"github.com/aetherai/aether/recommend"
	"github.com/aetherai/aether/runner"
	"github.com/aetherai/aether/runner/config"
)

var esOutage = flag.Duration("audit.outage", 60*time.Second, "how long TestAuditTrailThroughAnElasticsearchOutage keeps Elasticsearch down")

// TestAuditTrailThroughAnElasticsearchOutage sends events through the whole
// pipeline (HTTP ingest, sessionizer, recommender, Redis) with the audit
// trail in Elasticsearch, which is down for a minute in the middle. Once
// the pipeline has stopped and the sink has replayed its spill file, the
// trail verifies and holds exactly one trail of everything: one api_request
// record per HTTP request, one inference record per answer scored on the
// spot, attestations that cover every offset of both processors' inputs
// with no gap and count every event, and the processors' start and stop.
func TestAuditTrailThroughAnElasticsearchOutage(t *testing.T) {
	ctx := t.Context()
	b, rdb, c := embedded(t, 4)
	fake := esfake.New()
	defer fake.Close()

	reg := prometheus.NewRegistry()
	sink, err := es.Open(ctx, es.URLs(fake.URL()), es.SpillDir(t.TempDir()), es.Registerer(reg))
	require.NoError(t, err)
	cfg, err := config.Parse(fmt.Appendf(nil, `
kafka: {brokers: [%s], partitions: 4}
model: {dir: m}
http: {listen: 127.0.0.1:0, apiKeys: {shop: shop-key}, admin: {listen: "off"}}
`, b.Addrs()[0]))
	require.NoError(t, err)
	run, err := runner.Start(ctx, runner.Parts{Config: cfg, Scorer: fixedScorer{}, Cache: c, Audit: sink, Registry: reg})
	require.NoError(t, err)
	stopped := false
	defer func() {
		if !stopped {
			run.Stop()
		}
	}()
	base := "http://" + run.Addr
	var requests, inferences, events int
	require.Eventually(t, func() bool {
		requests++ // every request is audited, probes too
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 50*time.Millisecond, "the pipeline is ready")
	post := func(n int) {
		t.Helper()
		var batch []event.Event
		for i := range n {
			events++
			batch = append(batch, event.Event{UserID: fmt.Sprintf("user_%d", events%25), ProductID: fmt.Sprintf("prod_%d", i%13),
				EventType: event.Click, Timestamp: time.Now().UTC(), EventID: fmt.Sprintf("e%d", events)})
		}
		js, err := json.Marshal(batch)
		require.NoError(t, err)
		req, err := http.NewRequest(http.MethodPost, base+"/v1/events", bytes.NewReader(js))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer shop-key")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		requests++
	}
	getRecs := func(user string) {
		t.Helper()
		code, body := get(t, base+"/v1/recommendations/"+user, "shop-key")
		require.Equal(t, http.StatusOK, code, string(body))
		var ans recommend.Recommendations
		require.NoError(t, json.Unmarshal(body, &ans))
		if ans.Source == recommend.FromInference {
			inferences++
		}
		requests++
	}
	traffic := func(batches int) {
		for i := range batches {
			post(10)
			getRecs(fmt.Sprintf("user_%d", i%25))
			rdb.Del(ctx, "aether:recs:"+fmt.Sprintf("user_%d", (i+7)%25)) // some answers must be scored on the spot
		}
	}

	traffic(10)
	fake.Stop()
	t.Logf("Elasticsearch down for %s", *esOutage)
	for end := time.Now().Add(*esOutage); time.Now().Before(end); time.Sleep(*esOutage / 20) {
		traffic(1)
	}
	require.NoError(t, fake.Start())
	traffic(10)
	require.Greater(t, inferences, 0, "some answers were scored on the spot")

	// Everything ingested is processed before the pipeline stops.
	high := func(topic string) map[int32]int64 {
		client, err := sarama.NewClient(b.Addrs(), broker.SaramaConfig("audit-test"))
		require.NoError(t, err)
		defer client.Close()
		out := map[int32]int64{}
		for p := range int32(4) {
			out[p], err = client.GetOffset(topic, p, sarama.OffsetNewest)
			require.NoError(t, err)
		}
		return out
	}
	total := func(processor string) (n uint64) {
		for _, v := range run.Runtime.Outcomes(processor) {
			n += v
		}
		return n
	}
	require.Eventually(t, func() bool { return total("sessionizer") == uint64(events) }, 60*time.Second, 100*time.Millisecond)
	var features int64
	require.Eventually(t, func() bool {
		features = 0
		for _, h := range high("user_features_processed") {
			features += h
		}
		return features > 0 && total("recommender") == uint64(features)
	}, 60*time.Second, 100*time.Millisecond)
	require.NoError(t, run.Stop())
	stopped = true
	require.NoError(t, sink.Close(), "the spill file is replayed at close")

	// The trail, read back from Elasticsearch, verifies.
	rep, err := es.Verify(ctx, es.DefaultPrefix, es.URLs(fake.URL()))
	require.NoError(t, err)
	var trail bytes.Buffer
	n, err := es.Export(ctx, es.DefaultPrefix, &trail, es.URLs(fake.URL()))
	require.NoError(t, err)
	require.Equal(t, int(rep.Records), n)

	// Exactly one record of each request and inference.
	kinds := map[audit.Kind]int{}
	jobs := map[string]int{}
	var all []audit.Event
	for _, line := range strings.Split(strings.TrimSpace(trail.String()), "\n") {
		var r struct{ Event audit.Event }
		require.NoError(t, json.Unmarshal([]byte(line), &r))
		kinds[r.Event.Kind]++
		if r.Event.Kind == audit.KindJobEvent {
			jobs[r.Event.Actor+" "+r.Event.Action]++
		}
		all = append(all, r.Event)
	}
	require.Equal(t, requests, kinds[audit.KindAPIRequest])
	require.Equal(t, inferences, kinds[audit.KindInference])
	require.Equal(t, 1, jobs["processor:sessionizer start"], "%v", jobs)
	require.Equal(t, 1, jobs["processor:sessionizer stop"], "%v", jobs)
	require.Equal(t, 1, jobs["processor:recommender start"], "%v", jobs)
	require.Equal(t, 1, jobs["processor:recommender stop"], "%v", jobs)

	// The attestations cover every offset of both inputs, no gap, and
	// count every event.
	cov := audit.Coverage(all)
	require.NoError(t, cov.Err())
	for topic, group := range map[string]string{"user_events_raw": "sessionizer", "user_features_processed": "recommender"} {
		var counted int64
		for p, h := range high(topic) {
			if h == 0 {
				continue
			}
			pc, ok := cov.Partition(group, topic, p)
			require.True(t, ok, "%s %s/%d attested", group, topic, p)
			require.True(t, pc.Covers(0, h-1), "%s %s/%d: offsets 0..%d covered: %+v", group, topic, p, h-1, pc)
			counted += h
		}
		if topic == "user_events_raw" {
			require.Equal(t, int64(events), counted)
		} else {
			require.Equal(t, features, counted)
		}
	}

	// The outage went through the spill file, and all of it came back.
	got := gather(t, reg)
	require.Greater(t, got["aether_audit_spilled_events_total"], 0.0)
	require.Equal(t, got["aether_audit_spilled_events_total"], got["aether_audit_replayed_events_total"])
	require.Equal(t, 0.0, got["aether_audit_backlog_events"])
	t.Logf("%d records: %d requests, %d inferences, %d events, %d feature records; %v spilled and replayed",
		n, requests, inferences, events, features, got["aether_audit_spilled_events_total"])
}

// gather reads the registry's unlabelled counters and gauges.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 0 {
				out[mf.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// With audit.messages: per-message the processors write one kafka_message
// record per Kafka record they read.
func TestAuditPerMessage(t *testing.T) {
	b, _, c := embedded(t, 2)
	cfg, err := config.Parse(fmt.Appendf(nil, `
kafka: {brokers: [%s], partitions: 2}
model: {dir: m}
http: {listen: 127.0.0.1:0, apiKeys: {shop: shop-key}, admin: {listen: "off"}}
audit: {messages: per-message}
`, b.Addrs()[0]))
	require.NoError(t, err)
	trail := audit.NewMemory()
	run, err := runner.Start(t.Context(), runner.Parts{Config: cfg, Scorer: fixedScorer{}, Cache: c, Audit: trail})
	require.NoError(t, err)
	em, err := sarama.NewSyncProducer(b.Addrs(), broker.SaramaConfig("per-message-test"))
	require.NoError(t, err)
	defer em.Close()
	const n = 30
	for i := range n {
		js, _ := json.Marshal(event.Event{UserID: fmt.Sprintf("u%d", i%3), ProductID: "p", EventType: event.Click,
			Timestamp: time.Now().UTC(), EventID: fmt.Sprint(i)})
		_, _, err := em.SendMessage(&sarama.ProducerMessage{Topic: "user_events_raw", Key: sarama.StringEncoder(fmt.Sprintf("u%d", i%3)), Value: sarama.ByteEncoder(js)})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		var got uint64
		for _, v := range run.Runtime.Outcomes("sessionizer") {
			got += v
		}
		return got == n
	}, 60*time.Second, 50*time.Millisecond)
	require.NoError(t, run.Stop())
	offsets := map[string]bool{}
	for _, e := range trail.Events() {
		if e.Kind == audit.KindKafkaMessage && e.Actor == "processor:sessionizer" {
			require.NotEqual(t, audit.ActionAttest, e.Action)
			offsets[e.CorrelationID] = true
		}
	}
	require.Len(t, offsets, n, "one record per offset")
	require.NoError(t, audit.Coverage(trail.Events()).Err())
}
