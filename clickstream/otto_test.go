package clickstream

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/event"
)

// TestReadOTTO reads testdata/otto/sessions.jsonl: 20 real sessions from the
// OTTO recsys-dataset (github.com/otto-de/recsys-dataset, test resource
// test/resources/train.jsonl). The OTTO dataset is released under CC-BY 4.0
// by Otto (GmbH & Co KG).
func TestReadOTTO(t *testing.T) {
	f, err := os.Open("testdata/otto/sessions.jsonl")
	require.NoError(t, err)
	defer f.Close()
	events, err := ReadOTTO(f)
	require.NoError(t, err)
	require.Len(t, events, 862)

	types := map[event.Type]int{}
	users := map[string]int{}
	ids := map[string]bool{}
	last := map[string]time.Time{}
	for _, e := range events {
		require.NoError(t, e.Validate())
		types[e.EventType]++
		users[e.UserID]++
		assert.False(t, ids[e.EventID], e.EventID)
		ids[e.EventID] = true
		assert.False(t, e.Timestamp.Before(last[e.UserID]), "events of a session are in time order")
		last[e.UserID] = e.Timestamp
		assert.Empty(t, e.ClientIP)
	}
	assert.Equal(t, map[event.Type]int{event.Click: 800, event.AddToCart: 52, event.Purchase: 10}, types)
	assert.Len(t, users, 20)
	assert.Equal(t, 276, users["otto_0"])
	assert.Equal(t, 2, users["otto_12899778"])

	assert.Equal(t, event.Event{
		UserID:    "otto_0",
		ProductID: "prod_1517085",
		EventType: event.Click,
		Timestamp: time.Date(2022, 7, 31, 22, 0, 0, 25e6, time.UTC),
		EventID:   "otto_0_0",
	}, events[0])
	assert.Equal(t, "otto_12899778_1", events[861].EventID)
}

func TestReadOTTOErrors(t *testing.T) {
	good := `{"session":1,"events":[{"aid":5,"ts":1659304800025,"type":"clicks"},{"aid":6,"ts":1659304800026,"type":"orders"}]}`
	for _, tc := range []struct {
		name, input, want string
	}{
		{"not json", good + "\n{oops\n", "otto: line 2: invalid character"},
		{"truncated", good + "\n" + good[:40], "otto: line 2: unexpected end of JSON input"},
		{"session missing", `{"events":[]}`, "otto: line 1: session is required"},
		{"session negative", `{"session":-1,"events":[]}`, "otto: line 1: session must be >= 0, got -1"},
		{"session string", `{"session":"1","events":[]}`, "otto: line 1: json: cannot unmarshal string"},
		{"aid missing", "\n\n" + `{"session":1,"events":[{"ts":1,"type":"clicks"}]}`, "otto: line 3: event 0: aid is required"},
		{"aid negative", `{"session":1,"events":[{"aid":-3,"ts":1,"type":"clicks"}]}`, "otto: line 1: event 0: aid must be >= 0, got -3"},
		{"ts missing", good + "\n" + `{"session":2,"events":[{"aid":1,"ts":2,"type":"clicks"},{"aid":1,"type":"clicks"}]}`, "otto: line 2: event 1: ts is required"},
		{"ts zero", `{"session":1,"events":[{"aid":1,"ts":0,"type":"clicks"}]}`, "otto: line 1: event 0: ts must be > 0, got 0"},
		{"unknown type", `{"session":1,"events":[{"aid":1,"ts":1,"type":"views"}]}`, `otto: line 1: event 0: type "views" is not one of clicks, carts, orders`},
		{"type missing", `{"session":1,"events":[{"aid":1,"ts":1}]}`, `otto: line 1: event 0: type "" is not one of clicks, carts, orders`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadOTTO(strings.NewReader(tc.input))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}

	// Blank lines, CRLF and a missing final newline are fine.
	events, err := ReadOTTO(strings.NewReader("\n" + good + "\r\n\n  \n" + good))
	require.NoError(t, err)
	require.Len(t, events, 4)
	assert.Equal(t, event.Purchase, events[1].EventType)
	assert.Equal(t, "otto_1_1", events[3].EventID)

	events, err = ReadOTTO(strings.NewReader(""))
	require.NoError(t, err)
	assert.Empty(t, events)

	// Read errors name the line they happened on.
	boom := errors.New("boom")
	_, err = ReadOTTO(&failingReader{data: good + "\n", err: boom})
	require.ErrorIs(t, err, boom)
	assert.Contains(t, err.Error(), "otto: line 2: boom")
}

type failingReader struct {
	data string
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}
