package config

import (
	"crypto/tls"
	"errors"

	"github.com/aetherai/aether/internal/tlsfiles"
)

// TLSClient is how Aether connects to a server over TLS: the CA that signs
// the server's certificate (empty: the system roots), an optional client
// certificate for mutual TLS, and the name to verify when it differs from
// the address. A connection with a TLSClient block is TLS 1.2 or later;
// without one it is plain text, which `runner evidence` reports.
type TLSClient struct {
	CAFile     string `yaml:"caFile"`
	CertFile   string `yaml:"certFile"`
	KeyFile    string `yaml:"keyFile"`
	ServerName string `yaml:"serverName"`
}

// Config builds the tls.Config; field names the block in errors
// ("redis.tls").
func (t *TLSClient) Config(field string) (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, &FieldError{Field: field, Reason: "certFile and keyFile go together (client certificate)"}
	}
	c, err := tlsfiles.Client(t.CAFile, t.CertFile, t.KeyFile)
	if fe := (*tlsfiles.Error)(nil); errors.As(err, &fe) {
		return nil, &FieldError{Field: field + "." + fe.File, Reason: fe.Err.Error()}
	} else if err != nil {
		return nil, &FieldError{Field: field, Reason: err.Error()}
	}
	c.ServerName = t.ServerName
	return c, nil
}

// validate reports a half client certificate without reading files, so
// that `runner describe` can check a file written for another machine.
func (t *TLSClient) validate(field string, bad func(field, format string, args ...any)) {
	if t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		bad(field, "certFile and keyFile go together (client certificate)")
	}
}

// ResolvePassword returns the Redis password, reading "env:NAME" from the
// environment.
func (r Redis) ResolvePassword() (string, error) {
	return resolveSecret("redis.password", r.Password)
}
