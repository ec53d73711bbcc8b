package broker_test

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/internal/testcert"
)

func TestSecurityValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    broker.Security
		want string
	}{
		{"half client cert", broker.Security{TLS: &broker.TLS{CertFile: "c.pem"}},
			"broker: tls: certFile and keyFile go together (client certificate)"},
		{"skip verify with a CA", broker.Security{TLS: &broker.TLS{CAFile: "ca.pem", InsecureSkipVerify: true}},
			"broker: tls: insecureSkipVerify with a caFile: the CA would be ignored; give one or the other"},
		{"plain without tls", broker.Security{SASL: &broker.SASL{Mechanism: broker.SASLPlain, Username: "u", Password: "p"}},
			"broker: sasl: PLAIN sends the password in clear; it needs tls"},
		{"unknown mechanism", broker.Security{SASL: &broker.SASL{Mechanism: "GSSAPI", Username: "u", Password: "p"}},
			`broker: sasl: unknown mechanism "GSSAPI" (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)`},
		{"empty credentials", broker.Security{SASL: &broker.SASL{Mechanism: broker.SASLScramSHA256}},
			"broker: sasl: empty username\nbroker: sasl: user \"\": empty password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.EqualError(t, tc.s.Validate(), tc.want)
			require.EqualError(t, tc.s.Apply(sarama.NewConfig()), tc.want)
		})
	}
	require.NoError(t, broker.Security{}.Validate())

	_, err := broker.Security{TLS: &broker.TLS{CAFile: "/nonexistent/ca.pem"}}.SaramaConfigs()
	require.EqualError(t, err, "broker: tls: ca file: open /nonexistent/ca.pem: no such file or directory")
	notPEM := filepath.Join(t.TempDir(), "ca.txt")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	_, err = broker.Security{TLS: &broker.TLS{CAFile: notPEM}}.SaramaConfigs()
	require.EqualError(t, err, "broker: tls: ca file: "+notPEM+" holds no PEM certificate")
	_, err = broker.Security{TLS: &broker.TLS{CertFile: notPEM, KeyFile: notPEM}}.SaramaConfigs()
	require.EqualError(t, err, "broker: tls: client certificate: tls: failed to find any PEM data in certificate input")
}

func TestStartRefusesACLsWithoutASuperuser(t *testing.T) {
	_, err := broker.Start(broker.EnableACLs(), broker.User(broker.SASLScramSHA256, "u", "p"))
	require.EqualError(t, err, "broker: EnableACLs needs a Superuser to create the ACLs")
	_, err = broker.Start(broker.User("GSSAPI", "u", "p"))
	require.EqualError(t, err, `broker: SASL user "u": unknown mechanism "GSSAPI" (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)`)
	_, err = broker.Start(broker.ListenTLS(&tls.Config{}))
	require.EqualError(t, err, "broker: ListenTLS: a config with a server certificate is required")
}

// Every mechanism works over TLS against kfake; a wrong password, a client
// without credentials and a client that does not trust the CA are refused.
func TestSecurityAgainstKfake(t *testing.T) {
	ca := testcert.New(t)
	srv := ca.Server(t, "127.0.0.1")
	b, err := broker.Start(
		broker.ListenTLS(&tls.Config{Certificates: []tls.Certificate{srv.TLS}, MinVersion: tls.VersionTLS12}),
		broker.Superuser(broker.SASLScramSHA512, "admin", "admin-pw"),
		broker.User(broker.SASLPlain, "plain", "plain-pw"),
		broker.User(broker.SASLScramSHA256, "s256", "s256-pw"),
		broker.User(broker.SASLScramSHA512, "s512", "s512-pw"),
	)
	require.NoError(t, err)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tlsFiles := &broker.TLS{CAFile: ca.CertFile}

	for _, u := range []broker.SASL{
		{Mechanism: broker.SASLPlain, Username: "plain", Password: "plain-pw"},
		{Mechanism: broker.SASLScramSHA256, Username: "s256", Password: "s256-pw"},
		{Mechanism: broker.SASLScramSHA512, Username: "s512", Password: "s512-pw"},
	} {
		t.Run(u.Mechanism, func(t *testing.T) {
			fn, err := broker.Security{TLS: tlsFiles, SASL: &u}.SaramaConfigs()
			require.NoError(t, err)
			cfg := fn("sec-test")
			require.True(t, cfg.Net.TLS.Enable)
			require.Equal(t, sarama.SASLHandshakeV1, cfg.Net.SASL.Version)
			topic := "t-" + u.Username
			require.NoError(t, broker.EnsureTopic(ctx, b.Addrs(), cfg, broker.TopicSpec{Name: topic, Partitions: 1}))
			p, err := sarama.NewSyncProducer(b.Addrs(), fn("sec-test-producer"))
			require.NoError(t, err)
			_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder("v")})
			require.NoError(t, err)
			require.NoError(t, p.Close())
			msgs, err := broker.Consume(ctx, b.Addrs(), fn("sec-test-consumer"), topic)
			require.NoError(t, err)
			require.Len(t, msgs, 1)
			require.Equal(t, "v", string(msgs[0].Value))
		})
	}

	refused := func(s broker.Security) error {
		fn, err := s.SaramaConfigs()
		require.NoError(t, err)
		cfg := fn("refused")
		cfg.Metadata.Retry.Max = 0
		c, err := sarama.NewClient(b.Addrs(), cfg)
		if err == nil {
			c.Close()
		}
		return err
	}
	err = refused(broker.Security{TLS: tlsFiles, SASL: &broker.SASL{Mechanism: broker.SASLScramSHA512, Username: "s512", Password: "wrong"}})
	require.ErrorIs(t, err, sarama.ErrOutOfBrokers)
	require.Error(t, refused(broker.Security{TLS: tlsFiles}))
	other := testcert.New(t)
	err = refused(broker.Security{TLS: &broker.TLS{CAFile: other.CertFile}, SASL: &broker.SASL{Mechanism: broker.SASLScramSHA512, Username: "s512", Password: "s512-pw"}})
	require.ErrorIs(t, err, sarama.ErrOutOfBrokers)
}
