package api

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentOverHTTP runs ingest and reads from several clients at
// once through a real HTTP server, then reconciles: every accepted event
// reached the sink and the feature store.
func TestConcurrentOverHTTP(t *testing.T) {
	f := newFixture(t)
	ts := httptest.NewServer(f.srv)
	defer ts.Close()
	const clients, rounds, perBatch = 8, 25, 4
	do := func(method, path, body string) (int, string, error) {
		req, err := http.NewRequestWithContext(t.Context(), method, ts.URL+path, strings.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Authorization", "Bearer "+shopKey)
		resp, err := ts.Client().Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients*rounds*3)
	for c := range clients {
		wg.Go(func() {
			user := fmt.Sprintf("user_%d", c)
			for r := range rounds {
				parts := make([]string, perBatch)
				for i := range parts {
					parts[i] = eventJSON(user, r*perBatch+i)
				}
				if code, b, err := do("POST", "/v1/events", "["+strings.Join(parts, ",")+"]"); err != nil || code != 202 {
					errs <- fmt.Errorf("post: %d %s %v", code, b, err)
				}
				if code, b, err := do("GET", "/v1/recommendations/"+user+"?k=3", ""); err != nil || code != 200 {
					errs <- fmt.Errorf("get: %d %s %v", code, b, err)
				}
				if code, b, err := do("POST", "/v1/events", `[`+eventJSON(user, 0)+`,{}]`); err != nil || code != 400 {
					errs <- fmt.Errorf("bad post: %d %s %v", code, b, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	sent := 0
	for _, b := range f.sink.sent() {
		sent += len(b)
	}
	if sent != clients*rounds*perBatch {
		t.Errorf("sink got %d events, want %d", sent, clients*rounds*perBatch)
	}
	for c := range clients {
		rec, ok, _ := f.store.Get(fmt.Sprintf("user_%d", c))
		if !ok || rec.EventsTotal != rounds*perBatch {
			t.Errorf("user_%d: %d events in the feature store", c, rec.EventsTotal)
		}
	}
	if got := counterValue(t, f.srv.metrics.rejected[reasonInvalidEvent]); got != clients*rounds {
		t.Errorf("rejected{invalid_event} = %v", got)
	}
}
