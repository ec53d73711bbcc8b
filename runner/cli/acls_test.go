package cli_test

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/broker"
	"github.com/aetherai/aether/broker/brokertest"
	"github.com/aetherai/aether/internal/testcert"
)

// secureBroker starts kfake with TLS, SASL SCRAM-SHA-512 and ACLs, a
// superuser and one user per role of the example pipeline, and writes a
// pipeline file that connects to it with each role's credentials from the
// environment. It returns the file and an admin client.
func secureBroker(t *testing.T) (file string, admin sarama.ClusterAdmin) {
	t.Helper()
	ca := testcert.New(t)
	srv := ca.Server(t, "127.0.0.1")
	roles := []string{"admin", "sessionizer", "recommender", "ingest", "views"}
	opts := []broker.Option{broker.Partitions(4),
		broker.ListenTLS(&tls.Config{Certificates: []tls.Certificate{srv.TLS}, MinVersion: tls.VersionTLS12}),
		broker.EnableACLs()}
	var principals strings.Builder
	for _, r := range roles {
		user, pass := "aether-"+r, r+"-pw"
		if r == "admin" {
			opts = append(opts, broker.Superuser(broker.SASLScramSHA512, user, pass))
		} else {
			opts = append(opts, broker.User(broker.SASLScramSHA512, user, pass))
		}
		env := "AETHER_TEST_KAFKA_" + strings.ToUpper(r)
		t.Setenv(env, pass)
		fmt.Fprintf(&principals, "      %s: {username: %s, password: env:%s}\n", r, user, env)
	}
	b := brokertest.Start(t, opts...)

	file = filepath.Join(t.TempDir(), "aether.yaml")
	yaml := fmt.Sprintf(`kafka:
  brokers: [%s]
  partitions: 4
  security:
    tls: {caFile: %s}
    sasl: {mechanism: SCRAM-SHA-512}
    principals:
%smodel: {dir: ./model}
`, b.Addrs()[0], ca.CertFile, principals.String())
	require.NoError(t, os.WriteFile(file, []byte(yaml), 0o600))

	sc, err := broker.Security{TLS: &broker.TLS{CAFile: ca.CertFile},
		SASL: &broker.SASL{Mechanism: broker.SASLScramSHA512, Username: "aether-admin", Password: "admin-pw"}}.SaramaConfigs()
	require.NoError(t, err)
	admin, err = sarama.NewClusterAdmin(b.Addrs(), sc("test-admin"))
	require.NoError(t, err)
	t.Cleanup(func() { admin.Close() })
	return file, admin
}

func TestACLsCheckApplyAndWidenedGrant(t *testing.T) {
	file, admin := secureBroker(t)

	code, out, stderr := run("acls", "-c", file, "--check")
	require.Equal(t, 1, code)
	require.Equal(t, "runner: acls: drift: 15 missing and 0 excess grants\n", stderr)
	require.Contains(t, out, "missing: ALLOW User:aether-ingest WRITE TOPIC user_events_raw\n")
	require.Equal(t, 15, strings.Count(out, "missing: "))

	code, out, stderr = run("acls", "-c", file, "--apply")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, 15, strings.Count(out, "created: "))
	require.Contains(t, out, "created: ALLOW User:aether-recommender READ GROUP recommender\n")
	require.True(t, strings.HasSuffix(out, "acls: applied: 15 created, 0 deleted; 15 bindings declared\n"), out)

	code, out, stderr = run("acls", "-c", file, "--check")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "acls: the cluster matches the 15 declared bindings\n", out)

	// Someone widens the recommender's grant by hand, and grants an
	// unrelated principal an unrelated topic.
	require.NoError(t, admin.CreateACL(
		sarama.Resource{ResourceType: sarama.AclResourceTopic, ResourceName: "*", ResourcePatternType: sarama.AclPatternLiteral},
		sarama.Acl{Principal: "User:aether-recommender", Host: "*", Operation: sarama.AclOperationRead, PermissionType: sarama.AclPermissionAllow}))
	require.NoError(t, admin.CreateACL(
		sarama.Resource{ResourceType: sarama.AclResourceTopic, ResourceName: "billing", ResourcePatternType: sarama.AclPatternLiteral},
		sarama.Acl{Principal: "User:billing", Host: "*", Operation: sarama.AclOperationRead, PermissionType: sarama.AclPermissionAllow}))

	code, out, stderr = run("acls", "-c", file, "--check")
	require.Equal(t, 1, code)
	require.Equal(t, "excess: ALLOW User:aether-recommender READ TOPIC *\n", out)
	require.Equal(t, "runner: acls: drift: 0 missing and 1 excess grants\n", stderr)

	code, out, _ = run("acls", "-c", file, "--check", "--format", "json")
	require.Equal(t, 1, code)
	require.JSONEq(t, `{"missing": [], "excess": [{"principal": "User:aether-recommender", "resourceType": "TOPIC",
		"resourceName": "*", "patternType": "LITERAL", "operation": "READ", "permission": "ALLOW"}]}`, out)

	code, out, stderr = run("acls", "-c", file, "--apply")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "deleted: ALLOW User:aether-recommender READ TOPIC *\nacls: applied: 0 created, 1 deleted; 15 bindings declared\n", out)

	code, out, stderr = run("acls", "-c", file, "--check")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "acls: the cluster matches the 15 declared bindings\n", out)

	// The unrelated grant is none of the pipeline's business: kept.
	live, err := admin.ListAcls(sarama.AclFilter{ResourceType: sarama.AclResourceTopic, ResourcePatternTypeFilter: sarama.AclPatternAny,
		Operation: sarama.AclOperationAny, PermissionType: sarama.AclPermissionAny, ResourceName: ptr("billing")})
	require.NoError(t, err)
	require.Len(t, live, 1)
}

func TestACLsPrintsBindingsAsJSON(t *testing.T) {
	code, out, stderr := run("acls", "-c", "../../examples/recommendations/aether.yaml", "--format", "json")
	require.Equal(t, 0, code, stderr)
	require.True(t, strings.HasPrefix(out, `[
  {
    "principal": "User:aether-ingest",
    "resourceType": "TOPIC",
    "resourceName": "user_events_raw",
    "patternType": "LITERAL",
    "operation": "WRITE",
    "permission": "ALLOW"
  },
`), out)
	require.Equal(t, 15, strings.Count(out, `"principal"`))

	code, _, stderr = run("acls", "-c", "../../examples/recommendations/aether.yaml", "--format", "yaml")
	require.Equal(t, 2, code)
	require.Equal(t, "runner: acls: unknown format \"yaml\" (want text or json)\n", stderr)
}

func ptr[T any](v T) *T { return &v }
