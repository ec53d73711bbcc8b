package api

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// errorBody is the body of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

// WriteJSON answers v as JSON with status: every answer of both APIs and
// of the routes added to the admin API. Answers carry personal data, so
// no intermediary may store them.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "<key>" rather than "\u003ckey\u003e"; nosniff below
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"internal error: could not encode the response"}` + "\n")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// reject answers an error: msg says what is wrong (and must not hold
// another user's data), reason labels aether_http_rejected_total and the
// access log line. A 503 tells the client to retry after a second.
func (s *Server) reject(w http.ResponseWriter, r *http.Request, status int, reason, msg string) {
	if c, ok := s.metrics.rejected[reason]; ok {
		c.Inc()
	}
	infoFrom(r.Context()).reason = reason
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	WriteJSON(w, status, errorBody{Error: msg})
}
