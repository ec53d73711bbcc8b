package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/controls/forget"
	"github.com/aetherai/aether/operators/cache"
	"github.com/aetherai/aether/processors"
	"github.com/aetherai/aether/runner"
	"github.com/aetherai/aether/runner/api"
	"github.com/aetherai/aether/runner/config"
	"github.com/aetherai/aether/topology"
)

func forgetCmd() *cobra.Command {
	var f *runFlags
	var user string
	cmd := &cobra.Command{
		Use:   "forget --user ID -c FILE",
		Short: "Delete a user's data from every store the pipeline writes and print the receipt",
		Long: `Delete one user's data from every store the pipeline writes, store by store,
and print the receipt (JSON; also written to evidence.receipts, default
` + config.DefaultReceiptsDir + `, where runner evidence reads it):

  data-key         with privacy.masterKeyEnv, first: the user's data key is
                   deleted from Redis, so every record sealed with it is
                   unreadable
  feature-store    a forget control record on user_events_raw (header
                   aether-control: forget): the running processors delete the
                   user's table value (tombstone), timers and Redis keys, and
                   forward it downstream; then the feature store must not
                   find the user (forget.timeout, default 2m)
  redis            DEL of the user's cache keys; a SCAN must find none
  topic:...        Kafka cannot delete one key's records: the user's records
  dead-letters     in user_events_raw, user_features_processed and the
                   dead-letter topics are counted, with the time they expire
                   by retention.ms; with privacy each is tried with the
                   keyring and the store is crypto_shredded only if none
                   opens
  audit            the user's records in the file trail redacted (the chain
                   still verifies); a trail held by a running runner is
                   reported pending: forget through its admin API
                   (POST /admin/v1/users/{userId}/forget) instead, or again
                   after it stops. With audit.elasticsearch, the records
                   there are redacted.

The user is named in the trail and the receipt only by the pseudonym the
APIs use (HMAC-SHA256 under the key in forget.subjectKeyEnv, which the
runner must share); with privacy it is also the user's key in Kafka and
Redis. Exits 1 when a store failed or is pending.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := forget.ValidUserID(user); err != nil {
				return usageError{fmt.Errorf("--user: %w", err)}
			}
			cfg, err := f.load()
			if err != nil {
				return err
			}
			rc, err := forgetUser(cmd.Context(), cmd.ErrOrStderr(), cfg, user)
			if rc.ID != "" {
				b, jerr := json.MarshalIndent(rc, "", "  ")
				if jerr != nil {
					return errors.Join(err, jerr)
				}
				fmt.Fprintln(cmd.OutOrStdout(), string(b))
			}
			if err != nil {
				return err
			}
			if !rc.Complete {
				return fmt.Errorf("forget: the deletion is incomplete (receipt %s): see the stores with an error", rc.ID)
			}
			return nil
		},
	}
	f = addRunFlags(cmd)
	cmd.Flags().StringVar(&user, "user", "", "the user id to forget (as in events' userId; required)")
	return cmd
}

// forgetUser runs a deletion request from this process against the
// running pipeline's Kafka, Redis and audit trail; progress goes to
// progress.
func forgetUser(ctx context.Context, progress io.Writer, cfg *config.Config, user string) (forget.Receipt, error) {
	key, err := cfg.Forget.SubjectKey()
	if err != nil {
		return forget.Receipt{}, err
	}
	if key == nil {
		return forget.Receipt{}, usageError{errors.New("forget.subjectKeyEnv is not set: without the runner's audit subject key the user's pseudonym, and so their audit records, cannot be found (set it for runner run and runner forget)")}
	}
	wait, err := cfg.Forget.Wait()
	if err != nil {
		return forget.Receipt{}, err
	}
	pl, err := declareAll(cfg)
	if err != nil {
		return forget.Receipt{}, err
	}
	ingest, err := cfg.Kafka.Sarama(topology.RoleIngest)
	if err != nil {
		return forget.Receipt{}, err
	}
	// Topics are scanned and described as the admin principal; without
	// one, as the ingest principal (as the runner does), which the ACLs
	// may refuse: the receipt then says so, store by store.
	admin, err := cfg.Kafka.Sarama(config.KafkaAdminRole)
	if err != nil {
		fmt.Fprintf(progress, "forget: no Kafka admin principal (%v): scanning topics as the ingest principal\n", err)
		admin = ingest
	}
	views, err := cfg.Kafka.Sarama(topology.RoleViews)
	if err != nil {
		return forget.Receipt{}, err
	}
	brokers := cfg.Kafka.Brokers

	// The feature store, through a view of the sessionizer's table.
	view, err := processors.NewView(brokers, pl.Sessionizer.Table(), processors.ClientSarama(views), processors.ClientID("aether-forget-view"))
	if err != nil {
		return forget.Receipt{}, err
	}
	vctx, stopView := context.WithCancel(context.WithoutCancel(ctx))
	viewDone := make(chan error, 1)
	go func() { viewDone <- view.Run(vctx) }()
	defer func() { stopView(); <-viewDone }()
	fmt.Fprintf(progress, "forget: reading the feature store (%s)\n", pl.Sessionizer.Table().Name())
	rctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for !view.Recovered() {
		select {
		case <-rctx.Done():
			return forget.Receipt{}, fmt.Errorf("forget: the feature-store view did not recover within %s", wait)
		case err := <-viewDone:
			return forget.Receipt{}, fmt.Errorf("forget: feature-store view: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}

	fp := runner.ForgetParts{
		Config: cfg, Pipeline: pl, Brokers: brokers,
		Send: func(ctx context.Context, key string) error {
			return processors.SendForget(ctx, brokers, pl.Raw.Name(), key, processors.ClientSarama(ingest), processors.ClientID("aether-forget"))
		},
		Lookup: func(key string) (bool, error) { return view.Has(key) },
		Kafka:  admin,
	}
	if cfg.Redis.Addr != "" {
		rdb, err := connectRedis(ctx, cfg.Redis)
		if err != nil {
			return forget.Receipt{}, err
		}
		defer rdb.Close()
		c, err := cache.Redis(rdb, cache.TTL(cfg.Redis.TTL), cache.KeyPrefix(cfg.Redis.KeyPrefix))
		if err != nil {
			return forget.Receipt{}, err
		}
		fp.Redis, fp.Keys = rdb, c.Keys
		if fp.DataKeys, err = runner.NewKeyring(cfg, rdb, pl.Topology, nil); err != nil {
			return forget.Receipt{}, err
		}
	}
	// The file trail: held by a running runner, it cannot be redacted or
	// appended to from here (reported pending); otherwise this process
	// redacts it and records the request in it.
	var trail audit.Sink
	if !cfg.Audit.Elasticsearch.Enabled() && cfg.Audit.File != "" {
		s, err := audit.OpenFile(cfg.Audit.File)
		switch {
		case errors.Is(err, audit.ErrInUse):
			fmt.Fprintf(progress, "forget: %s is held by a running runner: its records are pending, and this request is recorded in the receipt only (forget through the admin API to redact it now)\n", cfg.Audit.File)
		case err != nil:
			return forget.Receipt{}, err
		default:
			defer s.Close()
			fp.AuditSink, trail = s, s
		}
	}
	fc, err := runner.ForgetConfig(fp)
	if err != nil {
		return forget.Receipt{}, err
	}
	fc.Audit, fc.Actor, fc.Progress = trail, "cli", progress
	fg, err := forget.New(fc)
	if err != nil {
		return forget.Receipt{}, err
	}
	return fg.Forget(ctx, user, api.SubjectRef(key, user))
}
