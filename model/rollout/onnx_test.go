package rollout

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/model"
	"github.com/aetherai/aether/model/store/storetest"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/recommend"
)

// needRuntime skips a test that needs the ONNX Runtime library when it is
// not installed, and fails it under CI (CI=true).
func needRuntime(t testing.TB) {
	t.Helper()
	path, source := model.DefaultRuntimeLibrary()
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("ONNX Runtime library not found at %q (%s): install it with `%s` from the repository root",
			path, source, model.InstallCommand)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// counted counts the Close calls of a real model.
type counted struct {
	*model.Loaded
	closes atomic.Int64
}

func (c *counted) Close() error { c.closes.Add(1); return c.Loaded.Close() }

func loadReal(t *testing.T, dir, version string, seed int) *counted {
	t.Helper()
	storetest.Model(t, dir, version, seed)
	l, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &counted{Loaded: l}
}

// Real ONNX models, batched as the runner serves them, swapped under
// load: no call fails (a Loaded scores nothing once closed, so a model
// closed too early would fail calls), each answer names the model that
// scored it, and the old model is closed once.
func TestSwapRealModelsUnderLoad(t *testing.T) {
	needRuntime(t)
	dir := t.TempDir()
	old := loadReal(t, filepath.Join(dir, "v1"), "v1", 1)
	next := loadReal(t, filepath.Join(dir, "v2"), "v2", 2)
	if old.Model().SHA256 == next.Model().SHA256 {
		t.Fatal("the two models are the same")
	}
	sw := New(old, Batch(16))
	defer sw.Close()

	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var recent []features.RecentItem
	for i, it := range old.Popular(3) {
		recent = append(recent, features.RecentItem{ProductID: it.ProductID, EventType: event.Click, At: at.Add(time.Duration(i) * time.Second)})
	}
	var (
		wg             sync.WaitGroup
		stop           atomic.Bool
		failures, bad  atomic.Int64
		sawOld, sawNew atomic.Int64
		firstErr       atomic.Value
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				rs := []features.Record{{UserID: fmt.Sprint(w, "-", i), RecentItems: recent}, {UserID: "z", RecentItems: recent}}
				items, models, err := recommend.ScoreWithModel(context.Background(), sw, rs, 5)
				if err != nil {
					failures.Add(1)
					firstErr.Store(err)
					continue
				}
				if len(items) != 2 || models[0] != models[1] || len(items[0]) == 0 {
					bad.Add(1)
				}
				switch models[0] {
				case old.Model():
					sawOld.Add(1)
				case next.Model():
					sawNew.Add(1)
				default:
					bad.Add(1)
				}
			}
		}()
	}
	for sawOld.Load() < 50 {
		time.Sleep(time.Millisecond)
	}
	sw.Swap(next)
	n := sawNew.Load()
	for sawNew.Load() < n+50 {
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d failed calls, e.g. %v", failures.Load(), firstErr.Load())
	}
	if bad.Load() != 0 {
		t.Fatalf("%d bad answers", bad.Load())
	}
	if old.closes.Load() != 1 || next.closes.Load() != 0 {
		t.Fatalf("closes: old %d, new %d", old.closes.Load(), next.closes.Load())
	}
}
