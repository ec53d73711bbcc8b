package model

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aetherai/aether/clickstream"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/recommend"
)

// The fixture: a model trained on the generator's first trainEvents events,
// and feature records built from the events that follow.
const (
	trainEvents   = 25000
	heldOutEvents = 10000
	recentItems   = features.DefaultRecentItems
)

var fixtureCfg = clickstream.Config{Users: 500, Products: 1000, Seed: 1}

type fixture struct {
	gen   *clickstream.Generator
	model *Model
	dir   string // the model saved
	// model16 is the same model exported with Opset(16), saved in dir16.
	model16 *Model
	dir16   string
	heldOut []event.Event
	// records are the users' feature records after the held-out events
	// (recent items only), by user id.
	records []features.Record
}

var (
	fixtureOnce sync.Once
	fix         fixture
	fixErr      error
	fixDir      string
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range []string{fixDir, benchDir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}

// trained returns the shared fixture, training and saving it once.
func trained(t testing.TB) *fixture {
	t.Helper()
	fixtureOnce.Do(func() {
		g, err := clickstream.New(fixtureCfg)
		if err != nil {
			fixErr = err
			return
		}
		evs := events(g.Take(trainEvents))
		opts := []TrainOption{Version("test-model"), CreatedAt(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))}
		m, err := Train(slices.Values(evs), append(opts, Opset(13))...)
		if err != nil {
			fixErr = err
			return
		}
		m16, err := Train(slices.Values(evs), append(opts, Opset(16))...)
		if err != nil {
			fixErr = err
			return
		}
		fixDir, err = os.MkdirTemp("", "aether-model-*")
		if err != nil {
			fixErr = err
			return
		}
		dir := filepath.Join(fixDir, "model")
		if err := m.Save(dir); err != nil {
			fixErr = err
			return
		}
		dir16 := filepath.Join(fixDir, "model16")
		if err := m16.Save(dir16); err != nil {
			fixErr = err
			return
		}
		held := events(g.Take(heldOutEvents))
		fix = fixture{gen: g, model: m, dir: dir, model16: m16, dir16: dir16, heldOut: held, records: userRecords(held, recentItems)}
	})
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return &fix
}

func events(recs []clickstream.Record) []event.Event {
	out := make([]event.Event, 0, len(recs))
	for _, r := range recs {
		if r.Kind != clickstream.Malformed {
			out = append(out, r.Event)
		}
	}
	return out
}

// userRecords builds each user's record with their last n items, oldest
// first, as the features operator keeps them; users sorted by id.
func userRecords(evs []event.Event, n int) []features.Record {
	byUser := map[string][]features.RecentItem{}
	var users []string
	for _, e := range evs {
		if _, ok := byUser[e.UserID]; !ok {
			users = append(users, e.UserID)
		}
		items := append(byUser[e.UserID], features.RecentItem{ProductID: e.ProductID, EventType: e.EventType, At: e.Timestamp})
		if len(items) > n {
			items = items[len(items)-n:]
		}
		byUser[e.UserID] = items
	}
	slices.Sort(users)
	out := make([]features.Record, len(users))
	for i, u := range users {
		out[i] = features.Record{UserID: u, RecentItems: byUser[u]}
	}
	return out
}

func recentOf(ids ...string) features.Record {
	r := features.Record{UserID: "u", RecentItems: []features.RecentItem{}}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, id := range ids {
		r.RecentItems = append(r.RecentItems, features.RecentItem{ProductID: id, EventType: event.Click, At: at.Add(time.Duration(i) * time.Second)})
	}
	return r
}

// needRuntime skips a test that needs the ONNX Runtime library when it is
// not installed, and fails it under CI (CI=true), naming the install
// command either way.
func needRuntime(t testing.TB) {
	t.Helper()
	path, source := DefaultRuntimeLibrary()
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("ONNX Runtime library not found at %q (%s): install it with `%s` from the repository root",
			path, source, InstallCommand)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// loaded loads the fixture's (opset 13) model into ONNX Runtime.
func loaded(t testing.TB) (*fixture, *Loaded) {
	t.Helper()
	f := trained(t)
	return f, loadDir(t, f.dir)
}

func loadDir(t testing.TB, dir string) *Loaded {
	t.Helper()
	needRuntime(t)
	l, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

type recommendItem = recommend.Item
