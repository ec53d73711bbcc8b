package features

import (
	"time"

	"github.com/aetherai/aether/event"
)

// Counts are event counts per type.
type Counts struct {
	// View counts "view" events.
	View uint64 `json:"view"`
	// Click counts "click" events.
	Click uint64 `json:"click"`
	// AddToCart counts "add_to_cart" events.
	AddToCart uint64 `json:"addToCart"`
	// Purchase counts "purchase" events.
	Purchase uint64 `json:"purchase"`
}

func countsOf(c *[NumTypes]uint64) Counts {
	return Counts{View: c[0], Click: c[1], AddToCart: c[2], Purchase: c[3]}
}

// SessionFeatures describes the user's current session: the open one, or
// the last one once it closed.
type SessionFeatures struct {
	// Seq numbers the user's sessions from 1 (0: no session yet).
	Seq uint32 `json:"seq"`
	// Start is the time of the session's earliest event.
	Start time.Time `json:"start"`
	// LastEventAt is the time of the session's latest event.
	LastEventAt time.Time `json:"lastEventAt"`
	// DurationSeconds is LastEventAt - Start in seconds.
	DurationSeconds float64 `json:"durationSeconds"`
	// Events counts the events placed in the session (out-of-order events
	// within grace included, late ones not).
	Events uint32 `json:"events"`
	// Open is false once the session has ended (by the inactivity gap).
	Open bool `json:"open"`
	// Counts are the session's events per type.
	Counts Counts `json:"counts"`
}

// RecentItem is an item the user interacted with recently.
type RecentItem struct {
	// ProductID is the item's product id.
	ProductID string `json:"productId"`
	// EventType is what the user did with it.
	EventType event.Type `json:"eventType"`
	// At is the event time.
	At time.Time `json:"at"`
}

// Record is a user's feature record: stored in and served from the feature
// store, and emitted to user_features_processed. Times are event times in
// UTC with millisecond precision.
type Record struct {
	// UserID is the user (the record's key).
	UserID string `json:"userId"`
	// EventsTotal counts every event applied to the user, late ones
	// included; compare it with the events sent, for reconciliation.
	EventsTotal uint64 `json:"eventsTotal"`
	// Session describes the current (or last) session.
	Session SessionFeatures `json:"session"`
	// RecentItems are the user's most recent items, oldest to newest by
	// event time, at most RecentItems of them; never null in JSON.
	RecentItems []RecentItem `json:"recentItems"`
	// LifetimeCounts are all the user's events per type, late ones
	// included.
	LifetimeCounts Counts `json:"lifetimeCounts"`
	// Sessions counts the sessions started, the current one included.
	Sessions uint32 `json:"sessions"`
	// AvgSessionSeconds is the mean duration of the closed sessions
	// (0 if none closed yet).
	AvgSessionSeconds float64 `json:"avgSessionSeconds"`
	// LastSessionSeconds is the duration of the last closed session
	// (0 if none closed yet).
	LastSessionSeconds float64 `json:"lastSessionSeconds"`
	// FirstSeen and LastSeen are the user's earliest and latest event
	// times.
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
	// GapBeforeSessionSeconds is the time between the end of the previous
	// session and the start of the current one (recency); 0 for the first
	// session.
	GapBeforeSessionSeconds float64 `json:"gapBeforeSessionSeconds"`
	// LateEvents counts events that came later than the sessionizer's grace
	// period (they count toward lifetime totals only).
	LateEvents uint64 `json:"lateEvents"`
	// Reason says why the record was emitted: "session_started",
	// "session_closed", "interval" or "every_event"; empty for a record
	// built by State.Record and not emitted.
	Reason Reason `json:"reason"`
}

// Record builds the user's feature record from s (Reason left empty).
func (s *State) Record(userID string) Record {
	ss := &s.Session
	r := Record{
		UserID:      userID,
		EventsTotal: s.EventsTotal,
		Session: SessionFeatures{
			Seq:             ss.Seq,
			Start:           millis(ss.Start),
			LastEventAt:     millis(ss.Last),
			DurationSeconds: seconds(ss.Last - ss.Start),
			Events:          ss.Events,
			Open:            ss.Open,
			Counts:          countsOf(&s.SessionCounts),
		},
		LifetimeCounts:          countsOf(&s.LifetimeCounts),
		Sessions:                ss.Seq,
		LastSessionSeconds:      seconds(s.LastSessionMs),
		FirstSeen:               millis(s.FirstSeen),
		LastSeen:                millis(s.LastSeen),
		GapBeforeSessionSeconds: seconds(s.GapBeforeMs),
		LateEvents:              ss.Late,
	}
	if s.ClosedSessions > 0 {
		r.AvgSessionSeconds = seconds(s.TotalSessionMs) / float64(s.ClosedSessions)
	}
	r.RecentItems = make([]RecentItem, len(s.Recent)) // [] rather than null in JSON
	for i, it := range s.Recent {
		r.RecentItems[i] = RecentItem{ProductID: it.ProductID, EventType: typeName(it.Type), At: millis(it.At)}
	}
	return r
}

func seconds(ms int64) float64 { return float64(ms) / 1000 }

func typeName(i uint8) event.Type {
	if int(i) < NumTypes {
		return event.Types[i]
	}
	return ""
}
