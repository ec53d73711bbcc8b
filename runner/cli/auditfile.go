package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aetherai/aether/audit"
	es "github.com/aetherai/aether/audit/elasticsearch"
	"github.com/aetherai/aether/runner"
	"github.com/aetherai/aether/runner/config"
)

// defaultAuditFile is the trail's file when neither --audit-file nor the
// configuration names one: in the current directory, named for the start.
func defaultAuditFile(now time.Time) string {
	return "aether-audit-" + now.UTC().Format("20060102T150405Z") + ".jsonl"
}

// openAuditFile opens the hash-chained file trail at path (or the default),
// its metrics registered with reg (may be nil), and prints its name. The
// caller closes it after the pipeline stopped.
func openAuditFile(out io.Writer, path string, reg prometheus.Registerer) (*audit.FileSink, error) {
	if path == "" {
		path = defaultAuditFile(time.Now())
	}
	s, err := audit.OpenFile(path, audit.FileRegisterer(reg))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "audit trail: %s\n", path)
	return s, nil
}

// auditOpenTimeout bounds connecting to Elasticsearch and installing the
// template and policy at start.
const auditOpenTimeout = 30 * time.Second

// openAuditSink opens the trail the configuration asks for: Elasticsearch
// when audit.elasticsearch is set (its metrics registered with reg, which
// may be nil), else the file trail at fileFlag, cfg.File or the default.
// It prints and returns a description of where the trail goes. The caller
// closes the sink after the pipeline stopped; an Elasticsearch sink's
// Close says so when events stay in its spill file.
func openAuditSink(out io.Writer, cfg config.AuditConf, fileFlag string, reg prometheus.Registerer) (audit.Sink, string, error) {
	e := cfg.Elasticsearch
	if !e.Enabled() {
		path := fileFlag
		if path == "" {
			path = cfg.File
		}
		s, err := openAuditFile(out, path, reg)
		if err != nil {
			return nil, "", err
		}
		return s, "file " + s.Path(), nil
	}
	if fileFlag != "" {
		return nil, "", usageError{errors.New("--audit-file and audit.elasticsearch are both set; the trail goes to one of them")}
	}
	conn, err := runner.ElasticsearchConn(e)
	if err != nil {
		return nil, "", err
	}
	opts := []es.Option{es.FlushInterval(e.FlushInterval), es.Registerer(reg)}
	for _, c := range conn {
		opts = append(opts, c)
	}
	prefix := e.IndexPrefix
	opts = append(opts, es.IndexPrefix(prefix))
	if e.Retention != 0 {
		opts = append(opts, es.Retention(e.Retention))
	}
	if e.SpillDir != "" {
		opts = append(opts, es.SpillDir(e.SpillDir))
	}
	ctx, cancel := context.WithTimeout(context.Background(), auditOpenTimeout)
	defer cancel()
	s, err := es.Open(ctx, opts...)
	if err != nil {
		return nil, "", err
	}
	describe := fmt.Sprintf("elasticsearch %s (indices %s-*, spill file %s)", strings.Join(e.URLs, ","), prefix, s.SpillFile())
	fmt.Fprintf(out, "audit trail: %s\n", describe)
	return s, describe, nil
}

// auditedLogger returns log with its event-tagged lines (model changes,
// job events) also written to trail as audit records (audit.LogHandler).
// A line the trail refuses is reported on log itself, never lost quietly.
func auditedLogger(log *slog.Logger, trail audit.Sink) *slog.Logger {
	return slog.New(audit.LogHandler(log.Handler(), trail, "runner", func(err error) {
		log.Error("audit: a lifecycle event could not be written to the trail", "error", err.Error())
	}))
}
