package store

import (
	"cmp"
	"slices"
	"strings"
)

// sortNatural sorts names so that runs of digits compare as numbers
// (v2 < v10); names that differ only in leading zeros fall back to byte
// order, so the order is total.
func sortNatural(names []string) {
	slices.SortFunc(names, func(a, b string) int {
		if c := compareNatural(a, b); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
}

func compareNatural(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := cmp.Compare(len(na), len(nb)); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if c := cmp.Compare(a[0], b[0]); c != 0 {
			return c
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}
