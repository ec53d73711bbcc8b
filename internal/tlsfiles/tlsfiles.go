// Package tlsfiles builds a TLS client configuration from PEM files, for
// the broker's security settings and the runner configuration's (Redis,
// Elasticsearch) alike; each names a failing file in its own terms.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// Error says which file could not be used.
type Error struct {
	// File is "caFile" or "certFile", as the configurations name them.
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
			return nil, &Error{File: "caFile", Err: err}
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, &Error{File: "caFile", Err: fmt.Errorf("%s holds no PEM certificate", caFile)}
		}
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, &Error{File: "certFile", Err: err}
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
