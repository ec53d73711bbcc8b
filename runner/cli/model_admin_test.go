package cli

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/model/rollout"
	"github.com/aetherai/aether/operators/features"
	"github.com/aetherai/aether/recommend"
	"github.com/aetherai/aether/runner/api"
)

// namedScorer is a model known by its version only.
type namedScorer string

func (n namedScorer) Score(_ context.Context, recs []features.Record, k int) ([][]recommend.Item, error) {
	return make([][]recommend.Item, len(recs)), nil
}
func (n namedScorer) Popular(int) []recommend.Item { return nil }
func (n namedScorer) Model() recommend.Model {
	return recommend.Model{Version: string(n), SHA256: strings.Repeat(string(n)[1:2], 64)}
}

// The rollout's admin routes: see the models, promote the candidate, end
// the rollout; each audited, the changes as model_change records too.
func TestModelAdminRoutes(t *testing.T) {
	trail := audit.NewMemory()
	log := slog.New(audit.LogHandler(slog.DiscardHandler, trail, "runner", func(err error) { t.Error(err) }))
	sw := rollout.New(namedScorer("v1"), rollout.Logger(log))
	sw.SetCandidate(namedScorer("v2"), 0.25)
	adm, err := api.NewAdmin(api.AdminConfig{TokenSHA256: sha256.Sum256([]byte("adm")), Audit: trail})
	require.NoError(t, err)
	require.NoError(t, registerModelAdmin(adm, sw))
	do := func(method, path string) (int, modelState, string) {
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("Authorization", "Bearer adm")
		w := httptest.NewRecorder()
		adm.ServeHTTP(w, req)
		var st modelState
		_ = json.Unmarshal(w.Body.Bytes(), &st)
		return w.Code, st, w.Body.String()
	}

	code, st, body := do(http.MethodGet, "/admin/v1/model")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "v1", st.Current.Version)
	require.Equal(t, "v2", st.Candidate.Version)
	require.Equal(t, 0.25, st.Share)

	code, st, body = do(http.MethodPost, "/admin/v1/model/candidate/promote")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "v2", st.Current.Version)
	require.Nil(t, st.Candidate)
	require.Equal(t, "v2", sw.Model().Version)
	code, _, body = do(http.MethodPost, "/admin/v1/model/candidate/promote")
	require.Equal(t, http.StatusConflict, code)
	require.JSONEq(t, `{"error":"no candidate model is being rolled out"}`, body)

	sw.SetCandidate(namedScorer("v3"), 0.5)
	code, st, body = do(http.MethodDelete, "/admin/v1/model/candidate")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "v2", st.Current.Version)
	require.Nil(t, st.Candidate)
	_, _, ok := sw.Candidate()
	require.False(t, ok)

	var got []string
	for _, e := range trail.Events() {
		got = append(got, string(e.Kind)+" "+e.Action+" "+e.Outcome+" "+e.Attributes["sha256"])
	}
	two, three := strings.Repeat("2", 64), strings.Repeat("3", 64)
	require.Equal(t, []string{
		"model_change candidate ok " + two,
		"admin_action GET 200 ",
		"model_change promote ok " + two,
		"admin_action POST 200 " + two,
		"admin_action POST 409 ",
		"model_change candidate ok " + three,
		"model_change clear_candidate ok " + three,
		"admin_action DELETE 200 " + three,
	}, got[1:], "after the load of v1")
}

// Concurrent promotes and clears of one candidate: exactly one acts (200),
// the others answer 409, and the audit record of the one names the
// candidate it promoted or cleared.
func TestModelAdminRoutesRace(t *testing.T) {
	for _, route := range []struct{ method, path, current string }{
		{http.MethodPost, "/admin/v1/model/candidate/promote", "v2"},
		{http.MethodDelete, "/admin/v1/model/candidate", "v1"},
	} {
		t.Run(route.method, func(t *testing.T) {
			trail := audit.NewMemory()
			sw := rollout.New(namedScorer("v1"))
			sw.SetCandidate(namedScorer("v2"), 0.5)
			adm, err := api.NewAdmin(api.AdminConfig{TokenSHA256: sha256.Sum256([]byte("adm")), Audit: trail})
			require.NoError(t, err)
			require.NoError(t, registerModelAdmin(adm, sw))

			const callers = 8
			var wg sync.WaitGroup
			answers := make(chan *httptest.ResponseRecorder, callers)
			for range callers {
				wg.Go(func() {
					req := httptest.NewRequest(route.method, route.path, nil)
					req.Header.Set("Authorization", "Bearer adm")
					w := httptest.NewRecorder()
					adm.ServeHTTP(w, req)
					answers <- w
				})
			}
			wg.Wait()
			close(answers)
			n := map[int]int{}
			for w := range answers {
				n[w.Code]++
				if w.Code == http.StatusOK {
					var st modelState
					require.NoError(t, json.Unmarshal(w.Body.Bytes(), &st))
					require.Equal(t, route.current, st.Current.Version)
					require.Nil(t, st.Candidate)
				}
			}
			require.Equal(t, map[int]int{http.StatusOK: 1, http.StatusConflict: callers - 1}, n)
			var acted []string
			for _, e := range trail.Events() {
				if e.Outcome == "200" {
					acted = append(acted, e.Attributes["sha256"])
				}
			}
			require.Equal(t, []string{strings.Repeat("2", 64)}, acted)
		})
	}
}
