package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/controls/evidence"
	"github.com/aetherai/aether/runner"
	"github.com/aetherai/aether/runner/config"
)

// runEvidence re-evaluates the controls every evidence.period while the
// pipeline runs, so that a control that stops holding (a grant widened by
// hand, a key written without a TTL) turns aether_control_status red
// within one period. The latest report is on the admin API at
// /admin/v1/evidence (HTML) and /admin/v1/evidence.json. stop ends the
// schedule.
func runEvidence(ctx context.Context, out io.Writer, cfg *config.Config, trail audit.Sink, run *runner.Running,
	served func(context.Context) (string, string, error), reg prometheus.Registerer) (stop func(), err error) {
	ecfg := *cfg
	if fs, ok := trail.(*audit.FileSink); ok {
		ecfg.Audit.File = fs.Path()
	}
	ef := evidenceFlags{rules: cfg.Evidence.Rules, receipts: cfg.ReceiptsDir(), auditMaxAge: 24 * time.Hour,
		timeout: evidence.DefaultTimeout, requireAlerts: defaultRequiredAlerts, served: served}
	checks, skipped, closeChecks := buildEvidenceChecks(ctx, &ecfg, ef)
	s, err := evidence.NewScheduler(checks, evidence.Period(cfg.Evidence.Period), evidence.Registerer(reg),
		evidence.NotEvaluated(skipped...), evidence.ConfigDigest(configDigest(cfg)), evidence.Timeout(ef.timeout))
	if err != nil {
		closeChecks()
		return nil, err
	}
	where := "aether_control_status on /metrics"
	if run.Admin != nil {
		for _, p := range []string{"GET /admin/v1/evidence", "GET /admin/v1/evidence.json"} {
			if err := run.Admin.Handle(p, s.Handler()); err != nil {
				closeChecks()
				return nil, err
			}
		}
		where += ", the report on the admin API at /admin/v1/evidence"
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Run(sctx)
	}()
	fmt.Fprintf(out, "controls evaluated every %s: %s\n", cfg.Evidence.Period, where)
	return func() {
		cancel()
		<-done
		closeChecks()
	}, nil
}
