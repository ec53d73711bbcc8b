package config

import "time"

// DefaultEvidencePeriod is how often runner run re-evaluates the controls.
const DefaultEvidencePeriod = 5 * time.Minute

// Evidence is the continuous evaluation of the controls that runner run
// does (see runner evidence for a one-off report).
type Evidence struct {
	// Period between evaluations; default 5m. aether_control_status and
	// the admin API's /admin/v1/evidence follow it.
	Period time.Duration `yaml:"period"`
	// Rules is the Prometheus alert rules file whose alerts the controls
	// rely on; empty: deploy/prometheus/alerts.yml in the working
	// directory or a parent.
	Rules string `yaml:"rules"`
	// Receipts is the directory of deletion receipts (runner forget);
	// empty: the deletion control is not evaluated.
	Receipts string `yaml:"receipts"`
}

func (e *Evidence) defaults() {
	if e.Period == 0 {
		e.Period = DefaultEvidencePeriod
	}
}

func (e Evidence) validate(bad func(field, format string, args ...any)) {
	if e.Period < time.Second {
		bad("evidence.period", "must be at least 1s, got %s", e.Period)
	}
}
