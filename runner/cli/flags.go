package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aetherai/aether/runner/config"
)

// runFlags are the flags of every command that takes -c FILE: the file and
// the overrides of its fields, the same on every command so that one
// command line can be reused (runner run, acls, topics, ...).
type runFlags struct {
	file, brokers, redis, http, apiKey, modelSHA, auditFile string
	serve                                                   *serveFlags
}

// addRunFlags registers -c FILE and the override flags on cmd.
func addRunFlags(cmd *cobra.Command) *runFlags {
	f := &runFlags{}
	fs := cmd.Flags()
	fs.StringVarP(&f.file, "config", "c", "", "pipeline YAML file (required)")
	fs.StringVar(&f.brokers, "brokers", "", "Kafka brokers, comma-separated (overrides kafka.brokers)")
	fs.StringVar(&f.redis, "redis", "", "Redis address host:port (overrides redis.addr)")
	fs.StringVar(&f.http, "http", "", "HTTP API address (overrides http.listen)")
	fs.StringVar(&f.apiKey, "api-key", "", "an API key for the client \"cli\" (added to http.apiKeys); also from AETHER_API_KEY")
	fs.StringVar(&f.modelSHA, "model-sha256", "", "the approved model's SHA-256 (overrides model.sha256)")
	fs.StringVar(&f.auditFile, "audit-file", "", "append the audit trail to this file (overrides audit.file)")
	f.serve = addServeFlags(cmd)
	return f
}

// load reads -c FILE and applies the flags.
func (f *runFlags) load() (*config.Config, error) {
	if f.file == "" {
		return nil, usageError{fmt.Errorf("-c FILE is required")}
	}
	cfg, err := config.Load(f.file)
	if err != nil {
		return nil, err
	}
	if err := f.apply(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// apply sets the fields the flags override (an empty flag leaves its field
// alone) and validates the result. --api-key falls back to AETHER_API_KEY.
func (f *runFlags) apply(cfg *config.Config) error {
	if f.brokers != "" {
		cfg.Kafka.Brokers = strings.Split(f.brokers, ",")
	}
	if f.redis != "" {
		cfg.Redis.Addr = f.redis
	}
	if f.http != "" {
		cfg.HTTP.Listen = f.http
	}
	if f.modelSHA != "" {
		cfg.Model.SHA256 = f.modelSHA
	}
	if f.auditFile != "" {
		cfg.Audit.File = f.auditFile
	}
	key := f.apiKey
	if key == "" && len(cfg.HTTP.APIKeys) == 0 {
		// A file that declares no client: the key from the environment.
		// (A file that does may name it itself, as env:AETHER_API_KEY.)
		key = os.Getenv("AETHER_API_KEY")
	}
	if key != "" {
		if cfg.HTTP.APIKeys == nil {
			cfg.HTTP.APIKeys = map[string]string{}
		}
		cfg.HTTP.APIKeys["cli"] = key
	}
	f.serve.set(cfg)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config %s with flags: %w", f.file, err)
	}
	return nil
}

// serveFlags are the flags of the API's listeners, shared by run (through
// runFlags) and demo, which has no file.
type serveFlags struct {
	tlsCert, tlsKey, admin, adminToken string
}

// addServeFlags registers --tls-cert, --tls-key, --admin and --admin-token
// on cmd.
func addServeFlags(cmd *cobra.Command) *serveFlags {
	f := &serveFlags{}
	fs := cmd.Flags()
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate of the HTTPS API and admin API (overrides http.tls.certFile; needs --tls-key)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM private key of --tls-cert (overrides http.tls.keyFile)")
	fs.StringVar(&f.admin, "admin", "", "admin API address, loopback unless TLS is on, or \"off\" (overrides http.admin.listen; default "+config.DefaultAdminListen+")")
	fs.StringVar(&f.adminToken, "admin-token", "", "admin API bearer token (overrides http.admin.token; prefer "+config.EnvAdminToken+", which keeps it out of the process list)")
	return f
}

// set writes the flags given into cfg.
func (f *serveFlags) set(cfg *config.Config) {
	if f.tlsCert != "" {
		cfg.HTTP.TLS.CertFile = f.tlsCert
	}
	if f.tlsKey != "" {
		cfg.HTTP.TLS.KeyFile = f.tlsKey
	}
	if f.admin != "" {
		cfg.HTTP.Admin.Listen = f.admin
	}
	if f.adminToken != "" {
		cfg.HTTP.Admin.Token = f.adminToken
	}
}
