package event_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/event"
)

func TestDecodeTheBriefsExample(t *testing.T) {
	var e event.Event
	require.NoError(t, json.Unmarshal([]byte(`{"userId":"user_abc123","productId":"prod_xyz789","eventType":"click",
     "timestamp":"2023-10-27T10:30:00Z","clientIp":"192.168.1.100"}`), &e))
	require.NoError(t, e.Validate())
	require.Equal(t, time.Date(2023, 10, 27, 10, 30, 0, 0, time.UTC), e.Timestamp)
	require.Equal(t, 1, e.EventType.Index())
}

func TestValidateNamesTheField(t *testing.T) {
	ok := event.Event{UserID: "u", ProductID: "p", EventType: event.Click, Timestamp: time.Unix(1, 0)}
	long := strings.Repeat("x", event.MaxIDLen+1)
	cases := []struct {
		mutate func(*event.Event)
		want   string
	}{
		{func(e *event.Event) { e.UserID = "" }, "invalid event: userId is required"},
		{func(e *event.Event) { e.UserID = long }, "invalid event: userId longer than 128 bytes"},
		{func(e *event.Event) { e.ProductID = "" }, "invalid event: productId is required"},
		{func(e *event.Event) { e.EventType = "hover" }, `invalid event: eventType "hover" is not one of view, click, add_to_cart, purchase`},
		{func(e *event.Event) { e.EventType = event.Type(long) }, `invalid event: eventType "` + long[:32] + `..." is not one of view, click, add_to_cart, purchase`},
		{func(e *event.Event) { e.Timestamp = time.Time{} }, "invalid event: timestamp is required (RFC 3339)"},
		{func(e *event.Event) { e.EventID = long }, "invalid event: eventId longer than 128 bytes"},
		{func(e *event.Event) { e.UserID = "u\x00; DROP" }, "invalid event: userId contains control characters or invalid UTF-8"},
		{func(e *event.Event) { e.ProductID = "p\xff" }, "invalid event: productId contains control characters or invalid UTF-8"},
		{func(e *event.Event) { e.EventID = "e\n" }, "invalid event: eventId contains control characters or invalid UTF-8"},
		{func(e *event.Event) { e.Timestamp = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) }, "invalid event: timestamp 3000-01-01T00:00:00Z is more than 1h0m0s in the future"},
	}
	for _, c := range cases {
		e := ok
		c.mutate(&e)
		err := e.Validate()
		require.ErrorIs(t, err, event.ErrInvalid)
		require.EqualError(t, err, c.want)
	}
	require.NoError(t, ok.Validate())
}
