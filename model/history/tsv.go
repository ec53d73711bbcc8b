package history

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aetherai/aether/event"
)

// columns are the positions of SessionId, ItemId and Time in a line of
// FormatSessions, and how many fields a line needs.
type columns struct {
	session, item, time, need int
}

// sessionColumns parses a FormatSessions header.
func sessionColumns(header []byte) (columns, error) {
	c := columns{session: -1, item: -1, time: -1}
	for i, f := range bytes.Split(header, []byte{'\t'}) {
		switch strings.ToLower(string(bytes.TrimSpace(f))) {
		case "sessionid":
			c.session = i
		case "itemid":
			c.item = i
		case "time":
			c.time = i
		}
	}
	var missing []string
	for _, m := range []struct {
		name string
		at   int
	}{{"SessionId", c.session}, {"ItemId", c.item}, {"Time", c.time}} {
		if m.at < 0 {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("want the tab-separated header %q: no column %s in %q",
			SessionsHeader, strings.Join(missing, ", "), truncate(header))
	}
	c.need = max(c.session, c.item, c.time) + 1
	return c, nil
}

// sessionsLine returns the parser of FormatSessions lines: the first call
// takes the header, later ones clicks.
func (r *Reader) sessionsLine() func([]byte) (event.Event, bool, error) {
	var cols *columns
	var fields [][]byte
	return func(b []byte) (event.Event, bool, error) {
		if cols == nil {
			c, err := sessionColumns(bytes.TrimPrefix(b, []byte("\ufeff")))
			if err != nil {
				return event.Event{}, false, err
			}
			cols = &c
			return event.Event{}, false, nil
		}
		fields = splitTabs(b, fields[:0])
		if len(fields) < cols.need {
			return event.Event{}, false, fmt.Errorf("%d tab-separated fields, want at least %d (%s)", len(fields), cols.need, SessionsHeader)
		}
		sid := bytes.TrimSpace(fields[cols.session])
		if len(sid) == 0 {
			return event.Event{}, false, errors.New("SessionId is empty")
		}
		at, err := parseUnixSeconds(bytes.TrimSpace(fields[cols.time]))
		if err != nil {
			return event.Event{}, false, err
		}
		e := event.Event{
			UserID:    "s" + string(sid),
			ProductID: string(bytes.TrimSpace(fields[cols.item])),
			EventType: event.Click,
			Timestamp: at,
		}
		if err := e.ValidateAt(at); err != nil {
			return e, false, fmt.Errorf("SessionId %q, ItemId %q: %w", truncate(sid), truncate(fields[cols.item]), err)
		}
		return e, true, nil
	}
}

func splitTabs(b []byte, dst [][]byte) [][]byte {
	for {
		i := bytes.IndexByte(b, '\t')
		if i < 0 {
			return append(dst, b)
		}
		dst = append(dst, b[:i])
		b = b[i+1:]
	}
}

// parseUnixSeconds parses Unix seconds: digits with an optional fraction
// (exact to the nanosecond), or any other non-negative float (1.39e9).
func parseUnixSeconds(b []byte) (time.Time, error) {
	s := string(b)
	intPart, frac, _ := strings.Cut(s, ".")
	if digits(intPart) && len(intPart) <= 12 && (frac == "" || digits(frac)) && intPart != "" {
		sec, _ := strconv.ParseInt(intPart, 10, 64)
		var ns int64
		for i := range 9 {
			ns *= 10
			if i < len(frac) {
				ns += int64(frac[i] - '0')
			}
		}
		return time.Unix(sec, ns).UTC(), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f >= 1e12 {
		return time.Time{}, fmt.Errorf("Time %q is not Unix seconds (like 1396839069 or 1396839069.277)", truncate(b))
	}
	sec, fr := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(fr*1e9))).UTC(), nil
}

func digits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
