//go:build !unix

package pipebench

import "time"

// processCPU is not available here: CPU per event is reported as 0.
func processCPU() (time.Duration, bool) { return 0, false }
