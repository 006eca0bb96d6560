package main

import (
	"strings"
	"testing"
)

// commandPaths lists every command and subcommand.
var commandPaths = [][]string{
	{"serve"},
	{"config"}, {"config", "check"}, {"config", "schema"},
	{"login"}, {"logout"}, {"connect"}, {"doctor"},
	{"audit"}, {"audit", "verify"}, {"audit", "query"}, {"audit", "summary"},
	{"policy"}, {"policy", "check"}, {"policy", "explain"}, {"policy", "graph"},
	{"redact"}, {"redact", "scan"}, {"redact", "rules"},
	{"version"},
}

// TestCommandsCoverEveryCommand: commandPaths is kept in step with the
// command table.
func TestCommandsCoverEveryCommand(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range commandPaths {
		seen[p[0]] = true
	}
	for name := range commands() {
		if !seen[name] {
			t.Errorf("command %q is missing from commandPaths", name)
		}
	}
}

// TestHelpAndUsageStreams: help asked for goes to stdout with exit 0;
// usage after a mistake goes to stderr with exit 2, for every command and
// subcommand.
func TestHelpAndUsageStreams(t *testing.T) {
	type want struct {
		code   int
		stdout bool   // stdout has text (else it must be empty)
		stderr bool   // stderr has text (else it must be empty)
		has    string // text the stream with text contains
	}
	help := want{code: 0, stdout: true, has: "Usage"}
	mistake := want{code: 2, stderr: true, has: "Usage"}
	type tc struct {
		args []string
		want want
	}
	var cases []tc
	for _, p := range commandPaths {
		join := func(extra ...string) []string { return append(append([]string{}, p...), extra...) }
		cases = append(cases,
			tc{join("--help"), help},
			tc{join("-h"), help},
			tc{join("-help"), help},
			tc{append([]string{"help"}, p...), help},
			tc{join("--no-such-flag"), mistake},
		)
		if len(p) == 2 {
			cases = append(cases, tc{[]string{p[0], "help", p[1]}, help})
		}
	}
	cases = append(cases,
		tc{nil, mistake},
		tc{[]string{"help"}, help},
		tc{[]string{"-h"}, help},
		tc{[]string{"--help"}, help},
		tc{[]string{"no-such-command"}, mistake},
		tc{[]string{"help", "no-such-command"}, mistake},
		tc{[]string{"--no-such-flag"}, mistake},
		tc{[]string{"--version"}, want{code: 0, stdout: true, has: "backstage-mcp "}},
		tc{[]string{"-version"}, want{code: 0, stdout: true, has: "backstage-mcp "}},
		tc{[]string{"--version", "extra"}, want{code: 2, stderr: true}},
		// Groups without or with an unknown subcommand.
		tc{[]string{"config"}, mistake},
		tc{[]string{"audit"}, mistake},
		tc{[]string{"policy"}, mistake},
		tc{[]string{"redact"}, mistake},
		tc{[]string{"config", "nope"}, mistake},
		tc{[]string{"config", "help", "nope"}, mistake},
		// Missing arguments.
		tc{[]string{"serve"}, want{code: 2, stderr: true, has: "--stdio or --http"}},
		tc{[]string{"config", "check"}, mistake},
		tc{[]string{"config", "check", "a.yaml", "b.yaml"}, mistake},
		tc{[]string{"config", "schema", "extra"}, want{code: 2, stderr: true}},
		tc{[]string{"login"}, want{code: 2, stderr: true, has: "--issuer"}},
		tc{[]string{"logout"}, want{code: 2, stderr: true, has: "--issuer"}},
		tc{[]string{"doctor"}, want{code: 2, stderr: true, has: "--config FILE, --server URL"}},
		tc{[]string{"connect"}, want{code: 2, stderr: true, has: "which server?"}},
		tc{[]string{"connect", "http://mcp.example.com/mcp"}, want{code: 2, stderr: true, has: "in the clear"}},
		tc{[]string{"connect", "https://mcp.example.com/mcp", "extra"}, want{code: 2, stderr: true, has: "unexpected arguments"}},
		tc{[]string{"connect", "--login", "--client-id=", "https://mcp.example.com/mcp"}, want{code: 2, stderr: true, has: "--client-id is required"}},
		tc{[]string{"audit", "verify"}, mistake},
		tc{[]string{"policy", "check"}, mistake},
		tc{[]string{"policy", "explain"}, want{code: 2, stderr: true}},
		tc{[]string{"policy", "graph"}, want{code: 2, stderr: true, has: "--config"}},
		tc{[]string{"version", "extra"}, want{code: 2, stderr: true}},
	)
	for _, c := range cases {
		name := strings.Join(c.args, " ")
		if name == "" {
			name = "(no arguments)"
		}
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(t, c.args...)
			if code != c.want.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.want.code, out, errOut)
			}
			if (out != "") != c.want.stdout {
				t.Errorf("stdout %q, want text: %v", out, c.want.stdout)
			}
			if (errOut != "") != c.want.stderr {
				t.Errorf("stderr %q, want text: %v", errOut, c.want.stderr)
			}
			if text := out + errOut; !strings.Contains(text, c.want.has) {
				t.Errorf("output lacks %q:\n%s", c.want.has, text)
			}
		})
	}
}
