package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/server"
)

func runConfig(_ context.Context, args []string, stdout, stderr io.Writer) int {
	help := func(w io.Writer) {
		fmt.Fprintf(w, `Usage: backstage-mcp config check FILE

Reads FILE as the server would — ${ENV_VAR} substitution, environment
overrides (%s), defaults — and reports the first problem with the key it
concerns. Exit status 0 when the file is valid, 1 when it is not.

Example:
  BACKSTAGE_TOKEN=secret backstage-mcp config check testdata/config.example.yaml
`, strings.Join(server.EnvOverrideNames(), ", "))
	}
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		help(stdout)
		return 0
	}
	if len(args) != 2 || args[0] != "check" {
		help(stderr)
		return 2
	}
	if _, err := server.LoadConfig(args[1], os.Getenv); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", args[1])
	return 0
}
