// Package tlsfiles builds a TLS client configuration from PEM files, for
// the broker's security settings (Kafka clients) and the runner
// configuration's Redis TLS alike; each names a failing file in its own
// terms. (The Elasticsearch client adds its CA to the system's roots
// instead, and keeps its own loader.)
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// The files an Error names, as the configurations name them.
const (
	CAFile   = "caFile"
	CertFile = "certFile"
)

// Error says which file could not be used.
type Error struct {
	// File is CAFile or CertFile.
	File string
	Err  error
}

func (e *Error) Error() string { return e.File + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Client returns a client configuration (TLS 1.2 or later) that trusts the
// PEM certificates of caFile, if given (else the system's roots), and
// presents the key pair certFile and keyFile, if certFile is given.
func Client(caFile, certFile, keyFile string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, &Error{File: CAFile, Err: err}
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, &Error{File: CAFile, Err: fmt.Errorf("%s holds no PEM certificate", caFile)}
		}
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, &Error{File: CertFile, Err: err}
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
