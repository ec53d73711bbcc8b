// Package redistest connects tests to the real redis-server that CI and
// the development machines run, and keeps their keys apart.
package redistest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aetherai/aether/internal/redisglob"
	"github.com/aetherai/aether/internal/testcert"
)

// Addr is where CI and the development machines run redis-server.
const Addr = "127.0.0.1:6379"

const startRedis = `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`

// Real connects to the redis-server at Addr. If it is not reachable the
// test fails when CI is set and is skipped otherwise, saying how to start
// it.
func Real(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: Addr, ContextTimeoutEnabled: true, DialTimeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		msg := fmt.Sprintf("redis-server must run on %s for this test (%v); start it with: %s", Addr, err, startRedis)
		if os.Getenv("CI") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// UniquePrefix returns a key prefix no other test or process uses, free of
// glob characters.
func UniquePrefix(tb testing.TB) string {
	name := strings.Map(func(r rune) rune {
		if strings.ContainsRune(`*?[]\ `, r) {
			return '_'
		}
		return r
	}, tb.Name())
	return fmt.Sprintf("aether:test:%s:%d:%d:", name, os.Getpid(), time.Now().UnixNano())
}

// ScanKeys lists the keys under prefix with SCAN MATCH (the prefix taken
// literally, glob characters escaped).
func ScanKeys(tb testing.TB, c redis.UniversalClient, prefix string) []string {
	tb.Helper()
	var keys []string
	iter := c.Scan(context.Background(), 0, redisglob.Escape(prefix)+"*", 1000).Iterator()
	for iter.Next(context.Background()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		tb.Fatalf("SCAN %s*: %v", prefix, err)
	}
	return keys
}

// CleanupPrefix unlinks every key under prefix when the test ends, and
// fails the test if any is left.
func CleanupPrefix(tb testing.TB, c redis.UniversalClient, prefix string) {
	tb.Cleanup(func() {
		if keys := ScanKeys(tb, c, prefix); len(keys) > 0 {
			if err := c.Unlink(context.Background(), keys...).Err(); err != nil {
				tb.Errorf("UNLINK under %q: %v", prefix, err)
			}
		}
		if keys := ScanKeys(tb, c, prefix); len(keys) > 0 {
			tb.Errorf("keys left under %q: %v", prefix, keys)
		}
	})
}

// Start runs a private redis-server on a free loopback port, with extra
// arguments after the defaults (no persistence, so later ones override
// them), for tests that need a server configured their own way; it is
// killed when the test ends. It fails under CI and skips elsewhere when
// redis-server is not installed.
func Start(tb testing.TB, extra ...string) *redis.Client {
	tb.Helper()
	return start(tb, nil, nil, extra)
}

// StartTLS is Start for a server that speaks only TLS, with a certificate
// from ca for 127.0.0.1 and localhost; clients need not present one. The
// client it returns trusts ca.
func StartTLS(tb testing.TB, ca *testcert.CA, extra ...string) *redis.Client {
	tb.Helper()
	srv := ca.Server(tb, "127.0.0.1", "localhost")
	tlsArgs := []string{"--tls-cert-file", srv.CertFile, "--tls-key-file", srv.KeyFile,
		"--tls-ca-cert-file", ca.CertFile, "--tls-auth-clients", "no"}
	return start(tb, tlsArgs, &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}, extra)
}

// start runs redis-server with its port for plain text, or with tlsConf
// for TLS only (tlsArgs naming its files), and waits until it answers.
func start(tb testing.TB, tlsArgs []string, tlsConf *tls.Config, extra []string) *redis.Client {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("redis-server is required in CI: %v", err)
		}
		tb.Skip("redis-server is not installed (CI installs it)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	_ = l.Close()
	dir := tb.TempDir()
	args := []string{"--port", port}
	if tlsConf != nil {
		args = append([]string{"--port", "0", "--tls-port", port}, tlsArgs...)
	}
	args = append(append(args, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log")), extra...)
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, DialTimeout: time.Second, TLSConfig: tlsConf})
	tb.Cleanup(func() { _ = c.Close() })
	for range 100 {
		if c.Ping(context.Background()).Err() == nil {
			return c
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
	tb.Fatalf("redis-server %v did not start on %s:\n%s", extra, addr, log)
	return nil
}
