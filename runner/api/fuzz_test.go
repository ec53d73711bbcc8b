package api

import (
	"errors"
	"testing"
)

// FuzzParseEvents: the events body parser never panics; it either returns
// 1 to maxBatch valid events or an *ingestError with a message, and a
// batch body that parses is not changed by a trailing space.
func FuzzParseEvents(f *testing.F) {
	for _, seed := range []string{
		validEvent,
		batchJSON("u1", 3),
		`[]`, `{}`, `[{}]`, `null`, `"x"`, `[1,2]`, `[[{}]]`, `{"userId":`,
		`{"userId":"u","userId":"v"}`,
		`{"userId":"u\u0000","productId":"p","eventType":"view","timestamp":"2023-10-27T10:30:00Z"}`,
		`{"userId":"u","productId":"p","eventType":"view","timestamp":"2023-10-27T10:30:00.123456789+14:00"}`,
		`{"userId":"u","productId":"p","eventType":"view","timestamp":"9999-12-31T23:59:59Z"}`,
		`{"userId":1e999,"productId":{"a":[1,{"b":null}]}}`,
		`[` + validEvent + `,` + validEvent + `]` + ` x`,
		"\xff\xfe{}",
	} {
		f.Add([]byte(seed))
	}
	const maxBatch = 4
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := parseEvents(body, maxBatch, now)
		if err != nil {
			var ie *ingestError
			if !errors.As(err, &ie) || ie.msg == "" || ie.reason == "" {
				t.Fatalf("error %T %v", err, err)
			}
			if evs != nil {
				t.Fatal("events with an error")
			}
			return
		}
		if len(evs) < 1 || len(evs) > maxBatch {
			t.Fatalf("%d events", len(evs))
		}
		for i := range evs {
			if err := evs[i].ValidateAt(now); err != nil {
				t.Fatalf("event %d passed parsing but: %v", i, err)
			}
		}
		if again, err := parseEvents([]byte(string(body)+" "), maxBatch, now); err != nil || len(again) != len(evs) {
			t.Fatalf("with a trailing space: %d events, %v", len(again), err)
		}
	})
}
