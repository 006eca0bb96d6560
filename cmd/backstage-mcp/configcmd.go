package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/policy/policyfile"
	"github.com/backstage-mcp/backstage-mcp/server"
)

const configUsage = `Usage:
  backstage-mcp config check FILE
  backstage-mcp config schema

check    reads FILE as the server would — ${ENV_VAR} substitution, environment
         overrides, defaults — and reports the first problem as
         FILE:LINE: KEY: what is wrong (an unknown key comes with the key
         probably meant); then checks the policy file it names (line:column
         errors). Exit 0 when both are valid, 1 when not, 2 on usage errors.

schema   prints the JSON Schema (draft 2020-12) of the configuration file,
         for editors and CI checks (docs/config.schema.json is the same).

Examples:
  BACKSTAGE_TOKEN=secret backstage-mcp config check testdata/config.example.yaml
  backstage-mcp config schema > config.schema.json

Every key is described in docs/configuration.md.
`

func runConfig(_ context.Context, args []string, stdout, stderr io.Writer) int {
	return runGroup("config", configUsage, args, stdout, stderr, map[string]func([]string) int{
		"check":  func(args []string) int { return configCheck(args, stdout, stderr) },
		"schema": func(args []string) int { return configSchema(args, stdout, stderr) },
	})
}

func configCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: backstage-mcp config check FILE

Reads FILE as the server would — ${ENV_VAR} substitution, environment
overrides (%s), defaults — and reports the first problem as
FILE:LINE: KEY: what is wrong; reads the files it names for Redis
(passwords, CA, client certificate) as serve would; then checks the
policy file it names (line:column errors). Exit status 0 when all are
valid, 1 when not, 2 on usage errors. Every key is described in
docs/configuration.md.

Example:
  BACKSTAGE_TOKEN=secret backstage-mcp config check testdata/config.example.yaml
`, strings.Join(server.EnvOverrideNames(), ", "))
	}
	if code, done := parseCommand(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() != 1 {
		if fs.NArg() == 0 {
			fmt.Fprint(stderr, "backstage-mcp config check: no FILE given\n\n")
		} else {
			fmt.Fprintf(stderr, "backstage-mcp config check: one FILE, not %d\n\n", fs.NArg())
		}
		fs.Usage()
		return 2
	}
	file := fs.Arg(0)
	cfg, err := server.LoadConfig(file, os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := cfg.CheckFiles(); err != nil {
		if ce := (*server.ConfigError)(nil); errors.As(err, &ce) && ce.File == "" {
			ce.File = file
		}
		fmt.Fprintln(stderr, err)
		return 1
	}
	if cfg.Policy.File == "" {
		fmt.Fprintf(stderr, "%s: warning: policy.file is not set: serve refuses to start without a policy (except --demo)\n", file)
	} else {
		data, err := server.ReadPolicyFile(cfg.Policy.File)
		if err != nil {
			fmt.Fprintf(stderr, "%s: policy.file: %v\n", file, err)
			return 1
		}
		diags := policyfile.Check(data, cfg.Policy.File)
		for _, d := range diags {
			fmt.Fprintln(stderr, d.String())
		}
		if policyfile.HasErrors(diags) {
			return 1
		}
		// What serve checks of the policy against this config.
		if _, doc, err := policyfile.Parse(data, cfg.Policy.File); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		} else if err := cfg.CheckPolicy(doc); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", cfg.Policy.File, err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "%s: ok\n", file)
	return 0
}

func configSchema(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config schema", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: backstage-mcp config schema

Prints the JSON Schema (draft 2020-12) of the configuration file: every
key with its type and description, the values of keys with a known set,
durations as strings, no other keys. Editors using the YAML language
server pick it up from a first line such as
  # yaml-language-server: $schema=config.schema.json

Example:
  backstage-mcp config schema > config.schema.json
`)
	}
	fail := failer("config schema", stderr)
	if code, done := parseFlagsOnly(fs, args, stdout, stderr, fail); done {
		return code
	}
	schema, err := server.ConfigJSONSchema()
	if err != nil {
		fmt.Fprintf(stderr, "backstage-mcp config schema: %v\n", err)
		return 1
	}
	if _, err := stdout.Write(schema); err != nil {
		return 1
	}
	return 0
}
