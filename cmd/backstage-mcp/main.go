// Command backstage-mcp is an MCP server that lets AI agents read a
// Backstage software catalog as the person they act for: scoped tools,
// verified identity, secret redaction, rate limits and an audit trail.
//
// Run `backstage-mcp help` for the subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

func commands() map[string]command {
	return map[string]command{
		"serve":   {"run the MCP server (--stdio or --http ADDR; --demo for the embedded catalog)", runServe},
		"config":  {"check a configuration file, or print its JSON Schema: config check FILE | config schema", adapt(runConfig)},
		"connect": {"connect your IDE to a shared server as you: stdio here, Streamable HTTP there, signed in with your identity provider", runConnect},
		"doctor":  {"check a configuration, Backstage, the identity provider, your token and what the policy lets you see; say what to fix", adapt(runDoctor)},
		"login":   {"sign in to your OpenID provider for stdio use (device code, or --browser for auth code + PKCE)", adapt(runLogin)},
		"logout":  {"forget (and revoke) the stored token", adapt(runLogout)},
		"audit":   {"verify, query and summarise audit logs: audit verify|query|summary FILE…", adapt(runAudit)},
		"policy":  {"check a policy file, explain a decision, or report what each role reaches: policy check|explain|graph", adapt(runPolicy)},
		"redact":  {"scan text or JSON for secrets, list the rules, measure them: redact scan|rules|report", runRedact},
		"version": {"print the version, VCS revision, build time and Go version", runVersion},
	}
}

// parseCommand parses a subcommand's flags. Help asked for (-h, -help,
// --help) prints the usage on stdout and is done with 0; a bad flag
// prints the flag package's message and the usage on stderr and is done
// with 2. Every fs.Usage must write to fs.Output(). After parsing, the
// flag set's output is stderr, for the command's own usage errors.
func parseCommand(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, done bool) {
	if fs.Usage == nil {
		fs.Usage = func() {
			fmt.Fprintf(fs.Output(), "Usage of backstage-mcp %s:\n", fs.Name())
			fs.PrintDefaults()
		}
	}
	fs.SetOutput(io.Discard) // the flag package's own report; see below
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		fs.SetOutput(stderr)
		return 0, true
	default:
		fmt.Fprintf(stderr, "backstage-mcp %s: %v\n\n", fs.Name(), err)
		fs.Usage()
		return 2, true
	}
}

// parseFlagsOnly is parseCommand for subcommands that take flags and no
// positional arguments: extra arguments are reported with fail.
func parseFlagsOnly(fs *flag.FlagSet, args []string, stdout, stderr io.Writer, fail func(format string, a ...any) int) (code int, done bool) {
	if code, done := parseCommand(fs, args, stdout, stderr); done {
		return code, true
	}
	if fs.NArg() > 0 {
		return fail("unexpected arguments %q", fs.Args()), true
	}
	return 0, false
}

// failer returns the error reporter of subcommand name: it prints
// "backstage-mcp NAME: MESSAGE" on stderr and returns exit code 2.
func failer(name string, stderr io.Writer) func(format string, a ...any) int {
	return func(format string, a ...any) int {
		fmt.Fprintf(stderr, "backstage-mcp "+name+": "+format+"\n", a...)
		return 2
	}
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// runGroup runs the subcommand args[0] of command group from subs, which
// get the arguments after it. No subcommand prints usage on stderr (exit
// 2); help prints it on stdout (exit 0), and "help SUB" is "SUB --help";
// an unknown subcommand is exit 2.
func runGroup(group, usage string, args []string, stdout, stderr io.Writer, subs map[string]func(args []string) int) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "backstage-mcp %s: which subcommand?\n\n%s", group, usage)
		return 2
	}
	if isHelp(args[0]) {
		if len(args) > 1 {
			if run, ok := subs[args[1]]; ok {
				return run(append(args[2:len(args):len(args)], "--help"))
			}
			fmt.Fprintf(stderr, "backstage-mcp %s: unknown subcommand %q\n\n%s", group, args[1], usage)
			return 2
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	if run, ok := subs[args[0]]; ok {
		return run(args[1:])
	}
	fmt.Fprintf(stderr, "backstage-mcp %s: unknown subcommand %q\n\n%s", group, args[0], usage)
	return 2
}

// adapt wraps a command that does not read stdin.
func adapt(f func(ctx context.Context, args []string, stdout, stderr io.Writer) int) func(context.Context, []string, io.Reader, io.Writer, io.Writer) int {
	return func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
		return f(ctx, args, stdout, stderr)
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 {
		fmt.Fprint(stderr, "backstage-mcp: which command?\n\n")
		usage(stderr, cmds)
		return 2
	}
	switch args[0] {
	case "--version", "-version":
		if len(args) > 1 {
			fmt.Fprintf(stderr, "backstage-mcp: %s takes no arguments\n", args[0])
			return 2
		}
		return runVersion(ctx, nil, stdin, stdout, stderr)
	}
	if isHelp(args[0]) {
		if len(args) > 1 {
			// help CMD [SUB]: the same as CMD [SUB] --help.
			c, ok := cmds[args[1]]
			if !ok {
				fmt.Fprintf(stderr, "backstage-mcp: unknown command %q\n\n", args[1])
				usage(stderr, cmds)
				return 2
			}
			return c.run(ctx, append(args[2:len(args):len(args)], "--help"), stdin, stdout, stderr)
		}
		usage(stdout, cmds)
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "backstage-mcp: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	return c.run(ctx, args[1:], stdin, stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(`backstage-mcp — Backstage catalog tools for AI agents, under the user's identity.

Usage:
  backstage-mcp <command> [flags]
  backstage-mcp help <command>       # the same as <command> --help
  backstage-mcp --version            # the same as backstage-mcp version

Commands:
`)
	for _, n := range names {
		fmt.Fprintf(&b, "  %-9s %s\n", n, cmds[n].summary)
	}
	b.WriteString(`
Connect your IDE to your company's shared server (your platform team gives the URL and client ID):
  backstage-mcp connect --login --client-id ID https://mcp.example.com/mcp   # once, in a terminal
  backstage-mcp connect --client-id ID https://mcp.example.com/mcp           # in the IDE's MCP config

Quick start (no Backstage needed):
  backstage-mcp serve --demo --http 127.0.0.1:8080     # Streamable HTTP at http://127.0.0.1:8080/mcp
  backstage-mcp serve --demo --stdio                    # for an IDE assistant

Against your Backstage:
  backstage-mcp config check config.yaml
  backstage-mcp serve --config config.yaml --http 127.0.0.1:8080

Run "backstage-mcp <command> --help" for a command's flags.
`)
	fmt.Fprint(w, b.String())
}
