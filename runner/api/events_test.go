package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aetherai/aether/event"
)

const validEvent = `{"userId":"user_abc123","productId":"prod_xyz789","eventType":"click","timestamp":"2023-10-27T10:30:00Z","clientIp":"192.168.1.100"}`

func TestPostEvents(t *testing.T) {
	withMaxBatch := func(c *Config) { c.MaxBatch = 5; c.MaxBodyBytes = 4096 }
	big := `[` + strings.Repeat(validEvent+",", 40) + validEvent + `]`
	tests := []struct {
		name string
		key  string
		body string
		code int
		want string
	}{
		{"one event", shopKey, validEvent, 202, `{"accepted":1}`},
		{"one event with eventId and offset", shopKey, `{"userId":"u1","productId":"p1","eventType":"purchase","timestamp":"2023-10-27T12:30:00+02:00","eventId":"e1"}`, 202, `{"accepted":1}`},
		{"batch", shopKey, batchJSON("u1", 5), 202, `{"accepted":5}`},
		{"null optional field", shopKey, `{"userId":"u1","productId":"p1","eventType":"view","timestamp":"2023-10-27T10:30:00Z","clientIp":null}`, 202, `{"accepted":1}`},

		{"no key", "", validEvent, 401, `{"error":"API key required: send the header Authorization: Bearer <key>"}`},
		{"unknown key", "key-nobody", validEvent, 401, `{"error":"invalid API key"}`},

		{"empty body", shopKey, ``, 400, `{"error":"request body is empty: send one event object or a JSON array of events"}`},
		{"whitespace body", shopKey, " \n", 400, `{"error":"request body is empty: send one event object or a JSON array of events"}`},
		{"not JSON", shopKey, `userId=u1`, 400, `{"error":"malformed JSON at byte 1: invalid character 'u' looking for beginning of value"}`},
		{"truncated", shopKey, `{"userId":"u1","productId":`, 400, `{"error":"malformed JSON: unexpected end of the body"}`},
		{"truncated batch", shopKey, `[` + validEvent + `,`, 400, `{"error":"event 1: malformed JSON: unexpected end of the body"}`},
		{"missing colon", shopKey, `{"userId" "u1"}`, 400, `{"error":"malformed JSON at byte 10: expected colon after object key"}`},
		{"top-level string", shopKey, `"click"`, 400, `{"error":"request body must be one event object or a JSON array of events"}`},
		{"top-level null", shopKey, `null`, 400, `{"error":"request body must be one event object or a JSON array of events"}`},
		{"trailing data", shopKey, validEvent + validEvent, 400, `{"error":"malformed JSON: unexpected data after the top-level value"}`},
		{"empty batch", shopKey, `[]`, 400, `{"error":"empty batch: send at least one event"}`},
		{"batch element not an object", shopKey, `[` + validEvent + `,42]`, 400, `{"error":"event 1: invalid event: not a JSON object"}`},
		{"batch too large", shopKey, batchJSON("u1", 6), 413, `{"error":"batch larger than 5 events: split it into several requests"}`},

		{"wrong type", shopKey, `{"userId":"u1","productId":789,"eventType":"view","timestamp":"2023-10-27T10:30:00Z"}`, 400, `{"error":"invalid event: productId must be a string, not number"}`},
		{"wrong type in batch", shopKey, `[` + validEvent + `,{"userId":"u1","productId":"p","eventType":true,"timestamp":"2023-10-27T10:30:00Z"}]`, 400, `{"error":"event 1: invalid event: eventType must be a string, not bool"}`},
		{"timestamp as number", shopKey, `{"userId":"u1","productId":"p","eventType":"view","timestamp":1698402600}`, 400, `{"error":"invalid event: timestamp must be a string, not number"}`},
		{"object as userId", shopKey, `{"userId":{"id":"u1"},"productId":"p","eventType":"view","timestamp":"2023-10-27T10:30:00Z"}`, 400, `{"error":"invalid event: userId must be a string, not object"}`},
		{"missing userId", shopKey, `{"productId":"p","eventType":"view","timestamp":"2023-10-27T10:30:00Z"}`, 400, `{"error":"invalid event: userId is required"}`},
		{"missing productId at index 3", shopKey, `[` + eventJSON("u1", 0) + `,` + eventJSON("u1", 1) + `,` + eventJSON("u1", 2) + `,{"userId":"u1","eventType":"view","timestamp":"2023-10-27T10:30:00Z"}]`, 400, `{"error":"event 3: invalid event: productId is required"}`},
		{"missing timestamp", shopKey, `{"userId":"u1","productId":"p","eventType":"view"}`, 400, `{"error":"invalid event: timestamp is required (RFC 3339)"}`},
		{"unknown eventType", shopKey, `{"userId":"u1","productId":"p","eventType":"like","timestamp":"2023-10-27T10:30:00Z"}`, 400, `{"error":"invalid event: eventType \"like\" is not one of view, click, add_to_cart, purchase"}`},
		{"timestamp not RFC 3339", shopKey, `{"userId":"u1","productId":"p","eventType":"view","timestamp":"27/10/2023 10:30"}`, 400, `{"error":"invalid event: timestamp must be an RFC 3339 date-time such as 2023-10-27T10:30:00Z"}`},
		{"timestamp without zone", shopKey, `{"userId":"u1","productId":"p","eventType":"view","timestamp":"2023-10-27T10:30:00"}`, 400, `{"error":"invalid event: timestamp must be an RFC 3339 date-time such as 2023-10-27T10:30:00Z"}`},
		{"far-future timestamp", shopKey, `{"userId":"u1","productId":"p","eventType":"view","timestamp":"2023-10-27T13:00:01Z"}`, 400, `{"error":"invalid event: timestamp 2023-10-27T13:00:01Z is more than 1h0m0s in the future"}`},
		{"control character in id", shopKey, `{"userId":"u\u0000","productId":"p","eventType":"view","timestamp":"2023-10-27T10:30:00Z"}`, 400, `{"error":"invalid event: userId contains control characters or invalid UTF-8"}`},
		{"id too long", shopKey, `{"userId":"` + strings.Repeat("u", 129) + `","productId":"p","eventType":"view","timestamp":"2023-10-27T10:30:00Z"}`, 400, `{"error":"invalid event: userId longer than 128 bytes"}`},
		{"unknown field", shopKey, `{"userId":"u1","productId":"p","eventType":"view","timestamp":"2023-10-27T10:30:00Z","email":"a@b.c"}`, 400, `{"error":"invalid event: unknown field \"email\" (the fields are userId, productId, eventType, timestamp, clientIp, eventId)"}`},
		{"field name in the wrong case", shopKey, `{"userID":"u1","productId":"p","eventType":"view","timestamp":"2023-10-27T10:30:00Z"}`, 400, `{"error":"invalid event: unknown field \"userID\" (the fields are userId, productId, eventType, timestamp, clientIp, eventId)"}`},
		{"field given twice", shopKey, `{"userId":"u1","userId":"u2","productId":"p","eventType":"view","timestamp":"2023-10-27T10:30:00Z"}`, 400, `{"error":"invalid event: field userId given twice"}`},

		{"body too large", shopKey, big, 413, `{"error":"request body larger than 4096 bytes"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, withMaxBatch)
			w := f.do("POST", "/v1/events", tt.key, tt.body)
			check(t, w, tt.code, tt.want)
			sent := f.sink.sent()
			if tt.code != 202 && len(sent) != 0 {
				t.Errorf("sink got %d batches on a %d", len(sent), tt.code)
			}
			if tt.code == 202 && len(sent) != 1 {
				t.Errorf("sink got %d batches, want 1", len(sent))
			}
			if tt.code == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Bearer realm="aether"`) {
				t.Errorf("WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

// TestPostEventsBatchAllOrNothing: one invalid event in a batch sends none
// of it; the corrected batch is sent whole, in order, as given but for
// clientIp, pseudonymised.
func TestPostEventsBatchAllOrNothing(t *testing.T) {
	f := newFixture(t)
	events := make([]string, 10)
	for i := range events {
		events[i] = eventJSON("user_1", i)
	}
	bad := append([]string(nil), events...)
	bad[7] = `{"userId":"user_1","productId":"p","eventType":"view","timestamp":"2023-10-28T10:30:00Z"}`
	w := f.do("POST", "/v1/events", shopKey, "["+strings.Join(bad, ",")+"]")
	check(t, w, 400, `{"error":"event 7: invalid event: timestamp 2023-10-28T10:30:00Z is more than 1h0m0s in the future"}`)
	if n := len(f.sink.sent()); n != 0 {
		t.Fatalf("sink got %d batches from an invalid batch", n)
	}

	w = f.do("POST", "/v1/events", shopKey, "["+strings.Join(events, ",")+"]")
	check(t, w, 202, `{"accepted":10}`)
	sent := f.sink.sent()
	if len(sent) != 1 || len(sent[0]) != 10 {
		t.Fatalf("sink got %v", sent)
	}
	for i, e := range sent[0] {
		want := event.Event{
			UserID: "user_1", ProductID: "prod_00" + string(rune('0'+i%7)), EventType: []event.Type{"view", "click", "click", "add_to_cart", "view", "purchase"}[i%6],
			Timestamp: time.Date(2023, 10, 27, 10, 30, 3*i, 0, time.UTC), ClientIP: hmacOf(clientIPKey, "192.168.1.100"), EventID: "ev-user_1-" + string(rune('0'+i)),
		}
		if !e.Timestamp.Equal(want.Timestamp) {
			t.Errorf("event %d: timestamp %v, want %v", i, e.Timestamp, want.Timestamp)
		}
		e.Timestamp = want.Timestamp
		if e != want {
			t.Errorf("event %d: %+v, want %+v", i, e, want)
		}
	}
}

func TestPostEventsSinkUnavailable(t *testing.T) {
	f := newFixture(t)
	f.sink.err = errDown
	w := f.do("POST", "/v1/events", shopKey, batchJSON("u1", 3))
	check(t, w, 503, `{"error":"the event store is unavailable: retry the whole request later (events with an eventId are applied once)"}`)
	if got := w.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q", got)
	}
	if strings.Contains(w.Body.String(), errDown.Error()) {
		t.Error("the sink's error reaches the client")
	}
}

// TestPostEventsBodyTooLargeUnknownLength: a chunked body (no
// Content-Length) is cut at MaxBodyBytes too.
func TestPostEventsBodyTooLargeUnknownLength(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxBodyBytes = 1000 })
	req := httptest.NewRequest("POST", "/v1/events", strings.NewReader(batchJSON("u1", 20)))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+shopKey)
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, req)
	check(t, w, http.StatusRequestEntityTooLarge, `{"error":"request body larger than 1000 bytes"}`)
	if len(f.sink.sent()) != 0 {
		t.Error("sink got events")
	}
}

// TestPostEventsDefaultMaxBatch: 1000 events pass, 1001 do not.
func TestPostEventsDefaultMaxBatch(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxBodyBytes = 1 << 22 })
	check(t, f.do("POST", "/v1/events", shopKey, batchJSON("u1", DefaultMaxBatch)), 202, `{"accepted":1000}`)
	check(t, f.do("POST", "/v1/events", shopKey, batchJSON("u1", DefaultMaxBatch+1)), 413, `{"error":"batch larger than 1000 events: split it into several requests"}`)
}

// TestPostEventsErrorsNameOnlyTheirEvent: an error in a batch mixing users
// names the index and the field, never the data of the other events.
func TestPostEventsErrorsNameOnlyTheirEvent(t *testing.T) {
	f := newFixture(t)
	batch := `[` + eventJSON("alice_secret", 0) + `,{"userId":"bob","productId":"p","eventType":"nope","timestamp":"2023-10-27T10:30:00Z"}]`
	w := f.do("POST", "/v1/events", shopKey, batch)
	check(t, w, 400, `{"error":"event 1: invalid event: eventType \"nope\" is not one of view, click, add_to_cart, purchase"}`)
	for _, leak := range []string{"alice_secret", "192.168", "prod_000"} {
		if strings.Contains(w.Body.String(), leak) {
			t.Errorf("error body holds %q", leak)
		}
	}
}
