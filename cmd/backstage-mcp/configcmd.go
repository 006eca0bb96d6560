package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/policy/policyfile"
	"github.com/backstage-mcp/backstage-mcp/server"
)

func runConfig(_ context.Context, args []string, stdout, stderr io.Writer) int {
	help := func(w io.Writer) {
		fmt.Fprintf(w, `Usage: backstage-mcp config check FILE

Reads FILE as the server would — ${ENV_VAR} substitution, environment
overrides (%s), defaults — and reports the first problem with the key it
concerns; then checks the policy file it names (line:column errors).
Exit status 0 when both are valid, 1 when not.

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
	cfg, err := server.LoadConfig(args[1], os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if cfg.Policy.File == "" {
		fmt.Fprintf(stderr, "%s: warning: policy.file is not set: serve refuses to start without a policy (except --demo)\n", args[1])
	} else {
		data, err := os.ReadFile(cfg.Policy.File)
		if err != nil {
			fmt.Fprintf(stderr, "%s: policy.file: %v\n", args[1], err)
			return 1
		}
		diags := policyfile.Check(data, cfg.Policy.File)
		for _, d := range diags {
			fmt.Fprintln(stderr, d.String())
		}
		if policyfile.HasErrors(diags) {
			return 1
		}
	}
	fmt.Fprintf(stdout, "%s: ok\n", args[1])
	return 0
}
