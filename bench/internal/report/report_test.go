package report

import (
	"regexp"
	"testing"
)

func TestThousandsAndRound(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 95000: "95,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := Thousands(n); got != want {
			t.Errorf("Thousands(%d) = %q, want %q", n, got, want)
		}
	}
	if got := Round(0.92294, 3); got != 0.923 {
		t.Errorf("Round = %v", got)
	}
}

func TestKeyPrefix(t *testing.T) {
	a, b := KeyPrefix("serve"), KeyPrefix("serve")
	if !regexp.MustCompile(`^aether:bench:serve:[0-9a-f]{16}:$`).MatchString(a) {
		t.Errorf("KeyPrefix = %q", a)
	}
	if a == b {
		t.Errorf("two runs share the prefix %q", a)
	}
}
