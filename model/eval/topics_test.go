package eval_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/model"
	"github.com/aetherai/aether/model/eval"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/recommend"
)

// goScorer scores with the model's Go reference, the graph's semantics
// (TestTinyVocabulary and the model's ONNX tests hold the two equal).
type goScorer struct{ m *model.Model }

func (g goScorer) Score(_ context.Context, recs []features.Record, k int) ([][]recommend.Item, error) {
	return g.m.ScoreGo(recs, k)
}

// topicSessions generates n sessions of 2 to 7 clicks that each browse one
// of the topics (size items each): after each click, with probability
// seq the topic's next item, else any item of the topic, the first ones
// likelier. Real sessions mix the two: a sequence a successor row learns,
// and a theme, in no particular order, that whole-session similarity
// (SKNN) catches and a successor row learns slowly.
func topicSessions(r *rand.Rand, n, topics, size int, seq float64) [][]string {
	out := make([][]string, n)
	pick := func() int { return int(float64(size) * r.Float64() * r.Float64()) }
	for s := range out {
		t, k := r.IntN(topics), pick()
		for range 2 + r.IntN(6) {
			out[s] = append(out[s], strconv.Itoa(t*size+k))
			if r.Float64() < seq {
				k = (k + 1) % size
			} else {
				k = pick()
			}
		}
	}
	return out
}

// On sessions with a theme as well as a sequence, the successor rows alone
// fall behind AR and SKNN on HR@20; the co-occurrence rows bring the model
// level with SKNN on HR@20, far ahead on MRR@20, and ahead of the other
// baselines on both.
func TestCoOccurrenceOnTopicSessions(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	train := sessionsOf(topicSessions(r, 4000, 200, 30, 0.5))
	test := sessionsOf(topicSessions(r, 500, 200, 30, 0.5))
	var evs []event.Event
	for _, s := range train.List {
		for p, it := range s.Items {
			evs = append(evs, event.Event{UserID: s.User, ProductID: train.Items[it], EventType: event.Click, Timestamp: time.Unix(0, s.Times[p])})
		}
	}
	evaluate := func(opts ...model.TrainOption) *eval.Result {
		m, err := model.Train(slices.Values(evs), append(opts, model.SessionGap(0))...)
		if err != nil {
			t.Fatal(err)
		}
		res, err := eval.Evaluate(context.Background(), train, test, goScorer{m}, eval.SKNN(100, 500))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	alone, blended := evaluate(model.CoOccurrence(0)), evaluate()
	b := blended.Baselines
	t.Logf("successors alone %.3f / %.3f; blended %.3f / %.3f; SKNN %.3f / %.3f, AR %.3f / %.3f, SR %.3f / %.3f",
		alone.Model.HR20, alone.Model.MRR20, blended.Model.HR20, blended.Model.MRR20,
		b.SKNN.HR20, b.SKNN.MRR20, b.AR.HR20, b.AR.MRR20, b.SR.HR20, b.SR.MRR20)
	if alone.Model.HR20 >= b.AR.HR20 || alone.Model.HR20 >= b.SKNN.HR20 {
		t.Errorf("successors alone: HR@20 %.3f, want below AR's %.3f and SKNN's %.3f (the fixture lost its theme)", alone.Model.HR20, b.AR.HR20, b.SKNN.HR20)
	}
	if blended.Model.HR20 < alone.Model.HR20+0.15 {
		t.Errorf("blended HR@20 %.3f, want at least 0.15 above the successors' %.3f", blended.Model.HR20, alone.Model.HR20)
	}
	if d := blended.Model.HR20 - b.SKNN.HR20; d < -0.005 {
		t.Errorf("blended HR@20 %.3f, want within 0.005 of SKNN's %.3f", blended.Model.HR20, b.SKNN.HR20)
	}
	for name, m := range map[string]eval.Metrics{"SKNN": *b.SKNN, "AR": b.AR, "SR": b.SR, "POP": b.POP} {
		if blended.Model.MRR20 <= m.MRR20 || (name != "SKNN" && blended.Model.HR20 <= m.HR20) {
			t.Errorf("blended %.3f / %.3f does not beat %s %.3f / %.3f", blended.Model.HR20, blended.Model.MRR20, name, m.HR20, m.MRR20)
		}
	}
}
