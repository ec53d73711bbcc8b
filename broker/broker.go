// Package broker runs an embedded Kafka-protocol broker (kfake, in process)
// for tests, examples and the runner binary, and holds the sarama
// configuration and topic administration helpers the framework uses.
//
// The broker speaks the real Kafka wire protocol on loopback TCP ports, so
// any Kafka client (sarama, goka, kcat, franz-go) can talk to it:
//
//	b, err := broker.Start(broker.Partitions(8))
//	if err != nil { ... }
//	defer b.Close()
//	cfg := broker.SaramaConfig("my-client")
//	err = broker.EnsureTopic(ctx, b.Addrs(), cfg, broker.TopicSpec{Name: "events", Partitions: 8})
//
// Nothing in this package touches goka's global configuration: every
// SaramaConfig call returns a fresh *sarama.Config.
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Defaults used by Start when no option overrides them.
const (
	DefaultBrokers    = 1
	DefaultPartitions = 8
	// MaxBrokers bounds Brokers(n); kfake starts every broker in process.
	MaxBrokers = 64
)

// Option configures Start. Options are validated before anything is started:
// an invalid option makes Start return an error and listen on nothing.
type Option func(*options) error

type options struct {
	brokers    int
	partitions int
	host       string // "" = 127.0.0.1
	port       int    // 0 = random ports
	portSet    bool
	addrSet    bool
	autoCreate bool
	logger     *slog.Logger
	tls        *tls.Config
	users      []saslUser
	acls       bool
}

// saslUser is a SASL user of the embedded broker.
type saslUser struct {
	mechanism, name, password string
	super                     bool
}

// Brokers sets the number of brokers in the cluster (default 1, at most
// MaxBrokers). Every broker has its own listener.
func Brokers(n int) Option {
	return func(o *options) error {
		if n < 1 || n > MaxBrokers {
			return fmt.Errorf("broker: Brokers(%d): want 1..%d", n, MaxBrokers)
		}
		o.brokers = n
		return nil
	}
}

// Partitions sets the partition count of auto-created topics and of topics
// created with a partition count of -1 (default 8).
func Partitions(n int) Option {
	return func(o *options) error {
		if n < 1 || n > 1<<20 {
			return fmt.Errorf("broker: Partitions(%d): want >= 1", n)
		}
		o.partitions = n
		return nil
	}
}

// Port makes the first broker listen on 127.0.0.1:p; with Brokers(n) the
// brokers listen on p, p+1, ..., p+n-1. Port(0) keeps random ports.
// Port and Addr are mutually exclusive.
func Port(p int) Option {
	return func(o *options) error {
		if p < 0 || p > 65535 {
			return fmt.Errorf("broker: Port(%d): want 0..65535", p)
		}
		if o.addrSet {
			return errors.New("broker: Port and Addr are mutually exclusive")
		}
		o.port, o.portSet = p, true
		return nil
	}
}

// Addr makes the first broker listen on host:port (port 0 = random); with
// Brokers(n) the brokers listen on port, port+1, ..., port+n-1 of host.
//
// The host must be a concrete address (an IP literal such as 127.0.0.1 or
// ::1, or a name such as localhost): kfake advertises each listener's own
// address to clients in metadata, so a wildcard address (0.0.0.0, ::) would
// be advertised and is refused. Port and Addr are mutually exclusive.
func Addr(hostport string) Option {
	return func(o *options) error {
		host, portStr, err := net.SplitHostPort(hostport)
		if err != nil {
			return fmt.Errorf("broker: Addr(%q): %w", hostport, err)
		}
		if host == "" {
			return fmt.Errorf("broker: Addr(%q): empty host (a wildcard address would be advertised to clients)", hostport)
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			return fmt.Errorf("broker: Addr(%q): wildcard host %s would be advertised to clients; use a concrete address such as 127.0.0.1", hostport, host)
		}
		p, err := strconv.Atoi(portStr)
		if err != nil || p < 0 || p > 65535 {
			return fmt.Errorf("broker: Addr(%q): bad port %q", hostport, portStr)
		}
		if o.portSet {
			return errors.New("broker: Port and Addr are mutually exclusive")
		}
		o.host, o.port, o.addrSet = host, p, true
		return nil
	}
}

// AutoCreateTopics sets whether the broker creates a topic, with the default
// partition count, when a client asks for metadata of a missing topic
// (default true). goka emitters and processor outputs create no topics, so
// with false every topic must be created first (EnsureTopic).
func AutoCreateTopics(on bool) Option {
	return func(o *options) error {
		o.autoCreate = on
		return nil
	}
}

// Logger routes kfake's log lines to l (default: discarded). kfake's levels
// map to slog's (error, warn, info, debug); info carries group joins and
// leaves, debug the verbose detail.
func Logger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("broker: Logger(nil)")
		}
		o.logger = l
		return nil
	}
}

// ListenTLS makes every listener speak TLS with c (its certificate is the
// brokers'). Clients then need broker.Security{TLS: ...}.
func ListenTLS(c *tls.Config) Option {
	return func(o *options) error {
		if c == nil || (len(c.Certificates) == 0 && c.GetCertificate == nil) {
			return errors.New("broker: ListenTLS: a config with a server certificate is required")
		}
		o.tls = c
		return nil
	}
}

// User adds a SASL user (mechanism SASLPlain, SASLScramSHA256 or
// SASLScramSHA512) whose requests are subject to ACLs, principal
// "User:<name>". Any User or Superuser turns SASL authentication on: a
// client without credentials is then refused.
func User(mechanism, name, password string) Option {
	return addUser(saslUser{mechanism: mechanism, name: name, password: password})
}

// Superuser adds a SASL user that bypasses ACLs: the operator's identity
// for creating topics and ACLs.
func Superuser(mechanism, name, password string) Option {
	return addUser(saslUser{mechanism: mechanism, name: name, password: password, super: true})
}

func addUser(u saslUser) Option {
	return func(o *options) error {
		if err := checkMechanism(u.mechanism); err != nil {
			return fmt.Errorf("broker: SASL user %q: %w", u.name, err)
		}
		if u.name == "" || u.password == "" {
			return fmt.Errorf("broker: SASL user %q: empty name or password", u.name)
		}
		o.users = append(o.users, u)
		return nil
	}
}

// EnableACLs makes the broker enforce ACLs: a principal may do only what
// an ACL allows it, superusers anything. It needs a Superuser, since
// otherwise no one could create the first ACL.
func EnableACLs() Option {
	return func(o *options) error { o.acls = true; return nil }
}

// Broker is a running in-process Kafka-protocol cluster.
type Broker struct {
	cluster *kfake.Cluster
	addrs   []string
}

// Start validates opts and starts the cluster. Close it when done.
func Start(opts ...Option) (*Broker, error) {
	o := options{
		brokers:    DefaultBrokers,
		partitions: DefaultPartitions,
		autoCreate: true,
	}
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("broker: nil Option")
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.acls && !slices.ContainsFunc(o.users, func(u saslUser) bool { return u.super }) {
		return nil, errors.New("broker: EnableACLs needs a Superuser to create the ACLs")
	}
	if o.port > 0 && o.port+o.brokers-1 > 65535 {
		return nil, fmt.Errorf("broker: ports %d..%d out of range", o.port, o.port+o.brokers-1)
	}

	kopts := []kfake.Opt{
		kfake.NumBrokers(o.brokers),
		kfake.DefaultNumPartitions(o.partitions),
		kfake.ClusterID("aether"),
	}
	if o.port > 0 {
		ports := make([]int, o.brokers)
		for i := range ports {
			ports[i] = o.port + i
		}
		// kfake.Ports overrides NumBrokers with len(ports).
		kopts = append(kopts, kfake.Ports(ports...))
	}
	if o.host != "" {
		// kfake always listens on "127.0.0.1:<port>"; swap in our host.
		host := o.host
		kopts = append(kopts, kfake.ListenFn(func(network, address string) (net.Listener, error) {
			_, port, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			return net.Listen(network, net.JoinHostPort(host, port))
		}))
	}
	if o.autoCreate {
		kopts = append(kopts, kfake.AllowAutoTopicCreation())
	}
	if o.logger != nil {
		kopts = append(kopts, kfake.WithLogger(slogAdapter{o.logger}))
	}
	if o.tls != nil {
		kopts = append(kopts, kfake.TLS(o.tls))
	}
	if len(o.users) > 0 {
		kopts = append(kopts, kfake.EnableSASL())
	}
	for _, u := range o.users {
		if u.super {
			kopts = append(kopts, kfake.Superuser(u.mechanism, u.name, u.password))
		} else {
			kopts = append(kopts, kfake.User(u.mechanism, u.name, u.password))
		}
	}
	if o.acls {
		kopts = append(kopts, kfake.EnableACLs())
	}

	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("broker: start kfake: %w", err)
	}
	return &Broker{cluster: c, addrs: c.ListenAddrs()}, nil
}

// Addrs returns the brokers' host:port addresses, one per broker, in node
// order. It is fixed at Start: nodes added later through Cluster() are not
// listed. Safe to call after Close.
func (b *Broker) Addrs() []string {
	return append([]string(nil), b.addrs...)
}

// Close stops the cluster and its listeners; data is discarded. Safe to call
// more than once.
func (b *Broker) Close() {
	b.cluster.Close()
}

// Cluster exposes the underlying kfake cluster for fault injection in tests
// (Control, ControlKey, MoveTopicPartition, ShufflePartitionLeaders, Compact,
// ApplyRetention, AddNode, RemoveNode, ...). Do not call its methods after
// Close: kfake's admin calls block forever on a closed cluster.
func (b *Broker) Cluster() *kfake.Cluster {
	return b.cluster
}

// slogAdapter implements kfake.Logger on top of slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Logf(level kfake.LogLevel, msg string, args ...any) {
	var sl slog.Level
	switch level {
	case kfake.LogLevelError:
		sl = slog.LevelError
	case kfake.LogLevelWarn:
		sl = slog.LevelWarn
	case kfake.LogLevelInfo:
		sl = slog.LevelInfo
	case kfake.LogLevelDebug:
		sl = slog.LevelDebug
	default:
		return
	}
	ctx := context.Background()
	if !a.l.Enabled(ctx, sl) {
		return // skip formatting of filtered (mostly debug) lines
	}
	a.l.Log(ctx, sl, fmt.Sprintf(msg, args...), "component", "kfake")
}
