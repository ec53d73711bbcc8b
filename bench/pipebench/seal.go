package pipebench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/aetherai/aether/bench/internal/report"
	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/clickstream"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/examples/recommendations/pipeline"
	"github.com/aetherai/aether/internal/redisglob"
	"github.com/aetherai/aether/keyring"
	"github.com/aetherai/aether/processors"
)

// SealedRawTopic is the input of the AetherSeal variant: the same events as
// RawTopic, sealed per user by an emitter with processors.ClientSeal.
const SealedRawTopic = "bench_events_raw_sealed"

// DefaultRedis is the Redis of the keyring (Config.Seal).
const DefaultRedis = "127.0.0.1:6379"

// keyTTL is the TTL of the run's data keys in Redis; they are deleted at
// the end of the run, the TTL only bounds what an interrupted run leaves.
const keyTTL = time.Hour

// sealEnv is the keyring setup of a -seal run: one Redis, one master key and
// one key prefix for the whole run. Every keyring (the emitter's, and a
// fresh one per AetherSeal run, so that each starts with a cold cache like
// a starting runner) shares them.
type sealEnv struct {
	rdb    *redis.Client
	master []byte
	prefix string
}

// setupSeal connects to Redis and draws the run's master key and prefix.
// close deletes the run's keys and closes the client.
func setupSeal(ctx context.Context, addr string) (*sealEnv, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("-seal needs Redis at %s for the keyring, and it does not answer (%v); start one with: %s", addr, err, report.StartRedis)
	}
	s := &sealEnv{rdb: rdb, master: make([]byte, keyring.MinMasterKeyBytes), prefix: report.KeyPrefix("pipeline")}
	_, _ = rand.Read(s.master)
	return s, nil
}

// keyring returns a new keyring on the run's Redis, master key and prefix,
// its metrics registered in reg (if not nil).
func (s *sealEnv) keyring(reg prometheus.Registerer) (*keyring.Keyring, error) {
	return keyring.New(keyring.Options{Redis: s.rdb, MasterKey: s.master, Prefix: s.prefix, TTL: keyTTL, Registerer: reg})
}

// close deletes every key under the run's prefix (SCAN + UNLINK, 1000 at a
// time) and closes the client. It uses its own deadline, so it also cleans
// up after an interrupted run.
func (s *sealEnv) close() (int64, error) {
	defer s.rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var deleted int64
	var errs []error
	var cursor uint64
	for {
		keys, next, err := s.rdb.Scan(ctx, cursor, redisglob.Escape(s.prefix)+"*", 1000).Result()
		if err != nil {
			return deleted, errors.Join(append(errs, err)...)
		}
		if len(keys) > 0 {
			n, err := s.rdb.Unlink(ctx, keys...).Result()
			if err != nil {
				errs = append(errs, err)
			}
			deleted += n
		}
		if cursor = next; cursor == 0 {
			return deleted, errors.Join(errs...)
		}
	}
}

// produceSealedInput writes recs to SealedRawTopic through a
// processors.Emitter with ClientSeal, as the API emits them (each value
// sealed with its user's key, the record key), waits for every
// acknowledgement and checks that a record on the topic is sealed and
// opens.
func (e *env) produceSealedInput(ctx context.Context, recs []clickstream.Record) error {
	cfg := e.cfg
	if err := broker.EnsureTopic(ctx, e.addrs, broker.SaramaConfig("aether-bench-setup"),
		broker.TopicSpec{Name: SealedRawTopic, Partitions: int32(cfg.Partitions)}); err != nil {
		return err
	}
	kr, err := e.seal.keyring(nil)
	if err != nil {
		return err
	}
	raw := pipeline.New(pipeline.Config{RawEvents: SealedRawTopic, Partitions: int32(cfg.Partitions)}).Raw
	em, err := processors.NewEmitter(e.addrs, raw, processors.ClientSeal(kr), processors.ClientID("aether-bench-sealed-emitter"))
	if err != nil {
		return err
	}
	keyed := make([]processors.Keyed[event.Event], len(recs))
	for i, r := range recs {
		keyed[i] = processors.Keyed[event.Event]{Key: r.Key, Value: r.Event}
	}
	start := time.Now()
	err = em.EmitAll(ctx, keyed)
	if ferr := em.Finish(); err == nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("sealed emitter: %w", err)
	}
	got, err := e.records(SealedRawTopic)
	if err != nil {
		return err
	}
	if got != int64(cfg.Events) {
		return fmt.Errorf("sealed input topic holds %d records, want %d", got, cfg.Events)
	}
	if err := e.checkSealed(ctx, kr, SealedRawTopic); err != nil {
		return err
	}
	fmt.Fprintf(e.log, "emitted the same events sealed per user (processors.ClientSeal, keys in Redis under %s) to %s in %.2f s, all acknowledged, sealed\n",
		e.seal.prefix, SealedRawTopic, time.Since(start).Seconds())
	return nil
}

// checkSealed reads the first record of topic's first non-empty partition
// and fails unless its value is sealed and kr opens it under its key.
func (e *env) checkSealed(ctx context.Context, kr *keyring.Keyring, topic string) error {
	msg, err := e.firstRecord(ctx, topic)
	if err != nil {
		return err
	}
	if !keyring.IsSealed(msg.Value) {
		return fmt.Errorf("%s/%d@%d is not sealed: %.40q", topic, msg.Partition, msg.Offset, msg.Value)
	}
	if _, err := kr.Open(ctx, string(msg.Key), msg.Value); err != nil {
		return fmt.Errorf("%s/%d@%d does not open: %w", topic, msg.Partition, msg.Offset, err)
	}
	return nil
}

// firstRecord returns the oldest record of topic's first non-empty
// partition.
func (e *env) firstRecord(ctx context.Context, topic string) (*sarama.ConsumerMessage, error) {
	if err := e.client.RefreshMetadata(topic); err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	parts, err := e.client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	for _, p := range parts {
		hwm, err := e.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, fmt.Errorf("offset of %s/%d: %w", topic, p, err)
		}
		if hwm == 0 {
			continue
		}
		c, err := sarama.NewConsumerFromClient(e.client)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, fmt.Errorf("consume %s/%d: %w", topic, p, err)
		}
		defer pc.Close()
		select {
		case m := <-pc.Messages():
			return m, nil
		case err := <-pc.Errors():
			return nil, fmt.Errorf("consume %s/%d: %w", topic, p, err)
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("consume %s/%d: no record within 10 s", topic, p)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("%s is empty", topic)
}

// sealCheck is what the check of a sealed run found: the keyring's
// successful opens and seals.
type sealCheck struct {
	opens, seals int64
}

// checkSeal checks a stopped AetherSeal run: nothing was dead-lettered,
// the keyring opened at least every input record and sealed at least every
// table write, no keyring operation failed, and the first output record is
// sealed and opens.
func (a *aetherInstance) checkSeal(ctx context.Context, e *env) (sealCheck, error) {
	if a.kr == nil {
		return sealCheck{}, nil
	}
	if n := a.rt.Outcomes(a.group)["dead_lettered"]; n > 0 {
		return sealCheck{}, fmt.Errorf("seal: %d records dead-lettered", n)
	}
	ops, err := counters(a.rt.Gatherer(), "aether_keyring_operations_total", "op", "outcome")
	if err != nil {
		return sealCheck{}, err
	}
	c := sealCheck{opens: ops["open/ok"], seals: ops["seal/ok"]}
	for k, n := range ops {
		if n > 0 && k != "open/ok" && k != "seal/ok" {
			return c, fmt.Errorf("seal: keyring operations not ok: %v", ops)
		}
	}
	if c.opens < int64(a.n) || c.seals < int64(a.n) {
		return c, fmt.Errorf("seal: the keyring opened %d values and sealed %d, want at least %d each (one per input record and table write)", c.opens, c.seals, a.n)
	}
	if err := e.checkSealed(ctx, a.kr, a.out); err != nil {
		return c, fmt.Errorf("seal: %w", err)
	}
	return c, nil
}
