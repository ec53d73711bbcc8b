package config

import (
	"cmp"
	"fmt"
	"time"
)

// ForgetConf configures the deletion of a user's data (runner forget and
// POST /admin/v1/users/{userId}/forget):
//
//	forget:
//	  subjectKeyEnv: AETHER_AUDIT_SUBJECT_KEY # the key of the users' pseudonyms
//	  timeout: 2m                             # waiting for the processors
//
// The receipts go to evidence.receipts, which the deletion control reads
// (Config.ReceiptsDir).
type ForgetConf struct {
	// SubjectKeyEnv names the environment variable holding the HMAC key
	// of the pseudonymous user references in the audit trail (at least
	// MinSubjectKeyBytes). The runner then uses it for both APIs instead
	// of a random per-process key, so that runner forget, another
	// process, finds the user's audit records under the same pseudonym.
	SubjectKeyEnv string `yaml:"subjectKeyEnv"`
	// Timeout bounds the wait for the processors to forget the user
	// (default DefaultForgetTimeout).
	Timeout time.Duration `yaml:"timeout"`
}

// Defaults of ForgetConf.
const (
	DefaultReceiptsDir   = "aether-receipts"
	DefaultForgetTimeout = 2 * time.Minute
	// MinSubjectKeyBytes is the shortest audit subject key accepted.
	MinSubjectKeyBytes = 16
)

// ReceiptsDir is where deletion requests write their receipts, as
// <id>.json: evidence.receipts, which runner evidence reads, or
// DefaultReceiptsDir.
func (c *Config) ReceiptsDir() string { return cmp.Or(c.Evidence.Receipts, DefaultReceiptsDir) }

// Wait returns Timeout or its default; a negative Timeout is an error.
func (f ForgetConf) Wait() (time.Duration, error) {
	if f.Timeout < 0 {
		return 0, &FieldError{Field: "forget.timeout", Reason: fmt.Sprintf("%v is negative", f.Timeout)}
	}
	return cmp.Or(f.Timeout, DefaultForgetTimeout), nil
}

// SubjectKey returns the audit subject key from SubjectKeyEnv, or nil when
// none is configured (a random key per process is then used, and a
// deletion from another process cannot find the user's audit records).
func (f ForgetConf) SubjectKey() ([]byte, error) {
	return envKey("forget.subjectKeyEnv", f.SubjectKeyEnv, MinSubjectKeyBytes)
}
