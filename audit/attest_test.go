package audit_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/audit"
)

func attest(t *testing.T, group, topic string, part int32, first, last int64, outcomes map[string]int64) audit.Event {
	t.Helper()
	var n int64
	for _, c := range outcomes {
		n += c
	}
	d := audit.NewRecordDigest()
	for off := first; off <= last; off++ {
		d.Add(off, "k", []byte("v"))
	}
	e, err := audit.New(audit.Attestation{Actor: "processor:" + group, Group: group, Topic: topic, Partition: part,
		FirstOffset: first, LastOffset: last, Count: n, Digest: d.Sum(), Outcomes: outcomes}.Event())
	require.NoError(t, err)
	return e
}

func TestAttestationEventRoundTrip(t *testing.T) {
	a := audit.Attestation{Actor: "processor:sessionizer", Group: "sessionizer", Topic: "user_events_raw", Partition: 3,
		FirstOffset: 100, LastOffset: 199, Count: 100, Digest: hex.EncodeToString(make([]byte, 32)),
		Outcomes: map[string]int64{"applied": 97, "duplicate": 1, "dead_lettered": 2, "replayed": 0}}
	e, err := audit.New(a.Event())
	require.NoError(t, err)
	require.Equal(t, audit.KindKafkaMessage, e.Kind)
	require.Equal(t, "attest", e.Action)
	require.Equal(t, "processor:sessionizer", e.Actor)
	require.Equal(t, "user_events_raw/3", e.Resource)
	require.Equal(t, "user_events_raw/3/100-199", e.CorrelationID)
	require.Equal(t, "ok", e.Outcome)
	require.Equal(t, map[string]string{"group": "sessionizer", "firstOffset": "100", "lastOffset": "199", "count": "100",
		"digest": a.Digest, "applied": "97", "duplicate": "1", "dead_lettered": "2", "replayed": "0"}, e.Attributes)
	got, err := audit.ParseAttestation(e)
	require.NoError(t, err)
	require.Equal(t, a, got)

	m, err := audit.New(audit.MessageEvent("processor:p", "p", "in", 2, 41, "duplicate"))
	require.NoError(t, err)
	require.Equal(t, "in/2/41", m.CorrelationID)
	require.Equal(t, "process", m.Action)
	got, err = audit.ParseAttestation(m)
	require.NoError(t, err)
	require.Equal(t, audit.Attestation{Actor: "processor:p", Group: "p", Topic: "in", Partition: 2, FirstOffset: 41, LastOffset: 41,
		Count: 1, Outcomes: map[string]int64{"duplicate": 1}}, got)

	_, err = audit.ParseAttestation(audit.Event{Kind: audit.KindJobEvent, Action: "start"})
	require.ErrorIs(t, err, audit.ErrNotAttestation)

	broken := func(mut func(e *audit.Event)) error {
		c := e
		c.Attributes = map[string]string{}
		for k, v := range e.Attributes {
			c.Attributes[k] = v
		}
		mut(&c)
		_, err := audit.ParseAttestation(c)
		return err
	}
	require.ErrorContains(t, broken(func(e *audit.Event) { e.Attributes["applied"] = "96" }), "outcome counts sum to 99, count is 100")
	require.ErrorContains(t, broken(func(e *audit.Event) { e.Attributes["count"] = "101" }), "count 101 does not fit offsets 100-199")
	require.ErrorContains(t, broken(func(e *audit.Event) { e.Attributes["lastOffset"] = "99" }), "lastOffset 99 is before firstOffset 100")
	require.ErrorContains(t, broken(func(e *audit.Event) { e.Attributes["digest"] = "abc" }), `digest "abc" is not a hex SHA-256`)
	require.ErrorContains(t, broken(func(e *audit.Event) { delete(e.Attributes, "group") }), "no group attribute")
	require.ErrorContains(t, broken(func(e *audit.Event) { e.Resource = "nopartition" }), `resource "nopartition" is not <topic>/<partition>`)
	require.ErrorContains(t, broken(func(e *audit.Event) { e.Attributes["applied"] = "x" }), `attribute applied = "x" is not a count or offset`)
}

func TestRecordDigestIsTheDocumentedEncoding(t *testing.T) {
	d := audit.NewRecordDigest()
	d.Add(7, "user_1", []byte(`{"a":1}`))
	d.Add(8, "", nil)
	want := sha256.Sum256([]byte("\x00\x00\x00\x00\x00\x00\x00\x07" + "\x00\x00\x00\x06user_1" + "\x00\x00\x00\x07{\"a\":1}" +
		"\x00\x00\x00\x00\x00\x00\x00\x08" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00"))
	require.Equal(t, hex.EncodeToString(want[:]), d.Sum())
	d.Reset()
	empty := sha256.Sum256(nil)
	require.Equal(t, hex.EncodeToString(empty[:]), d.Sum())
	v := []byte("value")
	require.Zero(t, testing.AllocsPerRun(100, func() { d.Add(9, "user_1", v) }), "Add allocates")
}

func TestCoverage(t *testing.T) {
	ok := func(n int64) map[string]int64 { return map[string]int64{"applied": n} }
	events := []audit.Event{
		// g/in/0: three contiguous runs, out of order.
		attest(t, "g", "in", 0, 10, 19, map[string]int64{"applied": 8, "dead_lettered": 1, "duplicate": 1}),
		attest(t, "g", "in", 0, 0, 9, ok(10)),
		attest(t, "g", "in", 0, 20, 29, ok(10)),
		// g/in/1: a gap 10-14 and one 30-39, an overlap 18-19 (a redelivery).
		attest(t, "g", "in", 1, 0, 9, ok(10)),
		attest(t, "g", "in", 1, 15, 19, ok(5)),
		attest(t, "g", "in", 1, 18, 29, map[string]int64{"replayed": 2, "applied": 10}),
		attest(t, "g", "in", 1, 40, 40, ok(1)),
		// g/in/2: per-message events, offsets 0-2 and 4; a run with one
		// compacted offset.
		mustNew(t, audit.MessageEvent("processor:g", "g", "in", 2, 1, "applied")),
		mustNew(t, audit.MessageEvent("processor:g", "g", "in", 2, 0, "applied")),
		mustNew(t, audit.MessageEvent("processor:g", "g", "in", 2, 2, "dead_lettered")),
		mustNew(t, audit.MessageEvent("processor:g", "g", "in", 2, 4, "applied")),
		attest(t, "g", "in", 2, 5, 9, ok(4)),
		// Another group on the same partition is checked apart.
		attest(t, "h", "in", 0, 5, 9, ok(5)),
		// Ignored: not an attestation.
		mustNew(t, audit.Event{Kind: audit.KindJobEvent, Actor: "processor:g", Action: "start", Outcome: "ok"}),
		mustNew(t, audit.Event{Kind: audit.KindKafkaMessage, Actor: "processor:g", Action: "produce", Outcome: "ok"}),
	}
	invalid := attest(t, "g", "in", 3, 0, 9, ok(10))
	invalid.Attributes["count"] = "9"
	events = append(events, invalid)

	r := audit.Coverage(events)
	require.Equal(t, 13, r.Attestations)
	require.Len(t, r.Invalid, 1)
	require.ErrorContains(t, r.Invalid[0], "outcome counts sum to 10, count is 9")
	require.Equal(t, []audit.PartitionCoverage{
		{Group: "g", Topic: "in", Partition: 0, From: 0, To: 29, Attestations: 3, Records: 30,
			Outcomes: map[string]int64{"applied": 28, "dead_lettered": 1, "duplicate": 1}},
		{Group: "g", Topic: "in", Partition: 1, From: 0, To: 40, Attestations: 4, Records: 28,
			Outcomes: map[string]int64{"applied": 26, "replayed": 2},
			Gaps:     []audit.OffsetRange{{10, 14}, {30, 39}}, Overlaps: []audit.OffsetRange{{18, 19}}},
		{Group: "g", Topic: "in", Partition: 2, From: 0, To: 9, Attestations: 5, Records: 8,
			Outcomes: map[string]int64{"applied": 7, "dead_lettered": 1},
			Gaps:     []audit.OffsetRange{{3, 3}}, Unaccounted: 1},
		{Group: "h", Topic: "in", Partition: 0, From: 5, To: 9, Attestations: 1, Records: 5, Outcomes: map[string]int64{"applied": 5}},
	}, r.Partitions)

	p0, ok0 := r.Partition("g", "in", 0)
	require.True(t, ok0)
	require.True(t, p0.Covers(0, 29))
	require.False(t, p0.Covers(0, 30))
	p1, _ := r.Partition("g", "in", 1)
	require.True(t, p1.Covers(0, 9))
	require.True(t, p1.Covers(15, 29))
	require.False(t, p1.Covers(9, 15))
	h, _ := r.Partition("h", "in", 0)
	require.False(t, h.Covers(0, 9), "offsets 0-4 were never attested by h")
	_, found := r.Partition("g", "in", 7)
	require.False(t, found)

	err := r.Err()
	require.EqualError(t, err, "audit coverage: 3 gap(s), 1 invalid attestation(s): "+
		"group g in/1: offsets 10-14 not attested; group g in/1: offsets 30-39 not attested; group g in/2: offsets 3-3 not attested; "+
		r.Invalid[0].Error())
	require.NoError(t, audit.Coverage(events[:3]).Err())
}

func TestCoverageOfAFileTrail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := audit.OpenFile(path)
	require.NoError(t, err)
	var evs []audit.Event
	for i := int64(0); i < 5; i++ {
		evs = append(evs, attest(t, "g", "in", 0, i*100, i*100+99, map[string]int64{"applied": 100}))
	}
	evs = append(evs, mustNew(t, audit.Event{Kind: audit.KindJobEvent, Actor: "processor:g", Action: "stop", Outcome: "ok"}))
	require.NoError(t, s.Write(context.Background(), evs...))
	require.NoError(t, s.Close())
	r, err := audit.CoverageFile(path)
	require.NoError(t, err)
	require.NoError(t, r.Err())
	require.Equal(t, 5, r.Attestations)
	require.Equal(t, []audit.PartitionCoverage{{Group: "g", Topic: "in", Partition: 0, From: 0, To: 499, Attestations: 5,
		Records: 500, Outcomes: map[string]int64{"applied": 500}}}, r.Partitions)

	_, err = audit.CoverageFile(filepath.Join(t.TempDir(), "missing"))
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func mustNew(t *testing.T, e audit.Event) audit.Event {
	t.Helper()
	e, err := audit.New(e)
	require.NoError(t, err)
	return e
}

func TestCoverageOfSeveralTrails(t *testing.T) {
	dir := t.TempDir()
	c := audit.NewCoverageCheck()
	for i, runs := range [][2]int64{{0, 99}, {100, 149}} {
		path := filepath.Join(dir, fmt.Sprintf("trail-%d.jsonl", i))
		s, err := audit.OpenFile(path)
		require.NoError(t, err)
		require.NoError(t, s.Write(context.Background(), attest(t, "g", "in", 0, runs[0], runs[1], map[string]int64{"applied": runs[1] - runs[0] + 1})))
		require.NoError(t, s.Close())
		f, err := os.Open(path)
		require.NoError(t, err)
		require.NoError(t, c.AddTrail(f))
		f.Close()
	}
	r := c.Report()
	require.NoError(t, r.Err())
	p, _ := r.Partition("g", "in", 0)
	require.True(t, p.Covers(0, 149))
	require.Equal(t, int64(150), p.Records)
	require.ErrorContains(t, c.AddTrail(strings.NewReader("not json\n")), "audit: line 1: ")
}

func TestVerifyWithCoverage(t *testing.T) {
	t.Run("ChainHolds", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		s, err := audit.OpenFile(path)
		require.NoError(t, err)
		var evs []audit.Event
		for _, run := range [][2]int64{{0, 99}, {100, 199}, {300, 399}} {
			evs = append(evs, attest(t, "g", "in", 0, run[0], run[1], map[string]int64{"applied": 100}))
		}
		evs = append(evs, mustNew(t, audit.Event{Kind: audit.KindJobEvent, Actor: "processor:g", Action: "stop", Outcome: "ok"}))
		require.NoError(t, s.Write(context.Background(), evs...))
		require.NoError(t, s.Close())
		wantRep, err := audit.VerifyFile(path)
		require.NoError(t, err)
		wantCov, err := audit.CoverageFile(path)
		require.NoError(t, err)

		f, err := os.Open(path)
		require.NoError(t, err)
		defer f.Close()
		rep, cov, err := audit.VerifyWithCoverage(f)
		require.NoError(t, err)
		require.Equal(t, wantRep, rep)
		require.Equal(t, 4, rep.Records)
		require.Equal(t, wantCov, cov)
		require.Equal(t, 3, cov.Attestations)
		require.ErrorContains(t, cov.Err(), "offsets 200-299 not attested")
	})

	ls := lines(t, writeTrail(t, 5000))
	t.Run("ChainBrokenEarly", func(t *testing.T) {
		// The chain check stops at line 2, long before the end: no
		// coverage is reported.
		l := slicesClone(ls)
		l[1] = strings.Replace(l[1], `"actor":"key-`, `"actor":"kez-`, 1)
		rep, cov, err := audit.VerifyWithCoverage(strings.NewReader(strings.Join(l, "")))
		requireProblem(t, err, audit.ProblemAltered, 2, 2)
		require.Equal(t, 1, rep.Records)
		require.Equal(t, audit.CoverageReport{}, cov)
	})
	t.Run("FirstLineNotARecord", func(t *testing.T) {
		// Line 1 is not a record: the chain check reads on to line 2.
		l := append([]string{"not a record\n"}, ls...)
		_, cov, err := audit.VerifyWithCoverage(strings.NewReader(strings.Join(l, "")))
		requireProblem(t, err, audit.ProblemInserted, 1, 0)
		require.Equal(t, audit.CoverageReport{}, cov)
	})
	t.Run("ReadError", func(t *testing.T) {
		boom := errors.New("disk gone")
		r := io.MultiReader(strings.NewReader(strings.Join(ls[:100], "")), iotest.ErrReader(boom))
		rep, cov, err := audit.VerifyWithCoverage(r)
		require.ErrorIs(t, err, boom)
		var p *audit.Problem
		require.False(t, errors.As(err, &p))
		require.Equal(t, 100, rep.Records)
		require.Equal(t, audit.CoverageReport{}, cov)
	})
}
