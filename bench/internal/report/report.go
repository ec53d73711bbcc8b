// Package report holds what the harnesses share: numbers formatted the same
// way in every harness, the process's CPU time, and the Redis they use (the
// command that starts it, a key prefix per run).
package report

import (
	"math"
	"strconv"
)

// Round rounds x to the given number of decimal digits.
func Round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// Thousands formats n with comma separators: 95000 -> "95,000".
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	if neg {
		out = append(out, '-')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
