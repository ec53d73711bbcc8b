package report

import (
	"crypto/rand"
	"encoding/hex"
)

// StartRedis is the command that starts the Redis the harnesses (and their
// tests) expect: a redis-server on 127.0.0.1:6379 without persistence.
const StartRedis = `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`

// KeyPrefix returns a Redis key prefix no other run uses, for the keys of
// the named harness: aether:bench:<harness>:<16 hex digits>:. A run
// deletes its keys under it at the end; their TTL bounds what an
// interrupted run leaves.
func KeyPrefix(harness string) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not return errors (Go 1.24+)
	return "aether:bench:" + harness + ":" + hex.EncodeToString(b[:]) + ":"
}
