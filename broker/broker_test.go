package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func startBroker(t *testing.T, opts ...Option) *Broker {
	t.Helper()
	b, err := Start(opts...)
	require.NoError(t, err)
	t.Cleanup(b.Close)
	return b
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestStartValidatesOptions(t *testing.T) {
	cases := map[string][]Option{
		"zero brokers":       {Brokers(0)},
		"too many brokers":   {Brokers(MaxBrokers + 1)},
		"zero partitions":    {Partitions(0)},
		"negative port":      {Port(-1)},
		"port too large":     {Port(70000)},
		"port range too big": {Port(65535), Brokers(2)},
		"addr without port":  {Addr("127.0.0.1")},
		"addr wildcard v4":   {Addr("0.0.0.0:0")},
		"addr wildcard v6":   {Addr("[::]:0")},
		"addr empty host":    {Addr(":9092")},
		"addr bad port":      {Addr("127.0.0.1:x")},
		"port and addr":      {Port(0), Addr("127.0.0.1:0")},
		"addr and port":      {Addr("127.0.0.1:0"), Port(0)},
		"nil logger":         {Logger(nil)},
		"nil option":         {nil},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := Start(opts...)
			if err == nil {
				b.Close()
			}
			assert.Error(t, err)
		})
	}
}

func TestStartBrokers(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			var opts []Option
			if n != 1 {
				opts = append(opts, Brokers(n))
			}
			b := startBroker(t, opts...)
			addrs := b.Addrs()
			require.Len(t, addrs, n)
			for _, a := range addrs {
				host, _, err := net.SplitHostPort(a)
				require.NoError(t, err)
				assert.Equal(t, "127.0.0.1", host)
			}
			assert.NotNil(t, b.Cluster())

			// A real client sees n brokers.
			client, err := sarama.NewClient(addrs[:1], SaramaConfig("start-test"))
			require.NoError(t, err)
			defer client.Close()
			assert.Len(t, client.Brokers(), n)
		})
	}
}

// freePorts finds n consecutive free loopback ports (best effort).
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		base := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if base+n-1 > 65535 {
			continue
		}
		ok := true
		for i := 1; i < n; i++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i)))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free consecutive ports")
	return 0
}

func TestStartFixedAddress(t *testing.T) {
	t.Run("Port", func(t *testing.T) {
		p := freePorts(t, 2)
		b := startBroker(t, Port(p), Brokers(2))
		assert.Equal(t, []string{
			net.JoinHostPort("127.0.0.1", strconv.Itoa(p)),
			net.JoinHostPort("127.0.0.1", strconv.Itoa(p+1)),
		}, b.Addrs())

		// The port is taken now: a second broker on it fails cleanly.
		_, err := Start(Port(p))
		assert.Error(t, err)
	})
	t.Run("Addr", func(t *testing.T) {
		p := freePorts(t, 1)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		b := startBroker(t, Addr(addr))
		assert.Equal(t, []string{addr}, b.Addrs())
		require.NoError(t, EnsureTopic(testCtx(t, 20*time.Second), b.Addrs(), SaramaConfig("addr-test"),
			TopicSpec{Name: "t", Partitions: 2}))
	})
	t.Run("Addr random port", func(t *testing.T) {
		b := startBroker(t, Addr("localhost:0"))
		require.Len(t, b.Addrs(), 1)
		_, port, err := net.SplitHostPort(b.Addrs()[0])
		require.NoError(t, err)
		assert.NotEqual(t, "0", port)
	})
}

func TestLogger(t *testing.T) {
	var w lockedWriter
	l := slog.New(slog.NewTextHandler(&w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := startBroker(t, Logger(l))
	// kfake logs little (errors, KIP-848 group detail); a truncated
	// request is logged at debug ("unable to parse request").
	conn, err := net.Dial("tcp", b.Addrs()[0])
	require.NoError(t, err)
	// size 10 | key 3 (Metadata) | version 1 | correlation 1 | null client
	// ID, then no body (Metadata v1 needs a topics array).
	_, err = conn.Write([]byte{0, 0, 0, 10, 0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff})
	require.NoError(t, err)
	// kfake closes the connection after logging.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = conn.Read(make([]byte, 1))
	require.Error(t, err)
	conn.Close()
	assert.Eventually(t, func() bool {
		return strings.Contains(w.String(), "unable to parse request")
	}, 5*time.Second, 10*time.Millisecond)
	assert.Contains(t, w.String(), "component=kfake")
	assert.Contains(t, w.String(), "level=DEBUG")
}

type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestSaramaConfig(t *testing.T) {
	a, b := SaramaConfig("a"), SaramaConfig("b")
	require.NotSame(t, a, b)
	require.NoError(t, a.Validate())
	assert.Equal(t, "a", a.ClientID)
	assert.Equal(t, "b", b.ClientID)
	assert.Equal(t, "sarama", SaramaConfig("").ClientID)
	assert.Equal(t, sarama.V2_8_0_0, a.Version)
	assert.True(t, a.Producer.Return.Successes)
	assert.True(t, a.Producer.Return.Errors)
	assert.True(t, a.Consumer.Return.Errors)
	assert.Equal(t, sarama.WaitForAll, a.Producer.RequiredAcks)
	assert.False(t, a.Producer.Idempotent)
	assert.Equal(t, sarama.OffsetOldest, a.Consumer.Offsets.Initial)
	assert.GreaterOrEqual(t, a.Consumer.Group.Session.Timeout, 6*time.Second)
	assert.Less(t, a.Consumer.Group.Heartbeat.Interval, a.Consumer.Group.Session.Timeout/3)

	// No shared mutable state.
	a.Producer.Retry.Max = 99
	a.Consumer.Group.Rebalance.GroupStrategies[0] = nil
	c := SaramaConfig("c")
	assert.Equal(t, 10, c.Producer.Retry.Max)
	assert.NotNil(t, c.Consumer.Group.Rebalance.GroupStrategies[0])

	tm := GokaTopicManagerConfig()
	assert.Equal(t, 1, tm.Table.Replication)
	assert.Equal(t, 1, tm.Stream.Replication)
}

func TestTopicAdmin(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d brokers", n), func(t *testing.T) {
			t.Parallel()
			b := startBroker(t, Brokers(n))
			ctx := testCtx(t, 30*time.Second)
			addrs, cfg := b.Addrs(), SaramaConfig("admin-test")

			// Stream topic with 7 days retention.
			week := TopicSpec{Name: "events", Partitions: 8, Retention: 7 * 24 * time.Hour}
			require.NoError(t, EnsureTopic(ctx, addrs, cfg, week))
			got, err := DescribeTopic(ctx, addrs, cfg, "events")
			require.NoError(t, err)
			assert.Equal(t, int32(8), got.Partitions)
			assert.Equal(t, int64(604800000), got.Retention.Milliseconds())
			assert.False(t, got.Compacted)
			assert.Equal(t, week, got)

			// Compacted table topic, broker default partitions.
			require.NoError(t, EnsureTopic(ctx, addrs, cfg, TopicSpec{Name: "group-table", Compacted: true}))
			got, err = DescribeTopic(ctx, addrs, cfg, "group-table")
			require.NoError(t, err)
			assert.True(t, got.Compacted)
			assert.Equal(t, int32(DefaultPartitions), got.Partitions)

			// Explicit short retention and unlimited retention.
			require.NoError(t, EnsureTopic(ctx, addrs, cfg, TopicSpec{Name: "short", Partitions: 1, Retention: 90 * time.Second}))
			got, err = DescribeTopic(ctx, addrs, cfg, "short")
			require.NoError(t, err)
			assert.Equal(t, 90*time.Second, got.Retention)
			require.NoError(t, EnsureTopic(ctx, addrs, cfg, TopicSpec{Name: "forever", Partitions: 1, Retention: -1}))
			got, err = DescribeTopic(ctx, addrs, cfg, "forever")
			require.NoError(t, err)
			assert.Equal(t, -time.Millisecond, got.Retention)

			// Existing topic: same partitions (or unspecified) is fine and
			// leaves it untouched; other partitions are an error.
			require.NoError(t, EnsureTopic(ctx, addrs, cfg, TopicSpec{Name: "events", Partitions: 8}))
			require.NoError(t, EnsureTopic(ctx, addrs, cfg, TopicSpec{Name: "events"}))
			err = EnsureTopic(ctx, addrs, cfg, TopicSpec{Name: "events", Partitions: 4})
			require.ErrorIs(t, err, ErrPartitionMismatch)
			assert.Contains(t, err.Error(), `"events" has 8 partitions, want 4`)
			got, err = DescribeTopic(ctx, addrs, cfg, "events")
			require.NoError(t, err)
			assert.Equal(t, week, got)

			// Describing a missing topic fails and does not auto-create it.
			_, err = DescribeTopic(ctx, addrs, cfg, "missing")
			require.ErrorIs(t, err, sarama.ErrUnknownTopicOrPartition)
			_, err = DescribeTopic(ctx, addrs, cfg, "missing")
			require.ErrorIs(t, err, sarama.ErrUnknownTopicOrPartition)
			_, err = Consume(ctx, addrs, cfg, "missing")
			require.ErrorIs(t, err, sarama.ErrUnknownTopicOrPartition)

			// Invalid specs.
			assert.Error(t, EnsureTopic(ctx, addrs, cfg, TopicSpec{}))
			assert.Error(t, EnsureTopic(ctx, addrs, cfg, TopicSpec{Name: "x", Partitions: -2}))
			assert.Error(t, EnsureTopic(ctx, addrs, cfg, TopicSpec{Name: "x", Retention: time.Microsecond}))
		})
	}
}

// Ensure and Describe work over one open admin client, as EnsureTopic and
// DescribeTopic do over their own.
func TestEnsureOnOpenAdmin(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ctx := testCtx(t, 30*time.Second)
	admin, err := NewAdmin(ctx, b.Addrs(), SaramaConfig("admin-test"))
	require.NoError(t, err)
	defer admin.Close()

	week := TopicSpec{Name: "events", Partitions: 4, Retention: 7 * 24 * time.Hour}
	table := TopicSpec{Name: "group-table", Partitions: 2, Retention: -time.Millisecond, Compacted: true}
	for _, spec := range []TopicSpec{week, table} {
		require.NoError(t, Ensure(ctx, admin, spec))
		got, err := Describe(ctx, admin, spec.Name)
		require.NoError(t, err)
		assert.Equal(t, spec, got)
	}
	require.NoError(t, Ensure(ctx, admin, TopicSpec{Name: "events"}))
	err = Ensure(ctx, admin, TopicSpec{Name: "events", Partitions: 8})
	require.ErrorIs(t, err, ErrPartitionMismatch)
	assert.Contains(t, err.Error(), `"events" has 4 partitions, want 8`)
	assert.Error(t, Ensure(ctx, admin, TopicSpec{}))
}

func TestAdminContext(t *testing.T) {
	cfg := SaramaConfig("ctx-test")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := startBroker(t)
	err := EnsureTopic(ctx, b.Addrs(), cfg, TopicSpec{Name: "t"})
	assert.ErrorIs(t, err, context.Canceled)
	_, err = Consume(ctx, b.Addrs(), cfg, "t")
	assert.ErrorIs(t, err, context.Canceled)

	// Nothing listens: the error comes back, not a hang.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	ln.Close()
	cfg.Metadata.Retry.Max = 0
	_, err = DescribeTopic(testCtx(t, 10*time.Second), []string{dead}, cfg, "t")
	assert.Error(t, err)
}

func TestProduceConsume(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d brokers", n), func(t *testing.T) {
			t.Parallel()
			b := startBroker(t, Brokers(n))
			ctx := testCtx(t, 60*time.Second)
			addrs := b.Addrs()
			require.NoError(t, EnsureTopic(ctx, addrs, SaramaConfig("admin"),
				TopicSpec{Name: "msgs", Partitions: 8}))

			producer, err := sarama.NewSyncProducer(addrs, SaramaConfig("producer"))
			require.NoError(t, err)
			const total = 1000
			batch := make([]*sarama.ProducerMessage, 0, total)
			for i := range total {
				batch = append(batch, &sarama.ProducerMessage{
					Topic: "msgs",
					Key:   sarama.StringEncoder(fmt.Sprintf("key-%04d", i)),
					Value: sarama.StringEncoder(strconv.Itoa(i)),
				})
			}
			// Half one by one, half as one batch.
			for _, m := range batch[:total/2] {
				_, _, err := producer.SendMessage(m)
				require.NoError(t, err)
			}
			require.NoError(t, producer.SendMessages(batch[total/2:]))
			require.NoError(t, producer.Close())

			msgs, err := Consume(ctx, addrs, SaramaConfig("consumer"), "msgs")
			require.NoError(t, err)
			require.Len(t, msgs, total)
			keys := make(map[string]string, total)
			parts := make(map[int32]int)
			for _, m := range msgs {
				keys[string(m.Key)] = string(m.Value)
				parts[m.Partition]++
			}
			require.Len(t, keys, total)
			for i := range total {
				assert.Equal(t, strconv.Itoa(i), keys[fmt.Sprintf("key-%04d", i)])
			}
			assert.Len(t, parts, 8, "hash partitioner spreads 1000 keys over all partitions")
			// Partition order, then offset order.
			for i := 1; i < len(msgs); i++ {
				prev, cur := msgs[i-1], msgs[i]
				if prev.Partition == cur.Partition {
					assert.Less(t, prev.Offset, cur.Offset)
				} else {
					assert.Less(t, prev.Partition, cur.Partition)
				}
			}

			// A second read sees the same records (Consume commits nothing).
			again, err := Consume(ctx, addrs, SaramaConfig("consumer"), "msgs")
			require.NoError(t, err)
			assert.Len(t, again, total)

			// An empty topic reads as no records.
			require.NoError(t, EnsureTopic(ctx, addrs, SaramaConfig("admin"), TopicSpec{Name: "empty", Partitions: 3}))
			empty, err := Consume(ctx, addrs, SaramaConfig("consumer"), "empty")
			require.NoError(t, err)
			assert.Empty(t, empty)
		})
	}
}

func TestAutoCreateTopics(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	t.Run("on", func(t *testing.T) {
		b := startBroker(t, Partitions(3))
		p, err := sarama.NewSyncProducer(b.Addrs(), SaramaConfig("auto"))
		require.NoError(t, err)
		defer p.Close()
		_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: "auto", Value: sarama.StringEncoder("v")})
		require.NoError(t, err)
		got, err := DescribeTopic(ctx, b.Addrs(), SaramaConfig("auto"), "auto")
		require.NoError(t, err)
		assert.Equal(t, int32(3), got.Partitions)
	})
	t.Run("off", func(t *testing.T) {
		b := startBroker(t, AutoCreateTopics(false))
		cfg := SaramaConfig("auto")
		cfg.Producer.Retry.Max = 1
		cfg.Metadata.Retry.Max = 1
		cfg.Metadata.Retry.Backoff = 10 * time.Millisecond
		cfg.Producer.Retry.Backoff = 10 * time.Millisecond
		p, err := sarama.NewSyncProducer(b.Addrs(), cfg)
		require.NoError(t, err)
		defer p.Close()
		_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: "auto", Value: sarama.StringEncoder("v")})
		require.Error(t, err)
		_, err = DescribeTopic(ctx, b.Addrs(), cfg, "auto")
		require.True(t, errors.Is(err, sarama.ErrUnknownTopicOrPartition), "%v", err)
	})
}
