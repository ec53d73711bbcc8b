package model

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/aetherai/aether/clickstream"
	"github.com/aetherai/aether/operators/features"
)

// benchModel is trained on a catalogue of 50,000 products, so that V is
// close to the default vocabulary size; its users carry 20 recent items.
var (
	benchOnce    sync.Once
	benchM       *Model
	benchDir     string // opset 13
	benchDir16   string // the same model, opset 16
	benchRecords []features.Record
)

func benchFixture(b testing.TB) (*Model, string, []features.Record) {
	b.Helper()
	benchOnce.Do(func() {
		g, err := clickstream.New(clickstream.Config{Users: 5000, Products: 50000, Seed: 2})
		if err != nil {
			b.Fatal(err)
		}
		evs := events(g.Take(1000000))
		m, err := Train(slices.Values(evs), Opset(13))
		if err != nil {
			b.Fatal(err)
		}
		m16, err := Train(slices.Values(evs), Opset(16))
		if err != nil {
			b.Fatal(err)
		}
		dir, err := os.MkdirTemp("", "aether-model-bench-*")
		if err != nil {
			b.Fatal(err)
		}
		benchDir = dir // removed by TestMain
		benchDir16 = filepath.Join(dir, "opset16")
		if err := m.Save(dir); err != nil {
			b.Fatal(err)
		}
		if err := m16.Save(benchDir16); err != nil {
			b.Fatal(err)
		}
		var recs []features.Record
		for _, r := range userRecords(events(g.Take(200000)), recentItems) {
			if len(r.RecentItems) == recentItems {
				recs = append(recs, r)
			}
		}
		benchM, benchRecords = m, recs
	})
	if benchM == nil {
		b.Fatal("benchmark fixture failed")
	}
	return benchM, benchDir, benchRecords
}

// benchScore scores batches of n users with ONNX Runtime (both graphs) and
// with ScoreGo, reporting users/s; compare them within one run.
func benchScore(b *testing.B, n int) {
	m, dir, recs := benchFixture(b)
	if len(recs) < n {
		b.Fatalf("only %d users", len(recs))
	}
	b.Logf("V=%d, N=%d, model.onnx %d bytes, %d users with %d recent items", m.Items(), m.n, len(m.ONNX()), len(recs), recentItems)
	batch := func(i int) []features.Record {
		start := (i * n) % (len(recs) - n + 1)
		return recs[start : start+n]
	}
	for _, c := range []struct{ name, dir string }{{"onnx-opset13", dir}, {"onnx-opset16", benchDir16}} {
		b.Run(c.name, func(b *testing.B) {
			needRuntime(b)
			l, err := Load(c.dir)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := l.Score(ctx, batch(i), 20); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(i*n)/b.Elapsed().Seconds(), "users/s")
		})
	}
	b.Run("go", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := m.ScoreGo(batch(i), 20); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(i*n)/b.Elapsed().Seconds(), "users/s")
	})
}

func BenchmarkScoreSingle(b *testing.B)  { benchScore(b, 1) }
func BenchmarkScoreBatch64(b *testing.B) { benchScore(b, 64) }

// BenchmarkTrain trains the default model and, as the baseline in the
// same run, the successor rows alone (CoOccurrence(0)).
func BenchmarkTrain(b *testing.B) {
	g, _ := clickstream.New(clickstream.Config{Users: 500, Products: 1000, Seed: 1})
	evs := events(g.Take(trainEvents))
	for _, bc := range []struct {
		name string
		opts []TrainOption
	}{{"successors", []TrainOption{CoOccurrence(0)}}, {"blended", nil}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Train(slices.Values(evs), bc.opts...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
		})
	}
}
