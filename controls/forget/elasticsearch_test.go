package forget_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/audit"
	es "github.com/aetherai/aether/audit/elasticsearch"
	"github.com/aetherai/aether/controls/forget"
	"github.com/aetherai/aether/internal/esfake"
)

// TestAuditElasticsearch redacts the user's records in the faithful
// Elasticsearch fake: counted, gone from the documents, the other user's
// intact, the chain verifying.
func TestAuditElasticsearch(t *testing.T) {
	srv := esfake.New()
	defer srv.Close()
	ctx := context.Background()
	s, err := es.Open(ctx, es.URLs(srv.URL()), es.SpillDir(t.TempDir()))
	require.NoError(t, err)
	for _, sub := range []string{aliceSubject, bobSubject, aliceSubject} {
		e, err := audit.New(audit.Event{Kind: audit.KindAPIRequest, Actor: "shop", Action: "GET",
			Resource: "/v1/features/{userId}", Subject: sub, Outcome: "200"})
		require.NoError(t, err)
		require.NoError(t, s.Write(ctx, e))
	}
	require.NoError(t, s.Close())

	f, err := forget.New(forget.Config{Stores: []forget.Store{&forget.AuditElasticsearch{Prefix: es.DefaultPrefix, Conn: []es.ConnOption{es.URLs(srv.URL())}}}})
	require.NoError(t, err)
	rc, err := f.Forget(ctx, alice, aliceSubject)
	require.NoError(t, err)
	require.True(t, rc.Complete, "%+v", rc)
	require.EqualValues(t, 2, *rc.Stores[0].Count)
	require.Equal(t, forget.StatusRedacted, rc.Stores[0].Status)

	rep, err := es.Verify(ctx, es.DefaultPrefix, es.URLs(srv.URL()))
	require.NoError(t, err)
	require.Equal(t, 3, rep.Records)
	require.Equal(t, 2, rep.Redacted, "alice's two records, not bob's")
}
