package cli

import (
	"crypto/tls"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aetherai/aether/broker"
)

func brokerCmd() *cobra.Command {
	var listen, tlsCert, tlsKey, mechanism string
	var partitions, brokers int
	var users, superusers []string
	var acls bool
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run a standalone embedded Kafka-protocol broker (kfake) for several processes and real clients such as kcat",
		Long: `Run an in-memory Kafka-protocol broker (kfake) on a fixed address until
interrupted. Any Kafka client can use it: runner run, kcat, franz-go,
sarama. Topics are created on first use with the given partition count.
Data lives in memory and is gone when the broker stops.

To rehearse a secured cluster: --tls-cert/--tls-key serve TLS, --user and
--superuser (NAME=SECRET, SECRET being env:VAR or the password itself, which
then shows in the process list) turn SASL on with --sasl-mechanism, and
--acls enforces ACLs (superusers bypass them; runner acls --apply creates the
pipeline's).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := []broker.Option{broker.Addr(listen), broker.Partitions(partitions), broker.Brokers(brokers)}
			if (tlsCert == "") != (tlsKey == "") {
				return usageError{fmt.Errorf("broker: --tls-cert and --tls-key go together")}
			}
			if tlsCert != "" {
				cert, err := tls.LoadX509KeyPair(tlsCert, tlsKey)
				if err != nil {
					return fmt.Errorf("broker: --tls-cert: %w", err)
				}
				opts = append(opts, broker.ListenTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
			}
			for _, spec := range [2]struct {
				flag  string
				vals  []string
				super bool
			}{{"--user", users, false}, {"--superuser", superusers, true}} {
				for _, v := range spec.vals {
					name, pass, err := parseUser(spec.flag, v)
					if err != nil {
						return err
					}
					if spec.super {
						opts = append(opts, broker.Superuser(mechanism, name, pass))
					} else {
						opts = append(opts, broker.User(mechanism, name, pass))
					}
				}
			}
			if acls {
				opts = append(opts, broker.EnableACLs())
			}
			if len(users)+len(superusers) > 0 && tlsCert == "" && mechanism == broker.SASLPlain {
				return usageError{fmt.Errorf("broker: --sasl-mechanism PLAIN sends passwords in clear: give --tls-cert")}
			}
			b, err := broker.Start(opts...)
			if err != nil {
				return err
			}
			defer b.Close()
			var mode []string
			if tlsCert != "" {
				mode = append(mode, "TLS")
			}
			if len(users)+len(superusers) > 0 {
				mode = append(mode, "SASL "+mechanism)
			}
			if acls {
				mode = append(mode, "ACLs enforced")
			}
			if len(mode) == 0 {
				mode = append(mode, "plaintext, no authentication")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "broker listening on %v (%d partitions per new topic; %s); Ctrl-C stops it\n", b.Addrs(), partitions, strings.Join(mode, ", "))
			<-cmd.Context().Done()
			fmt.Fprintln(cmd.OutOrStdout(), "broker stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9092", "address to listen on (loopback by default)")
	cmd.Flags().IntVar(&partitions, "partitions", broker.DefaultPartitions, "partitions of topics created on first use")
	cmd.Flags().IntVar(&brokers, "brokers", 1, "brokers in the cluster; broker i listens on the port of --listen plus i")
	cmd.Flags().StringVar(&tlsCert, "tls-cert", "", "PEM server certificate: the listeners speak TLS (needs --tls-key)")
	cmd.Flags().StringVar(&tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	cmd.Flags().StringVar(&mechanism, "sasl-mechanism", broker.SASLScramSHA512, "SASL mechanism of --user and --superuser: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	cmd.Flags().StringArrayVar(&users, "user", nil, "a SASL user subject to ACLs, NAME=SECRET (env:VAR or the password); repeatable")
	cmd.Flags().StringArrayVar(&superusers, "superuser", nil, "a SASL user that bypasses ACLs, NAME=SECRET; repeatable")
	cmd.Flags().BoolVar(&acls, "acls", false, "enforce ACLs (needs a --superuser)")
	return cmd
}

// parseUser splits NAME=SECRET, reading SECRET env:VAR from the
// environment.
func parseUser(flag, v string) (name, password string, err error) {
	name, secret, ok := strings.Cut(v, "=")
	if !ok || name == "" || secret == "" {
		return "", "", usageError{fmt.Errorf("broker: %s %q: want NAME=SECRET", flag, v)}
	}
	if env, isEnv := strings.CutPrefix(secret, "env:"); isEnv {
		secret = os.Getenv(env)
		if secret == "" {
			return "", "", usageError{fmt.Errorf("broker: %s %s: environment variable %s is empty", flag, name, env)}
		}
	}
	return name, secret, nil
}
