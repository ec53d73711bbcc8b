package forget_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/controls/forget"
	"github.com/aetherai/aether/keyring"
)

// A sealed topic is crypto_shredded only when every record of the user
// fails to open for its destroyed key: a record in clear is readable, and
// one that could not be tried (Redis down) fails the store.
func TestRetainedSealedTopics(t *testing.T) {
	ctx := t.Context()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	kr, err := keyring.New(keyring.Options{Redis: rdb, MasterKey: bytes.Repeat([]byte{1}, 32), TTL: time.Hour})
	require.NoError(t, err)
	sealed, err := kr.Seal(ctx, alice, []byte(`{"n":1}`))
	require.NoError(t, err)
	bobs, err := kr.Seal(ctx, bob, []byte(`{"n":2}`))
	require.NoError(t, err)
	_, err = kr.Destroy(ctx, alice)
	require.NoError(t, err)

	run := func(open func(context.Context, string, []byte) ([]byte, error), values ...[]byte) forget.StoreReceipt {
		msgs := []*sarama.ConsumerMessage{{Key: []byte(bob), Value: bobs, Timestamp: time.Now()}}
		for i, v := range values {
			msgs = append(msgs, &sarama.ConsumerMessage{Key: []byte(alice), Value: v, Offset: int64(i), Timestamp: time.Now()})
		}
		r := &forget.Retained{StoreName: "topic:t", Topics: []string{"t"}, Open: open,
			Scan:      func(context.Context, string) ([]*sarama.ConsumerMessage, error) { return msgs, nil },
			Retention: func(context.Context, string) (time.Duration, error) { return week, nil }}
		d, err := r.Find(ctx, &forget.Request{Key: alice})
		require.NoError(t, err)
		return d(ctx, func(string, ...any) {})
	}

	got := run(kr.Open, sealed, sealed)
	require.Equal(t, forget.StatusShredded, got.Status, got.Error)
	require.EqualValues(t, 2, *got.Count)
	require.Zero(t, *got.Topics[0].Readable)

	got = run(kr.Open, sealed, []byte(`{"userId":"alice"}`))
	require.Equal(t, forget.StatusFailed, got.Status)
	require.Equal(t, "1 records of the user still open", got.Error)
	require.EqualValues(t, 1, *got.Topics[0].Readable)

	down := func(context.Context, string, []byte) ([]byte, error) {
		return nil, errors.New("keyring: read key: connection refused")
	}
	got = run(down, sealed)
	require.Equal(t, forget.StatusFailed, got.Status)
	require.Equal(t, "t: offset 0 of partition 0 could not be tried: keyring: read key: connection refused", got.Error)
}

// Release is called once per deletion, after every topic was read.
func TestRetainedRelease(t *testing.T) {
	ctx := t.Context()
	var described []string
	released := 0
	r := &forget.Retained{StoreName: "dead-letters", Topics: []string{"a.dlq", "b.dlq"},
		Scan: func(context.Context, string) ([]*sarama.ConsumerMessage, error) { return nil, nil },
		Retention: func(_ context.Context, topic string) (time.Duration, error) {
			require.Zero(t, released, "Retention after Release")
			described = append(described, topic)
			return week, nil
		},
		Release: func() { released++ }}
	d, err := r.Find(ctx, &forget.Request{Key: alice})
	require.NoError(t, err)
	require.Zero(t, released, "Find released")
	got := d(ctx, func(string, ...any) {})
	require.Equal(t, forget.StatusExpires, got.Status, got.Error)
	require.Equal(t, []string{"a.dlq", "b.dlq"}, described)
	require.Equal(t, 1, released)
}
