package cli

import (
	"net/http"

	"github.com/aetherai/aether/model/rollout"
	"github.com/aetherai/aether/recommend"
	"github.com/aetherai/aether/runner/api"
)

// Admin routes of the staged rollout. Each is audited as an admin_action
// by the admin API; the Switch's model_change lines (promote,
// clear_candidate) reach the trail through the runner's logger.
const (
	routeModel          = "GET /admin/v1/model"
	routePromote        = "POST /admin/v1/model/candidate/promote"
	routeClearCandidate = "DELETE /admin/v1/model/candidate"
)

// modelState is the answer of every model route.
type modelState struct {
	Current   recommend.Model  `json:"current"`
	Candidate *recommend.Model `json:"candidate,omitempty"`
	Share     float64          `json:"candidateShare,omitempty"`
}

func stateOf(sw *rollout.Switch) modelState {
	st := modelState{Current: sw.Model()}
	if m, share, ok := sw.Candidate(); ok {
		st.Candidate, st.Share = &m, share
	}
	return st
}

// registerModelAdmin adds the rollout routes to the admin API: see the
// current and candidate models, promote the candidate, or end the rollout.
func registerModelAdmin(adm *api.AdminServer, sw *rollout.Switch) error {
	answer := api.WriteJSON
	noCandidate := func(w http.ResponseWriter, r *http.Request) {
		api.AdminAuditAttr(r, "reason", "no_candidate")
		answer(w, http.StatusConflict, map[string]string{"error": "no candidate model is being rolled out"})
	}
	routes := map[string]http.HandlerFunc{
		routeModel: func(w http.ResponseWriter, r *http.Request) { answer(w, http.StatusOK, stateOf(sw)) },
		// Promote and ClearCandidate check and act in one step and return
		// the model they acted on, so a concurrent change can neither make
		// the audit record name another model nor turn a call that changed
		// nothing into a 200. The answer is the state the call left: no
		// candidate, and the promoted model (or the one serving) current.
		routePromote: func(w http.ResponseWriter, r *http.Request) {
			m, ok := sw.Promote()
			if !ok {
				noCandidate(w, r)
				return
			}
			api.AdminAuditAttr(r, "sha256", m.SHA256)
			answer(w, http.StatusOK, modelState{Current: m})
		},
		routeClearCandidate: func(w http.ResponseWriter, r *http.Request) {
			m, ok := sw.ClearCandidate()
			if !ok {
				noCandidate(w, r)
				return
			}
			api.AdminAuditAttr(r, "sha256", m.SHA256)
			answer(w, http.StatusOK, modelState{Current: sw.Model()})
		},
	}
	for pattern, h := range routes {
		if err := adm.Handle(pattern, h); err != nil {
			return err
		}
	}
	return nil
}
