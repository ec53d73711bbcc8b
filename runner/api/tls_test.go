package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// to dir and returns their paths and a pool trusting the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "aether test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
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
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
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
	certFile, keyFile, _ := selfSigned(t, t.TempDir())
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
