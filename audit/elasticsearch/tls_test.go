package elasticsearch_test

import (
	"context"
	"encoding/pem"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/audit"
	"github.com/aetherai/aether/audit/audittest"
	es "github.com/aetherai/aether/audit/elasticsearch"
)

func TestCAFile(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	target, err := url.Parse(f.srv.URL())
	require.NoError(t, err)
	front := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(target))
	defer front.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw}), 0o600))

	_, err = es.Open(ctx, es.URLs(front.URL), es.SpillDir(f.dir))
	require.ErrorContains(t, err, "certificate signed by unknown authority")

	s := f.open(t, es.URLs(front.URL), es.CAFile(ca))
	require.NoError(t, s.Write(ctx, audittest.Event(t, 0)))
	require.NoError(t, s.Close())
	rep, err := es.Verify(ctx, es.DefaultPrefix, es.URLs(front.URL), es.CAFile(ca))
	require.NoError(t, err)
	require.Equal(t, 1, rep.Records)
	require.Equal(t, []audit.Event{audittest.Event(t, 0)}, events(f.read(t, es.DefaultPrefix)))

	_, err = es.Open(ctx, es.URLs(front.URL), es.CAFile(filepath.Join(t.TempDir(), "missing.pem")))
	require.ErrorContains(t, err, "CA file")
}
