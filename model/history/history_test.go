package history_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/clickstream"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/model/history"
)

// sessionsTSV has 7 clicks in 3 sessions; session 2's clicks are out of
// time order, the header has an extra column, one line ends in CRLF and a
// blank line sits in the middle.
const sessionsTSV = "SessionId\tItemId\tTime\tExtra\n" +
	"1\t214536502\t1396839069.277\tx\n" +
	"1\t214536500\t1396839108.5\tx\r\n" +
	"2\t214821371\t1396850100\tx\n" +
	"\n" +
	"2\t214821300\t1396850000.000000001\tx\n" +
	"1\t214536502\t1396839200\tx\n" +
	"3\t9\t1396900000\tx\n" +
	"2\t214821371\t1396850200\tx\n"

func write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func readAll(t *testing.T, path string) (*history.Reader, []event.Event) {
	t.Helper()
	r, err := history.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	evs := slices.Collect(r.Events())
	require.NoError(t, r.Err())
	return r, evs
}

func TestSessionsFormat(t *testing.T) {
	path := write(t, "train.tsv", sessionsTSV)
	r, evs := readAll(t, path)
	require.Equal(t, history.FormatSessions, r.Format())
	require.Len(t, evs, 7)
	require.Equal(t, event.Event{UserID: "s1", ProductID: "214536502", EventType: event.Click,
		Timestamp: time.Unix(1396839069, 277_000_000).UTC()}, evs[0])
	require.Equal(t, time.Unix(1396839108, 500_000_000).UTC(), evs[1].Timestamp)
	require.Equal(t, time.Unix(1396850000, 1).UTC(), evs[3].Timestamp)

	sum := sha256.Sum256([]byte(sessionsTSV))
	require.Equal(t, history.Digest{File: "train.tsv", Format: history.FormatSessions,
		SHA256: hex.EncodeToString(sum[:]), Bytes: int64(len(sessionsTSV)), Events: 7}, r.Digest())

	r2, err := history.Open(path)
	require.NoError(t, err)
	defer r2.Close()
	s, err := r2.Sessions()
	require.NoError(t, err)
	require.Equal(t, []string{"214536502", "214536500", "214821371", "214821300", "9"}, s.Items)
	require.Equal(t, uint64(7), s.Events)
	require.Len(t, s.List, 3)
	// Sessions in file order, each by time: session 2 starts with 214821300.
	require.Equal(t, "s1", s.List[0].User)
	require.Equal(t, []int32{0, 1, 0}, s.List[0].Items)
	require.Equal(t, "s2", s.List[1].User)
	require.Equal(t, []int32{3, 2, 2}, s.List[1].Items)
	require.Equal(t, []int32{4}, s.List[2].Items)
	require.Equal(t, 4, s.Points())
	// A sessions-format session is never split, however long its gaps.
	require.Equal(t, time.Duration(0), history.SessionGap(history.FormatSessions))
}

func TestSessionsFormatGzipAndDetection(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write([]byte(sessionsTSV))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	// The header, not the name, decides.
	path := write(t, "clicks.dat", buf.String())
	r, evs := readAll(t, path)
	require.Equal(t, history.FormatSessions, r.Format())
	require.Len(t, evs, 7)
	sum := sha256.Sum256(buf.Bytes())
	require.Equal(t, hex.EncodeToString(sum[:]), r.Digest().SHA256, "digest of the bytes as stored")
	require.Equal(t, int64(buf.Len()), r.Digest().Bytes)
}

func TestErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct {
		name, file, content string
		line                int
		msg                 string
	}{
		{"bad time", "a.tsv", "SessionId\tItemId\tTime\n1\t2\t3\n\n1\t2\tyesterday\n", 4, `Time "yesterday" is not Unix seconds`},
		{"negative time", "a.tsv", "SessionId\tItemId\tTime\n1\t2\t-3\n", 2, `Time "-3" is not Unix seconds`},
		{"few fields", "a.tsv", "SessionId\tItemId\tTime\n1\t2\n", 2, "2 tab-separated fields, want at least 3"},
		{"empty item", "a.tsv", "SessionId\tItemId\tTime\n1\t\t5\n", 2, "productId is required"},
		{"no header", "a.tsv", "1\t2\t3\n", 1, `no column SessionId, ItemId, Time`},
		{"header misses a column", "a", "\nSessionId\tItemId\tTimestamp\n", 2, "no column Time"},
		{"not a history", "a", "hello\n", 1, "not a history"},
		{"bad event", "a.jsonl", `{"userId":"u","productId":"p","eventType":"click","timestamp":"2026-01-01T00:00:00Z"}` + "\n{\"userId\":1}\n", 2, "cannot unmarshal"},
		{"invalid event", "a.jsonl", `{"userId":"u","productId":"p","eventType":"zap","timestamp":"2026-01-01T00:00:00Z"}`, 1, `eventType "zap"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := history.Open(write(t, tc.file, tc.content))
			if err == nil {
				for range r.Events() {
				}
				err = r.Err()
				r.Close()
			}
			var le *history.LineError
			require.True(t, errors.As(err, &le), "%v", err)
			require.Equal(t, tc.line, le.Line, "%v", err)
			require.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestEventsFormat(t *testing.T) {
	// The generator's events: user sessions more than 30 minutes apart.
	g, err := clickstream.New(clickstream.Config{Users: 50, Products: 200, Seed: 3, Duplicate: 0.05})
	require.NoError(t, err)
	var lines []string
	var want []event.Event
	for _, rec := range g.Take(3000) {
		lines = append(lines, string(rec.Raw))
		want = append(want, rec.Event)
	}
	stats := g.Stats()
	require.NotZero(t, stats.Duplicate)
	path := write(t, "events.jsonl", strings.Join(lines, "\n")+"\n")
	r, evs := readAll(t, path)
	require.Equal(t, history.FormatEvents, r.Format())
	require.Len(t, evs, 3000)
	for i := range want {
		require.True(t, want[i].Timestamp.Equal(evs[i].Timestamp))
		want[i].Timestamp = evs[i].Timestamp
	}
	require.Equal(t, want, evs)

	c := history.NewCollector(history.SessionGap(history.FormatEvents))
	for e := range c.Tee(slices.Values(evs)) {
		_ = e
	}
	s := c.Sessions()
	require.Equal(t, stats.Duplicate, s.Duplicates)
	require.Equal(t, uint64(3000)-stats.Duplicate, s.Events)
	sessions := refSessions(evs)
	require.Len(t, s.List, sessions)
	require.Len(t, s.List, 374)
	require.Equal(t, uint64(164), s.Duplicates)
	for _, ss := range s.List {
		for i := 1; i < len(ss.Times); i++ {
			require.LessOrEqual(t, ss.Times[i-1], ss.Times[i])
			require.LessOrEqual(t, ss.Times[i]-ss.Times[i-1], (30 * time.Minute).Nanoseconds())
		}
	}
}

func TestOTTOSample(t *testing.T) {
	r, evs := readAll(t, "../../clickstream/testdata/otto/sessions.jsonl")
	require.Equal(t, history.FormatOTTO, r.Format())
	require.Len(t, evs, 862)
	require.Equal(t, "otto_0", evs[0].UserID)
	require.Equal(t, "prod_1517085", evs[0].ProductID)
	data, err := os.ReadFile("../../clickstream/testdata/otto/sessions.jsonl")
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	require.Equal(t, hex.EncodeToString(sum[:]), r.Digest().SHA256)

	c := history.NewCollector(history.SessionGap(history.FormatOTTO))
	users := map[string]bool{}
	for _, e := range evs {
		c.Add(e)
		users[e.UserID] = true
	}
	require.Len(t, users, 20)
	s := c.Sessions()
	require.Equal(t, uint64(862), s.Events)
	// The 20 sessions (10 of them a month long) split at 30-minute gaps.
	require.Equal(t, 144, len(s.List))
	require.Equal(t, refSessions(evs), len(s.List))
	require.Equal(t, "otto_0", s.List[0].User)
	require.Equal(t, "otto_12899778", s.List[143].User)
	require.Equal(t, 862-144, s.Points())
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       history.Format
	}{
		{"x.tsv", "SessionId\tItemId\tTime", history.FormatSessions},
		{"x", "\ufeffTime\tItemId\tSessionId\tCategory", history.FormatSessions},
		{"x", "sessionID\titemID\tTIME", history.FormatSessions},
		{"x.jsonl", `{"session":1,"events":[]}`, history.FormatOTTO},
		{"x", `{"userId":"u","productId":"p"}`, history.FormatEvents},
		{"x.json", `{"userId":`, history.FormatEvents}, // the events reader reports the error
	} {
		got, err := history.Detect(tc.name, []byte(tc.line), 1)
		require.NoError(t, err, tc.line)
		require.Equal(t, tc.want, got, tc.line)
	}
	// An empty history: no events, format from the extension.
	r, evs := readAll(t, write(t, "empty.tsv", "\n\n"))
	require.Empty(t, evs)
	require.Equal(t, history.FormatSessions, r.Format())
	require.NotEmpty(t, r.Digest().SHA256)
}

func TestLongLines(t *testing.T) {
	// A line longer than the reader's buffer but within MaxLineBytes.
	e := event.Event{UserID: "u", ProductID: "p", EventType: event.Click, Timestamp: time.Unix(1, 0).UTC(), EventID: "e"}
	b, err := json.Marshal(e)
	require.NoError(t, err)
	long := strings.Replace(string(b), `{`, `{"pad":"`+strings.Repeat("x", 200_000)+`",`, 1)
	_, evs := readAll(t, write(t, "e.jsonl", long+"\n"+string(b)))
	require.Equal(t, []event.Event{e, e}, evs)

	r, err := history.Open(write(t, "e.jsonl", string(b)+"\n"+strings.Repeat(" ", history.MaxLineBytes+1)+"\n"))
	require.NoError(t, err)
	defer r.Close()
	for range r.Events() {
	}
	require.ErrorContains(t, r.Err(), "line 2: longer than")
}

// refSessions counts the sessions of evs: each user's events (repeated
// EventIDs left out) by time, split at gaps over 30 minutes.
func refSessions(evs []event.Event) int {
	type key struct{ user, id string }
	seen := map[key]bool{}
	byUser := map[string][]event.Event{}
	for _, e := range evs {
		if seen[key{e.UserID, e.EventID}] {
			continue
		}
		seen[key{e.UserID, e.EventID}] = true
		byUser[e.UserID] = append(byUser[e.UserID], e)
	}
	sessions := 0
	for _, h := range byUser {
		slices.SortStableFunc(h, func(a, b event.Event) int { return a.Timestamp.Compare(b.Timestamp) })
		sessions++
		for i := 1; i < len(h); i++ {
			if h[i].Timestamp.Sub(h[i-1].Timestamp) > 30*time.Minute {
				sessions++
			}
		}
	}
	return sessions
}
