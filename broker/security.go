package broker

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"errors"
	"fmt"
	"hash"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"

	"github.com/aetherai/aether/internal/tlsfiles"
)

// SASL mechanisms a Security accepts: the ones Kafka and kfake both serve
// without an external identity provider.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Security is how a client proves who it is to Kafka (SASL) and protects
// the connection (TLS). The zero value is plaintext without
// authentication, which only an embedded or loopback broker should accept.
type Security struct {
	TLS  *TLS  // nil: plaintext
	SASL *SASL // nil: no authentication (the principal is User:ANONYMOUS)
}

// TLS names the files of a TLS connection to Kafka. A TLS block always
// verifies the server's certificate unless InsecureSkipVerify says
// otherwise, and then it must not also name a CA: a verification that
// looks configured but is off is refused.
type TLS struct {
	// CAFile is a PEM bundle of the CAs that sign the brokers'
	// certificates; empty means the system roots.
	CAFile string
	// CertFile and KeyFile are the client certificate for mutual TLS; both
	// or neither.
	CertFile, KeyFile string
	// ServerName is the name to verify when it differs from the broker
	// address's host.
	ServerName string
	// InsecureSkipVerify accepts any server certificate. It exists for
	// throw-away test clusters; the evidence report flags it.
	InsecureSkipVerify bool
}

// checkMechanism refuses a SASL mechanism other than the ones served.
func checkMechanism(m string) error {
	switch m {
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		return nil
	}
	return fmt.Errorf("unknown mechanism %q (want %s, %s or %s)", m, SASLPlain, SASLScramSHA256, SASLScramSHA512)
}

// SASL is a user's credentials and the mechanism that carries them.
// PLAIN sends the password itself, so it is refused without TLS.
type SASL struct {
	Mechanism string // SASLPlain, SASLScramSHA256 or SASLScramSHA512
	Username  string
	Password  string
}

// Validate checks the settings without reading files, naming the field
// at fault.
func (s Security) Validate() error {
	var errs []error
	if t := s.TLS; t != nil {
		if (t.CertFile == "") != (t.KeyFile == "") {
			errs = append(errs, errors.New("broker: tls: certFile and keyFile go together (client certificate)"))
		}
		if t.InsecureSkipVerify && t.CAFile != "" {
			errs = append(errs, errors.New("broker: tls: insecureSkipVerify with a caFile: the CA would be ignored; give one or the other"))
		}
	}
	if a := s.SASL; a != nil {
		if err := checkMechanism(a.Mechanism); err != nil {
			errs = append(errs, fmt.Errorf("broker: sasl: %w", err))
		} else if a.Mechanism == SASLPlain && s.TLS == nil {
			errs = append(errs, errors.New("broker: sasl: PLAIN sends the password in clear; it needs tls"))
		}
		if a.Username == "" {
			errs = append(errs, errors.New("broker: sasl: empty username"))
		}
		if a.Password == "" {
			errs = append(errs, fmt.Errorf("broker: sasl: user %q: empty password", a.Username))
		}
	}
	return errors.Join(errs...)
}

// TLSConfig reads the files and returns the client's tls.Config (TLS 1.2
// or later), or nil without a TLS block.
func (t *TLS) TLSConfig() (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	c, err := tlsfiles.Client(t.CAFile, t.CertFile, t.KeyFile)
	var fe *tlsfiles.Error
	switch {
	case errors.As(err, &fe) && fe.File == tlsfiles.CAFile:
		return nil, fmt.Errorf("broker: tls: ca file: %w", fe.Err)
	case errors.As(err, &fe) && fe.File == tlsfiles.CertFile:
		return nil, fmt.Errorf("broker: tls: client certificate: %w", fe.Err)
	case err != nil:
		return nil, fmt.Errorf("broker: tls: %w", err)
	}
	c.ServerName, c.InsecureSkipVerify = t.ServerName, t.InsecureSkipVerify
	return c, nil
}

// Apply validates s, reads its files and sets cfg's Net.TLS and Net.SASL.
// SASL uses the v1 handshake (SaslAuthenticate requests), which Kafka has
// served since 1.0 and kfake requires.
func (s Security) Apply(cfg *sarama.Config) error {
	fn, err := s.Configure()
	if err != nil {
		return err
	}
	fn(cfg)
	return nil
}

// Configure validates s and reads its files once, and returns a function
// that applies s to a sarama configuration without failing: for building
// a fresh configuration per client (see SaramaConfig) with the files read
// only at start. Each application gets its own copy of the tls.Config.
func (s Security) Configure() (func(*sarama.Config), error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	tc, err := s.TLS.TLSConfig()
	if err != nil {
		return nil, err
	}
	var sasl SASL
	if s.SASL != nil {
		sasl = *s.SASL
	}
	return func(cfg *sarama.Config) {
		if tc != nil {
			cfg.Net.TLS.Enable = true
			cfg.Net.TLS.Config = tc.Clone()
		}
		if sasl.Mechanism == "" {
			return
		}
		cfg.Net.SASL.Enable = true
		cfg.Net.SASL.Handshake = true
		cfg.Net.SASL.Version = sarama.SASLHandshakeV1
		cfg.Net.SASL.User = sasl.Username
		cfg.Net.SASL.Password = sasl.Password
		switch sasl.Mechanism {
		case SASLPlain:
			cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		case SASLScramSHA256:
			cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
			cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: sha256.New} }
		case SASLScramSHA512:
			cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
			cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: sha512.New} }
		}
	}, nil
}

// SaramaConfigs validates s, reads its files once and returns a function
// that makes a fresh SaramaConfig with s applied for each client, the
// shape processors.Sarama and processors.ClientSarama take.
func (s Security) SaramaConfigs() (func(clientID string) *sarama.Config, error) {
	apply, err := s.Configure()
	if err != nil {
		return nil, err
	}
	return func(clientID string) *sarama.Config {
		c := SaramaConfig(clientID)
		apply(c)
		return c
	}, nil
}

// scramClient is sarama's SCRAMClient on xdg-go/scram.
type scramClient struct {
	hash func() hash.Hash
	conv *scram.ClientConversation
}

func (c *scramClient) Begin(user, password, authzID string) error {
	client, err := scram.HashGeneratorFcn(c.hash).NewClient(user, password, authzID)
	if err != nil {
		return fmt.Errorf("broker: scram: %w", err)
	}
	c.conv = client.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }

func (c *scramClient) Done() bool { return c.conv.Done() }
