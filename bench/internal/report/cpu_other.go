//go:build !unix

package report

import "time"

// ProcessCPU is not available here: the harnesses report CPU as 0.
func ProcessCPU() (time.Duration, bool) { return 0, false }
