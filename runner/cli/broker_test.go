package cli_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The security flags are checked before the broker starts (and blocks).
func TestBrokerSecurityFlagErrors(t *testing.T) {
	t.Setenv("AETHER_TEST_EMPTY", "")
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"--tls-cert", "c.pem"}, 2, "runner: broker: --tls-cert and --tls-key go together\n"},
		{[]string{"--user", "alice"}, 2, "runner: broker: --user \"alice\": want NAME=SECRET\n"},
		{[]string{"--superuser", "root=env:AETHER_TEST_EMPTY"}, 2, "runner: broker: --superuser root: environment variable AETHER_TEST_EMPTY is empty\n"},
		{[]string{"--user", "alice=pw", "--sasl-mechanism", "PLAIN"}, 2, "runner: broker: --sasl-mechanism PLAIN sends passwords in clear: give --tls-cert\n"},
		{[]string{"--user", "alice=pw", "--acls"}, 1, "runner: broker: EnableACLs needs a Superuser to create the ACLs\n"},
		{[]string{"--user", "alice=pw", "--sasl-mechanism", "GSSAPI"}, 1, "runner: broker: SASL user \"alice\": unknown mechanism \"GSSAPI\" (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)\n"},
	} {
		code, _, stderr := run(append([]string{"broker", "--listen", "127.0.0.1:0"}, tc.args...)...)
		require.Equal(t, tc.code, code, tc.args)
		require.Equal(t, tc.stderr, stderr, tc.args)
	}
}
