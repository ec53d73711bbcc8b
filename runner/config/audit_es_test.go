package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/runner/config"
)

func TestAuditElasticsearch(t *testing.T) {
	c, err := config.Parse([]byte(minimal + `
audit:
  elasticsearch:
    urls: [https://es-1:9200, https://es-2:9200]
    username: aether-audit
    password: env:AETHER_TEST_ES_PASSWORD
    caFile: /etc/aether/es-ca.pem
    spillDir: /var/lib/aether
    flushInterval: 1s
`))
	require.NoError(t, err)
	e := c.Audit.Elasticsearch
	require.True(t, e.Enabled())
	require.Equal(t, config.AuditElasticsearch{
		URLs: []string{"https://es-1:9200", "https://es-2:9200"}, IndexPrefix: "aether-audit",
		Username: "aether-audit", Password: "env:AETHER_TEST_ES_PASSWORD", CAFile: "/etc/aether/es-ca.pem",
		Retention: 400 * 24 * time.Hour, SpillDir: "/var/lib/aether", FlushInterval: time.Second,
	}, e)
	_, err = e.ResolvePassword()
	require.EqualError(t, err, "audit.elasticsearch.password: environment variable AETHER_TEST_ES_PASSWORD is empty")
	t.Setenv("AETHER_TEST_ES_PASSWORD", "s3cret")
	pw, err := e.ResolvePassword()
	require.NoError(t, err)
	require.Equal(t, "s3cret", pw)

	c, err = config.Parse([]byte(minimal))
	require.NoError(t, err)
	require.False(t, c.Audit.Elasticsearch.Enabled())
	require.Equal(t, config.AuditElasticsearch{}, c.Audit.Elasticsearch, "no defaults when not used")

	for yaml, want := range map[string]string{
		"audit:\n  elasticsearch:\n    indexPrefix: x\n":                                                 "audit.elasticsearch.urls: at least one URL is required when audit.elasticsearch is set",
		"audit:\n  file: a.jsonl\n  elasticsearch:\n    urls: [http://es:9200]\n":                        "audit.file: give audit.file or audit.elasticsearch, not both",
		"audit:\n  elasticsearch:\n    urls: [es:9200]\n":                                                "audit.elasticsearch.urls[0]: is not an http(s) URL",
		"audit:\n  elasticsearch:\n    urls: [http://u:p@es:9200]\n":                                     "audit.elasticsearch.urls[0]: carries credentials; use username and password",
		"audit:\n  elasticsearch:\n    urls: [http://es:9200]\n    indexPrefix: Audit\n":                 `audit.elasticsearch.indexPrefix: "Audit" must be lower case letters, digits, '.', '_' or '-'`,
		"audit:\n  elasticsearch:\n    urls: [http://es:9200]\n    username: u\n    password: hunter2\n": `audit.elasticsearch.password: must be "env:NAME"; a password does not belong in the file`,
		"audit:\n  elasticsearch:\n    urls: [http://es:9200]\n    username: u\n":                        "audit.elasticsearch.username: username and password go together",
		"audit:\n  elasticsearch:\n    urls: [http://es:9200]\n    retention: 10m\n":                     "audit.elasticsearch.retention: must be at least 1h, got 10m0s",
		"audit:\n  elasticsearch:\n    urls: [http://es:9200]\n    flushInterval: -1s\n":                 "audit.elasticsearch.flushInterval: must not be negative",
	} {
		_, err := config.Parse([]byte(minimal + yaml))
		require.Error(t, err, yaml)
		require.Equal(t, want, err.Error(), yaml)
		require.False(t, strings.Contains(err.Error(), "hunter2"))
	}
}

func TestAuditMessages(t *testing.T) {
	for _, v := range []string{"", "attestations", "per-message"} {
		_, err := config.Parse([]byte("kafka: {brokers: [k:9092]}\nmodel: {dir: m}\naudit: {messages: \"" + v + "\"}\n"))
		require.NoError(t, err, v)
	}
	_, err := config.Parse([]byte("kafka: {brokers: [k:9092]}\nmodel: {dir: m}\naudit: {messages: every}\n"))
	require.EqualError(t, err, `audit.messages: is "every": want attestations or per-message`)
}
