package elasticsearch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/olivere/elastic/v7"

	"github.com/aetherai/aether/audit"
)

// pageSize is how many records one search page holds.
const pageSize = 1000

// hitRef names a document: where a problem is.
type hitRef struct{ index, id string }

// Location is where Verify found a problem: the document that holds the
// record, next to the record-level *audit.Problem it wraps.
type Location struct {
	Index string
	ID    string
	Err   *audit.Problem
}

func (l *Location) Error() string { return l.Index + "/_doc/" + l.ID + ": " + l.Err.Error() }

func (l *Location) Unwrap() error { return l.Err }

func connConfig(opts []ConnOption) (config, error) {
	cfg := defaults()
	for _, o := range opts {
		if err := o.apply(&cfg); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// records calls fn with every record of <prefix>-* in seq order (ties by
// event id), paging with search_after, after a refresh.
func records(ctx context.Context, c *elastic.Client, prefix string, fn func(h *elastic.SearchHit) error) error {
	pattern := prefix + "-*"
	if _, err := c.Refresh(pattern).Do(ctx); err != nil {
		return fmt.Errorf("audit: elasticsearch: %w", err)
	}
	var after []any
	for {
		svc := c.Search(pattern).SortBy(elastic.NewFieldSort("seq").Asc(), elastic.NewFieldSort("event.id").Asc()).
			Size(pageSize).TrackTotalHits(false)
		if after != nil {
			svc = svc.SearchAfter(after...)
		}
		res, err := svc.Do(ctx)
		if err != nil {
			return fmt.Errorf("audit: elasticsearch: reading %s: %w", pattern, err)
		}
		for _, h := range res.Hits.Hits {
			if err := fn(h); err != nil {
				return err
			}
		}
		if len(res.Hits.Hits) < pageSize {
			return nil
		}
		after = res.Hits.Hits[len(res.Hits.Hits)-1].Sort
	}
}

// Verify reads every record of the trail <prefix>-* in seq order and runs
// audit.Verify's checks on them, as if they were the lines of a file
// trail: the first altered, removed, inserted or reordered record is
// returned as a *Location wrapping the *audit.Problem (Line is the
// record's position in seq order). Redacted records verify by the digest
// they keep.
func Verify(ctx context.Context, prefix string, opts ...ConnOption) (audit.Report, error) {
	return VerifyWith(ctx, prefix, audit.Verify, opts...)
}

// VerifyWith is Verify with check in place of audit.Verify: check reads
// the records of <prefix>-* in seq order as the lines of a file trail, in
// the one read of the trail, so that it can run further checks on the way
// (audit.VerifyWithCoverage). A *audit.Problem that check returns comes
// back as a *Location when check, like audit.Verify, read at most a few
// thousand records past it; otherwise wrapped as it is.
func VerifyWith(ctx context.Context, prefix string, check func(io.Reader) (audit.Report, error), opts ...ConnOption) (audit.Report, error) {
	c, err := connect(opts)
	if err != nil {
		return audit.Report{}, err
	}
	// audit.Verify looks ahead at most 1024 records; keep where the last
	// few thousand came from to name the document of a problem.
	const keep = 4096
	refs := make([]hitRef, keep)
	pr, pw := io.Pipe()
	produced := make(chan struct{})
	line := 0 // records produced; read after produced is closed
	go func() {
		defer close(produced)
		bw := bufio.NewWriterSize(pw, 64<<10)
		err := records(ctx, c, prefix, func(h *elastic.SearchHit) error {
			line++
			refs[line%keep] = hitRef{h.Index, h.Id}
			if _, err := bw.Write(h.Source); err != nil {
				return err
			}
			return bw.WriteByte('\n')
		})
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	}()
	rep, err := check(pr)
	pr.CloseWithError(errors.New("verify stopped")) // stops the producer when check returned early
	<-produced
	var p *audit.Problem
	if errors.As(err, &p) && p.Line > line-keep && p.Line <= line {
		// The producer got at most Verify's lookahead and a buffer's
		// worth of records past p.Line, well within keep.
		ref := refs[p.Line%keep]
		return rep, &Location{Index: ref.index, ID: ref.id, Err: p}
	}
	if err != nil {
		return rep, fmt.Errorf("audit: elasticsearch: %w", err)
	}
	return rep, nil
}

// Redact replaces the event of every record of <prefix>-* that is not
// redacted and for which match returns true by its redacted form (as
// audit.Redact does for a file trail) and returns how many it redacted.
// The trail is verified first and not touched if it does not verify.
// Run it when no sink replays a spill file into the trail: a replayed
// record would bring the original event back.
func Redact(ctx context.Context, prefix string, match func(audit.Event) bool, opts ...ConnOption) (int, error) {
	if _, err := Verify(ctx, prefix, opts...); err != nil {
		return 0, fmt.Errorf("audit: elasticsearch: not redacting %s-*, it does not verify: %w", prefix, err)
	}
	c, err := connect(opts)
	if err != nil {
		return 0, err
	}
	n := 0
	bulk := c.Bulk()
	flush := func() error {
		if bulk.NumberOfActions() == 0 {
			return nil
		}
		res, err := bulk.Refresh("wait_for").Do(ctx)
		if err != nil {
			return fmt.Errorf("audit: elasticsearch: redacting: %w", err)
		}
		if f := res.Failed(); len(f) > 0 {
			reason := ""
			if f[0].Error != nil {
				reason = f[0].Error.Type + ": " + f[0].Error.Reason
			}
			return fmt.Errorf("audit: elasticsearch: redacting %s/_doc/%s failed (%d of %d): %s", f[0].Index, f[0].Id, len(f), len(res.Items), reason)
		}
		bulk = c.Bulk()
		return nil
	}
	err = records(ctx, c, prefix, func(h *elastic.SearchHit) error {
		var r audit.Record
		if err := json.Unmarshal(h.Source, &r); err != nil {
			return fmt.Errorf("audit: elasticsearch: %s/_doc/%s: %w", h.Index, h.Id, err)
		}
		e, err := r.Check()
		if err != nil {
			return fmt.Errorf("audit: elasticsearch: %s/_doc/%s: %w", h.Index, h.Id, err)
		}
		if e.Redacted || !match(e) {
			return nil
		}
		red, err := r.Redacted()
		if err != nil {
			return err
		}
		doc, err := json.Marshal(red)
		if err != nil {
			return err
		}
		bulk.Add(elastic.NewBulkIndexRequest().Index(h.Index).Id(h.Id).Doc(json.RawMessage(doc)))
		n++
		if bulk.NumberOfActions() >= pageSize {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Export writes every record of <prefix>-* to w in seq order, one JSON line
// each: the file trail's format, so that audit.Verify, audit.CoverageOf or
// an auditor's own tools read an Elasticsearch trail like a file.
func Export(ctx context.Context, prefix string, w io.Writer, opts ...ConnOption) (n int, err error) {
	c, err := connect(opts)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	err = records(ctx, c, prefix, func(h *elastic.SearchHit) error {
		n++
		if _, err := bw.Write(h.Source); err != nil {
			return err
		}
		return bw.WriteByte('\n')
	})
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// connect is a client for Verify, Redact and Export, reaching
// Elasticsearch as opts say.
func connect(opts []ConnOption) (*elastic.Client, error) {
	cfg, err := connConfig(opts)
	if err != nil {
		return nil, err
	}
	return cfg.newClient(false)
}
