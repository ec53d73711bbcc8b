package cli

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/aetherai/aether/runner/config"
)

// connectRedis opens the Redis client the configuration describes (ACL
// user, password from the environment, TLS) and pings it, so that a wrong
// address, password or certificate fails at start with the address named
// and no secret shown.
func connectRedis(ctx context.Context, c config.Redis) (*redis.Client, error) {
	password, err := c.ResolvePassword()
	if err != nil {
		return nil, err
	}
	tlsConf, err := c.TLS.Config("redis.tls")
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: c.Addr, Username: c.Username, Password: password,
		DB: c.DB, TLSConfig: tlsConf, ContextTimeoutEnabled: true})
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		scheme := "redis"
		if tlsConf != nil {
			scheme = "rediss"
		}
		return nil, fmt.Errorf("%s://%s: %w", scheme, c.Addr, err)
	}
	return rdb, nil
}
