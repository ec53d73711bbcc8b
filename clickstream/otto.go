package clickstream

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/aetherai/aether/event"
)

// ottoTypes maps OTTO event types to ours.
var ottoTypes = map[string]event.Type{
	"clicks": event.Click,
	"carts":  event.AddToCart,
	"orders": event.Purchase,
}

type ottoSession struct {
	Session *int64 `json:"session"`
	Events  []struct {
		Aid  *int64 `json:"aid"`
		Ts   *int64 `json:"ts"`
		Type string `json:"type"`
	} `json:"events"`
}

// ReadOTTO reads sessions in the OTTO recsys-dataset JSON Lines format, one
// session a line:
//
//	{"session":0,"events":[{"aid":1517085,"ts":1659304800025,"type":"clicks"}, ...]}
//
// and returns their events in file order. Each session becomes a user
// "otto_<session>"; aid becomes productId "prod_<aid>"; clicks, carts and
// orders become click, add_to_cart and purchase; ts (Unix milliseconds)
// becomes the UTC timestamp; EventID is "otto_<session>_<index in session>".
// ClientIP is left empty. Blank lines are skipped; any other problem is an
// error naming the line number.
//
// The OTTO dataset (github.com/otto-de/recsys-dataset) is released under
// CC-BY 4.0 by Otto (GmbH & Co KG); keep this attribution wherever its data
// is used or copied.
func ReadOTTO(r io.Reader) ([]event.Event, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var out []event.Event
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return out, fmt.Errorf("otto: line %d: %w", line, err)
		}
		if t := bytes.TrimSpace(b); len(t) > 0 {
			out, err = appendOTTO(out, t, line)
			if err != nil {
				return out, err
			}
		}
		if err != nil { // io.EOF
			return out, nil
		}
	}
}

func appendOTTO(out []event.Event, b []byte, line int) ([]event.Event, error) {
	var s ottoSession
	if err := json.Unmarshal(b, &s); err != nil {
		return out, fmt.Errorf("otto: line %d: %w", line, err)
	}
	if s.Session == nil {
		return out, fmt.Errorf("otto: line %d: session is required", line)
	}
	if *s.Session < 0 {
		return out, fmt.Errorf("otto: line %d: session must be >= 0, got %d", line, *s.Session)
	}
	sess := strconv.FormatInt(*s.Session, 10)
	user := "otto_" + sess
	for i, x := range s.Events {
		switch {
		case x.Aid == nil:
			return out, fmt.Errorf("otto: line %d: event %d: aid is required", line, i)
		case *x.Aid < 0:
			return out, fmt.Errorf("otto: line %d: event %d: aid must be >= 0, got %d", line, i, *x.Aid)
		case x.Ts == nil:
			return out, fmt.Errorf("otto: line %d: event %d: ts is required", line, i)
		case *x.Ts <= 0:
			return out, fmt.Errorf("otto: line %d: event %d: ts must be > 0, got %d", line, i, *x.Ts)
		}
		typ, ok := ottoTypes[x.Type]
		if !ok {
			return out, fmt.Errorf("otto: line %d: event %d: type %q is not one of clicks, carts, orders", line, i, x.Type)
		}
		e := event.Event{
			UserID:    user,
			ProductID: "prod_" + strconv.FormatInt(*x.Aid, 10),
			EventType: typ,
			Timestamp: time.UnixMilli(*x.Ts).UTC(),
			EventID:   user + "_" + strconv.Itoa(i),
		}
		if err := e.Validate(); err != nil {
			return out, fmt.Errorf("otto: line %d: event %d: %w", line, i, err)
		}
		out = append(out, e)
	}
	return out, nil
}
