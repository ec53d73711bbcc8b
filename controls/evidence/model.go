package evidence

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/aetherai/aether/model/approval"
)

// ModelApproved is the change-management control on models: the model
// being served must have its SHA-256 in the approved-models manifest at
// manifestPath (read at every evaluation, as approvals change). served
// returns the served model's model.onnx SHA-256 and version: from the
// running rollout switch in the runner, from the configured model
// directory in `runner evidence`.
func ModelApproved(manifestPath string, served func(ctx context.Context) (sha, version string, err error)) Check {
	return Check{
		ID:       "model_approval",
		Title:    "The served model is approved (SHA-256 in the approved-models manifest)",
		Criteria: []string{"CC8.1"},
		Run: func(ctx context.Context) Result {
			return modelApproved(ctx, manifestPath, served)
		},
	}
}

func modelApproved(ctx context.Context, path string, served func(context.Context) (string, string, error)) Result {
	declared := "only models approved in " + path + " are served"
	if served == nil {
		return errResult(declared, "no way to know the served model was given")
	}
	sha, version, err := served(ctx)
	if err != nil {
		return errResult(declared, "the served model is unknown: "+err.Error())
	}
	if sha == "" {
		return errResult(declared, "no model is being served")
	}
	live := fmt.Sprintf("serving version %s, sha256 %s", cmpOr(version, "(unnamed)"), sha)
	m, err := approval.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fail(declared, live, "the approved-models manifest does not exist: no model is approved")
	}
	if err != nil {
		return errResult(declared, "the manifest cannot be read: "+err.Error())
	}
	declared = fmt.Sprintf("only models approved in %s are served (%d approved)", path, len(m.Entries()))
	e, err := m.Check(sha)
	if err != nil {
		return fail(declared, live, "the served model is not in the approved-models manifest: no approval, no ticket, for what answers users")
	}
	return pass(declared, live, fmt.Sprintf("approved by %s under ticket %s at %s", e.ApprovedBy, e.Ticket, e.ApprovedAt.UTC().Format(time.RFC3339)),
		fmt.Sprintf("approval: sha256 %s, version %s, by %s, ticket %s", e.SHA256, cmpOr(e.Version, "-"), e.ApprovedBy, e.Ticket))
}
