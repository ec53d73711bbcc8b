package model

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/recommend"
)

const (
	// MaxK bounds the k of Score: the graph's TopK returns at most this many
	// items per user (fewer when fewer items have a score).
	MaxK = 100
	// MaxHistory is how many of a record's newest RecentItems are scored;
	// older ones would weigh 1/51^2 or less.
	MaxHistory = 50
)

// HistoryWeight is the weight of the recent item at position p from the
// newest (p = 0 is the newest): 1/(1+p)^2, so the newest items dominate
// and older ones add context (measured against 1/(1+p), 0.5^p and
// 1/(1+p)^3 on validation splits: see the package comment). Positions
// count every recent item, also those outside the vocabulary, which are
// then skipped.
func HistoryWeight(p int) float32 { return 1 / float32((1+p)*(1+p)) }

// slot is one scored recent item: its item index and weight.
type slot struct {
	item   int32
	weight float32
}

// history returns the record's recent items that the vocabulary knows,
// with their weights, newest first.
func history(index map[string]int32, r *features.Record, dst []slot) []slot {
	dst = dst[:0]
	items := r.RecentItems
	for p := 0; p < len(items) && p < MaxHistory; p++ {
		it := &items[len(items)-1-p]
		if i, ok := index[it.ProductID]; ok {
			dst = append(dst, slot{i, HistoryWeight(p)})
		}
	}
	return dst
}

func checkK(k int) error {
	if k < 1 || k > MaxK {
		return fmt.Errorf("model: k must be between 1 and %d, got %d", MaxK, k)
	}
	return nil
}

// ScoreGo scores records in plain Go, with the semantics of the ONNX
// graph: score(j) = sum over the record's known recent items i of
// HistoryWeight(position of i) * T[i][j], over each item's kept
// neighbours; the top k items with a score > 0, best first, ties by item
// index (popularity rank). A record without known recent items gets
// Popular(k). It is the reference the ONNX graph is tested
// against, and a baseline for its benchmarks.
func (m *Model) ScoreGo(records []features.Record, k int) ([][]recommend.Item, error) {
	if err := checkK(k); err != nil {
		return nil, err
	}
	out := make([][]recommend.Item, len(records))
	acc := make([]float32, len(m.vocab))
	var touched []int32
	var slots []slot
	for r := range records {
		slots = history(m.index, &records[r], slots)
		if len(slots) == 0 {
			out[r] = m.Popular(k)
			continue
		}
		touched = touched[:0]
		for _, s := range slots {
			row := int(s.item) * m.n
			for c := range m.n {
				w := m.nbrW[row+c]
				if w == 0 {
					break // the row's unused tail
				}
				j := m.nbrIdx[row+c]
				if acc[j] == 0 {
					touched = append(touched, j)
				}
				acc[j] += s.weight * w
			}
		}
		slices.SortFunc(touched, func(a, b int32) int {
			if c := cmp.Compare(acc[b], acc[a]); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
		items := make([]recommend.Item, 0, min(k, len(touched)))
		for _, j := range touched {
			if len(items) < k && acc[j] > 0 {
				items = append(items, recommend.Item{ProductID: m.vocab[j], Score: acc[j]})
			}
			acc[j] = 0
		}
		out[r] = items
	}
	return out, nil
}

// popular returns the k most frequent items with their share of the
// training events as score.
func popular(vocab []string, counts []uint64, total uint64, k int) []recommend.Item {
	k = min(k, len(vocab))
	if k <= 0 || total == 0 {
		return []recommend.Item{}
	}
	out := make([]recommend.Item, k)
	for i := range out {
		out[i] = recommend.Item{ProductID: vocab[i], Score: float32(float64(counts[i]) / float64(total))}
	}
	return out
}

// Popular returns the k most frequent training items (k capped at the
// vocabulary size), scored by their share of the training events.
func (m *Model) Popular(k int) []recommend.Item { return popular(m.vocab, m.counts, m.total, k) }
