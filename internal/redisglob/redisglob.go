// Package redisglob escapes strings for Redis' glob patterns (SCAN MATCH,
// KEYS), so that a key prefix matches only itself.
package redisglob

import "strings"

// Escape escapes the glob characters of s: Escape(prefix)+"*" matches
// exactly the keys under prefix.
func Escape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]\^`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
