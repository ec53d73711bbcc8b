package api

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aetherai/aether/internal/testcert"
)

// selfSigned makes a certificate for 127.0.0.1 signed by a throw-away CA
// and returns its files and a pool trusting the CA.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	ca := testcert.New(t)
	srv := ca.Server(t, "127.0.0.1")
	return srv.CertFile, srv.KeyFile, ca.Pool()
}

// serve runs h on ln until the test ends and returns its base URL.
func serve(t *testing.T, ln net.Listener, h http.Handler) string {
	t.Helper()
	// Handshake failures are expected: keep them out of the test log.
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return "https://" + ln.Addr().String()
}

func tlsClient(pool *x509.CertPool, minV, maxV uint16) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: minV, MaxVersion: maxV},
	}}
}

// The API over HTTPS: a TLS 1.2 (and 1.3) client is served, a TLS 1.1
// client refused at the handshake.
func TestTLSMinimumVersion(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	cfg, err := LoadTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("MinVersion %x", cfg.MinVersion)
	}
	ln, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	base := serve(t, ln, f.srv)

	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		resp, err := tlsClient(pool, v, v).Get(base + "/healthz")
		if err != nil {
			t.Fatalf("TLS %x: %v", v, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != `{"status":"ok"}` || resp.TLS.Version != v {
			t.Errorf("TLS %x: %d %s", v, resp.StatusCode, b)
		}
	}
	_, err = tlsClient(pool, tls.VersionTLS11, tls.VersionTLS11).Get(base + "/healthz")
	// "remote error": the server refused, not the client.
	if err == nil || !strings.Contains(err.Error(), "remote error: tls: protocol version not supported") {
		t.Errorf("TLS 1.1 client: %v, want the server's protocol version alert", err)
	}
	// A plain-HTTP client gets no API.
	resp, err := http.Get(strings.Replace(base, "https", "http", 1) + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served")
		}
	}
	// A weaker configuration handed to Listen is raised to TLS 1.2.
	weak := cfg.Clone()
	weak.MinVersion = tls.VersionTLS10
	ln2, err := Listen("127.0.0.1:0", weak)
	if err != nil {
		t.Fatal(err)
	}
	base2 := serve(t, ln2, f.srv)
	if _, err := tlsClient(pool, tls.VersionTLS11, tls.VersionTLS11).Get(base2 + "/healthz"); err == nil {
		t.Error("TLS 1.1 accepted by a listener given MinVersion 1.0")
	}
}

func TestLoadTLSHalfConfig(t *testing.T) {
	certFile, keyFile, _ := selfSigned(t)
	if c, err := LoadTLS("", ""); c != nil || err != nil {
		t.Errorf("no TLS: %v %v", c, err)
	}
	const half = "tls: a certificate and its key go together: give both (http.tls.certFile and keyFile, or --tls-cert and --tls-key) or neither"
	for _, files := range [][2]string{{certFile, ""}, {"", keyFile}} {
		if _, err := LoadTLS(files[0], files[1]); err == nil || err.Error() != half {
			t.Errorf("%q: %v", files, err)
		}
	}
	if _, err := LoadTLS(certFile, certFile); err == nil {
		t.Error("a certificate as its own key loaded")
	}
}
