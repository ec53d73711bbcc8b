package rollout

import (
	"fmt"
	"testing"
	"time"

	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/operators/optest"
	"github.com/aetherai/aether/operators/score"
)

// The scoring operator puts in each answer the model that scored it: the
// candidate for the users routed to it, the current model for the others.
func TestScoreOperatorAttributesEachAnswer(t *testing.T) {
	cur, cand := newFake("v1"), newFake("v2")
	sw := New(cur)
	sw.SetCandidate(cand, 0.5)
	h := optest.New(score.New(sw))
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var onCand int
	for i := range 200 {
		user := fmt.Sprint("user-", i)
		if err := h.Process(user, at, features.Record{UserID: user}); err != nil {
			t.Fatal(err)
		}
		got := h.Emitted[len(h.Emitted)-1].Value
		want := cur.id
		if Hash(user) < 0.5 {
			want = cand.id
			onCand++
		}
		if got.Model != want || len(got.Items) != 1 || got.Items[0].ProductID != want.SHA256 {
			t.Fatalf("user %s: answer %+v, want model %v", user, got, want)
		}
	}
	if onCand == 0 || onCand == 200 {
		t.Fatalf("%d of 200 users on the candidate", onCand)
	}
}
