package runner

import (
	es "github.com/aetherai/aether/audit/elasticsearch"
	"github.com/aetherai/aether/runner/config"
)

// ElasticsearchConn is how every command reaches the Elasticsearch trail of
// audit.elasticsearch: its URLs, basic auth (the password resolved from
// the environment) and CA file.
func ElasticsearchConn(e config.AuditElasticsearch) ([]es.ConnOption, error) {
	opts := []es.ConnOption{es.URLs(e.URLs...)}
	if e.Username != "" {
		pw, err := e.ResolvePassword()
		if err != nil {
			return nil, err
		}
		opts = append(opts, es.BasicAuth(e.Username, pw))
	}
	if e.CAFile != "" {
		opts = append(opts, es.CAFile(e.CAFile))
	}
	return opts, nil
}
