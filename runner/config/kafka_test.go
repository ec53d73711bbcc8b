package config_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/runner/config"
)

func kafkaFile(security string) string {
	return "kafka:\n  brokers: [k:9093]\n  security:\n" + security + "model: {dir: m}\n"
}

func TestKafkaSecurity(t *testing.T) {
	t.Setenv("AETHER_TEST_SESSIONIZER_PW", "s3cret")
	c, err := config.Parse([]byte(kafkaFile(`    tls: {caFile: ca.pem}
    sasl: {mechanism: SCRAM-SHA-512}
    principals:
      sessionizer: {username: svc-sessionizer, password: env:AETHER_TEST_SESSIONIZER_PW}
      ingest: {username: svc-ingest, password: plain-pw}
`)))
	require.NoError(t, err)
	require.Equal(t, "ca.pem", c.Kafka.Security.TLS.CAFile)
	require.Equal(t, "svc-sessionizer", c.Kafka.Username("sessionizer"))
	require.Equal(t, "aether-recommender", c.Kafka.Username("recommender"))

	user, pass, ok, err := c.Kafka.Credentials("sessionizer")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []string{"svc-sessionizer", "s3cret"}, []string{user, pass})
	_, _, _, err = c.Kafka.Credentials("recommender")
	require.EqualError(t, err, "kafka.security.principals.recommender: no credentials for this role (SASL is on)")

	t.Setenv("AETHER_TEST_SESSIONIZER_PW", "")
	_, _, _, err = c.Kafka.Credentials("sessionizer")
	require.EqualError(t, err, "kafka.security.principals.sessionizer.password: environment variable AETHER_TEST_SESSIONIZER_PW is empty")

	// Without SASL, no credentials are needed.
	c, err = config.Parse([]byte(kafkaFile("    tls: {caFile: ca.pem}\n")))
	require.NoError(t, err)
	_, _, ok, err = c.Kafka.Credentials("sessionizer")
	require.NoError(t, err)
	require.False(t, ok)
}

func TestKafkaSecurityErrorsNameTheField(t *testing.T) {
	for security, want := range map[string]string{
		"    sasl: {mechanism: PLAIN}\n":                                                  "kafka.security.sasl.mechanism: PLAIN sends passwords in clear: it needs kafka.security.tls",
		"    sasl: {mechanism: GSSAPI}\n":                                                 `kafka.security.sasl.mechanism: unknown mechanism "GSSAPI" (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)`,
		"    principals: {ingest: {username: u, password: p}}\n":                          "kafka.security.sasl.mechanism: principals are given but no mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)",
		"    tls: {certFile: c.pem}\n":                                                    "kafka.security.tls: certFile and keyFile go together (client certificate)",
		"    tls: {insecureSkipVerify: true}\n":                                           "field insecureSkipVerify not found in type config.TLSClient",
		"    sasl: {mechanism: SCRAM-SHA-256}\n    principals: {ingest: {username: u}}\n": "kafka.security.principals.ingest.password: is empty (give it or env:NAME)",
	} {
		_, err := config.Parse([]byte(kafkaFile(security)))
		require.ErrorContains(t, err, want, security)
	}
}

func TestKafkaSaramaPerRole(t *testing.T) {
	t.Setenv("AETHER_TEST_INGEST_PW", "ingest-pw")
	c, err := config.Parse([]byte(kafkaFile(`    sasl: {mechanism: SCRAM-SHA-256}
    principals:
      ingest: {username: svc-ingest, password: env:AETHER_TEST_INGEST_PW}
`)))
	require.NoError(t, err)
	fn, err := c.Kafka.Sarama("ingest")
	require.NoError(t, err)
	sc := fn("emitter")
	require.Equal(t, "emitter", sc.ClientID)
	require.True(t, sc.Net.SASL.Enable)
	require.Equal(t, []string{"svc-ingest", "ingest-pw", "SCRAM-SHA-256"}, []string{sc.Net.SASL.User, sc.Net.SASL.Password, string(sc.Net.SASL.Mechanism)})
	require.NotNil(t, sc.Net.SASL.SCRAMClientGeneratorFunc)
	require.False(t, sc.Net.TLS.Enable)
	require.NotSame(t, sc, fn("emitter"), "a fresh configuration per client")

	_, err = c.Kafka.Sarama("views")
	require.EqualError(t, err, "kafka.security.principals.views: no credentials for this role (SASL is on)")

	c, err = config.Parse([]byte(kafkaFile("    tls: {caFile: /nonexistent/ca.pem}\n")))
	require.NoError(t, err)
	_, err = c.Kafka.Sarama("views")
	require.EqualError(t, err, "kafka.security: role views: broker: tls: ca file: open /nonexistent/ca.pem: no such file or directory")

	// No security block: plaintext, no SASL.
	c, err = config.Parse([]byte("kafka: {brokers: [k:9092]}\nmodel: {dir: m}\n"))
	require.NoError(t, err)
	fn, err = c.Kafka.Sarama("views")
	require.NoError(t, err)
	require.False(t, fn("v").Net.SASL.Enable)
}
