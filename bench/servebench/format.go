package servebench

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// micros formats d in microseconds: "15.2 us".
func micros(d time.Duration) string { return fmt.Sprintf("%.1f us", d.Seconds()*1e6) }

// millis formats d in milliseconds: "0.412 ms".
func millis(d time.Duration) string { return fmt.Sprintf("%.3f ms", d.Seconds()*1e3) }

// thousands formats n with comma separators: 95000 -> "95,000".
func thousands(n int64) string {
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
