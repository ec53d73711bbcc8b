package cli

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/internal/redistest"
	"github.com/aetherai/aether/internal/testcert"
	"github.com/aetherai/aether/runner/config"
)

func TestConnectRedisTLSAndPassword(t *testing.T) {
	ca := testcert.New(t)
	const password = "s3cret-redis-pass"
	// The password is set once the server answers, so that StartTLS's
	// readiness check needs none.
	srv := redistest.StartTLS(t, ca)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, srv.ConfigSet(ctx, "requirepass", password).Err())
	addr := srv.Options().Addr
	t.Setenv("AETHER_TEST_REDIS_PASSWORD", password)

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
