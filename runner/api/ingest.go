package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/aetherai/aether/event"
)

// accepted is the body of a 202 from POST /v1/events.
type accepted struct {
	Accepted int `json:"accepted"`
}

// postEvents ingests one event object or a JSON array of 1 to MaxBatch of
// them. The batch is all-or-nothing: every event is parsed and validated
// before any is sent, and the first problem is answered 400 naming the
// event's index (0-based) in the array; a body over MaxBodyBytes or a batch
// over MaxBatch is a 413. Each event's clientIp is pseudonymised (or
// dropped) before the events are sent. 202 {"accepted":N} means the event
// store acknowledged all N; a 503 means the client should retry the batch.
func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) {
	tooLarge := "request body larger than " + strconv.FormatInt(s.maxBody, 10) + " bytes"
	if r.ContentLength > s.maxBody {
		s.reject(w, r, http.StatusRequestEntityTooLarge, reasonBodyTooLarge, tooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			s.reject(w, r, http.StatusRequestEntityTooLarge, reasonBodyTooLarge, tooLarge)
			return
		}
		s.reject(w, r, http.StatusBadRequest, reasonMalformedJSON, "could not read the request body")
		return
	}
	evs, err := parseEvents(body, s.maxBatch, s.now())
	if err != nil {
		reason, status := reasonMalformedJSON, http.StatusBadRequest
		if ie, ok := errors.AsType[*ingestError](err); ok {
			reason = ie.reason
		}
		if reason == reasonBatchTooLarge {
			status = http.StatusRequestEntityTooLarge
		}
		s.reject(w, r, status, reason, err.Error())
		return
	}
	// Personal data is pseudonymised before it leaves the API: the event
	// store (Kafka) never sees a raw client address, nor, with
	// PseudonymousUsers, a raw user id.
	for i := range evs {
		if err := s.clientIP.Apply(&evs[i]); err != nil {
			s.reject(w, r, http.StatusBadRequest, reasonInvalidEvent, err.Error())
			return
		}
		evs[i].UserID = s.storeKey(evs[i].UserID)
	}
	if err := s.events.Send(r.Context(), evs); err != nil {
		ri := infoFrom(r.Context())
		s.log.LogAttrs(r.Context(), slog.LevelError, "event store did not accept events",
			slog.String("request_id", ri.id), slog.Int("events", len(evs)), slog.String("error", err.Error()))
		s.reject(w, r, http.StatusServiceUnavailable, reasonUnavailable,
			"the event store is unavailable: retry the whole request later (events with an eventId are applied once)")
		return
	}
	s.metrics.accepted.WithLabelValues(infoFrom(r.Context()).client).Add(float64(len(evs)))
	WriteJSON(w, http.StatusAccepted, accepted{Accepted: len(evs)})
}

// ingestError is a 400 of POST /v1/events; reason labels the rejection.
type ingestError struct {
	reason string
	msg    string
}

func (e *ingestError) Error() string { return e.msg }

// at prefixes the error with the event's index in a batch (index >= 0).
func at(index int, reason, format string, args ...any) *ingestError {
	msg := fmt.Sprintf(format, args...)
	if index >= 0 {
		msg = "event " + strconv.Itoa(index) + ": " + msg
	}
	return &ingestError{reason: reason, msg: msg}
}

// eventFields are the fields of an event, in the order error messages list
// them.
const eventFields = "userId, productId, eventType, timestamp, clientIp, eventId"

// parseEvents decodes body, one event object or a JSON array of 1 to
// maxBatch event objects, and validates every event against now. It is
// stricter than encoding/json's struct decoding: field names match
// exactly (case-sensitive), an unknown or repeated field is an error, every
// field is a string (or null, meaning absent) and timestamp is RFC 3339.
// Every error is an *ingestError whose message names the problem, the
// field and, in an array, the event's index.
func parseEvents(body []byte, maxBatch int, now time.Time) ([]event.Event, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err == io.EOF {
		return nil, &ingestError{reasonMalformedJSON, "request body is empty: send one event object or a JSON array of events"}
	}
	if err != nil {
		return nil, malformed(-1, err)
	}
	var evs []event.Event
	switch tok {
	case json.Delim('{'):
		e, err := parseEvent(dec, -1, now)
		if err != nil {
			return nil, err
		}
		evs = []event.Event{e}
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if i == maxBatch {
				return nil, &ingestError{reasonBatchTooLarge, fmt.Sprintf("batch larger than %d events: split it into several requests", maxBatch)}
			}
			tok, err := dec.Token()
			if err != nil {
				return nil, malformed(i, err)
			}
			if tok != json.Delim('{') {
				return nil, at(i, reasonInvalidEvent, "%v: not a JSON object", event.ErrInvalid)
			}
			e, err := parseEvent(dec, i, now)
			if err != nil {
				return nil, err
			}
			evs = append(evs, e)
		}
		if _, err := dec.Token(); err != nil { // ']'
			return nil, malformed(len(evs), err)
		}
		if len(evs) == 0 {
			return nil, &ingestError{reasonEmptyBatch, "empty batch: send at least one event"}
		}
	default:
		return nil, &ingestError{reasonMalformedJSON, "request body must be one event object or a JSON array of events"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &ingestError{reasonMalformedJSON, "malformed JSON: unexpected data after the top-level value"}
	}
	return evs, nil
}

// parseEvent decodes the members of an event object whose '{' dec just
// returned, up to its '}', and validates the event.
func parseEvent(dec *json.Decoder, index int, now time.Time) (event.Event, error) {
	var (
		e    event.Event
		ts   string
		seen uint8
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return e, malformed(index, err)
		}
		name, _ := tok.(string) // object keys are always strings
		var (
			dst any
			bit uint8
		)
		switch name {
		case "userId":
			dst, bit = &e.UserID, 1<<0
		case "productId":
			dst, bit = &e.ProductID, 1<<1
		case "eventType":
			dst, bit = &e.EventType, 1<<2
		case "timestamp":
			dst, bit = &ts, 1<<3
		case "clientIp":
			dst, bit = &e.ClientIP, 1<<4
		case "eventId":
			dst, bit = &e.EventID, 1<<5
		default:
			return e, at(index, reasonInvalidEvent, "%v: unknown field %q (the fields are %s)", event.ErrInvalid, clip(name), eventFields)
		}
		if seen&bit != 0 {
			return e, at(index, reasonInvalidEvent, "%v: field %s given twice", event.ErrInvalid, name)
		}
		seen |= bit
		if err := dec.Decode(dst); err != nil {
			if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
				return e, at(index, reasonInvalidEvent, "%v: %s must be a string, not %s", event.ErrInvalid, name, te.Value)
			}
			return e, malformed(index, err)
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return e, malformed(index, err)
	}
	if ts != "" {
		t, err := time.Parse(time.RFC3339, ts)
		if err != nil {
			return e, at(index, reasonInvalidEvent, "%v: timestamp must be an RFC 3339 date-time such as 2023-10-27T10:30:00Z", event.ErrInvalid)
		}
		e.Timestamp = t
	}
	if err := e.ValidateAt(now); err != nil {
		return e, at(index, reasonInvalidEvent, "%s", err)
	}
	if _, err := netip.ParseAddr(e.ClientIP); e.ClientIP != "" && err != nil {
		// Checked here, before anything is sent, so that a bad address
		// fails the batch naming its event; ClientIPPseudonymizer.Apply
		// then cannot fail.
		return e, at(index, reasonInvalidEvent, "%v: clientIp must be an IPv4 or IPv6 address", event.ErrInvalid)
	}
	return e, nil
}

// malformed describes a JSON syntax error or a truncated body.
func malformed(index int, err error) *ingestError {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return at(index, reasonMalformedJSON, "malformed JSON at byte %d: %s", se.Offset, se.Error())
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return at(index, reasonMalformedJSON, "malformed JSON: unexpected end of the body")
	}
	return at(index, reasonMalformedJSON, "malformed JSON")
}

// clip shortens an unknown field name for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
