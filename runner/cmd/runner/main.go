// Command runner runs Aether pipelines and the tools around them.
package main

import (
	"os"

	"github.com/aetherai/aether/runner/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
