package servebench

import (
	"fmt"
	"time"

	"github.com/aetherai/aether/bench/internal/report"
)

func round(x float64, digits int) float64 { return report.Round(x, digits) }

// micros formats d in microseconds: "15.2 us".
func micros(d time.Duration) string { return fmt.Sprintf("%.1f us", d.Seconds()*1e6) }

// millis formats d in milliseconds: "0.412 ms".
func millis(d time.Duration) string { return fmt.Sprintf("%.3f ms", d.Seconds()*1e3) }

func thousands(n int64) string { return report.Thousands(n) }
