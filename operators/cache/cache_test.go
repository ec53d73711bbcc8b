package cache_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/operators/cache"
)

func TestOptions(t *testing.T) {
	_, client := newMini(t)
	noCtxTimeout := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = noCtxTimeout.Close() })

	cases := []struct {
		name   string
		client redis.UniversalClient
		opts   []cache.Option
		want   error
		msg    string
	}{
		{name: "defaults", client: client},
		{name: "all set", client: client, opts: []cache.Option{cache.TTL(24 * time.Hour), cache.KeyPrefix("x:"), cache.Timeout(time.Second), cache.Registerer(prometheus.NewRegistry())}},
		{name: "nil client", want: cache.ErrInvalidOption, msg: "nil redis client"},
		{name: "zero TTL", client: client, opts: []cache.Option{cache.TTL(0)}, want: cache.ErrInvalidOption, msg: "at least 1s"},
		{name: "negative TTL", client: client, opts: []cache.Option{cache.TTL(-time.Hour)}, want: cache.ErrInvalidOption, msg: "at least 1s"},
		{name: "sub-second TTL", client: client, opts: []cache.Option{cache.TTL(500 * time.Millisecond)}, want: cache.ErrInvalidOption, msg: "at least 1s"},
		{name: "fractional TTL", client: client, opts: []cache.Option{cache.TTL(1500 * time.Millisecond)}, want: cache.ErrInvalidOption, msg: "whole number of seconds"},
		{name: "empty prefix", client: client, opts: []cache.Option{cache.KeyPrefix("")}, want: cache.ErrInvalidOption, msg: "empty key prefix"},
		{name: "glob prefix", client: client, opts: []cache.Option{cache.KeyPrefix("recs:*:")}, want: cache.ErrInvalidOption, msg: "glob"},
		{name: "bracket prefix", client: client, opts: []cache.Option{cache.KeyPrefix("recs[1]:")}, want: cache.ErrInvalidOption, msg: "glob"},
		{name: "zero timeout", client: client, opts: []cache.Option{cache.Timeout(0)}, want: cache.ErrInvalidOption, msg: "must be positive"},
		{name: "nil registerer", client: client, opts: []cache.Option{cache.Registerer(nil)}, want: cache.ErrInvalidOption, msg: "nil prometheus.Registerer"},
		{name: "nil option", client: client, opts: []cache.Option{nil}, want: cache.ErrInvalidOption, msg: "nil option"},
		{name: "every error reported", client: client, opts: []cache.Option{cache.TTL(0), cache.Timeout(-1)}, want: cache.ErrInvalidOption, msg: "must be positive"},
		{name: "context timeout off", client: noCtxTimeout, want: cache.ErrContextTimeoutDisabled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cache.Redis(tc.client, tc.opts...)
			if tc.want == nil {
				require.NoError(t, err)
				require.NotNil(t, c)
				return
			}
			require.ErrorIs(t, err, tc.want)
			require.ErrorContains(t, err, tc.msg)
			require.Nil(t, c)
		})
	}

	t.Run("default values", func(t *testing.T) {
		c, err := cache.Redis(client)
		require.NoError(t, err)
		require.Equal(t, time.Hour, c.TTL())
		require.Equal(t, "aether:recs:", c.Prefix())
		require.Equal(t, "aether:recs:u-42", c.Key("u-42"))
	})

	t.Run("metrics registered twice", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		_, err := cache.Redis(client, cache.Registerer(reg))
		require.NoError(t, err)
		_, err = cache.Redis(client, cache.Registerer(reg))
		var are prometheus.AlreadyRegisteredError
		require.True(t, errors.As(err, &are), "got %v", err)
	})
}

// TestCommands checks what the cache sends: SET key value EX ttl, one
// pipeline for a Put of many users.
func TestCommands(t *testing.T) {
	s, client := newMini(t)
	rec := &recorder{}
	client.AddHook(rec)
	c, err := cache.Redis(client, cache.TTL(2*time.Hour))
	require.NoError(t, err)
	ctx := context.Background()

	one := recs(1, 2)[0]
	require.NoError(t, c.Put(ctx, one))
	require.NoError(t, c.Put(ctx, recs(100, 2)...))

	var sets [][]any
	for _, args := range rec.singles {
		if args[0] == "set" {
			sets = append(sets, args)
		}
	}
	require.Len(t, sets, 1)
	require.Equal(t, []any{"set", "aether:recs:u-0", sets[0][2], "ex", int64(7200)}, sets[0])
	var pipelines [][][]any // without the client's connection set-up
	for _, p := range rec.pipelines {
		if p[0][0] != "client" {
			pipelines = append(pipelines, p)
		}
	}
	require.Equal(t, 1, len(pipelines), "a Put of many users is one pipeline")
	require.Equal(t, 100, len(pipelines[0]))
	for i, args := range pipelines[0] {
		require.Equal(t, []any{"set", c.Key(recs(100, 2)[i].UserID), args[2], "ex", int64(7200)}, args)
	}
	require.JSONEq(t, `{"userId":"u-0","items":[{"productId":"p-0","score":0.33333334},{"productId":"p-7","score":0.25}],
		"model":{"version":"v7","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		"source":"inference","generatedAt":"2026-03-14T15:09:26.535897932Z"}`, string(sets[0][2].([]byte)))
	require.Len(t, s.Keys(), 100)
	for _, k := range s.Keys() {
		require.Equal(t, 2*time.Hour, s.TTL(k), k)
	}
}

func TestExpiry(t *testing.T) {
	s, client := newMini(t)
	c, err := cache.Redis(client, cache.TTL(time.Minute))
	require.NoError(t, err)
	ctx := context.Background()
	r := recs(1, 3)[0]
	require.NoError(t, c.Put(ctx, r))
	require.Equal(t, time.Minute, s.TTL(c.Key(r.UserID)))

	s.FastForward(59 * time.Second)
	_, ok, err := c.Get(ctx, r.UserID)
	require.NoError(t, err)
	require.True(t, ok, "alive 1s before its TTL")

	require.NoError(t, c.Put(ctx, r), "a new Put resets the TTL")
	require.Equal(t, time.Minute, s.TTL(c.Key(r.UserID)))
	s.FastForward(59 * time.Second)
	_, ok, err = c.Get(ctx, r.UserID)
	require.NoError(t, err)
	require.True(t, ok)

	s.FastForward(time.Second)
	got, ok, err := c.Get(ctx, r.UserID)
	require.NoError(t, err)
	require.False(t, ok, "expired")
	require.Zero(t, got)
	require.Empty(t, s.Keys())
}

func TestMetrics(t *testing.T) {
	s, client := newMini(t)
	reg := prometheus.NewRegistry()
	c, err := cache.Redis(client, cache.Registerer(reg))
	require.NoError(t, err)
	ctx := context.Background()

	rs := recs(3, 2)
	require.NoError(t, c.Put(ctx, rs...))             // pipeline
	require.NoError(t, c.Put(ctx, rs[0]))             // set
	for _, u := range []string{"u-0", "u-1", "u-0"} { // 3 hits
		_, ok, err := c.Get(ctx, u)
		require.NoError(t, err)
		require.True(t, ok)
	}
	for _, u := range []string{"x", "y"} { // 2 misses
		_, ok, err := c.Get(ctx, u)
		require.NoError(t, err)
		require.False(t, ok)
	}
	require.NoError(t, s.Set(c.Key("bad"), "{"))
	_, _, err = c.Get(ctx, "bad") // malformed
	require.ErrorIs(t, err, cache.ErrMalformed)

	s.SetError("LOADING Redis is loading the dataset in memory")
	_, _, err = c.Get(ctx, "u-0")
	require.ErrorContains(t, err, "LOADING")
	require.ErrorContains(t, c.Put(ctx, rs[0]), "LOADING")
	require.ErrorContains(t, c.Put(ctx, rs...), "LOADING")
	require.ErrorContains(t, c.Put(ctx, rs...), "LOADING")
	s.SetError("")
	n, err := c.Forget(ctx, "u-0") // del
	require.NoError(t, err)
	require.Equal(t, 1, n)

	require.Equal(t, map[string]float64{
		"aether_redis_command_duration_seconds{operation=del}":      1,
		"aether_redis_errors_total{operation=del}":                  0,
		"aether_redis_command_duration_seconds{operation=get}":      7,
		"aether_redis_command_duration_seconds{operation=set}":      2,
		"aether_redis_command_duration_seconds{operation=pipeline}": 3,
		"aether_redis_errors_total{operation=get}":                  1,
		"aether_redis_errors_total{operation=set}":                  1,
		"aether_redis_errors_total{operation=pipeline}":             2,
		"aether_cache_hits_total":                                   3,
		"aether_cache_misses_total":                                 2,
		"aether_cache_malformed_values_total":                       1,
	}, metricValues(t, reg))
}

// TestRedisErrors checks the errors of a failing Redis: wrapped, naming
// the key, and for a pipeline how many SETs failed.
func TestRedisErrors(t *testing.T) {
	s, client := newMini(t)
	c, err := cache.Redis(client)
	require.NoError(t, err)
	ctx := context.Background()

	require.NoError(t, s.Set(c.Key("u-1"), "x"))
	_, err = s.Lpush(c.Key("u-list"), "x")
	require.NoError(t, err)
	_, _, err = c.Get(ctx, "u-list")
	require.ErrorContains(t, err, `cache: get "aether:recs:u-list": WRONGTYPE`)
	require.NotErrorIs(t, err, cache.ErrMalformed)

	s.SetError("ERR boom")
	err = c.Put(ctx, recs(5, 1)...)
	require.ErrorContains(t, err, `cache: put 5 users: 5 SETs failed, the first at key "aether:recs:u-0": ERR boom`)
	var rerr redis.Error
	require.True(t, errors.As(err, &rerr), "the Redis error is wrapped")
	s.SetError("")

	_, _, err = c.Get(ctx, "")
	require.ErrorContains(t, err, "empty user ID")

	s.Close()
	_, _, err = c.Get(ctx, "u-1")
	require.Error(t, err)
	require.Error(t, c.Put(ctx, recs(1, 1)...))
}

// TestTimeout checks that Timeout bounds Get and Put against a server
// that accepts connections and never answers.
func TestTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	client := redis.NewClient(&redis.Options{
		Addr: ln.Addr().String(), ContextTimeoutEnabled: true, MaxRetries: -1,
		DialTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
	})
	t.Cleanup(func() { _ = client.Close() })
	c, err := cache.Redis(client, cache.Timeout(100*time.Millisecond))
	require.NoError(t, err)
	ctx := context.Background()

	for name, op := range map[string]func() error{
		"get":      func() error { _, _, err := c.Get(ctx, "u-1"); return err },
		"set":      func() error { return c.Put(ctx, recs(1, 1)...) },
		"pipeline": func() error { return c.Put(ctx, recs(10, 1)...) },
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			err := op()
			require.Error(t, err)
			require.Less(t, time.Since(start), 3*time.Second, "the 100ms timeout, not the client's 10s, ends the call: %v", err)
		})
	}
}
