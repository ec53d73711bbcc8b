package cli

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/internal/testcert"
	"github.com/aetherai/aether/runner/config"
)

// startTLSRedis starts a real redis-server that speaks only TLS on a free
// loopback port, with a password, and returns its address.
func startTLSRedis(t *testing.T, ca *testcert.CA, password string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server is required in CI: %v", err)
		}
		t.Skip("redis-server is not installed (CI installs it)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	require.NoError(t, l.Close())
	srv := ca.Server(t, "127.0.0.1", "localhost")
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", "0", "--tls-port", port, "--bind", "127.0.0.1",
		"--tls-cert-file", srv.CertFile, "--tls-key-file", srv.KeyFile, "--tls-ca-cert-file", ca.CertFile,
		"--tls-auth-clients", "no", "--requirepass", password, "--save", "", "--appendonly", "no", "--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log"))
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
	t.Fatalf("redis-server with TLS did not start on %s:\n%s", addr, log)
	return ""
}

func TestConnectRedisTLSAndPassword(t *testing.T) {
	ca := testcert.New(t)
	const password = "s3cret-redis-pass"
	addr := startTLSRedis(t, ca, password)
	t.Setenv("AETHER_TEST_REDIS_PASSWORD", password)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	good := config.Redis{Addr: addr, Password: "env:AETHER_TEST_REDIS_PASSWORD", TLS: &config.TLSClient{CAFile: ca.CertFile}}
	rdb, err := connectRedis(ctx, good)
	require.NoError(t, err)
	require.NoError(t, rdb.Set(ctx, "aether:test:tls", "v", time.Minute).Err())
	ttl, err := rdb.TTL(ctx, "aether:test:tls").Result()
	require.NoError(t, err)
	require.Greater(t, ttl, 50*time.Second)
	require.NoError(t, rdb.Close())

	cases := []struct {
		name    string
		cfg     config.Redis
		wantErr string
	}{
		{"plain text to a TLS port", config.Redis{Addr: addr, Password: password}, "redis://" + addr},
		{"unknown CA", config.Redis{Addr: addr, Password: password, TLS: &config.TLSClient{}}, "certificate signed by unknown authority"},
		{"wrong password", config.Redis{Addr: addr, Password: "wrong-pass", TLS: &config.TLSClient{CAFile: ca.CertFile}}, "WRONGPASS"},
		{"unset password variable", config.Redis{Addr: addr, Password: "env:AETHER_TEST_UNSET_VAR", TLS: &config.TLSClient{CAFile: ca.CertFile}},
			"redis.password: environment variable AETHER_TEST_UNSET_VAR is empty"},
		{"half a client certificate", config.Redis{Addr: addr, TLS: &config.TLSClient{CertFile: "x.pem"}},
			"redis.tls: certFile and keyFile go together"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			_, err := connectRedis(ctx, c.cfg)
			require.ErrorContains(t, err, c.wantErr)
			require.NotContains(t, err.Error(), password)
			require.NotContains(t, err.Error(), "wrong-pass")
		})
	}
}
