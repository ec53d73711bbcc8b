package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/model"
	"github.com/aetherai/aether/model/approval"
	"github.com/aetherai/aether/model/rollout"
	"github.com/aetherai/aether/model/store"
	"github.com/aetherai/aether/operators/score"
	"github.com/aetherai/aether/recommend"
	"github.com/aetherai/aether/runner/config"
)

// modelCmd is the `runner model` group: the approved-models manifest.
func modelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Approve models for serving and list the approved ones",
		Long: `Manage the approved-models manifest: the JSON file that lists the SHA-256 of
every model that may be served, with who approved it, under which change
ticket and when. runner run refuses a model that is not in the manifest
the configuration names (model.manifest).

The manifest is --manifest FILE, else model.manifest of the -c FILE
configuration, else ` + approval.DefaultPath + `.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(modelApproveCmd(), modelListCmd())
	return cmd
}

// manifestFlags locate the manifest: --manifest, or -c FILE's
// model.manifest, or the default.
type manifestFlags struct{ manifest, config string }

func (f *manifestFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.manifest, "manifest", "", "approved-models manifest (default: model.manifest of -c FILE, else "+approval.DefaultPath+")")
	cmd.Flags().StringVarP(&f.config, "config", "c", "", "pipeline YAML file whose model.manifest to use")
}

func (f *manifestFlags) path() (string, error) {
	if f.manifest != "" {
		return f.manifest, nil
	}
	if f.config != "" {
		cfg, err := config.Load(f.config)
		if err != nil {
			return "", err
		}
		if cfg.Model.Manifest != "" {
			return cfg.Model.Manifest, nil
		}
	}
	return approval.DefaultPath, nil
}

func modelApproveCmd() *cobra.Command {
	var mf manifestFlags
	var by, ticket, auditFile string
	cmd := &cobra.Command{
		Use:   "approve DIR|URI --by NAME --ticket ID [--manifest FILE]",
		Short: "Add a model's SHA-256 to the approved-models manifest",
		Long: `Add the model at DIR (a local model directory) or URI (file:///abs/path or
s3://bucket/prefix, fetched to a temporary directory) to the approved-models
manifest, after checking that its model.onnx has the SHA-256 its
metadata.json records. The entry holds the SHA-256, the model's version,
--by, --ticket and the time. Approving an approved model again under the same
ticket changes nothing; under another ticket it is refused. S3 settings come
from the standard AWS environment variables (AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION).`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("model approve: give one model directory or URI, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(by) == "" || strings.TrimSpace(ticket) == "" {
				return usageError{fmt.Errorf("model approve: --by NAME and --ticket ID are required")}
			}
			path, err := mf.path()
			if err != nil {
				return err
			}
			meta, err := readModel(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			if auditFile != "" {
				// The approval (or its refusal) also goes to the trail.
				trail, err := audit.OpenFile(auditFile)
				if err != nil {
					return err
				}
				defer trail.Close()
				log = auditedLogger(log, trail)
			}
			e, added, err := approval.Approve(path, meta, by, ticket, time.Now(), log)
			if err != nil {
				return err
			}
			at := e.ApprovedAt.Format(time.RFC3339)
			if added {
				fmt.Fprintf(cmd.OutOrStdout(), "approved model %s (sha256 %s) in %s: by %s, ticket %s, at %s\n",
					e.Version, e.SHA256, path, e.ApprovedBy, e.Ticket, at)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "model %s (sha256 %s) was already approved in %s by %s, ticket %s, at %s: nothing changed\n",
					e.Version, e.SHA256, path, e.ApprovedBy, e.Ticket, at)
			}
			return nil
		},
	}
	mf.register(cmd)
	cmd.Flags().StringVar(&by, "by", "", "who approves (required)")
	cmd.Flags().StringVar(&ticket, "ticket", "", "the change ticket (required)")
	cmd.Flags().StringVar(&auditFile, "audit-file", "", "also record the approval in this hash-chained audit trail (not while a runner holds it)")
	return cmd
}

// readModel checks the model directory at source (a path or a store URI)
// and returns its metadata, whose SHA256 is model.onnx's.
func readModel(ctx context.Context, source string) (model.Metadata, error) {
	u, err := store.ParseURI(source)
	if err != nil {
		return model.Metadata{}, err
	}
	if u.Scheme == store.SchemeFile {
		return store.Verify(u.Path)
	}
	tmp, err := os.MkdirTemp("", "aether-approve-")
	if err != nil {
		return model.Metadata{}, err
	}
	defer os.RemoveAll(tmp)
	dir, err := store.Fetch(ctx, source, tmp)
	if err != nil {
		return model.Metadata{}, err
	}
	return store.Verify(dir)
}

func modelListCmd() *cobra.Command {
	var mf manifestFlags
	cmd := &cobra.Command{
		Use:   "list [--manifest FILE]",
		Short: "List the approved models, oldest approval first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := mf.path()
			if err != nil {
				return err
			}
			m, err := approval.Load(path)
			if err != nil {
				return err
			}
			return printApprovals(cmd.OutOrStdout(), m)
		},
	}
	mf.register(cmd)
	return cmd
}

func printApprovals(out io.Writer, m *approval.Manifest) error {
	entries := m.Entries()
	if len(entries) == 0 {
		_, err := fmt.Fprintf(out, "no approved models in %s\n", m.Path())
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHA256\tVERSION\tAPPROVED BY\tTICKET\tAPPROVED AT")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.SHA256, e.Version, e.ApprovedBy, e.Ticket, e.ApprovedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

// loadModel resolves, checks and loads the model the configuration names,
// for runPipeline, in this order, all before any connection to Kafka or
// Redis:
//
//  1. model.uri is fetched into the cache (model.cacheDir), which checks
//     model.onnx against metadata.json's SHA-256; model.dir is checked in
//     place the same way.
//  2. A model neither pinned (model.sha256) nor subject to a manifest
//     (model.manifest) is refused.
//  3. model.sha256, if set, must be model.onnx's SHA-256.
//  4. model.manifest, if set, must list that SHA-256 (approval.Gate: the
//     refusal is a *approval.NotApprovedError, counted in reg as
//     aether_model_refusals_total).
//  5. model.Load, pinned to the checked SHA-256, so that a model.onnx
//     changed in between is refused too.
//
// With model.pollInterval, model.uri is a versioned store prefix and its
// latest version (store.Latest) is the model loaded.
//
// Refusals, admissions and the load are logged as model_change events.
func loadModel(ctx context.Context, cfg *config.Config, reg prometheus.Registerer, log *slog.Logger) (*model.Loaded, error) {
	if cfg.Model.URI == "" {
		return loadModelFrom(ctx, cfg, cfg.Model.Dir, false, cfg.Model.SHA256, reg, log)
	}
	if cfg.Model.PollInterval <= 0 {
		return loadModelFrom(ctx, cfg, cfg.Model.URI, true, cfg.Model.SHA256, reg, log)
	}
	// A versioned prefix: the newest approved version. A newer one that is
	// not approved yet is refused (and audited) and the one before it is
	// tried, so that publishing a version ahead of its approval does not
	// stop a restart; the poller swaps it in once it is approved.
	var refusedNewer bool
	l, source, err := newestAcceptable(ctx, cfg.Model.URI,
		func(source string) (*model.Loaded, error) {
			return loadModelFrom(ctx, cfg, source, true, cfg.Model.SHA256, reg, log)
		},
		func(_ *model.Loaded, err error) bool {
			_, refused := errors.AsType[*approval.NotApprovedError](err)
			refusedNewer = refusedNewer || refused
			return !refused
		})
	switch {
	case source == "":
		return nil, fmt.Errorf("model.uri %s (a versioned prefix, as model.pollInterval is set): %w", cfg.Model.URI, err)
	case err == nil && refusedNewer:
		log.Warn("serving an older approved model: the newest version is not approved yet",
			"event", approval.EventModelChange, "action", "load", "outcome", "fallback", "source", source)
	}
	return l, err
}

// maxFallbackVersions bounds how many versions loadModel tries, newest
// first, to find an approved one at start.
const maxFallbackVersions = 20

// newestAcceptable walks the last maxFallbackVersions versions of the
// versioned store prefix uri, newest first: it fetches each version's
// source with fetch and returns the first result acceptable takes (an
// error may be one, ending the walk), else the newest version's. source
// is the version returned, empty when uri's versions cannot be listed (err
// then says why; an empty prefix is store.Latest's NotFoundError).
func newestAcceptable[T any](ctx context.Context, uri string, fetch func(source string) (T, error),
	acceptable func(v T, err error) bool) (v T, source string, err error) {
	versions, err := store.Versions(ctx, uri)
	if err == nil && len(versions) == 0 {
		_, _, err = store.Latest(ctx, uri) // its NotFoundError
	}
	if err != nil {
		return v, "", err
	}
	prefix, _ := store.ParseURI(uri) // parsed by Versions
	var (
		newest       T
		newestSource string
		newestErr    error
	)
	for i := len(versions) - 1; i >= 0 && i >= len(versions)-maxFallbackVersions; i-- {
		source := prefix.Join(versions[i]).String()
		v, err := fetch(source)
		if acceptable(v, err) {
			return v, source, err
		}
		if i == len(versions)-1 {
			newest, newestSource, newestErr = v, source, err
		}
	}
	return newest, newestSource, newestErr
}

// fetchModel fetches source (a store URI when isURI, else a local
// directory) into the model cache and checks it: model.onnx must have the
// SHA-256 metadata.json records (a refusal is logged).
func fetchModel(ctx context.Context, cfg *config.Config, source string, isURI bool, log *slog.Logger) (string, model.Metadata, error) {
	dir := source
	if isURI {
		cache, err := modelCacheDir(cfg.Model.CacheDir)
		if err != nil {
			return "", model.Metadata{}, err
		}
		if dir, err = store.Fetch(ctx, source, cache); err != nil {
			return "", model.Metadata{}, refuseModel(log, source, err)
		}
	}
	meta, err := store.Verify(dir)
	if err != nil {
		return "", model.Metadata{}, refuseModel(log, source, err)
	}
	return dir, meta, nil
}

// loadModelFrom is loadModel for the model at source, pinned to pin if
// set: the current model, or the rollout candidate (model.candidate).
func loadModelFrom(ctx context.Context, cfg *config.Config, source string, isURI bool, pin string,
	reg prometheus.Registerer, log *slog.Logger) (*model.Loaded, error) {
	dir, meta, err := fetchModel(ctx, cfg, source, isURI, log)
	if err != nil {
		return nil, err
	}
	change := approval.Change{Action: approval.ActionLoad, SHA256: meta.SHA256, Version: meta.Version,
		Source: source, Manifest: cfg.Model.Manifest}
	refuse := func(err error) error {
		change.Outcome, change.Reason = approval.OutcomeRefused, err.Error()
		change.Log(log)
		return err
	}
	if pin == "" && cfg.Model.Manifest == "" {
		return nil, refuse(fmt.Errorf("model.sha256 or model.manifest is required: pin the model "+
			"(the model in %s is version %s, sha256 %s) or approve it with `runner model approve` and name the manifest",
			source, meta.Version, meta.SHA256))
	}
	if pin := strings.ToLower(pin); pin != "" && pin != meta.SHA256 {
		return nil, refuse(&model.ChecksumError{Path: filepath.Join(dir, model.FileModel),
			Expected: pin, Actual: meta.SHA256, Source: "model.sha256"})
	}
	if cfg.Model.Manifest != "" {
		gate, err := approval.NewGate(cfg.Model.Manifest, reg, log)
		if err != nil {
			return nil, err
		}
		e, err := gate.Admit(meta, source)
		if err != nil {
			return nil, err
		}
		change.By, change.Ticket = e.ApprovedBy, e.Ticket
	}
	scorer, err := model.Load(dir, model.ExpectSHA256(meta.SHA256), model.RuntimeLibrary(cfg.Model.Library))
	if err != nil {
		if _, ok := errors.AsType[*model.ChecksumError](err); ok {
			return nil, refuse(err)
		}
		return nil, err
	}
	change.Outcome = approval.OutcomeLoaded
	change.Log(log)
	return scorer, nil
}

// refuseModel logs a model refused before its SHA-256 was known to match
// its metadata (a checksum mismatch), and returns err.
func refuseModel(log *slog.Logger, source string, err error) error {
	if ce, ok := errors.AsType[*model.ChecksumError](err); ok {
		approval.Change{Action: approval.ActionLoad, Outcome: approval.OutcomeRefused, SHA256: ce.Actual,
			Source: source, Reason: err.Error()}.Log(log)
	}
	return err
}

// modelCacheDir is dir, or ${AETHER_CACHE_DIR:-$HOME/.cache/aether}/models.
func modelCacheDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	base := os.Getenv(model.EnvCacheDir)
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("model.cacheDir is not set and the home directory is unknown: %w", err)
		}
		base = filepath.Join(home, ".cache", "aether")
	}
	return filepath.Join(base, "models"), nil
}

// serveModels builds the rollout.Switch that runPipeline serves: current
// (which it then owns), the candidate of model.candidate at
// model.candidateShare if it is admitted (a refused candidate is logged
// and counted by the gate, and the current model serves everyone), and,
// with model.pollInterval, a rollout.Watch of model.uri's versions that
// swaps in each newer approved version. The Switch batches each model's
// concurrent calls (score.Batched). stop ends the watch and closes the
// models once their calls have ended.
func serveModels(ctx context.Context, cfg *config.Config, current *model.Loaded, reg prometheus.Registerer,
	log *slog.Logger) (sw *rollout.Switch, stop func(), err error) {
	sw = rollout.New(current, rollout.Registerer(reg), rollout.Logger(log), rollout.Batch(score.DefaultMaxBatch))
	if cand := cfg.Model.Candidate; cand != "" {
		c, err := loadModelFrom(ctx, cfg, cand, strings.Contains(cand, "://"), "", reg, log)
		if err != nil {
			log.Warn("model.candidate is not served: every user gets the current model",
				"event", approval.EventModelChange, "action", "candidate", "outcome", approval.OutcomeRefused,
				"source", cand, "reason", err.Error())
		} else {
			sw.SetCandidate(c, cfg.Model.CandidateShare)
		}
	}
	wctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	stop = func() {
		cancel()
		<-done
		_ = sw.Close()
	}
	if cfg.Model.PollInterval <= 0 || cfg.Model.URI == "" {
		close(done)
		return sw, stop, nil
	}
	gate, err := approval.NewGate(cfg.Model.Manifest, reg, log)
	if err != nil {
		close(done)
		stop()
		return nil, nil, err
	}
	// Versions are immutable: a version seen before is not fetched again.
	var seen struct {
		version, dir string
		meta         model.Metadata
	}
	fetch := func(ctx context.Context) (string, model.Metadata, error) {
		v, uri, err := store.Latest(ctx, cfg.Model.URI)
		if err != nil {
			return "", model.Metadata{}, err
		}
		if v != seen.version {
			dir, meta, err := fetchModel(ctx, cfg, uri, true, log)
			if err != nil {
				return "", model.Metadata{}, err
			}
			seen.version, seen.dir, seen.meta = v, dir, meta
		}
		return seen.dir, seen.meta, nil
	}
	// A refused version is checked again at every poll, as it may be
	// approved meanwhile, but logged and counted (by the gate) only once.
	var refused string
	var admitted approval.Entry
	admit := func(meta model.Metadata) error {
		if meta.SHA256 == refused {
			m, err := approval.Load(cfg.Model.Manifest)
			if err == nil {
				_, err = m.Check(meta.SHA256)
			}
			if err != nil {
				return err
			}
		}
		e, err := gate.Admit(meta, cfg.Model.URI+"/"+seen.version)
		if err != nil {
			refused = meta.SHA256
			return err
		}
		admitted = e
		refused = ""
		return nil
	}
	load := func(dir string) (recommend.Scorer, error) {
		l, err := model.Load(dir, model.ExpectSHA256(seen.meta.SHA256), model.RuntimeLibrary(cfg.Model.Library))
		if err != nil {
			return nil, err
		}
		approval.Change{Action: approval.ActionLoad, Outcome: approval.OutcomeLoaded, SHA256: seen.meta.SHA256,
			Version: seen.meta.Version, By: admitted.ApprovedBy, Ticket: admitted.Ticket, Manifest: cfg.Model.Manifest,
			Source: cfg.Model.URI + "/" + seen.version}.Log(log)
		return l, nil
	}
	go func() {
		defer close(done)
		_ = rollout.Watch(wctx, cfg.Model.PollInterval, fetch, admit, load, sw, log)
	}()
	return sw, stop, nil
}
