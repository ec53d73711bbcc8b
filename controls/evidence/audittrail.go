package evidence

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/aetherai/aether/audit"
)

// AuditTrail is the control that the audit trail file at path is intact
// and alive: audit.VerifyFile must pass (a broken chain fails naming the
// record the verifier names), and, when maxAge > 0, its last record must
// be at most maxAge old (an older one means nothing is being audited: the
// trail stalled).
func AuditTrail(path string, maxAge time.Duration) Check {
	c := AuditTrailFunc("file "+path, maxAge, func(context.Context) (audit.Report, time.Time, error) {
		rep, err := audit.VerifyFile(path)
		return rep, rep.LastTime, err
	})
	return c
}

// AuditTrailFunc is AuditTrail for any sink: verify checks the trail
// (returning a *audit.Problem when it is broken) and returns the time of
// its last record (zero when it is empty). source names the trail for the
// report ("file /var/log/aether/audit.jsonl", "elasticsearch aether-audit-*").
func AuditTrailFunc(source string, maxAge time.Duration, verify func(ctx context.Context) (audit.Report, time.Time, error)) Check {
	return Check{
		ID:       "audit_trail",
		Title:    "The audit trail is complete, unaltered and current",
		Criteria: []string{"CC7.2"},
		Run: func(ctx context.Context) Result {
			return auditTrail(ctx, source, maxAge, verify)
		},
	}
}

func auditTrail(ctx context.Context, source string, maxAge time.Duration, verify func(context.Context) (audit.Report, time.Time, error)) Result {
	declared := "the trail (" + source + ") verifies from its first record"
	if maxAge > 0 {
		declared += fmt.Sprintf(" and its last record is at most %s old", human(maxAge))
	}
	if verify == nil {
		return errResult(declared, "no verifier was given")
	}
	rep, last, err := verify(ctx)
	var p *audit.Problem
	switch {
	case errors.As(err, &p):
		where := fmt.Sprintf("line %d", p.Line)
		if p.Seq != 0 {
			where = fmt.Sprintf("record seq %d (line %d)", p.Seq, p.Line)
		}
		return fail(declared, fmt.Sprintf("chain broken at %s after %d intact records", where, rep.Records),
			fmt.Sprintf("%s: %s: %s", where, p.Kind, p.Detail))
	case errors.Is(err, fs.ErrNotExist):
		return fail(declared, "no trail", "the audit trail does not exist: "+err.Error())
	case err != nil:
		return errResult(declared, "the trail could not be verified: "+err.Error())
	}
	live := fmt.Sprintf("%d records, chain intact (%d redacted), last seq %d", rep.Records, rep.Redacted, rep.LastSeq)
	details := []string{"last hash " + rep.LastHash}
	if !last.IsZero() {
		live += ", last at " + last.UTC().Format(time.RFC3339)
	}
	if maxAge > 0 {
		if rep.Records == 0 || last.IsZero() {
			return fail(declared, live, "the trail holds no record: nothing is being audited", details...)
		}
		if age := time.Since(last); age > maxAge {
			return fail(declared, live, fmt.Sprintf("the trail stalled: its last record is %s old, more than %s",
				human(age.Round(time.Second)), human(maxAge)), details...)
		}
	}
	return pass(declared, live, "the hash chain verifies", details...)
}
