package elasticsearch_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/audit/audittest"
	es "github.com/aetherai/aether/audit/elasticsearch"
)

// trail writes n events and returns the sink's head.
func trail(t *testing.T, f *fixture, n int) string {
	t.Helper()
	s := f.open(t)
	var evs []audit.Event
	for i := range n {
		evs = append(evs, audittest.Event(t, i))
	}
	require.NoError(t, s.Write(context.Background(), evs...))
	_, head := s.Head()
	require.NoError(t, s.Close())
	return head
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	const index = "aether-audit-2026.11.27"

	t.Run("Intact", func(t *testing.T) {
		f := newFixture(t)
		head := trail(t, f, 2500) // more than two search pages
		rep, err := es.Verify(ctx, es.DefaultPrefix, es.URLs(f.srv.URL()))
		require.NoError(t, err)
		require.Equal(t, audit.Report{Records: 2500, LastSeq: 2500, LastHash: head, LastTime: rep.LastTime}, rep)
		require.False(t, rep.LastTime.IsZero())
		rep, err = es.Verify(ctx, "empty", es.URLs(f.srv.URL()))
		require.NoError(t, err)
		require.Equal(t, audit.Report{LastHash: audit.GenesisHash}, rep)
	})

	for name, tc := range map[string]struct {
		tamper func(t *testing.T, f *fixture)
		id     string
		kind   audit.ProblemKind
		seq    uint64
		line   int
		msg    string
	}{
		"FieldChanged": {
			tamper: func(t *testing.T, f *fixture) {
				_, err := f.client(t).Update().Index(index).Id("evt-000004").
					Doc(map[string]any{"event": map[string]any{"outcome": "OK"}}).Do(ctx)
				require.NoError(t, err)
			},
			id: "evt-000004", kind: audit.ProblemAltered, seq: 5, line: 5,
			msg: index + "/_doc/evt-000004: record seq 5 (line 5): altered: content does not match the record's hash",
		},
		"Deleted": {
			tamper: func(t *testing.T, f *fixture) {
				_, err := f.client(t).Delete().Index(index).Id("evt-000004").Do(ctx)
				require.NoError(t, err)
			},
			id: "evt-000005", kind: audit.ProblemRemoved, seq: 6, line: 5,
			msg: index + "/_doc/evt-000005: record seq 6 (line 5): removed: record seq 5 is missing before it",
		},
		"SeqsSwapped": {
			tamper: func(t *testing.T, f *fixture) {
				c := f.client(t)
				_, err := c.Update().Index(index).Id("evt-000004").Doc(map[string]any{"seq": 6}).Do(ctx)
				require.NoError(t, err)
				_, err = c.Update().Index(index).Id("evt-000005").Doc(map[string]any{"seq": 5}).Do(ctx)
				require.NoError(t, err)
			},
			id: "evt-000005", kind: audit.ProblemAltered, seq: 5, line: 5,
			msg: index + "/_doc/evt-000005: record seq 5 (line 5): altered: content does not match the record's hash",
		},
		"Inserted": {
			tamper: func(t *testing.T, f *fixture) {
				src, ok := f.srv.Source(index, "evt-000001")
				require.True(t, ok)
				_, err := f.client(t).Index().Index("aether-audit-2026.11.28").Id("copy").BodyString(string(src)).Do(ctx)
				require.NoError(t, err)
			},
			id: "copy", kind: audit.ProblemInserted, seq: 2, line: 3,
			msg: "aether-audit-2026.11.28/_doc/copy: record seq 2 (line 3): inserted: record seq 3 was expected here; this seq came already",
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			trail(t, f, 10)
			tc.tamper(t, f)
			rep, err := es.Verify(ctx, es.DefaultPrefix, es.URLs(f.srv.URL()))
			var loc *es.Location
			require.ErrorAs(t, err, &loc, "%v", err)
			require.Equal(t, tc.id, loc.ID)
			var p *audit.Problem
			require.ErrorAs(t, err, &p)
			require.Equal(t, tc.kind, p.Kind)
			require.Equal(t, tc.seq, p.Seq)
			require.Equal(t, tc.line, p.Line)
			if tc.msg != "" {
				require.Equal(t, tc.msg, err.Error())
			}
			require.Equal(t, tc.line-1, rep.Records)
		})
	}

	t.Run("Unreachable", func(t *testing.T) {
		f := newFixture(t)
		f.srv.Stop()
		_, err := es.Verify(ctx, es.DefaultPrefix, es.URLs(f.srv.URL()))
		require.ErrorContains(t, err, "connection refused")
	})
}

func TestRedact(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	head := trail(t, f, 20)
	conn := es.URLs(f.srv.URL())
	n, err := es.Redact(ctx, es.DefaultPrefix, func(e audit.Event) bool { return e.Kind == audit.KindInference }, conn)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	rep, err := es.Verify(ctx, es.DefaultPrefix, conn)
	require.NoError(t, err)
	require.Equal(t, audit.Report{Records: 20, Redacted: 3, LastSeq: 20, LastHash: head, LastTime: rep.LastTime}, rep)
	require.False(t, rep.LastTime.IsZero(), "a redacted record keeps its time")

	got := f.read(t, es.DefaultPrefix)
	for i, x := range got {
		want := audittest.Event(t, i)
		if want.Kind != audit.KindInference {
			require.Equal(t, want, x.event)
			continue
		}
		digest, err := audit.Digest(want)
		require.NoError(t, err)
		require.Equal(t, audit.Event{ID: want.ID, Time: want.Time, Kind: want.Kind, Redacted: true, EventDigest: digest}, x.event)
	}
	n, err = es.Redact(ctx, es.DefaultPrefix, func(e audit.Event) bool { return e.Kind == audit.KindInference }, conn)
	require.NoError(t, err)
	require.Equal(t, 0, n, "already redacted")

	// A trail that does not verify is not touched.
	_, err = f.client(t).Delete().Index("aether-audit-2026.11.27").Id("evt-000001").Do(ctx)
	require.NoError(t, err)
	_, err = es.Redact(ctx, es.DefaultPrefix, func(audit.Event) bool { return true }, conn)
	require.ErrorContains(t, err, "does not verify")
	rep2, err := es.Verify(ctx, es.DefaultPrefix, conn)
	require.Error(t, err)
	require.Equal(t, 1, rep2.Records)
}

// A check given to VerifyWith sees the trail in the one read that Verify
// makes: here the chain and the attestations' coverage together.
func TestVerifyWithReadsTheTrailOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.open(t)
	var evs []audit.Event
	for i := range 2500 {
		evs = append(evs, audittest.Event(t, i))
	}
	for _, run := range [][2]int64{{0, 99}, {100, 199}, {300, 399}} {
		e, err := audit.New(audit.Attestation{Actor: "processor:g", Group: "g", Topic: "in", Partition: 0,
			FirstOffset: run[0], LastOffset: run[1], Count: 100, Outcomes: map[string]int64{"applied": 100},
			Digest: strings.Repeat("ab", 32)}.Event())
		require.NoError(t, err)
		evs = append(evs, e)
	}
	require.NoError(t, s.Write(ctx, evs...))
	_, head := s.Head()
	require.NoError(t, s.Close())

	var cov audit.CoverageReport
	check := func(r io.Reader) (rep audit.Report, err error) {
		rep, cov, err = audit.VerifyWithCoverage(r)
		return rep, err
	}
	before := f.srv.Stats().Searches
	rep, err := es.VerifyWith(ctx, es.DefaultPrefix, check, es.URLs(f.srv.URL()))
	require.NoError(t, err)
	require.Equal(t, 3, f.srv.Stats().Searches-before, "2503 records are three search pages, read once")
	require.Equal(t, 2503, rep.Records)
	require.Equal(t, head, rep.LastHash)
	require.Equal(t, 3, cov.Attestations)
	require.ErrorContains(t, cov.Err(), "offsets 200-299 not attested")

	// A broken chain is still named by its document.
	_, err = f.client(t).Update().Index("aether-audit-2026.11.27").Id("evt-000004").
		Doc(map[string]any{"event": map[string]any{"outcome": "OK"}}).Do(ctx)
	require.NoError(t, err)
	before = f.srv.Stats().Searches
	rep, err = es.VerifyWith(ctx, es.DefaultPrefix, check, es.URLs(f.srv.URL()))
	var loc *es.Location
	require.ErrorAs(t, err, &loc)
	require.Equal(t, "aether-audit-2026.11.27/_doc/evt-000004: record seq 5 (line 5): altered: content does not match the record's hash", err.Error())
	require.Equal(t, 4, rep.Records)
	require.Equal(t, 1, f.srv.Stats().Searches-before, "the read stops with the chain check")

	// A check that reports a problem only after reading far past it gets
	// the problem back without a document it cannot name.
	s = f.open(t)
	evs = nil
	for i := 2500; i < 4200; i++ {
		evs = append(evs, audittest.Event(t, i))
	}
	require.NoError(t, s.Write(ctx, evs...))
	require.NoError(t, s.Close())
	_, err = es.VerifyWith(ctx, es.DefaultPrefix, func(r io.Reader) (audit.Report, error) {
		_, _ = io.Copy(io.Discard, r)
		return audit.Report{}, &audit.Problem{Kind: audit.ProblemAltered, Line: 1, Seq: 1, Detail: "late"}
	}, es.URLs(f.srv.URL()))
	require.False(t, errors.As(err, &loc), "%v", err)
	var p *audit.Problem
	require.ErrorAs(t, err, &p)
	require.Equal(t, 1, p.Line)
}
