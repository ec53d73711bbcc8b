package cli_test

import (
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
)

func TestTopicsListsTheDeclaredConfiguration(t *testing.T) {
	code, out, stderr := run("topics", "-c", "../../examples/recommendations/aether.yaml")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, `sessionizer-loop [loopback, 8 partitions, retention.ms=3600000 (1h), cleanup.policy=delete]
sessionizer-table [table, 8 partitions, cleanup.policy=compact]
user_events_raw [stream, 8 partitions, retention.ms=604800000 (7d), cleanup.policy=delete]
user_events_raw.dlq [dead letters, 8 partitions, retention.ms=604800000 (7d), cleanup.policy=delete]
user_features_processed [stream, 8 partitions, retention.ms=2592000000 (30d), cleanup.policy=delete]
user_features_processed.dlq [dead letters, 8 partitions, retention.ms=2592000000 (30d), cleanup.policy=delete]
`, out)
}

func TestTopicsCheckAndApplyDrift(t *testing.T) {
	file, admin := secureBroker(t)

	code, out, stderr := run("topics", "-c", file, "--check")
	require.Equal(t, 1, code)
	require.Equal(t, `drift: sessionizer-loop: missing
drift: sessionizer-table: missing
drift: user_events_raw: missing
drift: user_events_raw.dlq: missing
drift: user_features_processed: missing
drift: user_features_processed.dlq: missing
`, out)
	require.Equal(t, "runner: topics: drift in 6 places\n", stderr)

	code, out, stderr = run("topics", "-c", file, "--apply")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, 6, strings.Count(out, "fixed: "))
	require.True(t, strings.HasSuffix(out, "topics: applied: 6 changes; 6 topics declared\n"), out)

	code, out, stderr = run("topics", "-c", file, "--check")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "topics: the cluster matches the 6 declared topics\n", out)

	// Hand-made drift: a shorter retention, a compacted stream, a table
	// that is no longer compacted, a dead-letter topic with fewer
	// partitions.
	set := func(topic, key, value string) {
		require.NoError(t, admin.IncrementalAlterConfig(sarama.TopicResource, topic, map[string]sarama.IncrementalAlterConfigsEntry{
			key: {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &value}}, false))
	}
	set("user_events_raw", "retention.ms", "86400000")
	set("user_features_processed", "cleanup.policy", "compact")
	set("sessionizer-table", "cleanup.policy", "delete")
	require.NoError(t, admin.DeleteTopic("user_features_processed.dlq"))
	require.Eventually(t, func() bool {
		err := admin.CreateTopic("user_features_processed.dlq", &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false)
		return err == nil
	}, 10e9, 100e6)

	code, out, stderr = run("topics", "-c", file, "--check")
	require.Equal(t, 1, code)
	require.Equal(t, `drift: sessionizer-table: cleanup.policy is not compact, want compact (a table)
drift: user_events_raw: retention.ms=86400000, want 604800000 (7d)
drift: user_features_processed: cleanup.policy includes compact, want delete (records must expire with the retention)
drift: user_features_processed.dlq: 2 partitions, want 4
drift: user_features_processed.dlq: retention.ms=604800000, want 2592000000 (30d)
`, out)
	require.Equal(t, "runner: topics: drift in 5 places\n", stderr)

	code, out, stderr = run("topics", "-c", file, "--apply")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, 5, strings.Count(out, "fixed: "), out)

	code, out, stderr = run("topics", "-c", file, "--check")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "topics: the cluster matches the 6 declared topics\n", out)
}
