package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/aetherai/aether/audit"
)

// defaultAuditFile is the trail's file when neither --audit-file nor the
// configuration names one: in the current directory, named for the start.
func defaultAuditFile(now time.Time) string {
	return "aether-audit-" + now.UTC().Format("20060102T150405Z") + ".jsonl"
}

// openAuditFile opens the hash-chained file trail at path (or the default)
// and prints its name. The caller closes it after the pipeline stopped.
func openAuditFile(out io.Writer, path string) (*audit.FileSink, error) {
	if path == "" {
		path = defaultAuditFile(time.Now())
	}
	s, err := audit.OpenFile(path)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "audit trail: %s\n", path)
	return s, nil
}
