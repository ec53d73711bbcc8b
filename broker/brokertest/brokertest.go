// Package brokertest starts the in-process Kafka broker of package broker
// for a test.
package brokertest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/broker"
)

// Start starts an in-process broker with opts, as broker.Start does, and
// fails the test if the options are invalid or the broker does not start.
// The broker is closed at the test's cleanup, after the cleanups registered
// later (so after clients started from it are stopped), not when the test
// function returns.
func Start(tb testing.TB, opts ...broker.Option) *broker.Broker {
	tb.Helper()
	b, err := broker.Start(opts...)
	require.NoError(tb, err)
	tb.Cleanup(b.Close)
	return b
}
