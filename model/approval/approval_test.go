package approval_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/model"
	"github.com/aetherai/aether/model/approval"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 123, time.FixedZone("CET", 3600))

func meta(n int, version string) model.Metadata {
	return model.Metadata{SHA256: fmt.Sprintf("%064x", n), Version: version}
}

// logs collects JSON log lines.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.buf.Write(p)
	}), nil))
}

func (l *logs) lines(t *testing.T) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m)
	}
	return out
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestApproveThenCheck(t *testing.T) {
	var l logs
	path := filepath.Join(t.TempDir(), "approved-models.json")
	e, added, err := approval.Approve(path, meta(1, "v1"), " alice ", "CHG-1", t0, l.logger())
	require.NoError(t, err)
	require.True(t, added)
	want := approval.Entry{SHA256: fmt.Sprintf("%064x", 1), Version: "v1", ApprovedBy: "alice", Ticket: "CHG-1",
		ApprovedAt: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	require.Equal(t, want, e)

	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.JSONEq(t, `{"format":"aether.approved-models/1","models":[{"sha256":"`+want.SHA256+
		`","version":"v1","approvedBy":"alice","ticket":"CHG-1","approvedAt":"2026-03-01T09:00:00Z"}]}`, string(b))

	// A retry under the same ticket changes nothing.
	again, added, err := approval.Approve(path, meta(1, "v1"), "bob", "CHG-1", t0.Add(time.Hour), l.logger())
	require.NoError(t, err)
	require.False(t, added)
	require.Equal(t, want, again)
	b2, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, b, b2)

	// Another ticket for the same model is refused, naming the first.
	_, _, err = approval.Approve(path, meta(1, "v1"), "bob", "CHG-2", t0, l.logger())
	var ce *approval.ConflictError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, want, ce.Existing)
	require.ErrorContains(t, err, "already approved in "+path+" by alice under ticket CHG-1 at 2026-03-01T09:00:00Z; not approving it again under ticket CHG-2")
	b2, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, b, b2)

	_, added, err = approval.Approve(path, meta(2, "v2"), "carol", "CHG-3", t0, l.logger())
	require.NoError(t, err)
	require.True(t, added)

	m, err := approval.Load(path)
	require.NoError(t, err)
	require.Equal(t, path, m.Path())
	require.Len(t, m.Entries(), 2)
	require.Equal(t, "v2", m.Entries()[1].Version)
	got, err := m.Check(strings.ToUpper(want.SHA256))
	require.NoError(t, err)
	require.Equal(t, want, got)
	_, err = m.Check(fmt.Sprintf("%064x", 3))
	var na *approval.NotApprovedError
	require.ErrorAs(t, err, &na)
	require.Equal(t, fmt.Sprintf("%064x", 3), na.SHA256)
	require.Equal(t, path, na.Manifest)

	// No temporary files are left beside the manifest.
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1)

	lines := l.lines(t)
	require.Len(t, lines, 4)
	outcomes := []string{}
	for _, line := range lines {
		require.Equal(t, "model_change", line["event"])
		require.Equal(t, "approve", line["action"])
		for _, k := range []string{"sha256", "version", "by", "ticket", "outcome", "manifest"} {
			require.Contains(t, line, k)
		}
		outcomes = append(outcomes, line["outcome"].(string))
	}
	require.Equal(t, []string{"approved", "already_approved", "refused", "approved"}, outcomes)
	require.Equal(t, "bob", lines[2]["by"])
	require.Equal(t, "CHG-2", lines[2]["ticket"])
	require.Equal(t, "WARN", lines[2]["level"])
	require.Contains(t, lines[2]["reason"], "already approved")
}

func TestApproveRefusesBadInput(t *testing.T) {
	var l logs
	dir := t.TempDir()
	path := filepath.Join(dir, "m.json")
	cases := []struct {
		meta       model.Metadata
		by, ticket string
		want       string
	}{
		{meta(1, "v"), "", "T-1", "approver (--by): is required"},
		{meta(1, "v"), "alice", "  ", "ticket: is required"},
		{meta(1, "v"), "alice", "T-1\nT-2", "ticket: contains control characters"},
		{meta(1, "v"), strings.Repeat("a", 201), "T-1", "longer than 200 bytes"},
		{model.Metadata{SHA256: "abc"}, "alice", "T-1", `model sha256 "abc" is not 64 hex digits`},
	}
	for _, c := range cases {
		_, _, err := approval.Approve(path, c.meta, c.by, c.ticket, t0, l.logger())
		require.ErrorContains(t, err, c.want)
	}
	_, err := os.Stat(path)
	require.ErrorIs(t, err, fs.ErrNotExist, "nothing written")
	lines := l.lines(t)
	require.Len(t, lines, len(cases))
	for _, line := range lines {
		require.Equal(t, "refused", line["outcome"])
	}

	// A damaged manifest is not overwritten.
	require.NoError(t, os.WriteFile(path, []byte("{not json"), 0o600))
	_, _, err = approval.Approve(path, meta(1, "v"), "alice", "T-1", t0, nil)
	require.ErrorContains(t, err, "approval: manifest "+path)
	b, _ := os.ReadFile(path)
	require.Equal(t, "{not json", string(b))
}

func TestLoadChecksTheFile(t *testing.T) {
	dir := t.TempDir()
	sha := fmt.Sprintf("%064x", 1)
	entry := `{"sha256":"` + sha + `","version":"v","approvedBy":"a","ticket":"t","approvedAt":"2026-01-01T00:00:00Z"}`
	cases := map[string]string{
		`{"format":"aether.approved-models/2","models":[]}`:                                                       `format "aether.approved-models/2"`,
		`{"format":"aether.approved-models/1","models":[` + entry + `,` + entry + `]}`:                            "models[1].sha256: approved twice (also models[0])",
		`{"format":"aether.approved-models/1","models":[{"sha256":"xyz"}]}`:                                       "models[0].sha256: must be 64 hex digits",
		`{"format":"aether.approved-models/1","models":[{"sha256":"` + sha + `","approvedBy":"a","ticket":""}]}`:  "models[0].ticket: is required",
		`{"format":"aether.approved-models/1","models":[{"sha256":"` + sha + `","approvedBy":"a","ticket":"t"}]}`: "models[0].approvedAt: is required",
		`{"format":"aether.approved-models/1","models":[],"extra":1}`:                                             `unknown field "extra"`,
	}
	for content, want := range cases {
		p := filepath.Join(dir, "m.json")
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		_, err := approval.Load(p)
		require.ErrorContains(t, err, want, content)
	}
	_, err := approval.Load(filepath.Join(dir, "missing.json"))
	require.ErrorIs(t, err, fs.ErrNotExist)

	// Upper-case hex in a hand-edited file is accepted.
	p := filepath.Join(dir, "upper.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"format":"aether.approved-models/1","models":[`+strings.Replace(entry, sha, strings.ToUpper(sha[:62])+"01", 1)+`]}`), 0o600))
	m, err := approval.Load(p)
	require.NoError(t, err)
	_, err = m.Check(sha)
	require.NoError(t, err)
}

// Concurrent approvals (as from several shells) all land.
func TestConcurrentApprovals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.json")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, _, err := approval.Approve(path, meta(i+1, fmt.Sprint("v", i)), "alice", fmt.Sprint("T-", i), t0, nil)
			require.NoError(t, err)
		})
	}
	wg.Wait()
	m, err := approval.Load(path)
	require.NoError(t, err)
	require.Len(t, m.Entries(), 8)
}

func TestGate(t *testing.T) {
	var l logs
	dir := t.TempDir()
	path := filepath.Join(dir, "m.json")
	reg := prometheus.NewRegistry()
	g, err := approval.NewGate(path, reg, l.logger())
	require.NoError(t, err)
	refused := func(reason string) float64 {
		return counter(t, reg, reason)
	}

	// No manifest yet: everything is refused.
	_, err = g.Admit(meta(1, "v1"), "s3://b/models/v1")
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.ErrorContains(t, err, "model sha256 "+fmt.Sprintf("%064x", 1)+" (version v1) refused: no approved-models manifest")
	require.Equal(t, 1.0, refused(approval.ReasonManifest))

	_, _, err = approval.Approve(path, meta(1, "v1"), "alice", "CHG-1", t0, nil)
	require.NoError(t, err)
	e, err := g.Admit(meta(1, "v1"), "s3://b/models/v1")
	require.NoError(t, err)
	require.Equal(t, "CHG-1", e.Ticket)

	_, err = g.Admit(meta(2, "v2"), "/models/v2")
	var na *approval.NotApprovedError
	require.ErrorAs(t, err, &na)
	require.Equal(t, approval.NotApprovedError{SHA256: fmt.Sprintf("%064x", 2), Version: "v2", Manifest: path}, *na)
	require.ErrorContains(t, err, "model sha256 "+na.SHA256+" (version v2) is not approved: it is not in the approved-models manifest "+path)
	require.Equal(t, 1.0, refused(approval.ReasonNotApproved))

	// A second gate on the same registry shares the counter.
	g2, err := approval.NewGate(path, reg, nil)
	require.NoError(t, err)
	_, err = g2.Admit(meta(3, "v3"), "")
	require.Error(t, err)
	require.Equal(t, 2.0, refused(approval.ReasonNotApproved))

	lines := l.lines(t)
	require.Len(t, lines, 3)
	require.Equal(t, []any{"refused", "admitted", "refused"}, []any{lines[0]["outcome"], lines[1]["outcome"], lines[2]["outcome"]})
	require.Equal(t, "load", lines[1]["action"])
	require.Equal(t, "alice", lines[1]["by"])
	require.Equal(t, "s3://b/models/v1", lines[1]["source"])
	require.Equal(t, "v2", lines[2]["version"])

	_, err = approval.NewGate("", nil, nil)
	require.Error(t, err)
}

// counter reads the refusals counter with the given reason from reg.
func counter(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != approval.MetricRefusals {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "reason" && lp.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("%s{reason=%q} not registered", approval.MetricRefusals, reason)
	return 0
}
