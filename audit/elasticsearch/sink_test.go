package elasticsearch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/olivere/elastic/v7"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/audit/audittest"
	es "github.com/aetherai/aether/audit/elasticsearch"
	"github.com/aetherai/aether/internal/esfake"
)

var outageFor = flag.Duration("es.outage", 2*time.Second, "how long the outage test keeps Elasticsearch down")

type fixture struct {
	srv  *esfake.Server
	dir  string
	reg  *prometheus.Registry
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := esfake.New()
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, dir: t.TempDir(), reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
}

func (f *fixture) open(t *testing.T, opts ...es.Option) *es.Sink {
	t.Helper()
	f.reg = prometheus.NewRegistry()
	base := []es.Option{es.URLs(f.srv.URL()), es.SpillDir(f.dir), es.Retries(2, 20*time.Millisecond),
		es.Registerer(f.reg), es.Logger(slog.New(slog.NewTextHandler(f.logs, nil)))}
	s, err := es.Open(context.Background(), append(base, opts...)...)
	require.NoError(t, err)
	return s
}

func (f *fixture) client(t *testing.T) *elastic.Client {
	t.Helper()
	c, err := elastic.NewClient(elastic.SetURL(f.srv.URL()), elastic.SetSniff(false), elastic.SetHealthcheck(false))
	require.NoError(t, err)
	return c
}

type stored struct {
	index, id string
	rec       audit.Record
	event     audit.Event
}

// read returns every record of prefix-* sorted by seq, after a refresh.
func (f *fixture) read(t *testing.T, prefix string) []stored {
	t.Helper()
	c := f.client(t)
	ctx := context.Background()
	_, err := c.Refresh(prefix + "-*").Do(ctx)
	require.NoError(t, err)
	res, err := c.Search(prefix+"-*").Sort("seq", true).Size(10000).Do(ctx)
	require.NoError(t, err)
	var out []stored
	for _, h := range res.Hits.Hits {
		var r audit.Record
		require.NoError(t, json.Unmarshal(h.Source, &r))
		e, err := r.Check()
		require.NoError(t, err)
		require.Equal(t, e.ID, h.Id, "the document id is the event id")
		out = append(out, stored{index: h.Index, id: h.Id, rec: r, event: e})
	}
	return out
}

func events(s []stored) []audit.Event {
	var out []audit.Event
	for _, x := range s {
		out = append(out, x.event)
	}
	return out
}

func TestConformance(t *testing.T) {
	audittest.Conformance(t, func(t *testing.T) (audit.Sink, func() []audit.Event) {
		f := newFixture(t)
		s := f.open(t, es.BatchSize(50))
		return s, func() []audit.Event {
			got := f.read(t, es.DefaultPrefix)
			for i, x := range got {
				require.Equal(t, uint64(i+1), x.rec.Seq)
			}
			return events(got)
		}
	})
	t.Run("Buffered", func(t *testing.T) {
		audittest.Conformance(t, func(t *testing.T) (audit.Sink, func() []audit.Event) {
			f := newFixture(t)
			s := f.open(t, es.FlushInterval(20*time.Millisecond), es.IndexPrefix("buffered"))
			return s, func() []audit.Event { return events(f.read(t, "buffered")) }
		})
	})
}

func TestDailyIndicesTemplateAndPolicy(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.open(t, es.IndexPrefix("trail"), es.Retention(30*24*time.Hour))
	e1 := audittest.Event(t, 1)
	e2 := audittest.Event(t, 2)
	e2.Time = time.Date(2026, 11, 28, 0, 0, 1, 0, time.UTC)
	require.NoError(t, s.Write(ctx, e1, e2))
	require.NoError(t, s.Close())
	require.Equal(t, []string{"trail-2026.11.27", "trail-2026.11.28"}, f.srv.Indices())

	c := f.client(t)
	pol, err := c.XPackIlmGetLifecycle().Policy("trail").Do(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]any{
		"_meta": map[string]any{"managed_by": "aether", "description": "audit trail retention"},
		"phases": map[string]any{
			"hot":    map[string]any{"min_age": "0ms", "actions": map[string]any{}},
			"delete": map[string]any{"min_age": "30d", "actions": map[string]any{"delete": map[string]any{}}},
		},
	}, pol["trail"].Policy)
	require.Equal(t, []string{"trail-2026.11.27", "trail-2026.11.28"}, pol["trail"].InUseBy.Indices)

	tpl, err := c.IndexGetIndexTemplate("trail").Do(ctx)
	require.NoError(t, err)
	it := tpl.IndexTemplates[0].IndexTemplate
	require.Equal(t, []string{"trail-*"}, it.IndexPatterns)
	require.Equal(t, map[string]any{"index": map[string]any{"lifecycle": map[string]any{"name": "trail"}}}, it.Template.Settings)
	props := it.Template.Mappings["properties"].(map[string]any)
	kw := map[string]any{"type": "keyword"}
	require.Equal(t, map[string]any{"type": "long"}, props["seq"])
	require.Equal(t, kw, props["prevHash"])
	require.Equal(t, kw, props["hash"])
	ev := props["event"].(map[string]any)["properties"].(map[string]any)
	for _, field := range []string{"id", "kind", "actor", "resource", "action", "outcome", "subject", "correlationId", "eventDigest"} {
		require.Equal(t, kw, ev[field], field)
	}
	require.Equal(t, map[string]any{"type": "date"}, ev["time"])
	require.Equal(t, []any{map[string]any{"strings_as_keywords": map[string]any{
		"match_mapping_type": "string", "mapping": kw}}}, it.Template.Mappings["dynamic_templates"], "attributes are keywords too")

	got, err := c.IndexGet("trail-2026.11.28").Do(ctx)
	require.NoError(t, err)
	require.Equal(t, "trail", got["trail-2026.11.28"].Settings["index"].(map[string]any)["lifecycle"].(map[string]any)["name"])

	// The default retention is 400 days.
	f2 := newFixture(t)
	require.NoError(t, f2.open(t).Close())
	pol, err = f2.client(t).XPackIlmGetLifecycle().Policy(es.DefaultPrefix).Do(ctx)
	require.NoError(t, err)
	require.Equal(t, "400d", pol[es.DefaultPrefix].Policy["phases"].(map[string]any)["delete"].(map[string]any)["min_age"])
}

func TestRejectedItemsAreRetried(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.open(t)
	f.srv.RejectBulkItems(3, 429)
	var want []audit.Event
	for i := range 10 {
		want = append(want, audittest.Event(t, i))
	}
	require.NoError(t, s.Write(ctx, want...))
	require.NoError(t, s.Close())
	require.Equal(t, want, events(f.read(t, es.DefaultPrefix)))
	st := f.srv.Stats()
	require.Equal(t, 3, st.RejectedItems)
	require.Equal(t, 13, st.BulkItems)
	require.Equal(t, 2, st.BulkRequests)
	require.Equal(t, 0.0, counter(t, f.reg, "aether_audit_spilled_events_total"))
	require.Equal(t, 10.0, counter(t, f.reg, "aether_audit_events_written_total"))

	// A failed request is retried by the BulkProcessor's backoff.
	s = f.open(t)
	before := f.srv.Stats().Requests
	f.srv.FailRequests(2, 502)
	require.NoError(t, s.Write(ctx, audittest.Event(t, 100)))
	require.Equal(t, before+3, f.srv.Stats().Requests, "two failed, one retry went through")
	require.NoError(t, s.Close())
	require.Equal(t, 0.0, counter(t, f.reg, "aether_audit_spilled_events_total"))
	require.Equal(t, 1.0, counter(t, f.reg, "aether_audit_events_written_total"))
	require.Equal(t, 3, f.srv.Stats().BulkRequests, "two before, one for this event: the failed ones were refused before the bulk handler")

	// Rejections beyond the retries spill, and are replayed.
	s = f.open(t)
	f.srv.RejectBulkItems(3*3, 503) // three events, three attempts each
	require.NoError(t, s.Write(ctx, audittest.Event(t, 10), audittest.Event(t, 11), audittest.Event(t, 12)))
	require.Eventually(t, func() bool { return gauge(t, f.reg, "aether_audit_backlog_events") == 0 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, s.Close())
	require.Equal(t, 3.0, counter(t, f.reg, "aether_audit_spilled_events_total"), "all three, after three attempts")
	require.Equal(t, 3.0, counter(t, f.reg, "aether_audit_replayed_events_total"))
	got := f.read(t, es.DefaultPrefix)
	require.Len(t, got, 14)
	for i, x := range got {
		require.Equal(t, uint64(i+1), x.rec.Seq)
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	return value(t, reg, name, "")
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	return value(t, reg, name, "")
}

// value reads a metric from reg; reason selects a label of the errors
// counter.
func value(t *testing.T, reg *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if reason != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != reason) {
				continue
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s{%s} not found", name, reason)
	return 0
}

func TestOutage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.open(t, es.BatchSize(20))

	var (
		mu      sync.Mutex
		written []audit.Event
	)
	stop := make(chan struct{})
	writerDone := make(chan error)
	go func() {
		for i := 0; ; i += 2 {
			select {
			case <-stop:
				writerDone <- nil
				return
			default:
			}
			batch := []audit.Event{audittest.Event(t, i), audittest.Event(t, i+1)}
			if err := s.Write(ctx, batch...); err != nil {
				writerDone <- err
				return
			}
			mu.Lock()
			written = append(written, batch...)
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(written)
	}
	require.Eventually(t, func() bool { return count() >= 40 }, 5*time.Second, time.Millisecond)
	back := f.srv.Outage(*outageFor)
	during := count()
	maxBacklog := 0.0
	var atEnd int
	for {
		select {
		case <-back:
			atEnd = count()
		case <-time.After(20 * time.Millisecond):
			maxBacklog = max(maxBacklog, gauge(t, f.reg, "aether_audit_backlog_events"))
			continue
		}
		break
	}
	require.Greater(t, atEnd-during, 100, "writes go on during the outage")
	require.Greater(t, maxBacklog, 50.0, "the backlog grows during the outage")
	time.Sleep(300 * time.Millisecond) // and some writes after it
	close(stop)
	require.NoError(t, <-writerDone)
	require.Eventually(t, func() bool { return gauge(t, f.reg, "aether_audit_backlog_events") == 0 },
		10*time.Second, 20*time.Millisecond, "the backlog drains once Elasticsearch is back")
	require.NoError(t, s.Close())

	got := f.read(t, es.DefaultPrefix)
	require.Len(t, got, len(written), "no event lost, none duplicated")
	for i, x := range got {
		require.Equal(t, uint64(i+1), x.rec.Seq, "no gap")
	}
	require.Equal(t, written, events(got))
	spilled := counter(t, f.reg, "aether_audit_spilled_events_total")
	require.Greater(t, spilled, 0.0)
	require.Equal(t, spilled, counter(t, f.reg, "aether_audit_replayed_events_total"))
	require.Equal(t, float64(len(written)), counter(t, f.reg, "aether_audit_events_written_total"))
	require.Greater(t, value(t, f.reg, "aether_audit_sink_errors_total", "unreachable"), 0.0)
	require.InDelta(t, float64(time.Now().Unix()), gauge(t, f.reg, "aether_audit_last_write_timestamp_seconds"), 15)
	fi, err := os.Stat(filepath.Join(f.dir, "aether-audit.spill.jsonl"))
	require.NoError(t, err)
	require.Equal(t, int64(0), fi.Size(), "the spill file is emptied once replayed")
	rep, err := es.Verify(ctx, es.DefaultPrefix, es.URLs(f.srv.URL()))
	require.NoError(t, err)
	require.Equal(t, len(written), rep.Records)
	t.Logf("outage %s: %d events written, %d during the outage, %.0f spilled, max backlog %.0f",
		*outageFor, len(written), atEnd-during, spilled, maxBacklog)
}

func TestRestartReplaysSpill(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.open(t)
	var want []audit.Event
	for i := range 3 {
		want = append(want, audittest.Event(t, i))
	}
	require.NoError(t, s.Write(ctx, want...))
	f.srv.Stop()
	for i := 3; i < 8; i++ {
		e := audittest.Event(t, i)
		want = append(want, e)
		require.NoError(t, s.Write(ctx, e), "writes succeed while Elasticsearch is down")
	}
	err := s.Close()
	var be *es.BacklogError
	require.ErrorAs(t, err, &be)
	require.Equal(t, 5, be.Events)
	require.Equal(t, filepath.Join(f.dir, "aether-audit.spill.jsonl"), be.SpillFile)
	require.Contains(t, err.Error(), "5 events not yet in Elasticsearch are kept in "+be.SpillFile)
	require.Contains(t, err.Error(), "connection refused")
	lines, err := os.ReadFile(be.SpillFile)
	require.NoError(t, err)
	require.Equal(t, 5, bytes.Count(lines, []byte("\n")))

	require.NoError(t, f.srv.Start())
	s = f.open(t)
	seq, _ := s.Head()
	require.Equal(t, uint64(8), seq, "the chain resumes after the spilled records")
	require.Eventually(t, func() bool { return gauge(t, f.reg, "aether_audit_backlog_events") == 0 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, 5.0, counter(t, f.reg, "aether_audit_replayed_events_total"))
	for i := 8; i < 10; i++ {
		e := audittest.Event(t, i)
		want = append(want, e)
		require.NoError(t, s.Write(ctx, e))
	}
	require.NoError(t, s.Close())
	got := f.read(t, es.DefaultPrefix)
	require.Equal(t, want, events(got))
	for i, x := range got {
		require.Equal(t, uint64(i+1), x.rec.Seq)
	}
	_, head := s.Head()
	rep, err := es.Verify(ctx, es.DefaultPrefix, es.URLs(f.srv.URL()))
	require.NoError(t, err)
	require.Equal(t, audit.Report{Records: 10, LastSeq: 10, LastHash: head, LastTime: rep.LastTime}, rep)
	require.False(t, rep.LastTime.IsZero())

	// Without a spill file, the chain resumes from Elasticsearch.
	s = f.open(t)
	seq, hash := s.Head()
	require.Equal(t, uint64(10), seq)
	require.Equal(t, head, hash)
	require.NoError(t, s.Close())
}

func TestUnauthorized(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const password = "pa55-w0rd-never-logged"
	f.srv.RequireBasicAuth("aether", password)

	_, err := es.Open(ctx, es.URLs(f.srv.URL()), es.SpillDir(f.dir), es.BasicAuth("aether", "Wr0ng-"+password))
	require.Error(t, err)
	require.Contains(t, err.Error(), "Error 401 (Unauthorized): unable to authenticate user [aether]")
	require.NotContains(t, err.Error(), password)

	s := f.open(t, es.BasicAuth("aether", password))
	require.NoError(t, s.Write(ctx, audittest.Event(t, 0)))
	f.srv.RequireBasicAuth("aether", "rotated")
	require.NoError(t, s.Write(ctx, audittest.Event(t, 1)), "spilled, not lost")
	err = s.Close()
	var be *es.BacklogError
	require.ErrorAs(t, err, &be)
	require.Equal(t, 1, be.Events)
	require.Contains(t, err.Error(), "401")
	require.NotContains(t, err.Error(), password)
	require.Greater(t, value(t, f.reg, "aether_audit_sink_errors_total", "unauthorized"), 0.0)
	require.Contains(t, f.logs.String(), "spilled them for replay")
	require.NotContains(t, f.logs.String(), password)

	f.srv.RequireBasicAuth("aether", password)
	s = f.open(t, es.BasicAuth("aether", password), es.FlushInterval(time.Millisecond))
	f.srv.Forbid(true)
	require.NoError(t, s.Write(ctx, audittest.Event(t, 2)))
	err = s.Close()
	require.ErrorAs(t, err, &be)
	// Event 1, spilled by the first sink, is replayed by this one in the
	// background: before the 403s began (then only event 2 is left) or
	// after (both are). Either way none is lost: see the end.
	require.Contains(t, []int{1, 2}, be.Events)
	require.Contains(t, err.Error(), "Error 403 (Forbidden): action [indices:data/write/bulk] is unauthorized for user [aether]")
	require.Greater(t, value(t, f.reg, "aether_audit_sink_errors_total", "forbidden"), 0.0)

	f.srv.Forbid(false)
	s = f.open(t, es.BasicAuth("aether", password))
	require.NoError(t, s.Close())
	f.srv.ClearFaults()
	require.Equal(t, []audit.Event{audittest.Event(t, 0), audittest.Event(t, 1), audittest.Event(t, 2)}, events(f.read(t, es.DefaultPrefix)))
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	_, err := es.Open(ctx, es.URLs("http://user:secret@127.0.0.1:9200"))
	require.ErrorContains(t, err, "carries credentials")
	require.NotContains(t, err.Error(), "secret")
	_, err = es.Open(ctx, es.IndexPrefix("Bad Prefix"))
	require.ErrorContains(t, err, "index prefix")
	_, err = es.Open(ctx, es.Client(nil))
	require.Error(t, err)

	f := newFixture(t)
	s := f.open(t)
	_, err = es.Open(ctx, es.URLs(f.srv.URL()), es.SpillDir(f.dir))
	require.ErrorIs(t, err, audit.ErrInUse, "one sink per spill file")
	require.NoError(t, s.Close())
	f.srv.Stop()
	_, err = es.Open(ctx, es.URLs(f.srv.URL()), es.SpillDir(f.dir))
	require.ErrorContains(t, err, "connection refused")
}

func TestQueueFullSpills(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.srv.SetLatency(200 * time.Millisecond)
	s := f.open(t, es.QueueSize(5), es.FlushInterval(time.Millisecond))
	var want []audit.Event
	for i := range 30 {
		e := audittest.Event(t, i)
		want = append(want, e)
		require.NoError(t, s.Write(ctx, e))
	}
	require.Greater(t, counter(t, f.reg, "aether_audit_spilled_events_total"), 0.0)
	require.Equal(t, 1.0, value(t, f.reg, "aether_audit_sink_errors_total", "queue_full"))
	require.NoError(t, s.Close())
	require.Equal(t, want, events(f.read(t, es.DefaultPrefix)))
	require.Equal(t, counter(t, f.reg, "aether_audit_spilled_events_total"), counter(t, f.reg, "aether_audit_replayed_events_total"))
}

// TestCrashLeftovers opens a sink on a spill file a crashed process left:
// complete records and a line cut short.
func TestCrashLeftovers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var buf bytes.Buffer
	hash := audit.GenesisHash
	for i := range 3 {
		r, err := audit.NewRecord(uint64(i+1), hash, audittest.Event(t, i))
		require.NoError(t, err)
		line, err := json.Marshal(r)
		require.NoError(t, err)
		buf.Write(line)
		buf.WriteByte('\n')
		hash = r.Hash
	}
	buf.WriteString(`{"seq":4,"prevHash":"`)
	spill := filepath.Join(f.dir, "aether-audit.spill.jsonl")
	require.NoError(t, os.WriteFile(spill, buf.Bytes(), 0o600))

	s := f.open(t)
	seq, head := s.Head()
	require.Equal(t, uint64(3), seq)
	require.Equal(t, hash, head)
	require.NoError(t, s.Write(ctx, audittest.Event(t, 3)))
	require.NoError(t, s.Close())
	got := f.read(t, es.DefaultPrefix)
	require.Equal(t, []audit.Event{audittest.Event(t, 0), audittest.Event(t, 1), audittest.Event(t, 2), audittest.Event(t, 3)}, events(got))
	fi, err := os.Stat(spill)
	require.NoError(t, err)
	require.Equal(t, int64(0), fi.Size())

	// A spill file whose record was altered is refused, not replayed.
	require.NoError(t, os.WriteFile(spill, bytes.Replace(buf.Bytes(), []byte(`\"quoted\"`), []byte(`\"QUOTED\"`), 1), 0o600))
	_, err = es.Open(ctx, es.URLs(f.srv.URL()), es.SpillDir(f.dir))
	require.ErrorContains(t, err, "record seq 1: content does not match the record's hash")
}

// BenchmarkWrite measures acknowledged writes of one event from parallel
// writers against the in-process fake.
func BenchmarkWrite(b *testing.B) {
	srv := esfake.New()
	defer srv.Close()
	s, err := es.Open(context.Background(), es.URLs(srv.URL()), es.SpillDir(b.TempDir()),
		es.Logger(slog.New(slog.NewTextHandler(&syncBuffer{}, nil))))
	require.NoError(b, err)
	e := audittest.Event(b, 1)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Write(context.Background(), e); err != nil {
				b.Error(err)
			}
		}
	})
	b.StopTimer()
	require.NoError(b, s.Close())
}

// TestRandomRejections has a third of all bulk items rejected: items that
// fail every retry are spilled and replayed, and the trail still arrives
// whole, in order, and verifies.
func TestRandomRejections(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.open(t, es.BatchSize(25))
	f.srv.RejectBulkFraction(1.0/3, 429, 42)
	const writers, perWriter = 4, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if err := s.Write(ctx, audittest.Event(t, w*perWriter+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	require.Eventually(t, func() bool { return gauge(t, f.reg, "aether_audit_backlog_events") == 0 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, s.Close())
	f.srv.ClearFaults()
	got := f.read(t, es.DefaultPrefix)
	require.Len(t, got, writers*perWriter)
	seen := map[string]bool{}
	for i, x := range got {
		require.Equal(t, uint64(i+1), x.rec.Seq)
		seen[x.id] = true
	}
	require.Len(t, seen, writers*perWriter)
	require.Greater(t, f.srv.Stats().RejectedItems, 100)
	require.Equal(t, counter(t, f.reg, "aether_audit_spilled_events_total"), counter(t, f.reg, "aether_audit_replayed_events_total"))
	rep, err := es.Verify(ctx, es.DefaultPrefix, es.URLs(f.srv.URL()))
	require.NoError(t, err)
	require.Equal(t, writers*perWriter, rep.Records)
	t.Logf("%d items rejected, %.0f events spilled and replayed", f.srv.Stats().RejectedItems, counter(t, f.reg, "aether_audit_spilled_events_total"))
}
