package processors

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/internal/engine"
)

type discardSink struct{}

func (discardSink) Write(context.Context, ...audit.Event) error { return nil }
func (discardSink) Close() error                                { return nil }

// BenchmarkAuditRecord is what attestation costs a record on the hot path:
// the accumulator lookup and lock, the digest of a clickstream-sized record,
// and its share of the attestation written every DefaultAttestRecords.
func BenchmarkAuditRecord(b *testing.B) {
	cfg := &auditConfig{sink: discardSink{}, records: DefaultAttestRecords, interval: time.Hour, queue: DefaultAuditQueue, drain: time.Second}
	tr, err := newTrail(cfg, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	if err := tr.begin(); err != nil {
		b.Fatal(err)
	}
	defer tr.close()
	a := &procAudit{t: tr, group: "sessionizer", actor: "processor:sessionizer", inputs: map[string]bool{"user_events_raw": true}}
	value := []byte(`{"userId":"user_abc123","productId":"prod_xyz789","eventType":"click","timestamp":"2023-10-27T10:30:00Z","clientIp":"192.168.1.100"}`)
	recs := make([]engine.Record, 8)
	for i := range recs {
		recs[i] = engine.Record{Topic: "user_events_raw", Partition: int32(i), Key: "user_abc" + strconv.Itoa(i), Value: value}
	}
	now := time.Now()
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r := &recs[i%8]
		r.Offset = int64(i / 8)
		a.record(r, engine.Applied, nil, false, now)
	}
}
