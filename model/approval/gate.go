package approval

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aetherai/aether/model"
)

// MetricRefusals counts models a Gate refused, by reason: ReasonNotApproved
// or ReasonManifest.
const MetricRefusals = "aether_model_refusals_total"

// Refusal reasons, the reason label of MetricRefusals.
const (
	ReasonNotApproved = "not_approved"        // the SHA-256 is not in the manifest
	ReasonManifest    = "manifest_unreadable" // the manifest could not be read: nothing is approved
)

// Gate decides whether a model may be loaded: its SHA-256 must be in the
// manifest. It reads the manifest file at every Admit, so approvals made
// while a process runs count for the next model it considers. It is safe
// for concurrent use.
type Gate struct {
	path     string
	log      *slog.Logger
	refusals *prometheus.CounterVec
}

// NewGate returns a Gate for the manifest at path that counts refusals in
// MetricRefusals, registered with reg (nil: not registered; a registry
// that already has the counter, from another Gate, shares it), and logs
// each decision on log (nil: not logged). The manifest is read by Admit,
// not here.
func NewGate(path string, reg prometheus.Registerer, log *slog.Logger) (*Gate, error) {
	if path == "" {
		return nil, errors.New("approval: gate: no manifest path")
	}
	refusals := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRefusals,
		Help: "Models refused before loading because their SHA-256 is not in the approved-models manifest (reason not_approved) or the manifest could not be read (reason manifest_unreadable).",
	}, []string{"reason"})
	if reg != nil {
		if err := reg.Register(refusals); err != nil {
			are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err)
			if !ok {
				return nil, fmt.Errorf("approval: gate: %w", err)
			}
			if refusals, ok = are.ExistingCollector.(*prometheus.CounterVec); !ok {
				return nil, fmt.Errorf("approval: gate: %s is registered as another kind of collector", MetricRefusals)
			}
		}
	}
	for _, r := range []string{ReasonNotApproved, ReasonManifest} {
		refusals.WithLabelValues(r) // export zeros
	}
	return &Gate{path: path, log: log, refusals: refusals}, nil
}

// Path is the manifest's path.
func (g *Gate) Path() string { return g.path }

// Admit returns the approval of the model meta describes (meta.SHA256 must
// be model.onnx's actual SHA-256: see store.Verify). A model not in the
// manifest is refused with a *NotApprovedError naming its SHA-256, version
// and the manifest; an unreadable or missing manifest refuses every
// model, with the reading error. Refusals are counted; every decision is
// logged as a model_change event with action load.
func (g *Gate) Admit(meta model.Metadata, source string) (Entry, error) {
	change := Change{Action: ActionLoad, SHA256: meta.SHA256, Version: meta.Version, Manifest: g.path, Source: source}
	refuse := func(reason string, err error) (Entry, error) {
		g.refusals.WithLabelValues(reason).Inc()
		change.Outcome, change.Reason = OutcomeRefused, err.Error()
		change.Log(g.log)
		return Entry{}, err
	}
	m, err := Load(g.path)
	if err != nil {
		return refuse(ReasonManifest, fmt.Errorf("model sha256 %s (version %s) refused: no approved-models manifest to check it against: %w",
			meta.SHA256, meta.Version, err))
	}
	e, err := m.Check(meta.SHA256)
	if err != nil {
		if na, ok := errors.AsType[*NotApprovedError](err); ok {
			na.Version = meta.Version
		}
		return refuse(ReasonNotApproved, err)
	}
	change.Outcome, change.By, change.Ticket = OutcomeAdmitted, e.ApprovedBy, e.Ticket
	change.Log(g.log)
	return e, nil
}
