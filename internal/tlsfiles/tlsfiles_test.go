package tlsfiles_test

import (
	"crypto/tls"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/internal/tlsfiles"
)

func TestClientNamesTheFailingFile(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))

	c, err := tlsfiles.Client("", "", "")
	require.NoError(t, err)
	require.Equal(t, uint16(tls.VersionTLS12), c.MinVersion)
	require.Nil(t, c.RootCAs, "no caFile: the system's roots")
	require.Empty(t, c.Certificates)

	for _, tc := range []struct {
		ca, cert, key string
		file, text    string
	}{
		{ca: filepath.Join(dir, "missing.pem"), file: "caFile", text: "open " + filepath.Join(dir, "missing.pem") + ": no such file or directory"},
		{ca: notPEM, file: "caFile", text: notPEM + " holds no PEM certificate"},
		{cert: notPEM, key: notPEM, file: "certFile", text: "tls: failed to find any PEM data in certificate input"},
	} {
		_, err := tlsfiles.Client(tc.ca, tc.cert, tc.key)
		var fe *tlsfiles.Error
		require.True(t, errors.As(err, &fe), "%v", err)
		require.Equal(t, tc.file, fe.File)
		require.EqualError(t, fe.Err, tc.text)
		require.EqualError(t, err, tc.file+": "+tc.text)
	}
	_, err = tlsfiles.Client(filepath.Join(dir, "missing.pem"), "", "")
	require.ErrorIs(t, err, fs.ErrNotExist)
}
