package elasticsearch

import (
	"context"
	"fmt"
	"time"

	"github.com/olivere/elastic/v7"
)

// ilmAge formats a duration in the largest whole unit ILM accepts.
func ilmAge(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// Policy is the ILM policy the sink installs: indices are deleted once
// they are older than the retention.
func Policy(retention time.Duration) map[string]any {
	return map[string]any{"policy": map[string]any{
		"_meta": map[string]any{"managed_by": "aether", "description": "audit trail retention"},
		"phases": map[string]any{
			"hot":    map[string]any{"min_age": "0ms", "actions": map[string]any{}},
			"delete": map[string]any{"min_age": ilmAge(retention), "actions": map[string]any{"delete": map[string]any{}}},
		},
	}}
}

// Template is the index template the sink installs for <prefix>-*: every
// string is a keyword (audit fields are looked up, never analysed),
// event.time is a date, and the ILM policy prefix applies.
func Template(prefix string) map[string]any {
	kw := map[string]any{"type": "keyword"}
	return map[string]any{
		"index_patterns": []string{prefix + "-*"},
		"priority":       200,
		"_meta":          map[string]any{"managed_by": "aether"},
		"template": map[string]any{
			"settings": map[string]any{"index": map[string]any{"lifecycle": map[string]any{"name": prefix}}},
			"mappings": map[string]any{
				"dynamic_templates": []any{map[string]any{"strings_as_keywords": map[string]any{
					"match_mapping_type": "string", "mapping": kw}}},
				"properties": map[string]any{
					"seq":      map[string]any{"type": "long"},
					"prevHash": kw,
					"hash":     kw,
					"event": map[string]any{"properties": map[string]any{
						"id": kw, "time": map[string]any{"type": "date"}, "kind": kw, "actor": kw,
						"resource": kw, "action": kw, "outcome": kw, "subject": kw, "correlationId": kw,
						"attributes":  map[string]any{"type": "object", "dynamic": true},
						"redacted":    map[string]any{"type": "boolean"},
						"eventDigest": kw,
					}},
				},
			},
		},
	}
}

// installLifecycle puts the ILM policy, then the template that names it.
func installLifecycle(ctx context.Context, c *elastic.Client, cfg config) error {
	if _, err := c.XPackIlmPutLifecycle().Policy(cfg.prefix).BodyJson(Policy(cfg.retention)).Do(ctx); err != nil {
		return fmt.Errorf("audit: elasticsearch: installing ILM policy %s: %w", cfg.prefix, err)
	}
	if _, err := c.IndexPutIndexTemplate(cfg.prefix).BodyJson(Template(cfg.prefix)).Do(ctx); err != nil {
		return fmt.Errorf("audit: elasticsearch: installing index template %s: %w", cfg.prefix, err)
	}
	return nil
}
