package api

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
)

// LoadTLS returns the server TLS configuration of a PEM certificate (chain)
// and key: TLS 1.2 at least, since older versions have no AEAD cipher
// suites and are refused by the standards we are audited against. Both
// files empty means no TLS (nil, nil); one without the other is an error,
// never a silent fall-back to plain HTTP.
func LoadTLS(certFile, keyFile string) (*tls.Config, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case certFile == "" || keyFile == "":
		return nil, errors.New("tls: a certificate and its key go together: give both (http.tls.certFile and keyFile, or --tls-cert and --tls-key) or neither")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}, nil
}

// Listen listens on addr, serving TLS when tlsCfg is not nil. A tlsCfg
// below TLS 1.2 is raised to it.
func Listen(addr string, tlsCfg *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tlsCfg == nil {
		return ln, nil
	}
	return tls.NewListener(ln, minTLS12(tlsCfg)), nil
}

// ListenAdmin is Listen for the admin API: without TLS it refuses any
// address that is not loopback, judged on the address actually bound (a
// host name resolving to a public address is refused too), so that admin
// tokens never cross a network in clear.
func ListenAdmin(addr string, tlsCfg *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		return tls.NewListener(ln, minTLS12(tlsCfg)), nil
	}
	bound := parseHostAddr(ln.Addr().String())
	if !bound.IsLoopback() {
		_ = ln.Close()
		return nil, fmt.Errorf("admin API: %s is not a loopback address: bind it to 127.0.0.1 or ::1 (--admin), or turn TLS on (--tls-cert, --tls-key)", addr)
	}
	return ln, nil
}

func minTLS12(c *tls.Config) *tls.Config {
	if c.MinVersion >= tls.VersionTLS12 {
		return c
	}
	c = c.Clone()
	c.MinVersion = tls.VersionTLS12
	return c
}
