// Package acl turns the access a topology declares (topology.Access) into
// least-privilege Kafka ACL bindings, and compares them with, and applies
// them to, a live cluster. Each role runs as its own principal: a
// processor may read only its inputs and the tables it looks up, write
// only its outputs and dead-letter topics, read and write its own table
// and loopback topic, and join only its own consumer group; the ingest
// principal may only write the sources; the views principal may only read
// the served tables.
//
// The grants are the minimum Goka and sarama need, found against kfake
// with ACLs enforced: READ implies DESCRIBE (metadata, offsets, the group
// coordinator), WRITE implies DESCRIBE, and Goka's topic manager reads the
// configuration of a processor's own table and loopback topic at start
// (DESCRIBE_CONFIGS). No principal may create topics or needs
// cluster-level grants: topics are created beforehand (runner topics).
package acl

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/IBM/sarama"

	"github.com/aetherai/aether/topology"
)

// Binding is one Kafka ACL, in Kafka's names (TOPIC, LITERAL, READ,
// ALLOW); the JSON form is what `runner acls --format json` prints.
type Binding struct {
	Principal    string `json:"principal"`
	ResourceType string `json:"resourceType"`
	ResourceName string `json:"resourceName"`
	PatternType  string `json:"patternType"`
	Operation    string `json:"operation"`
	Permission   string `json:"permission"`
	// Host is the client host the ACL applies to; derived bindings allow
	// any host ("*"). Not in the JSON form.
	Host string `json:"-"`
}

// Kafka's names for the resources, patterns, operations and permissions
// bindings use.
const (
	Topic   = "TOPIC"
	Group   = "GROUP"
	Literal = "LITERAL"
	Read    = "READ"
	Write   = "WRITE"
	// DescribeConfigs lets Goka's topic manager check an existing topic's
	// configuration.
	DescribeConfigs = "DESCRIBE_CONFIGS"
	Allow           = "ALLOW"
	AnyHost         = "*"
)

// String is the binding on one line, as `runner acls` prints it:
// "ALLOW User:aether-sessionizer READ TOPIC user_events_raw", with the
// pattern and host when they are not LITERAL and "*".
func (b Binding) String() string {
	s := fmt.Sprintf("%s %s %s %s %s", b.Permission, b.Principal, b.Operation, b.ResourceType, b.ResourceName)
	if b.PatternType != Literal {
		s += " (" + b.PatternType + ")"
	}
	if b.Host != AnyHost && b.Host != "" {
		s += " from host " + b.Host
	}
	return s
}

// Option configures Derive.
type Option func(*options) error

type options struct {
	views      []string
	principals map[string]string
}

// Views names the tables served outside the topology (read by the views
// role), e.g. the feature store behind the API.
func Views(tables ...string) Option {
	return func(o *options) error { o.views = append(o.views, tables...); return nil }
}

// Principal sets role's principal ("User:<name>"); the default is
// User:aether-<role>.
func Principal(role, principal string) Option {
	return func(o *options) error {
		if !strings.HasPrefix(principal, "User:") || len(principal) == len("User:") {
			return fmt.Errorf("acl: principal %q of role %q: want User:<name>", principal, role)
		}
		o.principals[role] = principal
		return nil
	}
}

// DefaultPrincipal is role's principal when Principal does not set it.
func DefaultPrincipal(role string) string { return "User:aether-" + role }

// Derive returns the bindings of every role of t, sorted (Sort).
func Derive(t *topology.Topology, opts ...Option) ([]Binding, error) {
	o := options{principals: map[string]string{}}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	access, err := t.Access(o.views...)
	if err != nil {
		return nil, err
	}
	var out []Binding
	for _, a := range access {
		p := cmp.Or(o.principals[a.Role], DefaultPrincipal(a.Role))
		add := func(rt, name, op string) {
			out = append(out, Binding{Principal: p, ResourceType: rt, ResourceName: name, PatternType: Literal,
				Operation: op, Permission: Allow, Host: AnyHost})
		}
		for _, topic := range a.Reads {
			add(Topic, topic, Read)
		}
		for _, topic := range a.Writes {
			add(Topic, topic, Write)
		}
		for _, topic := range a.Owns {
			add(Topic, topic, Read)
			add(Topic, topic, Write)
			add(Topic, topic, DescribeConfigs)
		}
		if a.Group != "" {
			add(Group, a.Group, Read)
		}
	}
	Sort(out)
	return slices.Compact(out), nil
}

// Sort orders bindings by principal, resource type, resource name,
// pattern, operation, permission and host.
func Sort(bs []Binding) {
	slices.SortFunc(bs, func(a, b Binding) int {
		return cmp.Or(cmp.Compare(a.Principal, b.Principal), cmp.Compare(a.ResourceType, b.ResourceType),
			cmp.Compare(a.ResourceName, b.ResourceName), cmp.Compare(a.PatternType, b.PatternType),
			cmp.Compare(a.Operation, b.Operation), cmp.Compare(a.Permission, b.Permission), cmp.Compare(a.Host, b.Host))
	})
}

// Drift is how a live cluster differs from the derived bindings.
type Drift struct {
	// Missing are derived bindings the cluster does not have.
	Missing []Binding
	// Excess are live bindings that concern the topology (they name one of
	// its principals or the wildcard principal User:*, or a resource
	// pattern that matches one of its topics or groups) but were not
	// derived: grants wider than least privilege.
	Excess []Binding
}

// Empty reports whether live matches what was derived.
func (d Drift) Empty() bool { return len(d.Missing) == 0 && len(d.Excess) == 0 }

// Compare returns the drift of live from want. ACLs on resources and
// principals the topology does not use are none of its business and are
// ignored.
func Compare(want, live []Binding) Drift {
	norm := func(b Binding) Binding {
		if b.Host == "" {
			b.Host = AnyHost
		}
		return b
	}
	wantSet := map[Binding]bool{}
	principals := map[string]bool{"User:*": true}
	type resource struct{ typ, name string }
	resources := map[resource]bool{}
	for _, b := range want {
		wantSet[norm(b)] = true
		principals[b.Principal] = true
		resources[resource{b.ResourceType, b.ResourceName}] = true
	}
	concerns := func(b Binding) bool {
		if principals[b.Principal] {
			return true
		}
		for r := range resources {
			if r.typ != b.ResourceType {
				continue
			}
			switch b.PatternType {
			case Literal:
				if b.ResourceName == r.name || b.ResourceName == "*" {
					return true
				}
			case "PREFIXED":
				if strings.HasPrefix(r.name, b.ResourceName) {
					return true
				}
			default:
				return true
			}
		}
		return false
	}
	var d Drift
	liveSet := map[Binding]bool{}
	for _, b := range live {
		b = norm(b)
		liveSet[b] = true
		if !wantSet[b] && concerns(b) {
			d.Excess = append(d.Excess, b)
		}
	}
	for b := range wantSet {
		if !liveSet[b] {
			d.Missing = append(d.Missing, b)
		}
	}
	Sort(d.Missing)
	Sort(d.Excess)
	d.Excess = slices.Compact(d.Excess)
	return d
}

// Admin is the part of sarama.ClusterAdmin this package uses.
type Admin interface {
	ListAcls(sarama.AclFilter) ([]sarama.ResourceAcls, error)
	CreateACLs([]*sarama.ResourceAcls) error
	DeleteACL(filter sarama.AclFilter, validateOnly bool) ([]sarama.MatchingAcl, error)
}

// List returns every ACL of the cluster, sorted.
func List(admin Admin) ([]Binding, error) {
	rs, err := admin.ListAcls(sarama.AclFilter{
		ResourceType:              sarama.AclResourceAny,
		ResourcePatternTypeFilter: sarama.AclPatternAny,
		Operation:                 sarama.AclOperationAny,
		PermissionType:            sarama.AclPermissionAny,
	})
	if err != nil {
		return nil, fmt.Errorf("acl: list: %w", err)
	}
	var out []Binding
	for _, r := range rs {
		for _, a := range r.Acls {
			out = append(out, Binding{
				Principal:    a.Principal,
				ResourceType: resourceName(r.ResourceType),
				ResourceName: r.ResourceName,
				PatternType:  patternName(r.ResourcePatternType),
				Operation:    operationName(a.Operation),
				Permission:   permissionName(a.PermissionType),
				Host:         a.Host,
			})
		}
	}
	Sort(out)
	return out, nil
}

// Apply makes the cluster's ACLs that concern the topology equal to the
// derived ones: it creates the missing bindings and deletes the excess
// ones (a grant widened by hand is revoked), then lists again and returns
// an error if any drift is left. It returns what it changed.
func Apply(admin Admin, want []Binding) (Drift, error) {
	live, err := List(admin)
	if err != nil {
		return Drift{}, err
	}
	d := Compare(want, live)
	if len(d.Missing) > 0 {
		var rs []*sarama.ResourceAcls
		for _, b := range d.Missing {
			res, a, err := toSarama(b)
			if err != nil {
				return Drift{}, err
			}
			rs = append(rs, &sarama.ResourceAcls{Resource: res, Acls: []*sarama.Acl{&a}})
		}
		if err := admin.CreateACLs(rs); err != nil {
			return Drift{}, fmt.Errorf("acl: create: %w", err)
		}
	}
	for _, b := range d.Excess {
		res, a, err := toSarama(b)
		if err != nil {
			return Drift{}, err
		}
		f := sarama.AclFilter{Version: 1, ResourceType: res.ResourceType, ResourceName: &res.ResourceName,
			ResourcePatternTypeFilter: res.ResourcePatternType, Principal: &a.Principal, Host: &a.Host,
			Operation: a.Operation, PermissionType: a.PermissionType}
		if _, err := admin.DeleteACL(f, false); err != nil {
			return Drift{}, fmt.Errorf("acl: delete %s: %w", b, err)
		}
	}
	// sarama drops per-binding errors of CreateAcls: check the outcome.
	live, err = List(admin)
	if err != nil {
		return d, err
	}
	if left := Compare(want, live); !left.Empty() {
		return d, fmt.Errorf("acl: drift left after apply: %d missing, %d excess (first: %s)", len(left.Missing), len(left.Excess), first(left))
	}
	return d, nil
}

func first(d Drift) Binding {
	if len(d.Missing) > 0 {
		return d.Missing[0]
	}
	return d.Excess[0]
}

var (
	resourceNames = map[sarama.AclResourceType]string{
		sarama.AclResourceTopic: Topic, sarama.AclResourceGroup: Group, sarama.AclResourceCluster: "CLUSTER",
		sarama.AclResourceTransactionalID: "TRANSACTIONAL_ID", sarama.AclResourceDelegationToken: "DELEGATION_TOKEN",
	}
	patternNames = map[sarama.AclResourcePatternType]string{
		sarama.AclPatternLiteral: Literal, sarama.AclPatternPrefixed: "PREFIXED",
	}
	operationNames = map[sarama.AclOperation]string{
		sarama.AclOperationAll: "ALL", sarama.AclOperationRead: Read, sarama.AclOperationWrite: Write,
		sarama.AclOperationCreate: "CREATE", sarama.AclOperationDelete: "DELETE", sarama.AclOperationAlter: "ALTER",
		sarama.AclOperationDescribe: "DESCRIBE", sarama.AclOperationClusterAction: "CLUSTER_ACTION",
		sarama.AclOperationDescribeConfigs: DescribeConfigs, sarama.AclOperationAlterConfigs: "ALTER_CONFIGS",
		sarama.AclOperationIdempotentWrite: "IDEMPOTENT_WRITE",
	}
	permissionNames = map[sarama.AclPermissionType]string{sarama.AclPermissionAllow: Allow, sarama.AclPermissionDeny: "DENY"}
)

func name[K comparable](m map[K]string, k K) string {
	if s, ok := m[k]; ok {
		return s
	}
	return fmt.Sprintf("UNKNOWN(%v)", k)
}

func resourceName(t sarama.AclResourceType) string       { return name(resourceNames, t) }
func patternName(t sarama.AclResourcePatternType) string { return name(patternNames, t) }
func operationName(t sarama.AclOperation) string         { return name(operationNames, t) }
func permissionName(t sarama.AclPermissionType) string   { return name(permissionNames, t) }
func lookup[K comparable](m map[K]string, s string) (K, bool) {
	for k, v := range m {
		if v == s {
			return k, true
		}
	}
	var zero K
	return zero, false
}

func toSarama(b Binding) (sarama.Resource, sarama.Acl, error) {
	rt, ok1 := lookup(resourceNames, b.ResourceType)
	pt, ok2 := lookup(patternNames, b.PatternType)
	op, ok3 := lookup(operationNames, b.Operation)
	perm, ok4 := lookup(permissionNames, b.Permission)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return sarama.Resource{}, sarama.Acl{}, errors.New("acl: binding with an unknown name: " + b.String())
	}
	host := cmp.Or(b.Host, AnyHost)
	return sarama.Resource{ResourceType: rt, ResourceName: b.ResourceName, ResourcePatternType: pt},
		sarama.Acl{Principal: b.Principal, Host: host, Operation: op, PermissionType: perm}, nil
}
