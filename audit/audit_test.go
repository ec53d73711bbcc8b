package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/audit/audittest"
)

func TestMemorySinkConformance(t *testing.T) {
	audittest.Conformance(t, func(t *testing.T) (audit.Sink, func() []audit.Event) {
		m := audit.NewMemory()
		return m, m.Events
	})
}

func TestFileSinkConformance(t *testing.T) {
	for name, opts := range map[string][]audit.FileOption{
		"SyncEveryWrite": {audit.SyncEveryWrite()},
		"SyncInterval":   {audit.SyncInterval(5 * time.Millisecond)},
	} {
		t.Run(name, func(t *testing.T) {
			audittest.Conformance(t, func(t *testing.T) (audit.Sink, func() []audit.Event) {
				path := filepath.Join(t.TempDir(), "audit.jsonl")
				s, err := audit.OpenFile(path, opts...)
				require.NoError(t, err)
				t.Cleanup(func() { s.Close() })
				return s, func() []audit.Event {
					rep, err := audit.VerifyFile(path)
					require.NoError(t, err)
					evs := readEvents(t, path)
					require.Len(t, evs, rep.Records)
					return evs
				}
			})
		})
	}
}

func readEvents(t *testing.T, path string) []audit.Event {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []audit.Event
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var r audit.Record
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		var e audit.Event
		require.NoError(t, json.Unmarshal(r.Event, &e))
		out = append(out, e)
	}
	return out
}

func TestValidation(t *testing.T) {
	_, err := audit.New(audit.Event{Kind: "login", Actor: "a", Action: "b", Outcome: "c"})
	require.ErrorIs(t, err, audit.ErrInvalidEvent)
	require.ErrorContains(t, err, `unknown kind "login"`)

	for _, key := range []string{"password", "Password", "dbPassword", "token", "X-Auth-Token", "access_token", "secret", "clientSecret", "Authorization", "api_key", "API-KEY", "apiKey"} {
		_, err := audit.New(audit.Event{Kind: audit.KindAPIRequest, Actor: "a", Action: "b", Outcome: "c", Attributes: map[string]string{key: "v"}})
		require.ErrorIs(t, err, audit.ErrInvalidEvent, key)
		require.ErrorContains(t, err, `attribute "`+key+`" looks like a secret`)
	}
	_, err = audit.New(audit.Event{Kind: audit.KindAPIRequest, Actor: "a", Action: "b", Outcome: "c", Attributes: map[string]string{"header": "Bearer abc"}})
	require.ErrorContains(t, err, "holds an HTTP credential")
	for _, key := range []string{"tokens", "tokenCount", "apiKeyId", "status", "path"} {
		_, err := audit.New(audit.Event{Kind: audit.KindInference, Actor: "a", Action: "b", Outcome: "c", Attributes: map[string]string{key: "1"}})
		require.NoError(t, err, key)
	}
	_, err = audit.New(audit.Event{Kind: audit.KindAPIRequest, Action: "b", Outcome: "c"})
	require.ErrorContains(t, err, "actor is empty")

	e, err := audit.New(audit.Event{Kind: audit.KindAdminAction, Actor: "admin", Action: "approve", Outcome: "ok",
		Time: time.Date(2026, 1, 1, 5, 0, 0, 0, time.FixedZone("X", 3600))})
	require.NoError(t, err)
	require.Len(t, e.ID, 32)
	require.Equal(t, time.UTC, e.Time.Location())
	b, err := json.Marshal(e)
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"`+e.ID+`","time":"2026-01-01T04:00:00Z","kind":"admin_action","actor":"admin","action":"approve","outcome":"ok"}`, string(b))
	e.Subject, e.CorrelationID = "u1", "t/0/1"
	b, _ = json.Marshal(e)
	require.Contains(t, string(b), `"subject":"u1","correlationId":"t/0/1"`)

	e.Time = e.Time.In(time.FixedZone("X", 3600))
	require.ErrorContains(t, e.Validate(), "is not UTC")
}

// writeTrail writes n events to a fresh trail and returns its path.
func writeTrail(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := audit.OpenFile(path, audit.SyncInterval(time.Second))
	require.NoError(t, err)
	var batch []audit.Event
	for i := range n {
		batch = append(batch, audittest.Event(t, i))
		if len(batch) == 100 || i == n-1 {
			require.NoError(t, s.Write(context.Background(), batch...))
			batch = nil
		}
	}
	require.NoError(t, s.Close())
	return path
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return strings.SplitAfter(string(b), "\n")[:bytes.Count(b, []byte("\n"))]
}

func verifyLines(ls []string) (audit.Report, error) {
	return audit.Verify(strings.NewReader(strings.Join(ls, "")))
}

func requireProblem(t *testing.T, err error, kind audit.ProblemKind, line int, seq uint64) *audit.Problem {
	t.Helper()
	var p *audit.Problem
	require.ErrorAs(t, err, &p)
	require.Equal(t, kind, p.Kind, p.Error())
	require.Equal(t, line, p.Line, p.Error())
	require.Equal(t, seq, p.Seq, p.Error())
	return p
}

func TestVerify(t *testing.T) {
	path := writeTrail(t, 1000)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	rep, err := audit.VerifyFile(path)
	require.NoError(t, err)
	require.Equal(t, 1000, rep.Records)
	require.Equal(t, 0, rep.Redacted)
	require.Equal(t, uint64(1000), rep.LastSeq)
	ls := lines(t, path)
	require.Len(t, ls, 1000)

	t.Run("OneByteOfAnEventChanged", func(t *testing.T) {
		l := slicesClone(ls)
		l[499] = strings.Replace(l[499], `"actor":"key-`, `"actor":"kez-`, 1)
		_, err := verifyLines(l)
		p := requireProblem(t, err, audit.ProblemAltered, 500, 500)
		require.Equal(t, "record seq 500 (line 500): altered: content does not match the record's hash", p.Error())
		// A change that breaks the JSON is caught too.
		l[499] = strings.Replace(ls[499], `"event":{`, `"event":[`, 1)
		_, err = verifyLines(l)
		requireProblem(t, err, audit.ProblemAltered, 500, 500)
	})
	t.Run("RecordRemoved", func(t *testing.T) {
		l := append(slicesClone(ls[:300]), ls[301:]...)
		_, err := verifyLines(l)
		p := requireProblem(t, err, audit.ProblemRemoved, 301, 302)
		require.Contains(t, p.Error(), "record seq 301 is missing before it")
		_, err = verifyLines(ls[1:])
		requireProblem(t, err, audit.ProblemRemoved, 1, 2)
	})
	t.Run("TwoRecordsSwapped", func(t *testing.T) {
		l := slicesClone(ls)
		l[700], l[701] = l[701], l[700]
		_, err := verifyLines(l)
		p := requireProblem(t, err, audit.ProblemReordered, 701, 702)
		require.Contains(t, p.Error(), "comes before record seq 701 (line 702)")
		l = slicesClone(ls)
		l[10], l[20] = l[20], l[10]
		_, err = verifyLines(l)
		requireProblem(t, err, audit.ProblemReordered, 11, 21)
	})
	t.Run("LineInserted", func(t *testing.T) {
		// A copy of an earlier record.
		l := append(slicesClone(ls[:400]), append([]string{ls[100]}, ls[400:]...)...)
		_, err := verifyLines(l)
		requireProblem(t, err, audit.ProblemInserted, 401, 101)
		// Something that is not a record.
		l = append(slicesClone(ls[:400]), append([]string{"{\"hello\":1}\n"}, ls[400:]...)...)
		_, err = verifyLines(l)
		requireProblem(t, err, audit.ProblemInserted, 401, 0)
		// A forged record that chains correctly after record 400.
		var prev audit.Record
		require.NoError(t, json.Unmarshal([]byte(ls[399]), &prev))
		ev, err := json.Marshal(audittest.Event(t, 5000))
		require.NoError(t, err)
		d, err := audit.Digest(audittest.Event(t, 5000))
		require.NoError(t, err)
		forged, err := json.Marshal(audit.Record{Seq: 401, PrevHash: prev.Hash, Hash: audit.ChainHash(401, prev.Hash, d), Event: ev})
		require.NoError(t, err)
		l = append(slicesClone(ls[:400]), append([]string{string(forged) + "\n"}, ls[400:]...)...)
		_, err = verifyLines(l)
		p := requireProblem(t, err, audit.ProblemInserted, 401, 401)
		require.Contains(t, p.Error(), "the chain continues from the record seq 401 at line 402 instead")
	})
	t.Run("BrokenLink", func(t *testing.T) {
		// A record replaced by a self-consistent forgery.
		ev, _ := json.Marshal(audittest.Event(t, 5000))
		d, _ := audit.Digest(audittest.Event(t, 5000))
		prevHash := strings.Repeat("ab", 32)
		forged, _ := json.Marshal(audit.Record{Seq: 10, PrevHash: prevHash, Hash: audit.ChainHash(10, prevHash, d), Event: ev})
		l := slicesClone(ls)
		l[9] = string(forged) + "\n"
		_, err := verifyLines(l)
		requireProblem(t, err, audit.ProblemBrokenLink, 10, 10)
	})
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

func TestRedactKeepsTheChain(t *testing.T) {
	path := writeTrail(t, 1000)
	before := readEvents(t, path)
	n, err := audit.Redact(path, func(e audit.Event) bool {
		return e.Subject == "u-1f" || e.Subject == "u-3e" || strings.HasSuffix(e.ID, "7")
	})
	require.NoError(t, err)
	require.Equal(t, 102, n)
	rep, err := audit.VerifyFile(path)
	require.NoError(t, err)
	require.Equal(t, 1000, rep.Records)
	require.Equal(t, 102, rep.Redacted)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	after := readEvents(t, path)
	r := after[1]
	require.True(t, r.Redacted)
	d, err := audit.Digest(before[1])
	require.NoError(t, err)
	require.Equal(t, audit.Event{ID: before[1].ID, Time: before[1].Time, Kind: before[1].Kind, Redacted: true, EventDigest: d}, r)
	require.Equal(t, before[0], after[0])
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotContains(t, string(b), `"u-1f"`)

	// Redacting again changes nothing; a redacted record altered is caught.
	n, err = audit.Redact(path, func(audit.Event) bool { return false })
	require.NoError(t, err)
	require.Zero(t, n)
	ls := lines(t, path)
	ls[1] = strings.Replace(ls[1], `"eventDigest":"`+d[:1], `"eventDigest":"`+string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", d[0])+1)%16]), 1)
	_, err = verifyLines(ls)
	requireProblem(t, err, audit.ProblemAltered, 2, 2)

	// A trail that does not verify is not redacted; nor one in use.
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(ls, "")), 0o600))
	_, err = audit.Redact(path, func(audit.Event) bool { return true })
	require.ErrorContains(t, err, "does not verify")
	path = writeTrail(t, 3)
	s, err := audit.OpenFile(path)
	require.NoError(t, err)
	defer s.Close()
	_, err = audit.Redact(path, func(audit.Event) bool { return true })
	require.ErrorIs(t, err, audit.ErrInUse)
}

func TestResumeAfterReopen(t *testing.T) {
	ctx := context.Background()
	path := writeTrail(t, 250)
	s, err := audit.OpenFile(path)
	require.NoError(t, err)
	seq, hash := s.Head()
	require.Equal(t, uint64(250), seq)
	_, err = audit.OpenFile(path)
	require.ErrorIs(t, err, audit.ErrInUse)
	require.NoError(t, s.Write(ctx, audittest.Event(t, 250), audittest.Event(t, 251)))
	require.NoError(t, s.Close())
	ls := lines(t, path)
	var r audit.Record
	require.NoError(t, json.Unmarshal([]byte(ls[250]), &r))
	require.Equal(t, uint64(251), r.Seq)
	require.Equal(t, hash, r.PrevHash)

	// A write cut short by a crash leaves an unterminated line: dropped on
	// reopen, and the chain goes on.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"seq":253,"prevHash":"00`)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	s, err = audit.OpenFile(path)
	require.NoError(t, err)
	require.NoError(t, s.Write(ctx, audittest.Event(t, 252)))
	require.NoError(t, s.Close())
	rep, err := audit.VerifyFile(path)
	require.NoError(t, err)
	require.Equal(t, 253, rep.Records)
	require.Equal(t, audittest.Event(t, 252), readEvents(t, path)[252])

	// An altered last record is refused.
	ls = lines(t, path)
	ls[252] = strings.Replace(ls[252], `"actor":"key-`, `"actor":"kez-`, 1)
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(ls, "")), 0o600))
	_, err = audit.OpenFile(path)
	require.ErrorContains(t, err, "last record (seq 253) does not match its hash")

	// An empty file, and a file with one torn line only, start a new chain.
	empty := filepath.Join(t.TempDir(), "a.jsonl")
	require.NoError(t, os.WriteFile(empty, []byte(`{"seq":1,"pr`), 0o600))
	s, err = audit.OpenFile(empty)
	require.NoError(t, err)
	require.NoError(t, s.Write(ctx, audittest.Event(t, 0)))
	require.NoError(t, s.Close())
	rep, err = audit.VerifyFile(empty)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Records)

	_, err = audit.OpenFile(empty, audit.SyncInterval(0))
	require.ErrorContains(t, err, "sync interval must be positive")
}

func TestFileSinkMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	s, err := audit.OpenFile(filepath.Join(t.TempDir(), "trail.jsonl"), audit.FileRegisterer(reg))
	require.NoError(t, err)
	before := float64(time.Now().Unix())
	require.NoError(t, s.Write(context.Background(), audittest.Event(t, 1), audittest.Event(t, 2), audittest.Event(t, 3)))
	require.NoError(t, s.Close())
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		got[mf.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	require.Equal(t, 3.0, got["aether_audit_events_written_total"])
	require.GreaterOrEqual(t, got["aether_audit_last_write_timestamp_seconds"], before)
}
