package cache_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/aetherai/aether/operators/cache"
	"github.com/aetherai/aether/recommend"
)

func ExampleRedis() {
	srv, err := miniredis.Run() // in production: your Redis
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	// ContextTimeoutEnabled lets the cache's per-operation timeout apply.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	defer rdb.Close()

	c, err := cache.Redis(rdb, cache.TTL(30*time.Minute), cache.Registerer(prometheus.NewRegistry()))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	err = c.Put(ctx, recommend.Recommendations{
		UserID: "u-42",
		Items:  []recommend.Item{{ProductID: "p-7", Score: 0.9}},
		Model:  recommend.Model{Version: "v1"},
	})
	if err != nil {
		panic(err)
	}
	r, ok, err := c.Get(ctx, "u-42")
	fmt.Println(ok, err, r.Source, r.Items)
	fmt.Println(c.Key("u-42"), srv.TTL(c.Key("u-42")))
	_, ok, err = c.Get(ctx, "u-43")
	fmt.Println(ok, err)
	// Output:
	// true <nil> cache [{p-7 0.9}]
	// aether:recs:u-42 30m0s
	// false <nil>
}
