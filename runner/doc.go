// Package runner will hold the runner library and its binary
// (runner/cmd/runner): configuration, connections, embedded stand-ins, the
// HTTP APIs and the operator commands. Until it lands, the reference
// pipeline runs with `go run ./examples/recommendations`.
package runner
