package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aetherai/aether/runner/config"
)

// apikeyCmd is `runner apikey hash`: the sha256:<hex> form of a key, so
// that a pipeline file holds no API key or admin token in clear.
func apikeyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apikey",
		Short: "Tools for API keys",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "hash",
		Short: "Print the sha256:<hex> form of a key read from stdin, for http.apiKeys or http.admin.token",
		Long: `Read one key from stdin (the first line, without its line ending) and print
its SHA-256 as sha256:<hex>, the form http.apiKeys and http.admin.token accept
so that the file holds no key. The key is read from stdin, not from an
argument, so that it stays out of the shell history and the process list:

  printf %s "$SHOP_KEY" | runner apikey hash`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := readKey(cmd.InOrStdin())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), config.HashKey(key))
			return nil
		},
	})
	return cmd
}

// readKey reads the first line of r as a key.
func readKey(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	key := strings.TrimRight(line, "\r\n")
	if key == "" {
		return "", usageError{errors.New("no key on stdin: printf %s KEY | runner apikey hash")}
	}
	if strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r > '~' }) {
		// The API refuses such keys; hashing one would only hide the mistake.
		return "", usageError{errors.New("the key holds spaces or characters other than printable ASCII")}
	}
	return key, nil
}
