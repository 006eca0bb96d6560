package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/backstage-mcp/backstage-mcp/server/connect"
	"github.com/backstage-mcp/backstage-mcp/server/doctor"
)

const doctorHelp = `Usage: backstage-mcp doctor (--config FILE | --server URL | both)

Checks a setup end to end and prints what to fix, one line per check
(ok, WARN, FAIL) with a "fix:" line under each problem.

--config FILE (the platform team's view, where the server runs):
  the configuration and its policy; Backstage reached with the service
  token; each identity provider's discovery, signing keys and features
  (device flow, PKCE, dynamic registration); the token stored by
  'backstage-mcp login' (who, scopes, audience, expiry, signature); and what
  the policy lets that person see: roles, tools, entities by kind.

--server URL (a developer's view, for 'backstage-mcp connect'):
  the server's OAuth metadata and its identity provider; the token stored
  by 'connect --login' (who, scopes, expiry, signature); and what the server
  itself says you get: your Backstage identity and your tools.

Exit 0 when nothing failed (warnings allowed), 1 when a check failed, 2 on
usage errors.

Examples:
  backstage-mcp doctor --server https://mcp.example.com/mcp
  backstage-mcp doctor --config config.yaml

Flags:
`

// runDoctor is the `doctor` subcommand.
func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), doctorHelp)
		fs.PrintDefaults()
	}
	configFile := fs.String("config", "", "server configuration `FILE` to check")
	serverURL := fs.String("server", "", "shared server's MCP endpoint `URL` to check, as connect uses it")
	fail := failer("doctor", stderr)
	if code, done := parseFlagsOnly(fs, args, stdout, stderr, fail); done {
		return code
	}
	if *configFile == "" && *serverURL == "" {
		return fail("give --config FILE, --server URL or both (see backstage-mcp doctor --help)")
	}
	if *serverURL != "" {
		if _, err := connect.CheckServerURL(*serverURL); err != nil {
			return fail("%v", err)
		}
	}
	rs := doctor.Run(ctx, doctor.Options{ConfigFile: *configFile, ServerURL: *serverURL, Version: appVersion()})
	doctor.Write(stdout, rs)
	if doctor.Failed(rs) {
		return 1
	}
	return 0
}
