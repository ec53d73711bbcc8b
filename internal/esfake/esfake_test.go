package esfake_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/olivere/elastic/v7"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/internal/esfake"
)

func newClient(t *testing.T, s *esfake.Server, opts ...elastic.ClientOptionFunc) *elastic.Client {
	t.Helper()
	c, err := elastic.NewClient(append([]elastic.ClientOptionFunc{elastic.SetURL(s.URL()),
		elastic.SetSniff(false), elastic.SetHealthcheck(false)}, opts...)...)
	require.NoError(t, err)
	return c
}

type item struct {
	Seq  int    `json:"seq"`
	User string `json:"user"`
	Kind string `json:"kind"`
	Time string `json:"time"`
}

func seed(t *testing.T, c *elastic.Client, index string, n int) {
	t.Helper()
	bulk := c.Bulk()
	for i := 1; i <= n; i++ {
		bulk.Add(elastic.NewBulkIndexRequest().Index(index).Id(fmt.Sprintf("d%02d", i)).Doc(item{
			Seq: i, User: fmt.Sprintf("u%d", i%3), Kind: []string{"click", "view"}[i%2],
			Time: time.Date(2026, 11, 27, 0, i, 0, 0, time.UTC).Format(time.RFC3339)}))
	}
	res, err := bulk.Refresh("true").Do(context.Background())
	require.NoError(t, err)
	require.False(t, res.Errors)
}

func ids(t *testing.T, res *elastic.SearchResult) []string {
	t.Helper()
	var out []string
	for _, h := range res.Hits.Hits {
		out = append(out, h.Id)
	}
	return out
}

func TestInfoAndIndices(t *testing.T) {
	s := esfake.New()
	defer s.Close()
	c := newClient(t, s)
	ctx := context.Background()

	v, err := c.ElasticsearchVersion(s.URL())
	require.NoError(t, err)
	require.Equal(t, esfake.Version, v)

	ok, err := c.IndexExists("logs-1").Do(ctx)
	require.NoError(t, err)
	require.False(t, ok)
	cr, err := c.CreateIndex("logs-1").Do(ctx)
	require.NoError(t, err)
	require.True(t, cr.Acknowledged)
	ok, err = c.IndexExists("logs-1").Do(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = c.CreateIndex("logs-1").Do(ctx)
	requireESError(t, err, 400, "resource_already_exists_exception")
	_, err = c.CreateIndex("Bad").Do(ctx)
	requireESError(t, err, 400, "invalid_index_name_exception")

	_, err = c.DeleteIndex("logs-1").Do(ctx)
	require.NoError(t, err)
	_, err = c.DeleteIndex("logs-1").Do(ctx)
	requireESError(t, err, 404, "index_not_found_exception")
	_, err = c.Search("missing").Do(ctx)
	requireESError(t, err, 404, "index_not_found_exception")
	res, err := c.Search("missing-*").Do(ctx)
	require.NoError(t, err, "a wildcard matching nothing is an empty result")
	require.Equal(t, int64(0), res.TotalHits())
}

func requireESError(t *testing.T, err error, status int, typ string) {
	t.Helper()
	require.Error(t, err)
	e, ok := err.(*elastic.Error)
	require.True(t, ok, "%T %v", err, err)
	require.Equal(t, status, e.Status)
	require.NotNil(t, e.Details)
	require.Equal(t, typ, e.Details.Type, e.Details.Reason)
}

func TestDocumentsAndRefresh(t *testing.T) {
	s := esfake.New()
	defer s.Close()
	c := newClient(t, s)
	ctx := context.Background()

	r, err := c.Index().Index("docs").Id("a").BodyJson(item{Seq: 1, User: "u1"}).Do(ctx)
	require.NoError(t, err)
	require.Equal(t, "created", r.Result)
	r, err = c.Index().Index("docs").Id("a").BodyJson(item{Seq: 2, User: "u1"}).Do(ctx)
	require.NoError(t, err)
	require.Equal(t, "updated", r.Result)
	require.Equal(t, int64(2), r.Version)

	g, err := c.Get().Index("docs").Id("a").Do(ctx)
	require.NoError(t, err, "GET by id is real time")
	require.JSONEq(t, `{"seq":2,"user":"u1","kind":"","time":""}`, string(g.Source))
	_, err = c.Get().Index("docs").Id("zz").Do(ctx)
	require.True(t, elastic.IsNotFound(err))

	n, err := c.Count("docs").Do(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(0), n, "not searchable before a refresh")
	_, err = c.Refresh("docs").Do(ctx)
	require.NoError(t, err)
	n, err = c.Count("docs").Do(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)

	_, err = c.Index().Index("docs").Id("b").BodyJson(item{Seq: 3}).Refresh("wait_for").Do(ctx)
	require.NoError(t, err)
	n, err = c.Count("docs").Do(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), n, "refresh=wait_for makes it searchable")

	u, err := c.Update().Index("docs").Id("a").Doc(map[string]any{"user": "u9"}).Refresh("true").Do(ctx)
	require.NoError(t, err)
	require.Equal(t, "updated", u.Result)
	g, err = c.Get().Index("docs").Id("a").Do(ctx)
	require.NoError(t, err)
	require.JSONEq(t, `{"seq":2,"user":"u9","kind":"","time":""}`, string(g.Source))
	u, err = c.Update().Index("docs").Id("a").Doc(map[string]any{"user": "u9"}).Do(ctx)
	require.NoError(t, err)
	require.Equal(t, "noop", u.Result)
	_, err = c.Update().Index("docs").Id("nope").Doc(map[string]any{"user": "x"}).Do(ctx)
	requireESError(t, err, 404, "document_missing_exception")

	_, err = c.Index().Index("docs").Id("a").OpType("create").BodyJson(item{}).Do(ctx)
	requireESError(t, err, 409, "version_conflict_engine_exception")

	d, err := c.Delete().Index("docs").Id("a").Refresh("true").Do(ctx)
	require.NoError(t, err)
	require.Equal(t, "deleted", d.Result)
	n, err = c.Count("docs").Do(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
}

func TestBulk(t *testing.T) {
	s := esfake.New()
	defer s.Close()
	c := newClient(t, s)
	ctx := context.Background()
	_, err := c.Index().Index("b").Id("old").BodyJson(item{Seq: 1}).Do(ctx)
	require.NoError(t, err)

	res, err := c.Bulk().
		Add(elastic.NewBulkIndexRequest().Index("b").Id("x").Doc(item{Seq: 2})).
		Add(elastic.NewBulkCreateRequest().Index("b").Id("old").Doc(item{Seq: 3})).
		Add(elastic.NewBulkUpdateRequest().Index("b").Id("x").Doc(map[string]any{"user": "ux"})).
		Add(elastic.NewBulkUpdateRequest().Index("b").Id("missing").Doc(map[string]any{"user": "m"})).
		Add(elastic.NewBulkDeleteRequest().Index("b").Id("old")).
		Add(elastic.NewBulkIndexRequest().Index("other").Id("y").Doc(item{Seq: 4})).
		Do(ctx)
	require.NoError(t, err)
	require.True(t, res.Errors)
	require.Len(t, res.Items, 6)
	var statuses []int
	for _, it := range res.Items {
		for _, r := range it {
			statuses = append(statuses, r.Status)
		}
	}
	require.Equal(t, []int{201, 409, 200, 404, 200, 201}, statuses)
	require.Equal(t, "version_conflict_engine_exception", res.Items[1]["create"].Error.Type)
	require.Equal(t, "document_missing_exception", res.Items[3]["update"].Error.Type)
	require.Len(t, res.Failed(), 2)
	require.Equal(t, []string{"b", "other"}, s.Indices(), "indices are created on first write")

	g, err := c.Get().Index("b").Id("x").Do(ctx)
	require.NoError(t, err)
	require.JSONEq(t, `{"seq":2,"user":"ux","kind":"","time":""}`, string(g.Source))

	// /{index}/_bulk with a default index.
	res, err = c.Bulk().Index("dflt").Add(elastic.NewBulkIndexRequest().Id("z").Doc(item{Seq: 5})).Refresh("true").Do(ctx)
	require.NoError(t, err)
	require.False(t, res.Errors)
	require.Equal(t, "dflt", res.Items[0]["index"].Index)
	st := s.Stats()
	require.Equal(t, 2, st.BulkRequests)
	require.Equal(t, 7, st.BulkItems)
}

func TestSearch(t *testing.T) {
	s := esfake.New()
	defer s.Close()
	c := newClient(t, s)
	ctx := context.Background()
	seed(t, c, "ev-2026.11.26", 5)
	bulk := c.Bulk()
	for i := 6; i <= 10; i++ {
		bulk.Add(elastic.NewBulkIndexRequest().Index("ev-2026.11.27").Id(fmt.Sprintf("d%02d", i)).Doc(item{
			Seq: i, User: fmt.Sprintf("u%d", i%3), Kind: []string{"click", "view"}[i%2],
			Time: time.Date(2026, 11, 27, 0, i, 0, 0, time.UTC).Format(time.RFC3339)}))
	}
	_, err := bulk.Refresh("true").Do(ctx)
	require.NoError(t, err)
	seed(t, c, "other", 3)

	search := func(idx string, q elastic.Query) []string {
		t.Helper()
		res, err := c.Search(idx).Query(q).Sort("seq", true).Size(100).Do(ctx)
		require.NoError(t, err)
		return ids(t, res)
	}
	require.Equal(t, []string{"d01", "d02", "d03", "d04", "d05", "d06", "d07", "d08", "d09", "d10"}, search("ev-*", elastic.NewMatchAllQuery()))
	require.Equal(t, []string{"d01", "d02", "d03", "d04", "d05", "d06", "d07", "d08", "d09", "d10"}, search("ev-2026.11.26,ev-2026.11.27", nil))
	require.Equal(t, []string{"d01", "d04", "d07", "d10"}, search("ev-*", elastic.NewTermQuery("user", "u1")))
	require.Equal(t, []string{"d03"}, search("ev-*", elastic.NewTermQuery("seq", 3)))
	require.Equal(t, []string{"d02", "d05", "d07"}, search("ev-*", elastic.NewTermsQuery("seq", 2, 5, 7)))
	require.Equal(t, []string{"d03", "d04", "d05"}, search("ev-*", elastic.NewRangeQuery("seq").Gte(3).Lte(5)))
	require.Equal(t, []string{"d04"}, search("ev-*", elastic.NewRangeQuery("seq").Gt(3).Lt(5)))
	require.Equal(t, []string{"d03", "d04", "d05"}, search("ev-*", elastic.NewRawStringQuery(`{"range":{"seq":{"gte":3,"lte":5}}}`)))
	require.Equal(t, []string{"d04"}, search("ev-*", elastic.NewRawStringQuery(`{"range":{"seq":{"gt":3,"lt":5}}}`)))
	require.Equal(t, []string{"d04", "d05"}, search("ev-*", elastic.NewRangeQuery("seq").From(3).To(5).IncludeLower(false)))
	require.Equal(t, []string{"d08", "d09", "d10"}, search("ev-*", elastic.NewRangeQuery("time").Gte("2026-11-27T00:08:00Z")))
	require.Equal(t, []string{"d01", "d07"}, search("ev-*", elastic.NewBoolQuery().
		Must(elastic.NewTermQuery("user", "u1")).
		Filter(elastic.NewTermQuery("kind", "view")).
		MustNot(elastic.NewTermQuery("seq", 3))))
	require.Equal(t, []string{"d02", "d09"}, search("ev-*", elastic.NewBoolQuery().
		Should(elastic.NewTermQuery("seq", 2), elastic.NewTermQuery("seq", 9))))
	require.Equal(t, []string{"d01", "d02", "d03"}, search("other", nil))

	// Descending sort, from and size, total.
	res, err := c.Search("ev-*").Sort("seq", false).From(2).Size(3).Do(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"d08", "d07", "d06"}, ids(t, res))
	require.Equal(t, int64(10), res.TotalHits())

	// search_after pages through everything in order.
	var got []string
	var after []any
	for {
		svc := c.Search("ev-*").SortBy(elastic.NewFieldSort("kind").Asc(), elastic.NewFieldSort("seq").Desc()).Size(4)
		if after != nil {
			svc = svc.SearchAfter(after...)
		}
		res, err := svc.Do(ctx)
		require.NoError(t, err)
		if len(res.Hits.Hits) == 0 {
			break
		}
		got = append(got, ids(t, res)...)
		after = res.Hits.Hits[len(res.Hits.Hits)-1].Sort
	}
	require.Equal(t, []string{"d10", "d08", "d06", "d04", "d02", "d09", "d07", "d05", "d03", "d01"}, got)

	_, err = c.Search("ev-*").Query(elastic.NewMatchPhrasePrefixQuery("user", "u")).Do(ctx)
	requireESError(t, err, 400, "parsing_exception")
	_, err = c.Search("ev-*").From(9999).Size(2).Do(ctx)
	requireESError(t, err, 400, "search_phase_execution_exception")

	st := s.Stats()
	require.Equal(t, 1, st.Queries["other"])
	require.Equal(t, 19, st.Queries["ev-2026.11.26"])
}

func TestDeleteByQuery(t *testing.T) {
	s := esfake.New()
	defer s.Close()
	c := newClient(t, s)
	ctx := context.Background()
	seed(t, c, "a-1", 6)
	seed(t, c, "a-2", 6)
	seed(t, c, "b-1", 6)
	res, err := c.DeleteByQuery("a-*").Query(elastic.NewTermQuery("user", "u1")).Refresh("true").Do(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(4), res.Total)
	require.Equal(t, int64(4), res.Deleted)
	n, err := c.Count("a-*").Do(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(8), n)
	n, err = c.Count("b-1").Query(elastic.NewTermQuery("user", "u1")).Do(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), n, "other indices untouched")
	_, err = c.DeleteByQuery("nope").Query(elastic.NewMatchAllQuery()).Do(ctx)
	requireESError(t, err, 404, "index_not_found_exception")
	require.Equal(t, 2, s.Stats().DeleteByQueries)
}

func TestTemplatesAndLifecycle(t *testing.T) {
	s := esfake.New()
	defer s.Close()
	c := newClient(t, s)
	ctx := context.Background()
	_, err := c.XPackIlmPutLifecycle().Policy("keep").BodyString(`{"policy":{"phases":{"delete":{"min_age":"30d","actions":{"delete":{}}}}}}`).Do(ctx)
	require.NoError(t, err)
	pol, err := c.XPackIlmGetLifecycle().Policy("keep").Do(ctx)
	require.NoError(t, err)
	require.Equal(t, "30d", pol["keep"].Policy["phases"].(map[string]any)["delete"].(map[string]any)["min_age"])
	_, err = c.XPackIlmGetLifecycle().Policy("nope").Do(ctx)
	requireESError(t, err, 404, "resource_not_found_exception")

	_, err = c.IndexPutIndexTemplate("t").BodyString(`{"index_patterns":["logs-*"],"priority":5,"template":{"settings":{"index":{"lifecycle":{"name":"keep"}}},"mappings":{"properties":{"seq":{"type":"long"},"time":{"type":"date"}}}}}`).Do(ctx)
	require.NoError(t, err)
	tpl, err := c.IndexGetIndexTemplate("t").Do(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"logs-*"}, tpl.IndexTemplates[0].IndexTemplate.IndexPatterns)
	_, err = c.IndexGetIndexTemplate("nope").Do(ctx)
	requireESError(t, err, 404, "resource_not_found_exception")

	// An index created by a write gets the template's settings and mappings.
	_, err = c.Index().Index("logs-1").Id("1").BodyString(`{"seq":1,"time":"2026-11-27T00:00:01Z"}`).Refresh("true").Do(ctx)
	require.NoError(t, err)
	got, err := c.IndexGet("logs-1").Do(ctx)
	require.NoError(t, err)
	require.Equal(t, "keep", got["logs-1"].Settings["index"].(map[string]any)["lifecycle"].(map[string]any)["name"])
	require.Equal(t, map[string]any{"type": "date"}, got["logs-1"].Mappings["properties"].(map[string]any)["time"])
	pol, err = c.XPackIlmGetLifecycle().Policy("keep").Do(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"logs-1"}, pol["keep"].InUseBy.Indices)

	// Dates sort as epoch milliseconds.
	res, err := c.Search("logs-1").Sort("time", true).Do(ctx)
	require.NoError(t, err)
	require.Equal(t, []any{json.Number("1795737601000")}, numbers(res.Hits.Hits[0].Sort))
}

func numbers(v []any) []any {
	out := make([]any, len(v))
	for i, x := range v {
		if f, ok := x.(float64); ok {
			x = json.Number(fmt.Sprintf("%.0f", f))
		}
		out[i] = x
	}
	return out
}

func TestFaults(t *testing.T) {
	s := esfake.New()
	defer s.Close()
	ctx := context.Background()

	t.Run("BulkItemRejections", func(t *testing.T) {
		c := newClient(t, s)
		s.RejectBulkItems(2, 429)
		bulk := c.Bulk()
		for i := range 4 {
			bulk.Add(elastic.NewBulkIndexRequest().Index("f").Id(fmt.Sprint(i)).Doc(item{Seq: i}))
		}
		res, err := bulk.Do(ctx)
		require.NoError(t, err)
		require.True(t, res.Errors)
		require.Equal(t, 429, res.Items[0]["index"].Status)
		require.Equal(t, "es_rejected_execution_exception", res.Items[1]["index"].Error.Type)
		require.Equal(t, 201, res.Items[2]["index"].Status)
		require.Equal(t, 2, s.Stats().RejectedItems)

		s.RejectBulkFraction(0.5, 503, 7)
		bulk = c.Bulk()
		for i := range 200 {
			bulk.Add(elastic.NewBulkIndexRequest().Index("f").Id(fmt.Sprint(i)).Doc(item{Seq: i}))
		}
		res, err = bulk.Do(ctx)
		require.NoError(t, err)
		require.InDelta(t, 100, len(res.Failed()), 30)
		require.Equal(t, 503, res.Failed()[0].Status)
		s.ClearFaults()
	})

	t.Run("Auth", func(t *testing.T) {
		s.RequireBasicAuth("aether", "s3cret")
		defer s.ClearFaults()
		_, err := newClient(t, s).Search("f").Do(ctx)
		requireESError(t, err, 401, "security_exception")
		_, err = newClient(t, s, elastic.SetBasicAuth("aether", "wrong")).Search("f").Do(ctx)
		requireESError(t, err, 401, "security_exception")
		require.Contains(t, err.Error(), "unable to authenticate user [aether]")
		require.NotContains(t, err.Error(), "wrong")
		ok := newClient(t, s, elastic.SetBasicAuth("aether", "s3cret"))
		_, err = ok.Search("f").Do(ctx)
		require.NoError(t, err)
		s.Forbid(true)
		_, err = ok.Search("f").Do(ctx)
		requireESError(t, err, 403, "security_exception")
	})

	t.Run("ServerErrorsAndLatency", func(t *testing.T) {
		c := newClient(t, s)
		s.FailRequests(2, 502)
		_, err := c.Search("f").Do(ctx)
		require.True(t, elastic.IsStatusCode(err, 502), "%v", err)
		_, err = c.Search("f").Do(ctx)
		require.True(t, elastic.IsStatusCode(err, 502))
		_, err = c.Search("f").Do(ctx)
		require.NoError(t, err)
		s.SetLatency(150 * time.Millisecond)
		start := time.Now()
		_, err = c.Search("f").Do(ctx)
		require.NoError(t, err)
		require.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)
		s.ClearFaults()
	})

	t.Run("Outage", func(t *testing.T) {
		c := newClient(t, s)
		for i := range 5 {
			_, err := c.Index().Index("out").Id(fmt.Sprint(i)).BodyJson(item{Seq: i}).Do(ctx)
			require.NoError(t, err)
		}
		before := s.URL()
		back := s.Outage(300 * time.Millisecond)
		_, err := http.Get(s.URL())
		require.Error(t, err, "connections are refused during an outage")
		_, err = c.Search("f").Do(ctx)
		require.Error(t, err)
		<-back
		require.Equal(t, before, s.URL())
		require.Eventually(t, func() bool {
			_, err := c.Search("f").Do(ctx)
			return err == nil
		}, 5*time.Second, 20*time.Millisecond, "the data survives the outage on the same address")
		n, err := c.Count("out").Do(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(0), n, "never refreshed")
		_, err = c.Refresh("out").Do(ctx)
		require.NoError(t, err)
		n, err = c.Count("out").Do(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(5), n)
	})

	t.Run("ConcurrentUse", func(t *testing.T) {
		c := newClient(t, s)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range 25 {
					_, err := c.Index().Index("conc").Id(fmt.Sprintf("%d-%d", w, i)).BodyJson(item{Seq: i}).Do(ctx)
					if err != nil {
						t.Error(err)
					}
					s.SetLatency(0)
				}
			})
		}
		wg.Wait()
		_, err := c.Refresh("conc").Do(ctx)
		require.NoError(t, err)
		n, err := c.Count("conc").Do(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(100), n)
	})
}

// A document deleted and indexed again under its id is one hit, not two.
func TestReindexAfterDeleteIsOneHit(t *testing.T) {
	s := esfake.New()
	defer s.Close()
	c := newClient(t, s)
	ctx := context.Background()
	_, err := c.Index().Index("docs").Id("a").BodyJson(item{Seq: 1}).Refresh("true").Do(ctx)
	require.NoError(t, err)
	_, err = c.Delete().Index("docs").Id("a").Refresh("true").Do(ctx)
	require.NoError(t, err)
	_, err = c.Index().Index("docs").Id("a").BodyJson(item{Seq: 2}).Refresh("true").Do(ctx)
	require.NoError(t, err)
	res, err := c.Search("docs").Do(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, ids(t, res))
	n, err := c.Count("docs").Do(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
}
